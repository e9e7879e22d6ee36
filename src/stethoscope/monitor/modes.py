"""What is collected besides the sampler, and switching it while the program runs.

The sampler always runs (it feeds the thread panel); a mode adds exact line
counting (``trace``: sys.monitoring on 3.12+, settrace before) or lines mode
(``lines``, 3.12+). ``auto`` is sample + lines on 3.12+ and sampling alone before.
``Modes.mode`` says what runs ("sample", "lines", "trace" or "sample+lines");
``requested`` what was asked for. A mode that cannot run here falls back to
sampling with a note; a collector that faults ends its mode, never the program.

``lock`` is held while a fold, a lines tick or a switch runs: a switch never races
with the sampler thread's periodic fold.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import _compat
from ..collectors import Collector, CollectorUnavailable
from ..collectors.counting import ThreadCounters
from ..collectors.filters import Resolver
from ..config import ConfigError, check_mode
from ..model import HeatKind, Store, heat_for_mode

if TYPE_CHECKING:
    from ..collectors.lines import LinesCollector


class Modes:
    def __init__(self, store: Store, resolver: Resolver, note: Callable[[str], None]) -> None:
        self._store = store
        self._resolver = resolver
        self._note = note
        self.counters = ThreadCounters(store, resolver)
        self.mode = "sample"
        self.requested = ""
        self._tracer: Collector | None = None
        self._lines: LinesCollector | None = None
        self.lock = threading.RLock()
        self._stopped = False

    @property
    def heat(self) -> HeatKind:
        return heat_for_mode(self.mode)

    def start(self, mode: str) -> None:
        """Start what ``mode`` needs besides the sampler; ``self.mode`` then says what runs."""
        with self.lock:
            self.requested = mode
            self.mode = "sample"
            if mode == "trace":
                self._start_tracer()
            elif mode in ("lines", "auto"):
                self._start_lines(mode)

    def _start_tracer(self) -> None:
        if _compat.HAS_MONITORING:
            from ..collectors.monitoring import MonitoringTracer as Tracer
        else:
            from ..collectors.settrace import NOTE_RUNNING_THREADS
            from ..collectors.settrace import SettraceTracer as Tracer  # type: ignore[assignment]
            if threading.active_count() > 1:  # e.g. not in a fresh child
                self._store.note(NOTE_RUNNING_THREADS)
        tracer = Tracer(self._resolver, self.counters, on_fault=self._faulted)
        if self._try_start(tracer):
            self._tracer = tracer
            self.mode = "trace"

    def _start_lines(self, mode: str) -> None:
        if not _compat.HAS_MONITORING:
            if mode == "lines":
                self._note("lines mode needs Python 3.12+ (sys.monitoring); "
                           "showing sampled time")
            return
        from ..collectors.lines import LinesCollector

        lines = LinesCollector(self._store, self._resolver, on_fault=self._faulted)
        if self._try_start(lines):
            self._lines = lines
            self.mode = "lines" if mode == "lines" else "sample+lines"

    def _try_start(self, collector: Collector) -> bool:
        """Start a collector that may be unavailable here (a note says why)."""
        try:
            collector.start()
        except CollectorUnavailable as exc:
            self._note(str(exc))
            return False
        except Exception as exc:  # a fault while starting: undo it, run without it
            with contextlib.suppress(Exception):
                collector.stop()
            self._note(f"{collector.name} mode could not start after an internal error: "
                       f"{type(exc).__name__}: {exc}; showing sampled time instead")
            return False
        return True

    def _stop_mode(self) -> None:
        """Stop the tracer or the lines collector; what they counted stays. The
        caller holds the lock and sets self.mode."""
        tracer, self._tracer = self._tracer, None
        if tracer is not None:
            tracer.stop()
            self.counters.fold()  # the last counts, then a fresh set for a new tracer
            self.counters = ThreadCounters(self._store, self._resolver)
        lines, self._lines = self._lines, None
        if lines is not None:
            lines.stop()  # hands over its last window

    def switch(self, mode: str) -> str:
        """Switch what is collected; the mode that now runs. Counts, times and windows
        collected so far are kept, and new ones add to them. ConfigError for an
        unknown mode, and for "trace" on Python < 3.12 from a thread other than the
        main thread (settrace only reaches the calling thread and threads started
        later); RuntimeError once stopped."""
        check_mode(mode)
        if mode == "trace" and not _compat.HAS_MONITORING \
                and threading.current_thread() is not threading.main_thread():
            raise ConfigError("on Python < 3.12 trace mode can only be switched on from the "
                              "main thread (settrace reaches only the calling thread); "
                              "call monitor.set_mode('trace') there, or use Python 3.12+")
        with self.lock:
            if self._stopped:
                raise RuntimeError("the monitor has stopped; its mode can no longer change")
            self._stop_mode()
            self.start(mode)
            return self.mode

    def fold(self) -> None:
        """Hand the exact counts, or the lines that ran, to the store. A fault here
        ends that mode, not the sampler thread this runs in."""
        with self.lock:
            try:
                if self._tracer is not None:
                    self.counters.fold()
                if self._lines is not None:
                    self._lines.tick()
            except Exception as exc:
                what = "exact line counting" if self._tracer is not None else "lines mode"
                with contextlib.suppress(Exception):
                    self._stop_mode()
                self.mode = "sample"
                self._note(f"{what} stopped after an internal error: "
                           f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        """For good: ``mode`` keeps saying what ran, for the final picture."""
        with self.lock:
            self._stopped = True
            try:
                self._stop_mode()
            except Exception as exc:
                self._note(f"the {self.mode} collector did not stop cleanly: {exc}")

    def forget_after_fork(self) -> None:
        """In a forked child: unpatch the interpreter without taking any lock of ours
        (another thread may have held one at fork time)."""
        self._stopped = True
        for collector in (self._tracer, self._lines):
            if collector is not None:
                with contextlib.suppress(Exception):
                    getattr(collector, "forget_after_fork", collector.stop)()

    def _faulted(self, message: str) -> None:
        """A tracer or lines mode turned itself off after a fault."""
        self._note(message)
        self.mode = "sample"
