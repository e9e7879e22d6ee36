"""What the benchmark runs: its rows (workloads) and columns (monitors), as commands.

A cell is one (row, column) pair; every run of a cell is a fresh process started
by ``command()``. Rows carry a default scale so that each unmonitored run takes
about 1-2 s on a 2-CPU machine: the slow peers (heartrate at ~20x) then cost
~30 s a run, which is what bounds the total time of ``make bench``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = os.path.join(HERE, "workloads")
HARNESS = os.path.join(HERE, "harness.py")


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    workload: str  # file under bench/workloads
    scale: float  # default BENCH_SCALE for this row
    package: str | None = None  # a third-party package the monitors also watch

    @property
    def path(self) -> str:
        return os.path.join(WORKLOADS, self.workload)

    def filter_dirs(self) -> list[str]:
        """What the monitors watch: the workloads, and the row's package."""
        dirs = [WORKLOADS]
        if self.package is not None:
            spec = importlib.util.find_spec(self.package)
            if spec is None or not spec.submodule_search_locations:
                raise LookupError(f"{self.package} is not installed in this environment")
            dirs.append(next(iter(spec.submodule_search_locations)))
        return dirs


ROWS = [
    Row("cpu", "CPU-bound (cpu.py)", "cpu.py", 0.4),
    Row("calls", "tiny calls (calls.py)", "calls.py", 1.0),
    Row("threads", "4 threads, CPU + I/O (threads.py)", "threads.py", 1.0),
    Row("pygments", "Pygments, third-party (thirdparty.py)", "thirdparty.py", 0.8,
        package="pygments"),
]
ROW_NAMES = [r.name for r in ROWS]

COLUMNS = [
    "unmonitored",
    "stethoscope-sample",
    "stethoscope-lines",
    "stethoscope-trace",
    "bare-callback",
    "heartrate",
    "viztracer",
    "pyinstrument",
    "py-spy",
]
OURS = {"stethoscope-sample", "stethoscope-lines", "stethoscope-trace"}
# Columns that need a package in the bench environment (module to import).
THIRD_PARTY = {"heartrate": "heartrate", "viztracer": "viztracer",
               "pyinstrument": "pyinstrument"}
LABELS = {
    "unmonitored": "unmonitored",
    "stethoscope-sample": "stethoscope sample 100 Hz",
    "stethoscope-lines": "stethoscope lines",
    "stethoscope-trace": "stethoscope trace",
    "bare-callback": "bare line callback",
    "heartrate": "heartrate",
    "viztracer": "viztracer",
    "pyinstrument": "pyinstrument",
    "py-spy": "py-spy 100 Hz",
}
SHORT = {
    "unmonitored": "none",
    "stethoscope-sample": "sample",
    "stethoscope-lines": "lines",
    "stethoscope-trace": "trace",
    "bare-callback": "bare cb",
    "heartrate": "heartrate",
    "viztracer": "viztracer",
    "pyinstrument": "pyinstrument",
    "py-spy": "py-spy",
}


def py_spy() -> str | None:
    """py-spy next to this interpreter (the bench venv), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return here if os.access(here, os.X_OK) else shutil.which("py-spy")


def missing(column: str) -> str | None:
    """Why ``column`` cannot run in this environment, or None."""
    module = THIRD_PARTY.get(column)
    if module is not None and importlib.util.find_spec(module) is None:
        return f"{module} is not installed in this environment"
    if column == "py-spy" and py_spy() is None:
        return "py-spy is not installed in this environment"
    return None


def command(column: str, row: Row) -> list[str]:
    if column == "unmonitored":
        return [sys.executable, row.path]
    if column == "py-spy":
        # Raw output to a throw-away file: the cheapest format, and py-spy's own
        # work of writing it is part of the process's exit, as for a user.
        out = os.path.join(tempfile.gettempdir(), f"bench-py-spy-{os.getpid()}.txt")
        return [py_spy() or "py-spy", "record", "--rate", "100", "--format", "raw",
                "--output", out, "--", sys.executable, row.path]
    return [sys.executable, HARNESS, column, row.path]
