"""The lock-guarded store that collectors write into and snapshots are read from.

Collectors hand over flat facts keyed by (file id, line): exact hit counts,
self samples and inclusive samples, plus the latest per-thread stacks. All
methods are short and take one lock, so a collector thread never waits long.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from .activity import Activity
from .heat import HeatKind, HeatRing
from .snapshot import (
    MAX_NOTES,
    EndInfo,
    ExitInfo,
    FileHeat,
    LineRow,
    NowLine,
    Snapshot,
    State,
    StuckInfo,
    ThreadInfo,
    order_files,
)

LineKey = tuple[str, int]  # (file id, line number)


def file_identity(path: str) -> tuple[int, int] | None:
    """The file a path leads to now (None: none)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def file_id_for(path: str) -> str:
    """A stable, opaque id for a source path; the same in every process."""
    return hashlib.sha256(os.fsencode(path)).hexdigest()[:12]


def _per_file(counts: Iterable[tuple[LineKey, int]]) -> dict[str, int]:
    sums: dict[str, int] = {}
    for (fid, _line), n in counts:
        sums[fid] = sums.get(fid, 0) + n
    return sums


class Store:
    def __init__(
        self,
        window: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Re-entrant: a tracer may call back into the store (registering a file,
        # adding a note) from a thread that is inside a store method already.
        self._lock = threading.RLock()
        self._clock = clock
        self.window = window
        self._paths: dict[str, str] = {}  # file id -> path
        # file id -> (st_dev, st_ino) of the file when it first ran: its source is read
        # only from that same file, not from whatever the path leads to later
        self._identities: dict[str, tuple[int, int] | None] = {}
        self._hits: HeatRing[LineKey] = HeatRing(window)
        self._self: HeatRing[LineKey] = HeatRing(window)
        self._incl: HeatRing[LineKey] = HeatRing(window)
        # Lines mode: per line, the tick windows in which it ran, and when it last did.
        self._ran: HeatRing[LineKey] = HeatRing(window)
        self._ran_last: dict[LineKey, int] = {}  # Unix time in ms
        self._windows: HeatRing[None] = HeatRing(window)  # tick windows, per second
        self._threads: tuple[ThreadInfo, ...] = ()
        self._now: tuple[NowLine, ...] = ()
        self._notes: list[str] = []
        self._exit: tuple[float, float, bool] | None = None  # finished, hang_report, reported
        self._stuck: StuckInfo | None = None
        self._ended: EndInfo | None = None
        # Grows with every change to the exit, stuck or ended record: it keys the
        # snapshot caches, so a picture built before such a change is not served after it.
        self.generation = 0
        self._samples = 0
        self._first_sample: float | None = None
        self._last_sample: float | None = None
        self.activity = Activity()  # its own lock: fed under ours, read without it

    # -- writing (collectors) -------------------------------------------------

    def register_file(self, path: str) -> str:
        fid = file_id_for(path)
        if fid in self._paths:
            return fid
        identity = file_identity(path)  # a stat: not under the lock collectors wait on
        with self._lock:
            if fid not in self._paths:
                self._paths[fid] = path
                self._identities[fid] = identity
                self.activity.name_file(fid, os.path.basename(path), path)
        return fid

    def add_hits(self, counts: Mapping[LineKey, int]) -> None:
        if counts:
            with self._lock:
                self._hits.add(counts, int(self._clock()))
                self.activity.add("hits", _per_file(counts.items()))

    def add_ran(self, keys: Iterable[LineKey], when: float) -> None:
        """These lines ran (at least once) in the tick window that ended at ``when``
        (called for every window, also when none ran)."""
        keys = list(keys)
        with self._lock:
            self._windows.add([(None, 1)], int(when))
            if keys:
                self._ran.add([(key, 1) for key in keys], int(when))
                self.activity.add("ran", _per_file((key, 1) for key in keys))
                last, ms = self._ran_last, int(when * 1000)
                for key in keys:
                    last[key] = ms

    def add_samples(
        self,
        self_counts: Mapping[LineKey, int],
        incl_counts: Mapping[LineKey, int],
        ticks: int,
    ) -> None:
        """Fold ``ticks`` sampler ticks' worth of self and inclusive counts."""
        now = self._clock()
        with self._lock:
            second = int(now)
            self._self.add(self_counts, second)
            self._incl.add(incl_counts, second)
            self.activity.add("self", _per_file(self_counts.items()))
            if self._first_sample is None:
                self._first_sample = now
            self._last_sample = now
            self._samples += ticks

    def set_threads(self, threads: Sequence[ThreadInfo], now: Iterable[NowLine]) -> None:
        with self._lock:
            self._threads = tuple(threads)
            self._now = tuple(now)

    def threads(self) -> tuple[ThreadInfo, ...]:
        with self._lock:
            return self._threads

    def set_exit(self, main_finished: float, hang_report: float, reported: bool) -> None:
        with self._lock:
            self._exit = (main_finished, hang_report, reported)
            self.generation += 1

    def set_stuck(self, stuck: StuckInfo | None) -> None:
        """The main thread waits for work that makes no progress (None: no longer)."""
        with self._lock:
            if stuck != self._stuck:
                self._stuck = stuck
                self.generation += 1

    def set_ended(self, ended: EndInfo) -> None:
        """How the process ends; the first word on it is kept."""
        with self._lock:
            if self._ended is None:
                self._ended = ended
                self.generation += 1

    def ended(self) -> EndInfo | None:
        with self._lock:
            return self._ended

    def note(self, message: str) -> bool:
        """Record a one-line message for the user; False if it was already there."""
        with self._lock:
            if message in self._notes:
                return False
            if len(self._notes) < MAX_NOTES:
                self._notes.append(message)
            return True

    # -- reading ------------------------------------------------------------

    def identity(self, file_id: str) -> tuple[int, int] | None:
        with self._lock:
            return self._identities.get(file_id)

    def path(self, file_id: str) -> str | None:
        with self._lock:
            return self._paths.get(file_id)

    def sample_rate(self) -> float:
        with self._lock:
            if self._first_sample is None or self._last_sample is None:
                return 0.0
            span = self._last_sample - self._first_sample
            return round((self._samples - 1) / span, 1) if span > 0 else 0.0

    def snapshot(
        self,
        *,
        state: State,
        mode: str,
        requested_mode: str = "",
        heat: HeatKind,
        started: float,
        sample_hz: float,
        argv: Sequence[str],
        python: str,
    ) -> Snapshot:
        achieved = self.sample_rate()
        with self._lock:
            second = int(self._clock())
            rings = (self._hits, self._self, self._incl, self._ran)
            self._windows.expire(second)
            windows = (self._windows.recent(None), self._windows.total(None))
            by_file: dict[str, list[LineRow]] = {}
            keys: set[LineKey] = set()
            for ring in rings:
                ring.expire(second)
                keys.update(ring.keys())
            last = self._ran_last
            for key in keys:
                fid, line = key
                row: LineRow = (line, *(f(key) for ring in rings
                                        for f in (ring.recent, ring.total)),
                                last.get(key, 0))
                by_file.setdefault(fid, []).append(row)
            paths = dict(self._paths)
            threads, now, notes = self._threads, self._now, tuple(self._notes)
            stuck, ended = self._stuck, self._ended
            exit_info = None
            if self._exit is not None:
                blocking = tuple(t.ident for t in threads if t.alive and not t.daemon
                                 and not t.main)
                exit_info = ExitInfo(self._exit[0], blocking, self._exit[1], self._exit[2])
        files = [
            FileHeat(fid, paths[fid], os.path.basename(paths[fid]), tuple(sorted(rows)))
            for fid, rows in by_file.items()
        ]
        return Snapshot(
            pid=os.getpid(),
            argv=tuple(argv),
            python=python,
            started=started,
            time=self._clock(),
            state=state,
            mode=mode,
            heat=heat,
            window=self.window,
            sample_hz_requested=sample_hz,
            sample_hz_achieved=achieved,
            requested_mode=requested_mode or mode,
            ran_windows=windows,
            files=tuple(order_files(files, heat)),
            now=now,
            threads=threads,
            notes=notes,
            exit=exit_info,
            stuck=stuck,
            ended=ended,
        )
