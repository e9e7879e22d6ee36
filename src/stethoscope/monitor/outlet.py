"""Where a monitor's picture goes: the program's own server (``ServerOutlet``).

A Monitor is given its outlet. The program's monitor serves the page, the API and
its children's reports; a followed child's monitor reports to the program's
instead (children/child.py). Either way the outlet is bound in its constructor,
before the monitor changes anything in the program, so a busy port is an error
that leaves the program as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .._compat import start_thread
from .._stderr import say
from ..config import DEFAULT_PORT, Config, page_url
from .backend import LiveBackend

if TYPE_CHECKING:
    from .core import Monitor


class Outlet(Protocol):
    url: str  # the page's URL (a child's: its program's)
    port: int

    def open(self, monitor: Monitor) -> None:
        """Connect to the monitor whose picture goes out (at its construction)."""

    def start(self) -> None: ...

    def close(self) -> None:
        """The last picture out, then nothing more; bounded in time."""

    def forget_after_fork(self) -> None:
        """In a forked child: let go without touching what the parent still uses."""


class ServerOutlet:
    def __init__(self, config: Config) -> None:
        # Never imported by a child, which only reports (http.server costs import time).
        from ..server.httpd import Server

        self._config = config
        self.server = Server(host=config.host,
                             port=DEFAULT_PORT if config.port is None else config.port,
                             token=config.token, fallback_port=config.port is None,
                             loopback=config.loopback, metrics_public=config.metrics_public)
        self.port: int = self.server.port
        self.url = page_url(config.host, self.port, config.token)
        self._backend: LiveBackend | None = None

    def open(self, monitor: Monitor) -> None:
        self._backend = LiveBackend(monitor)
        self.server.note = monitor.note  # the server stopping by itself is the user's news

    def start(self) -> None:
        from ..server.httpd import warn_if_exposed

        assert self._backend is not None, "open() first"
        config = self._config
        self.server.start(self._backend)
        if not config.quiet:
            say(f"serving {self.url}")
        warn_if_exposed(config.host)  # even when quiet: it is about who can reach the data
        if config.port is None and self.port != DEFAULT_PORT:
            say(f"port {DEFAULT_PORT} was busy; using port {self.port}")
        if config.browser:
            import webbrowser

            url = self.url
            start_thread(lambda: webbrowser.open(url), "stethoscope-browser")

    def close(self) -> None:
        self.server.stop()

    def forget_after_fork(self) -> None:
        self.server.forget()
