"""The monitor of a followed child process.

It collects like any monitor, with the settings of the program's monitor, but
serves nothing: it reports to that monitor instead (see reporter.py). Its last
report leaves on every way out of the process (see collectors/children.py), and
it says how the process ended. A child started by ``fork()`` gets a fresh one
(api.py's after-fork hook); one started by exec gets one at start-up from the
environment (stethoscope-children.pth).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from dataclasses import replace

from .collectors.children import ExitHooks
from .config import ChildLink, page_url
from .model import ChildReport, ProcessInfo
from .model.processes import MAX_SOURCE_CHARS
from .monitor import Monitor, _say
from .reporter import Reporter


class ChildMonitor(Monitor):
    link: ChildLink  # always: it is how this monitor reports

    def __init__(self, link: ChildLink, method: str, name: str = "", *,
                 on_stop: Callable[[Monitor], None] | None = None) -> None:
        self.link = link
        self._instance = os.urandom(8).hex()
        self._seq = 0
        self._seq_lock = threading.RLock()  # the SIGTERM flush may interrupt a report
        self._sent_sources: set[str] = set()
        self._exit: tuple[str, int | None] | None = None
        super().__init__(link.config(), on_stop=on_stop)
        self.children = None  # its own children report to the program's monitor directly
        self._process = replace(self._process, method=method, name=name)

    def _open_outlet(self) -> str:
        link = self.link
        self.reporter = Reporter(link.host, link.port, link.token, self._make_report,
                                 on_lost=self._lost, on_dropped=_say, on_mode=self._follow_mode)
        return page_url(link.host, link.port, link.token)

    def start(self) -> ChildMonitor:
        self._start_collectors()
        hooks = ExitHooks(self._finish, self._entered_bootstrap, on_fault=self._note)
        hooks.start()
        self._collectors.append(hooks)
        self.reporter.start()
        atexit.register(self._at_exit)
        return self

    def _close_outlet(self) -> None:
        self.reporter.final()

    def forget_after_fork(self) -> None:
        self.reporter.forget_after_fork()
        super().forget_after_fork()

    # -- exit paths ------------------------------------------------------------

    def _at_exit(self) -> None:
        self._finish("exit", None)

    def _finish(self, how: str, code: int | None) -> None:
        if self._exit is None:
            self._exit = (how, code)
        self.stop()

    def _entered_bootstrap(self, name: str) -> None:
        """A multiprocessing child is about to run its target: now it has a name."""
        # Only this thread changes _process after start (the reporter reads it).
        self._process = replace(self._process, name=name)

    def _follow_mode(self, mode: str) -> None:
        """The program's monitor was switched to ``mode``: so is this process (from
        the reporter thread; a mode this process cannot take becomes a note)."""
        if mode == self.requested_mode:
            return
        try:
            self.set_mode(mode)
        except RuntimeError:
            pass  # stopping: nothing more to collect
        except ValueError as exc:
            self.requested_mode = mode  # said once, not at every report
            self._note(f"this process did not switch to mode {mode!r}: {exc}")

    def _lost(self, why: str) -> None:
        self._note(f"{why}; this process is no longer monitored")
        self.stop()

    # -- reports -----------------------------------------------------------------

    def process_info(self, final: bool = True) -> ProcessInfo:
        """This process; "exited" only in the final report, which says how."""
        info = super().process_info()
        if self._exit is None or not final:
            return info
        how, code = self._exit
        return replace(info, state="exited", exit_how=how, exit_code=code, cpu=None)

    def _make_report(self, final: bool) -> tuple[bytes, Callable[[], None]]:
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        if final:  # the sampler, which reads it a few times a second, has stopped
            self._cpu.read()
        snapshot = self.snapshot()
        sources = []
        for f in snapshot.files:
            if f.id in self._sent_sources:
                continue
            try:
                found = self.own_source(f.id)
            except (OSError, SyntaxError, UnicodeError, ValueError):
                continue
            if found is None:
                continue
            text = found[1]
            if len(text) <= MAX_SOURCE_CHARS:
                sources.append((f.id, f.path, text))
        report = ChildReport(self._instance, seq, final, self.process_info(final), snapshot,
                             tuple(sources))
        sent = [fid for fid, _, _ in sources]
        return report.to_json(), lambda: self._sent_sources.update(sent)

