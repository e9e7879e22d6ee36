"""Activity over time: what the page plots and a recording replays.

A bounded ring of points, one per ``interval`` seconds. Each point holds, per
monitored file, how much of each heat kind arrived in it (samples with self time,
exact hits, lines that ran), and at its end the CPU share of every thread and of
the whole program. Collectors and child reports feed the open point as their
counts arrive (``add``); the monitor closes it once a second (``close``). A
recording feeds one from the differences of consecutive snapshots instead
(``from_snapshots``), so the page reads the same JSON either way.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .heat import HEAT_KINDS, HeatKind
from .snapshot import LINE_FIELDS, Snapshot, ThreadInfo

# What add() takes: the heat kinds by the stem of their line fields (self, hits, ran).
KINDS = tuple(kind.stem for kind in HEAT_KINDS.values())
MAX_POINTS = 600  # points kept live (10 minutes at 1 s), and served at most
MAX_FILES = 20
MAX_THREADS = 30
_TOTAL_INDEX = {kind: LINE_FIELDS.index(f"{kind}_total") for kind in KINDS}


@dataclass(frozen=True, slots=True)
class ThreadPoint:
    pid: int
    ident: int
    name: str
    cpu: float | None  # percent of one core; None when unknown


@dataclass(frozen=True, slots=True)
class Point:
    time: float  # Unix time at the point's end
    files: Mapping[str, tuple[int, int, int]]  # file id -> (self, hits, ran)
    threads: tuple[ThreadPoint, ...]  # alive at the point's end
    cpu: float | None  # all processes together
    process_cpu: Mapping[int, float | None]  # pid -> percent


def threads_at(threads: Iterable[ThreadInfo], own_pid: int) -> tuple[ThreadPoint, ...]:
    return tuple(ThreadPoint(t.pid if t.pid is not None else own_pid, t.ident, t.name, t.cpu)
                 for t in threads if t.alive)


class Activity:
    """Thread-safe; every method is short and takes one lock."""

    def __init__(self, interval: float = 1.0, max_points: int = MAX_POINTS) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._points: deque[Point] = deque(maxlen=max_points)
        self._open: dict[str, list[int]] = {}  # file id -> [self, hits, ran]
        self._names: dict[str, tuple[str, str]] = {}  # file id -> (name, path)

    def name_file(self, file_id: str, name: str, path: str) -> None:
        with self._lock:
            self._names.setdefault(file_id, (name, path))

    def add(self, kind: str, per_file: Mapping[str, int]) -> None:
        """Counts of one kind that arrived now, by file id."""
        slot = KINDS.index(kind)
        with self._lock:
            for fid, n in per_file.items():
                if n:
                    self._open.setdefault(fid, [0, 0, 0])[slot] += n

    def close(self, when: float, threads: Sequence[ThreadPoint],
              process_cpu: Mapping[int, float | None]) -> None:
        """End the open point at ``when`` with the threads and CPU seen then."""
        known = [v for v in process_cpu.values() if v is not None]
        with self._lock:
            files = {fid: (v[0], v[1], v[2]) for fid, v in self._open.items()}
            self._open = {}
            self._points.append(Point(when, files, tuple(threads),
                                      round(sum(known), 1) if known else None,
                                      dict(process_cpu)))

    def points(self) -> list[Point]:
        with self._lock:
            return list(self._points)

    def to_dict(self, heat: HeatKind, pid: int | None = None,
                max_points: int = MAX_POINTS) -> dict[str, Any]:
        """The JSON the page reads (docs/http-api.md). ``pid``: only that process's
        threads and CPU (file heat is always the whole program's)."""
        points = self.points()
        with self._lock:
            names = dict(self._names)
        step = max(1, -(-len(points) // max_points))  # ceil: merge this many per output point
        groups = [points[i:i + step] for i in range(0, len(points), step)]
        slot = KINDS.index(HEAT_KINDS[heat].stem)
        per_file: dict[str, list[int]] = {}
        for g, group in enumerate(groups):
            for point in group:
                for fid, values in point.files.items():
                    per_file.setdefault(fid, [0] * len(groups))[g] += values[slot]
        threads: dict[str, dict[str, Any]] = {}
        for g, group in enumerate(groups):
            for point in group:
                for t in point.threads:
                    if pid is not None and t.pid != pid:
                        continue
                    entry = threads.setdefault(f"{t.pid}:{t.ident}", {
                        "key": f"{t.pid}:{t.ident}", "pid": t.pid, "ident": t.ident,
                        "name": t.name, "values": [None] * len(groups), "_n": [0] * len(groups)})
                    if t.cpu is not None:
                        entry["values"][g] = (entry["values"][g] or 0.0) + t.cpu
                        entry["_n"][g] += 1
        for entry in threads.values():
            counts = entry.pop("_n")
            entry["values"] = [None if v is None else round(v / counts[g], 1)
                               for g, v in enumerate(entry["values"])]
        busiest = sorted(threads.values(),
                         key=lambda e: -sum(v for v in e["values"] if v is not None))
        ordered = sorted(per_file.items(), key=lambda item: -sum(item[1]))[:MAX_FILES]
        return {
            "interval": self.interval * step,
            "heat": heat,
            "times": [group[-1].time for group in groups],
            "total": [sum(values[g] for values in per_file.values())
                      for g in range(len(groups))],
            "cpu": [_mean([_cpu(point, pid) for point in group]) for group in groups],
            "files": [{"id": fid, "name": names.get(fid, (fid, ""))[0],
                       "path": names.get(fid, ("", ""))[1], "values": values}
                      for fid, values in ordered],
            "threads": busiest[:MAX_THREADS],
        }

    @classmethod
    def from_snapshots(cls, snapshots: Sequence[Snapshot], interval: float) -> Activity:
        """Replay a recording: each snapshot after the first closes one point with
        the growth of every file's totals since the one before."""
        activity = cls(interval, max_points=max(1, len(snapshots)))
        before: dict[str, tuple[int, ...]] = {}
        for snap in snapshots:
            now = {f.id: tuple(f.sum(f"{kind}_total") for kind in KINDS) for f in snap.files}
            for f in snap.files:
                activity.name_file(f.id, f.name, f.path)
            for k, kind in enumerate(KINDS):
                activity.add(kind, {fid: max(0, v[k] - before.get(fid, (0, 0, 0))[k])
                                    for fid, v in now.items()})
            before = now
            activity.close(snap.time, threads_at(snap.threads, snap.pid),
                           {p.pid: p.cpu for p in snap.processes if p.state == "running"})
        return activity


def file_totals(rows: Iterable[tuple[int, ...]]) -> tuple[int, int, int]:
    """A file's (self, hits, ran) totals from its line rows."""
    totals = [0, 0, 0]
    for row in rows:
        for k, kind in enumerate(KINDS):
            totals[k] += row[_TOTAL_INDEX[kind]]
    return totals[0], totals[1], totals[2]


def _cpu(point: Point, pid: int | None) -> float | None:
    return point.cpu if pid is None else point.process_cpu.get(pid)


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 1) if known else None
