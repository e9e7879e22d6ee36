"""Per-thread line counters for the exact-count collectors, and their folding.

Each thread increments only its own dict, so no increment is ever lost to a
race between threads. A folding thread copies each dict (a single C call,
atomic under the GIL), turns the difference to the previous copy into
(file id, line) deltas and hands them to the Store. Dicts of threads that
ended are folded one last time and dropped, so memory follows live threads.
"""

from __future__ import annotations

import sys
import threading
from collections import defaultdict
from types import CodeType

from ..model import Store
from .filters import Resolver

# Per thread: id(code) -> {line: count}. Keyed by id(): hashing an int is cheap,
# hashing a code object is not (it covers the bytecode and constants, uncached).
# Two small-int subscripts beat building and hashing a (code, line) tuple.
LineCounts = defaultdict[int, int]
Counts = dict[int, LineCounts]
OWN_THREAD_PREFIX = "stethoscope-"


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
        # Entries first, then the live threads: an entry whose thread is missing
        # from the later list has ended and cannot count any more.
        with self._lock:
            entries = list(self._live.items())
        # The idents only: a keys view would keep the dict, and with it this very
        # frame, alive in a reference cycle (see Sampler._tick).
        alive = set(sys._current_frames())
        deltas: dict[tuple[str, int], int] = {}
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
        self._store.add_hits(deltas)
