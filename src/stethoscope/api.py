"""The process-wide entry points: trace(), stop(), current(), dump(). The one singleton.

This is also where monitors are put together: the program's (its server, and the
part that follows children) in ``trace()``, a followed child's (its reporter:
children/child.py) in ``start_child()``, which the start-up hook of a child
(``start_from_env``, from stethoscope-children.pth) and the after-fork hook call.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TextIO

from ._stderr import write_stderr

# Imported here, not where they are used: the after-fork hook runs in a forked
# child, where an import may wait for ever on a lock held at fork time by a
# thread that does not exist there.
from .children.child import child_monitor
from .children.follow import Following
from .children.link import CHILD_ENV, ChildLink
from .children.watch import fork_method, startup_method
from .config import Config, Mode
from .files import FileFilter
from .files import user as _user_files
from .model import Store
from .monitor import Monitor
from .monitor.outlet import ServerOutlet
from .monitor.process import ProcessRecord


class AlreadyRunningError(RuntimeError):
    """trace() was called while a monitor runs in this process."""


_lock = threading.Lock()
_current: Monitor | None = None
_link: ChildLink | None = None  # what a child of the current monitor reports with
_is_child = False  # the current monitor is a followed child's
_fork_hook_installed = False
_env_read = False


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
    hang_report: float = 3.0,
    dump_signal: int | None = None,
    metrics_public: bool = False,
    record: str | None = None,
) -> Monitor:
    """Start monitoring this process and serving the page; return the Monitor.

    The keywords are the options of ``stethoscope.config.Config`` (a test keeps
    the two identical). ``port=None`` takes 9999, or a free port when 9999 is
    busy; an explicit port that is busy raises PortInUseError; ``port=0`` takes
    any free port. ``metrics_public=True`` serves ``GET /metrics`` (Prometheus)
    without the token, for scrapers that cannot carry it; every other path still
    needs it. ``record="run.stetho"`` also writes the snapshot stream and the
    sampled stacks to that file (replay: ``stethoscope view run.stetho``; exports:
    ``stethoscope export``); a bad path raises ConfigError before anything starts.
    """
    config = Config.of(locals())
    global _current, _link, _is_child
    with _lock:
        if _is_child and _current is not None and _current.running:
            _current.stop()  # an explicit trace() in a followed child takes over
        if _current is not None and _current.running:
            raise AlreadyRunningError(
                f"stethoscope is already monitoring this process at {_current.url}; "
                f"call stethoscope.stop() before starting another"
            )
        _install_fork_hook()
        monitor, following = _program_monitor(config)
        # current() names it before it starts: a monitor that stops again while
        # starting (its on_stop releases it) must not be left behind as current
        _current, _is_child = monitor, False
        try:
            monitor.start()
        except BaseException:
            _release(monitor)
            raise
        if _current is monitor:
            _link = following.link if following else None
    return monitor


def _program_monitor(config: Config) -> tuple[Monitor, Following | None]:
    store = Store(config.window)
    outlet = ServerOutlet(config)  # binds: a busy port fails here, before any change
    following = Following(config, store.activity) if config.processes else None
    monitor = Monitor(config, store=store, outlet=outlet, process=ProcessRecord("main"),
                      children=following, on_stop=_release)
    return monitor, following


def stop() -> None:
    """Stop the current monitor, if any. Idempotent."""
    monitor = _current
    if monitor is not None:
        monitor.stop()


def dump(file: TextIO | None = None) -> str:
    """Print a report on every thread (creation site, state, stack) and return it.

    Works with or without a running monitor; without one, creation sites are
    unknown. Writes to ``file``, or to stderr (fd 2) when None.
    """
    monitor = _current
    report = monitor.dump() if monitor is not None and monitor.running else _standalone_dump()
    if file is None:
        write_stderr(report)
    else:
        file.write(report)
    return report


def _standalone_dump() -> str:
    import time

    from .collectors.counting import is_own_thread
    from .collectors.cputime import ThreadCPU
    from .collectors.filters import Resolver
    from .collectors.threads import ThreadDescriber
    from .render.threads import dump_report

    store = Store(window=1)
    describer = ThreadDescriber(Resolver(_user_files, store), None, ThreadCPU())
    meta = {t.ident: t for t in threading.enumerate() if t.ident is not None}
    skip = {i for i, t in meta.items() if is_own_thread(t)}
    describer.describe(sys._current_frames(), meta, skip)  # first CPU reading
    time.sleep(0.05)
    store.set_threads(describer.describe(sys._current_frames(), meta, skip), [])
    snap = store.snapshot(state="running", mode="none", heat="time", started=time.time(),
                          sample_hz=0.0, argv=sys.argv, python="")
    return dump_report(snap)


def current() -> Monitor | None:
    """The running monitor, or None."""
    return _current


def _release(monitor: Monitor) -> None:
    global _current, _link, _is_child
    if _current is monitor:
        _current, _link, _is_child = None, None, False


def start_child(link: ChildLink, method: str, name: str = "") -> Monitor | None:
    """Monitor this child process and report to the program's monitor. Never raises:
    a child that cannot be followed runs on unmonitored, with one line on stderr."""
    global _current, _link, _is_child
    try:
        with _lock:
            if _current is not None and _current.running:
                return None
            _install_fork_hook()
            monitor = child_monitor(link, method, name, on_stop=_release)
            monitor.start()
            _current, _link, _is_child = monitor, link, True
            return monitor
    except Exception as exc:
        write_stderr(f"stethoscope: process {os.getpid()} is not monitored: "
                     f"{type(exc).__name__}: {exc}\n")
        return None


def start_from_env() -> None:
    """At start-up of a Python process (stethoscope-children.pth): follow it if the
    environment names a monitor to report to."""
    global _env_read
    text = os.environ.get(CHILD_ENV)
    if not text or _env_read:
        return  # a venv's lib64 -> lib symlink makes site run the .pth file twice
    _env_read = True
    try:
        link = ChildLink.from_env(text)
        method, name = startup_method()
    except Exception as exc:
        write_stderr(f"stethoscope: process {os.getpid()} is not monitored: {exc}\n")
        return
    start_child(link, method, name)


def _after_fork_in_child() -> None:
    global _current, _lock, _link, _is_child
    _lock = threading.Lock()  # the parent may have held it while forking
    monitor, link = _current, _link
    _current, _link, _is_child = None, None, False
    if monitor is None or not monitor.running:
        return
    monitor.forget_after_fork()
    if link is not None:
        start_child(link, fork_method(sys._getframe(1)))


def _install_fork_hook() -> None:
    global _fork_hook_installed
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True
