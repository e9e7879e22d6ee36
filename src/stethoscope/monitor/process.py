"""This process as the process panel lists it: who it is, how it was started, its
CPU, and, once known, how it ended."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

from ..collectors.cputime import ProcessCPU
from ..model import ProcessInfo


class ProcessRecord:
    def __init__(self, method: str, name: str = "") -> None:
        self._info = ProcessInfo(os.getpid(), os.getppid(), argv(), name, method,
                                 process_started(), "running")
        self.cpu = ProcessCPU()  # read a few times a second by the housekeeping
        self._exit: tuple[str, int | None] | None = None

    def named(self, name: str) -> None:
        """A multiprocessing child is about to run its target: now it has a name.
        (Only the exiting or bootstrapping thread changes the record; readers take
        the whole record in one attribute read.)"""
        self._info = replace(self._info, name=name)

    def end(self, how: str, code: int | None) -> None:
        """How the process is leaving (``exit``, ``os._exit``, ``return``, ``SIGTERM``);
        the first word on it is kept."""
        if self._exit is None:
            self._exit = (how, code)

    def info(self, final: bool = True) -> ProcessInfo:
        """The record now, with its CPU; "exited" only when ``final`` and the way out
        is known."""
        cpu, seconds = self.cpu.value
        info = replace(self._info, cpu=cpu, cpu_seconds=seconds)
        if self._exit is None or not final:
            return info
        how, code = self._exit
        return replace(info, state="exited", exit_how=how, exit_code=code, cpu=None)


def argv() -> tuple[str, ...]:
    """The command line as the OS shows it (sys.argv is the script's own view)."""
    return tuple(getattr(sys, "orig_argv", sys.argv))


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
