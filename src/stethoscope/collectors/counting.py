"""Line counters for the exact-count collectors, and their folding.

Two ways to count, folded alike into (file id, line) deltas for the Store:

- Per-thread dicts (the pure-Python callbacks): each thread increments only its
  own dict, so no increment is ever lost to a race between threads. A folding
  thread copies each dict (a single C call, atomic under the GIL) and turns the
  difference to the previous copy into deltas. Dicts of threads that ended are
  folded one last time and dropped, so memory follows live threads.
- The compiled ``stethoscope._speedups.LineCounter``, when it could be built and
  imported: one counter for all threads (it increments in C under the GIL), whose
  ``take()`` hands over the counts since the last take, so folding needs no copy.
  ``STETHOSCOPE_NO_SPEEDUPS=1`` in the environment turns it off (pure Python).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from types import CodeType
from typing import Any, Protocol

from ..model import Store
from .filters import Resolver

# Per thread: id(code) -> {line: count}. Keyed by id(): hashing an int is cheap,
# hashing a code object is not (it covers the bytecode and constants, uncached).
# Two small-int subscripts beat building and hashing a (code, line) tuple.
LineCounts = defaultdict[int, int]
Counts = dict[int, LineCounts]
OWN_THREAD_PREFIX = "stethoscope-"
NO_SPEEDUPS_ENV = "STETHOSCOPE_NO_SPEEDUPS"


class LineCounter(Protocol):
    """stethoscope._speedups.LineCounter: a LINE callback that counts in C."""

    def __call__(self, code: CodeType, line: int) -> None: ...

    def take(self) -> list[tuple[CodeType, dict[int, int]]]: ...


def _load_speedups() -> Any:
    """The compiled module, or None: not built for this interpreter (no compiler,
    a free-threaded build, a platform without wheels) or turned off by the env."""
    if os.environ.get(NO_SPEEDUPS_ENV, "") not in ("", "0"):
        return None
    try:
        return importlib.import_module("stethoscope._speedups")
    except ImportError:
        return None


# Looked up once, at import: whether the compiled counter runs must not change
# while a monitor runs.
_speedups = _load_speedups()
HAS_SPEEDUPS = _speedups is not None


def compiled_module() -> Any:
    """stethoscope._speedups as loaded at import, or None (see _load_speedups)."""
    return _speedups


def is_own_thread(thread: object) -> bool:
    """True for the monitor's own threads, whose work is never counted."""
    return isinstance(thread, threading.Thread) and thread.name.startswith(OWN_THREAD_PREFIX)


def current_thread_is_own() -> bool:
    # threading._active, not threading.current_thread(): inside a tracer the
    # latter can create _DummyThread objects for threads still bootstrapping.
    active = threading._active  # type: ignore[attr-defined]
    return is_own_thread(active.get(threading.get_ident()))


class ThreadCounters:
    def __init__(self, store: Store, resolver: Resolver) -> None:
        self._store = store
        self._resolver = resolver
        # id -> code object for every code object a tracer counts; holding them
        # keeps each id unique for the monitor's lifetime.
        self.codes: dict[int, CodeType] = {}
        # Re-entrant: a signal handler that flushes (children) may fold while the
        # same thread is inside new().
        self._lock = threading.RLock()  # guards _live against concurrent new threads
        # serial -> (thread ident, live counts, copy at the last fold)
        self._live: dict[int, tuple[int, Counts, dict[int, dict[int, int]]]] = {}
        self._serial = 0
        self._compiled: list[LineCounter] = []  # compiled counters, taken at each fold

    def line_counter(self, on_fault: Callable[[BaseException], object]) -> LineCounter | None:
        """A compiled counter for every thread (the monitor's own threads excluded),
        folded with the rest; None when stethoscope._speedups is unavailable.

        It never raises into the counted program: an internal error calls
        ``on_fault(exc)`` and that counter stops counting.
        """
        if _speedups is None:
            return None
        counter: LineCounter = _speedups.LineCounter(exclude=current_thread_is_own,
                                                     on_fault=on_fault)
        with self._lock:
            self._compiled.append(counter)
        return counter

    def new(self) -> Counts:
        """A fresh counts dict for the calling thread (never folded for our own threads)."""
        counts: Counts = {}
        if current_thread_is_own():
            return counts
        with self._lock:
            self._serial += 1
            self._live[self._serial] = (threading.get_ident(), counts, {})
        return counts

    def fold(self) -> None:
        """Hand every count made since the last fold to the store."""
        deltas: dict[tuple[str, int], int] = {}
        self._fold_threads(deltas)
        with self._lock:
            compiled = list(self._compiled)
        resolve = self._resolver
        for counter in compiled:
            # take() swaps in a fresh table in one C call: counts made meanwhile
            # go to the next fold, none is lost or counted twice.
            for code, counted in counter.take():
                fid = resolve(code.co_filename)
                if fid is None:
                    continue
                for line, n in counted.items():
                    key = (fid, line)
                    deltas[key] = deltas.get(key, 0) + n
        self._store.add_hits(deltas)

    def _fold_threads(self, deltas: dict[tuple[str, int], int]) -> None:
        """Add the per-thread dicts' growth since the last fold to deltas."""
        # Entries first, then the live threads: an entry whose thread is missing
        # from the later list has ended and cannot count any more.
        with self._lock:
            entries = list(self._live.items())
        # The idents only: a keys view would keep the dict, and with it this very
        # frame, alive in a reference cycle (see Sampler._tick).
        alive = set(sys._current_frames())
        resolve = self._resolver
        codes = self.codes
        for serial, (ident, counts, before) in entries:
            now: dict[int, dict[int, int]] = {}
            for code_id, lines in list(counts.items()):  # list(): one atomic copy
                now[code_id] = current = dict(lines)
                previous = before.get(code_id, {})
                fid: str | None = None
                for line, n in current.items():
                    diff = n - previous.get(line, 0)
                    if diff:
                        if fid is None:
                            fid = resolve(codes[code_id].co_filename)
                            if fid is None:
                                break
                        key = (fid, line)
                        deltas[key] = deltas.get(key, 0) + diff
            if ident in alive:
                self._live[serial] = (ident, counts, now)
            else:
                with self._lock:
                    self._live.pop(serial, None)
