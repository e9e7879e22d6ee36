"""The monitor of a followed child process: a Monitor whose outlet reports.

It collects like any monitor, with the program's shared options (link.py), but
serves nothing: ``ChildOutlet`` sends reports to the program's monitor instead
(reporter.py), each within ``wire.MAX_REPORT`` (sources that do not fit wait for
a later report; one that never fits is not sent), and its last report leaves on
every way out of the process (exithooks.py), saying how the process ended. A
child started by ``fork()`` gets a fresh monitor (api.py's after-fork hook); one
started by exec gets one at start-up from the environment
(stethoscope-children.pth).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable

from .._stderr import say
from ..model import ChildReport, FileHeat, Store
from ..model.report import MAX_SOURCE_CHARS
from ..monitor import Monitor
from ..monitor.process import ProcessRecord
from .exithooks import ExitHooks
from .link import ChildLink
from .reporter import Reporter
from .wire import MAX_REPORT

# bytes of a report left for sources: the snapshot and the process take the rest
SOURCE_BUDGET = MAX_REPORT * 3 // 4


def child_monitor(link: ChildLink, method: str, name: str = "", *,
                  on_stop: Callable[[Monitor], None] | None = None) -> Monitor:
    """The monitor of this child process, not started yet."""
    return Monitor(link.config, store=Store(link.config.window), outlet=ChildOutlet(link),
                   process=ProcessRecord(method, name), on_stop=on_stop)


class ChildOutlet:
    """A followed child's outlet: its reports to the program's monitor."""

    def __init__(self, link: ChildLink) -> None:
        self.link = link
        self.port = 0  # it serves nothing
        self.url = f"(a followed child: reports to {link.inbox})"
        self._instance = os.urandom(8).hex()  # an exec'd process keeps its pid
        self._seq = 0
        self._seq_lock = threading.RLock()  # the SIGTERM flush may interrupt a report
        self._sent_sources: set[str] = set()
        self._monitor: Monitor | None = None
        self._reporter: Reporter | None = None

    def open(self, monitor: Monitor) -> None:
        self._monitor = monitor
        self._reporter = Reporter(self.link.inbox, self._make_report, on_lost=self._lost,
                                  on_dropped=say, on_mode=self._follow_mode)

    def _parts(self) -> tuple[Monitor, Reporter]:
        assert self._monitor is not None and self._reporter is not None, "open() first"
        return self._monitor, self._reporter

    def start(self) -> None:
        monitor, reporter = self._parts()
        monitor.adopt(ExitHooks(monitor.end, monitor.process.named, on_fault=monitor.note))
        reporter.start()

    def close(self) -> None:
        self._parts()[1].final()

    def forget_after_fork(self) -> None:
        self._parts()[1].forget_after_fork()

    def _follow_mode(self, mode: str) -> None:
        """The program's monitor was switched to ``mode``: so is this process (from
        the reporter thread; a mode this process cannot take becomes a note)."""
        monitor = self._parts()[0]
        if mode == monitor.requested_mode:
            return
        try:
            monitor.set_mode(mode)
        except RuntimeError:
            pass  # stopping: nothing more to collect
        except ValueError as exc:
            monitor.modes.requested = mode  # said once, not at every report
            monitor.note(f"this process did not switch to mode {mode!r}: {exc}")

    def _lost(self, why: str) -> None:
        monitor = self._parts()[0]
        monitor.note(f"{why}; this process is no longer monitored")
        monitor.stop()

    def _make_report(self, final: bool) -> tuple[bytes, Callable[[], None]]:
        monitor = self._parts()[0]
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        if final:  # the sampler, which reads it a few times a second, has stopped
            monitor.process.cpu.read()
        snapshot = monitor.snapshot()
        sources, never = self._sources(monitor, snapshot.files)
        report = ChildReport(self._instance, seq, final, monitor.process.info(final), snapshot,
                             tuple(sources))
        sent = [fid for fid, _, _ in sources] + never
        return report.to_json(), lambda: self._sent_sources.update(sent)

    def _sources(self, monitor: Monitor, files: Iterable[FileHeat]
                 ) -> tuple[list[tuple[str, str, str]], list[str]]:
        """The sources not sent yet that fit in this report, and the ids of those
        that never will (too big): counted as sent."""
        sources, never, budget = [], [], SOURCE_BUDGET
        for f in files:
            if f.id in self._sent_sources:
                continue
            try:
                found = monitor.sources.own(f.id)
            except (OSError, SyntaxError, UnicodeError, ValueError):
                continue
            if found is None:
                continue
            text = found[1]
            size = len(json.dumps(text)) + len(json.dumps(f.path)) + len(f.id) + 8
            if len(text) > MAX_SOURCE_CHARS or size > SOURCE_BUDGET:
                never.append(f.id)
            elif size <= budget:
                sources.append((f.id, f.path, text))
                budget -= size
        return sources, never
