"""Facts about other processes: which of the followed children are gone, and how
a process was started.

``ChildWatch`` marks as killed a child that is gone without its final report (a
few times a second, from the sampler thread's housekeeping); ``process_status``
reads another process's state without reaping it. A pid that now names a process
of another user, or one started later than the child first seen with it (Linux:
its start time in /proc), is not our child any more (its number was reused): gone
too. ``fork_method`` and
``startup_method`` tell how the current process was started, for its entry in
the process panel.
"""

from __future__ import annotations

import os
import sys
import time
from types import FrameType

from ..model import ProcessTable

SPAWN_FLAG = "--multiprocessing-fork"
_HAS_PROC = os.path.exists("/proc/self/stat")
_MP_FILES = {
    os.path.join("multiprocessing", "popen_fork.py"): "fork",
    os.path.join("multiprocessing", "forkserver.py"): "forkserver",
}


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
        self._started: dict[int, int | None] = {}  # pid -> start time when first seen

    def check(self) -> None:
        now = time.monotonic()
        watched = self._table.watch_list()
        for pid in [p for p in self._gone_since if p not in watched]:
            del self._gone_since[pid]
        for pid in [p for p in self._started if p not in watched]:
            del self._started[pid]
        for pid in watched:
            alive, status = process_status(pid)
            if alive:
                started = process_start(pid)
                if self._started.setdefault(pid, started) == started:
                    continue
                status = None  # another process has that number now
            since = self._gone_since.setdefault(pid, now)
            if now - since >= self._grace:
                self._table.vanished(pid, status)
                del self._gone_since[pid]


def process_status(pid: int) -> tuple[bool, int | None]:
    """(alive, exit status) of another process, without reaping it.

    A zombie counts as gone, and so does a process of another user (the pid was
    reused); the exit status comes from /proc (Linux), as a negative signal number
    or a non-negative exit code. None when unknown.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
            owner = os.fstat(f.fileno()).st_uid
    except FileNotFoundError:
        return (False if _HAS_PROC else _signal_zero(pid)), None
    except OSError:
        return _signal_zero(pid), None
    if owner != os.getuid():
        return False, None
    fields = raw[raw.rfind(b")") + 2:].split()
    if fields[:1] not in ([b"Z"], [b"X"]):
        return True, None
    if len(fields) >= 50:  # field 52 of the whole line: exit_code, as waitpid() gives it
        status = int(fields[49])
        return False, -(status & 0x7F) if status & 0x7F else status >> 8
    return False, None


def process_start(pid: int) -> int | None:
    """When the process started (clock ticks since boot: /proc's field 22), or None
    when unknown. An exec keeps it; a new process with a reused pid does not."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's: not the child we followed
    return True
