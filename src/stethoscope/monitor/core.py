"""The Monitor: wires config -> collectors -> store -> outlet, and owns their lifetime.

A Monitor is composed, never subclassed: it is given its Store, its outlet (the
program's server, or a followed child's reporter: outlet.py, children/child.py),
the record of its process, and, in the program's monitor that follows children,
the part that does (children/follow.py). api.py puts the pieces together.

The outlet is bound before the Monitor is built, so a bad port fails before
anything in the program has been changed. ``stop()`` is idempotent, callable
from any thread or an atexit handler, and bounded in time: every join has a
timeout. Nothing here raises into the user's program once started; faults become
notes.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from .. import _compat
from .._stderr import say, write_stderr
from ..collectors import Collector
from ..collectors.exitwatch import MainFinishedHook
from ..collectors.filters import Resolver
from ..collectors.sampler import Sampler
from ..collectors.threads import ThreadRegistry
from ..config import Config
from ..model import HeatKind, ProcessInfo, ProcessTable, Snapshot, Store, combine
from ..model.snapshot import State
from ..render.threads import dump_report, hang_report
from .housekeeping import HangWatch, Housekeeping
from .modes import Modes
from .outlet import Outlet
from .process import ProcessRecord
from .recording import RecordingPart
from .signals import DumpSignal, wait_for_end
from .sources import Sources


class Children(Protocol):
    """The program monitor's part that follows its child processes."""

    table: ProcessTable

    def start(self, note: Callable[[str], None], mode: Callable[[], str]) -> None:
        """Children started from now on report here, and are told to run in
        ``mode()``."""

    def check(self) -> None:
        """A few times a second: notice children gone without a final report."""

    def stop(self) -> None: ...

    def forget_after_fork(self) -> None:
        """In a forked child: let go without touching what the parent still uses."""


