"""The monitor's periodic work, and the hang report's clock.

``Housekeeping.run`` is called a few times a second from the sampler thread (the
monitor has no thread of its own for it): it folds the mode's counts, reads this
process's CPU, closes the activity point once a second, looks for followed
children that vanished, and prints the hang report when it is due.

``HangWatch`` knows when the main thread finished: ``hang_report`` seconds later,
if non-daemon threads still hold the process, the report goes to stderr once.
With ``daemon=False`` the monitor serves the final picture instead, and reports
nothing: the user asked it to keep the process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._stderr import write_stderr
from ..model import Store
from ..model.activity import threads_at
from .modes import Modes
from .process import ProcessRecord

if TYPE_CHECKING:
    from .core import Children


class HangWatch:
    def __init__(self, store: Store, delay: float, enabled: bool,
                 report: Callable[[], str | None]) -> None:
        self._store = store
        self._delay = delay
        self._enabled = enabled
        self._report = report
        self.main_finished_at: float | None = None
        self.reported = False

    def main_finished(self) -> None:
        self.main_finished_at = time.time()
        self._store.set_exit(self.main_finished_at, self._delay, False)

    def check(self) -> None:
        finished = self.main_finished_at
        if finished is None or self.reported or not self._delay or not self._enabled:
            return
        if time.time() - finished < self._delay:
            return
        self._store.set_exit(finished, self._delay, True)
        self.reported = True  # after the store: it keys the snapshot cache
        report = self._report()
        if report is not None:
            write_stderr(report)


class Housekeeping:
    def __init__(self, store: Store, modes: Modes, process: ProcessRecord,
                 children: Children | None, hang: HangWatch) -> None:
        self._store = store
        self._modes = modes
        self._process = process
        self._children = children
        self._hang = hang
        self._activity_due = 0.0  # monotonic time the open activity point ends

    def run(self) -> None:
        self._modes.fold()
        self._process.cpu.read()
        if time.monotonic() >= self._activity_due:
            self._activity_due = time.monotonic() + self._store.activity.interval
            self._close_activity_point()
        if self._children is not None:
            self._children.check()
        self._hang.check()

    def _close_activity_point(self) -> None:
        own = os.getpid()
        threads = list(threads_at(self._store.threads(), own))
        cpu: dict[int, float | None] = {own: self._process.info().cpu}
        if self._children is not None:
            table = self._children.table
            for snap in table.snapshots():
                threads += threads_at(snap.threads, snap.pid)
            cpu.update((p.pid, p.cpu) for p in table.infos() if p.state == "running")
        self._store.activity.close(time.time(), threads, cpu)
