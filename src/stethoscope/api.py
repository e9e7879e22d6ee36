"""The process-wide entry points: trace(), stop(), current(). The one singleton."""

from __future__ import annotations

import os
import threading

from .config import Config, Mode, new_token
from .files import FileFilter
from .files import user as _user_files
from .monitor import Monitor


class AlreadyRunningError(RuntimeError):
    """trace() was called while a monitor runs in this process."""


_lock = threading.Lock()
_current: Monitor | None = None
_fork_hook_installed = False


def trace(
    files: FileFilter | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    browser: bool = False,
    daemon: bool = True,
    mode: Mode = "auto",
    processes: bool = True,
    token: str | None = None,
    sample_hz: float = 100.0,
    window: int = 10,
    quiet: bool = False,
) -> Monitor:
    """Start monitoring this process and serving the page; return the Monitor.

    ``port=None`` takes 9999, or a free port when 9999 is busy; an explicit port
    that is busy raises PortInUseError; ``port=0`` takes any free port.
    """
    global _current
    config = Config(
        files=_user_files if files is None else files,
        host=host, port=port, browser=browser, daemon=daemon, mode=mode,
        processes=processes, token=new_token() if token is None else token,
        sample_hz=sample_hz, window=window, quiet=quiet,
    )
    with _lock:
        if _current is not None and _current.running:
            raise AlreadyRunningError(
                f"stethoscope is already monitoring this process at {_current.url}; "
                f"call stethoscope.stop() before starting another"
            )
        _install_fork_hook()
        monitor = Monitor(config, on_stop=_release)
        monitor.start()
        _current = monitor
    return monitor


def stop() -> None:
    """Stop the current monitor, if any. Idempotent."""
    monitor = _current
    if monitor is not None:
        monitor.stop()


def current() -> Monitor | None:
    """The running monitor, or None."""
    return _current


def _release(monitor: Monitor) -> None:
    global _current
    if _current is monitor:
        _current = None


def _after_fork_in_child() -> None:
    global _current, _lock
    _lock = threading.Lock()  # the parent may have held it while forking
    monitor, _current = _current, None
    if monitor is not None:
        monitor.forget_after_fork()


def _install_fork_hook() -> None:
    global _fork_hook_installed
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True