class Monitor:
    def __init__(self, config: Config, *, store: Store, outlet: Outlet,
                 process: ProcessRecord, children: Children | None = None,
                 on_stop: Callable[[Monitor], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.outlet = outlet
        self.process = process
        self.children = children
        self._on_stop = on_stop
        self.state: State = "running"
        self._started = time.time()
        self._stop_lock = threading.RLock()  # a SIGTERM handler may stop() inside stop()
        self._stopped = threading.Event()
        self._end_requested = threading.Event()  # stop(), Ctrl+C or SIGTERM while serving on
        self._collectors: list[Collector] = []
        self.resolver = Resolver(config.files, store, on_error=self.note)
        self.modes = Modes(store, self.resolver, self.note)
        self.sources = Sources(store, children.table if children is not None else None)
        self.hang = HangWatch(store, config.hang_report, config.daemon,
                              lambda: hang_report(self.snapshot()))
        self._dump = DumpSignal(config.dump_signal, self.dump, write_stderr) \
            if config.dump_signal is not None else None
        outlet.open(self)
        self.url = outlet.url
        self.recording: RecordingPart | None = None
        if config.record is not None:
            try:
                self.recording = RecordingPart(config, self._started,
                                               snapshot=lambda: self.snapshot("all"),
                                               source=self.sources.text, note=self.note)
            except Exception:
                outlet.close()
                raise

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Monitor:
        self.modes.start(self.config.mode)
        housekeeping = Housekeeping(self.store, self.modes, self.process, self.children,
                                    self.hang)
        registry = ThreadRegistry(self.resolver, on_fault=self.note)
        sampler = Sampler(self.store, self.resolver, self.config.sample_hz, on_fault=self.note,
                          registry=registry, periodic=housekeeping.run,
                          stack_log=self.recording.stack_log if self.recording else None)
        for collector in (registry, sampler, MainFinishedHook(self._main_finished,
                                                              on_fault=self.note)):
            self.adopt(collector)
        if self._dump is not None:
            self._dump.install(self.note)
        if self.children is not None:
            self.children.start(self.note, lambda: self.requested_mode)
        self.outlet.start()  # last: "serving URL" is said once every part runs
        atexit.register(self._at_exit)
        if self.recording is not None:
            self.recording.start(self.stop)
        return self

    def adopt(self, collector: Collector) -> None:
        """Start ``collector`` now and stop it with the monitor (in reverse order)."""
        collector.start()
        self._collectors.append(collector)

    def stop(self) -> None:
        """Stop collecting and serving. Idempotent; safe from any thread and at exit."""
        self._end_requested.set()
        with self._stop_lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        try:
            atexit.unregister(self._at_exit)
            if self._dump is not None:
                self._dump.uninstall()
            if self.children is not None:
                self.children.stop()
            self._stop_collectors()
            self.state = "stopped"
            if self.recording is not None:
                self.recording.close()
            self.outlet.close()
        finally:
            if self._on_stop is not None:
                self._on_stop(self)

    def _stop_collectors(self) -> None:
        # The mode's collectors first, under its lock (no switch can start them
        # again, and their last counts are handed over); then the sampler, whose
        # periodic fold takes that lock, outside it: stop() waits for the sampler
        # thread to end.
        self.modes.stop()  # self.mode stays: the final picture says what ran
        for collector in reversed(self._collectors):
            try:
                collector.stop()
            except Exception as exc:
                self.note(f"{collector.name} did not stop cleanly: {exc}")

    def forget_after_fork(self) -> None:
        """In a forked child: drop hooks and sockets without touching the parent's."""
        self._stopped.set()
        atexit.unregister(self._at_exit)
        self.modes.forget_after_fork()
        for collector in self._collectors:
            # Everything that patched the interpreter; the sampler thread does not
            # exist in the child. No lock of ours is taken: another thread may have
            # held it at fork time.
            if collector.name == "sampler":
                continue
            with contextlib.suppress(Exception):  # nothing to tell: the child starts afresh
                getattr(collector, "forget_after_fork", collector.stop)()
        self.outlet.forget_after_fork()
        if self.children is not None:
            with contextlib.suppress(Exception):
                self.children.forget_after_fork()
        if self.recording is not None:
            self.recording.forget_after_fork()

    @property
    def running(self) -> bool:
        return not self._stopped.is_set()

    @property
    def collectors(self) -> tuple[Collector, ...]:
        """The collectors that run besides the mode's (sampler, thread registry, ...)."""
        return tuple(self._collectors)

    @property
    def port(self) -> int:
        """The port the page is served on (a child's: its program's)."""
        return self.outlet.port

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<stethoscope.Monitor {state} mode={self.mode} url={self.url}>"

    # -- exit paths ------------------------------------------------------------

    def _at_exit(self) -> None:
        self.end("exit", None)

    def end(self, how: str, code: int | None) -> None:
        """The process is leaving this way: say so in the last picture, and stop."""
        self.process.end(how, code)
        self.stop()

    def _main_finished(self) -> None:
        """Runs in the main thread when __main__ has finished (see MainFinishedHook)."""
        self.hang.main_finished()
        self.state = "main-finished"
        if self.config.daemon or self._stopped.is_set():
            return
        say(f"the main thread has finished; still serving the final picture at {self.url} "
            f"(daemon=False). Press Ctrl+C or send SIGTERM to end.")
        wait_for_end(self._end_requested)
        self.stop()

    # -- modes -------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """What runs: "sample", "lines", "trace" or "sample+lines" (auto on 3.12+)."""
        return self.modes.mode

    @property
    def requested_mode(self) -> str:
        """What was asked for: trace(mode=...) or the last set_mode()."""
        return self.modes.requested

    def set_mode(self, mode: str) -> str:
        """Switch what is collected while the program runs; returns the mode that
        now runs (``Monitor.mode``). Counts, times and windows collected so far are
        kept, and new ones add to them. A mode that cannot run here falls back to
        sampling with a note, as at start. ConfigError for an unknown mode, and for
        "trace" on Python < 3.12 from a thread other than the main thread."""
        return self.modes.switch(mode)

    def heat_kind(self) -> HeatKind:
        return self.modes.heat

    # -- data --------------------------------------------------------------------

    def note(self, message: str) -> None:
        """A one-line message for the user: in every snapshot, and on stderr once."""
        if self.store.note(message) and not self.config.quiet:
            say(message)

    def dump(self) -> str:
        """The report on every thread: creation site, state, stack."""
        return dump_report(self.snapshot())

    def process_info(self) -> ProcessInfo:
        return self.process.info()

    def snapshot(self, view: str | int | None = None) -> Snapshot:
        """This process's picture (``view`` None or its pid), a child's (its pid), or
        all processes combined ("all"). Every view lists all the processes."""
        own = self.store.snapshot(
            state=self.state, mode=self.mode, requested_mode=self.requested_mode,
            heat=self.heat_kind(), started=self._started,
            sample_hz=self.config.sample_hz, argv=sys.argv, python=_compat.PY_VERSION,
        )
        processes = [self.process.info()]
        if self.children is None:
            return replace(own, processes=tuple(processes))
        table = self.children.table
        processes += table.infos()
        if view == "all":
            return combine(own, table, processes)
        if view is not None and view != own.pid:
            child = table.snapshot_of(int(view))
            if child is None:
                raise LookupError(view)
            return replace(child, processes=tuple(processes))
        return replace(own, processes=tuple(processes))
