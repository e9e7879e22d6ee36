"""Child processes: the hooks that see a process leave, and facts about other processes.

``ExitHooks`` makes sure a followed child sends its last data on every way out
(SHUTDOWN-FACTS.md):

* ``multiprocessing.process.BaseProcess._bootstrap`` is wrapped: it is the one
  function every multiprocessing child runs (fork, spawn, forkserver; Process,
  Pool and ProcessPoolExecutor workers), and it returns the exit code that
  multiprocessing then hands to ``os._exit``, which skips atexit;
* ``os._exit`` itself is wrapped, for children that call it directly;
* SIGTERM (``Pool.terminate()``, leaving ``with Pool()``): when its disposition is
  the default, a handler flushes, restores the default and re-sends the signal,
  so the process still dies "killed by signal 15";
* a normal exit is the monitor's atexit handler.

``on_exit(how, code)`` is called once, whichever comes first. ``stop()`` restores
everything; wrappers that someone else wrapped in turn become pass-throughs.
Module globals are never cleared: the user's own atexit handlers run as usual.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..model import ProcessTable

ExitCallback = Callable[[str, "int | None"], None]

SPAWN_FLAG = "--multiprocessing-fork"
FLUSH_PATIENCE = 1.0  # seconds a SIGTERM waits for a final report under way
_HAS_PROC = os.path.exists("/proc/self/stat")
_MP_FILES = {
    os.path.join("multiprocessing", "popen_fork.py"): "fork",
    os.path.join("multiprocessing", "forkserver.py"): "forkserver",
}


class ExitHooks:
    name = "children"

    def __init__(self, on_exit: ExitCallback, on_bootstrap: Callable[[str], None],
                 on_fault: Callable[[str], None]) -> None:
        self._on_exit = on_exit
        self._on_bootstrap = on_bootstrap
        self._on_fault = on_fault
        self._active = False
        self._process_class: Any = None
        self._original_bootstrap: Any = None
        self._bootstrap_wrapper: Any = None
        self._original_exit: Callable[[int], Any] | None = None
        self._exit_wrapper: Callable[[int], Any] | None = None
        self._sigterm_handler: Callable[[int, FrameType | None], None] | None = None
        self._flushing = False
        self._flush_began = 0.0
        self._sigterm_pending = False

    def start(self) -> None:
        import multiprocessing.process as mp_process

        hooks = self
        self._process_class = cls = mp_process.BaseProcess
        self._original_bootstrap = original_bootstrap = cls._bootstrap  # type: ignore[attr-defined]

        def _bootstrap(process: Any, *args: Any, **kwargs: Any) -> Any:
            if hooks._active:
                hooks._entered(process)
            code = None
            try:
                code = original_bootstrap(process, *args, **kwargs)
                return code
            finally:
                if hooks._active:
                    hooks._exit("return", code)

        self._original_exit = original_exit = os._exit

        def _exit(code: int) -> Any:
            if hooks._active:
                hooks._exit("os._exit", code)
            return original_exit(code)

        self._bootstrap_wrapper, self._exit_wrapper = _bootstrap, _exit
        self._active = True
        cls._bootstrap = _bootstrap  # type: ignore[attr-defined]
        os._exit = _exit  # type: ignore[assignment]
        self._install_sigterm()

    def stop(self) -> None:
        # No import here: in a forked child another thread may have held an
        # import lock at fork time, and stop() runs on the way out.
        self._active = False
        cls = self._process_class
        if cls is not None and cls.__dict__.get("_bootstrap") is self._bootstrap_wrapper:
            cls._bootstrap = self._original_bootstrap
        if os._exit is self._exit_wrapper and self._original_exit is not None:
            os._exit = self._original_exit  # type: ignore[assignment]
        if not self._flushing:  # else _exit() does it once the final report is out
            self._uninstall_sigterm()

    def _entered(self, process: Any) -> None:
        try:
            self._on_bootstrap(str(getattr(process, "name", "") or ""))
        except Exception as exc:
            self._on_fault(f"child process hook failed: {type(exc).__name__}: {exc}")

    def _exit(self, how: str, code: int | None) -> None:
        if not self._active:
            return
        self._active = False
        self._flushing = True
        self._flush_began = time.monotonic()
        try:
            self._on_exit(how, code)
        except BaseException as exc:  # never change how the process ends
            self._on_fault(f"final report failed: {type(exc).__name__}: {exc}")
        finally:
            self._flushing = False
        if self._sigterm_pending:  # it came during the flush: now die of it
            die_of_sigterm()
        self._uninstall_sigterm()

    # -- SIGTERM -----------------------------------------------------------------

    def _install_sigterm(self) -> None:
        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self._flushing and not self._sigterm_pending \
                    and time.monotonic() - self._flush_began < FLUSH_PATIENCE:
                # Pool.terminate() right after a worker returned: let the final
                # report (bounded in time) leave first, then die of the signal.
                # A second SIGTERM, or one after FLUSH_PATIENCE, kills at once.
                self._sigterm_pending = True
                return
            if not self._flushing:
                self._exit("SIGTERM", -signal.SIGTERM)
            die_of_sigterm()  # as the sender meant

        if take_sigterm(on_sigterm):
            self._sigterm_handler = on_sigterm

    def _uninstall_sigterm(self) -> None:
        handler, self._sigterm_handler = self._sigterm_handler, None
        if handler is not None:
            release_sigterm(handler)


def take_sigterm(handler: Callable[[int, FrameType | None], Any]) -> bool:
    """Handle SIGTERM with ``handler`` if the program left SIGTERM at its default
    (a handler of the program's own, or SIG_IGN, decides for itself) and this is
    the main thread, the only one that may set handlers. True if installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return False
    return True


def release_sigterm(handler: Callable[[int, FrameType | None], Any]) -> None:
    """SIGTERM back to its default, if ``handler`` is still the one installed."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:
        pass


def die_of_sigterm() -> None:
    """End the process by SIGTERM's default action, so its parent sees signal 15."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def fork_method(frame: FrameType | None) -> str:
    """Who called fork(), from an after-fork hook's frame: multiprocessing's fork
    start method, its forkserver, or the program itself (``os.fork``)."""
    depth = 0
    while frame is not None and depth < 12:
        filename = frame.f_code.co_filename
        for tail, method in _MP_FILES.items():
            if filename.endswith(tail):
                return method
        frame = frame.f_back
        depth += 1
    return "os.fork"


def startup_method() -> tuple[str, str]:
    """(method, name) for a process started by exec: a spawn child, one of
    multiprocessing's helper processes, or a plain subprocess."""
    argv = getattr(sys, "orig_argv", sys.argv)
    if SPAWN_FLAG in argv:
        return "spawn", ""
    code = " ".join(argv)
    if "multiprocessing.forkserver import main" in code:
        return "spawn", "forkserver"
    if "multiprocessing.resource_tracker import main" in code:
        return "spawn", "resource_tracker"
    return "subprocess", ""


class ChildWatch:
    """Marks as killed a child that is gone without its final report.

    ``check()`` runs a few times a second (from the sampler thread); a child gets
    ``grace`` seconds after it is seen gone, for a final report still on its way.
    """

    def __init__(self, table: ProcessTable, grace: float = 1.0) -> None:
        self._table = table
        self._grace = grace
        self._gone_since: dict[int, float] = {}

    def check(self) -> None:
        now = time.monotonic()
        watched = self._table.watch_list()
        for pid in [p for p in self._gone_since if p not in watched]:
            del self._gone_since[pid]
        for pid in watched:
            alive, status = process_status(pid)
            if alive:
                continue
            since = self._gone_since.setdefault(pid, now)
            if now - since >= self._grace:
                self._table.vanished(pid, status)
                del self._gone_since[pid]


def process_started() -> float:
    """When this process started (wall clock): from the kernel's record of its start
    in clock ticks since boot (Linux), so that processes sort by their true start;
    else now."""
    try:
        with open("/proc/self/stat", "rb") as f:
            raw = f.read()
        ticks = int(raw[raw.rfind(b")") + 2:].split()[19])  # field 22: starttime
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        return time.time() - (since_boot - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


def process_status(pid: int) -> tuple[bool, int | None]:
    """(alive, exit status) of another process, without reaping it.

    A zombie counts as gone; its exit status comes from /proc (Linux), as a
    negative signal number or a non-negative exit code. None when unknown.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return (False if _HAS_PROC else _signal_zero(pid)), None
    except OSError:
        return _signal_zero(pid), None
    fields = raw[raw.rfind(b")") + 2:].split()
    if fields[:1] not in ([b"Z"], [b"X"]):
        return True, None
    if len(fields) >= 50:  # field 52 of the whole line: exit_code, as waitpid() gives it
        status = int(fields[49])
        return False, -(status & 0x7F) if status & 0x7F else status >> 8
    return False, None


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
