"""The program's table of its child processes, and their combined picture.

The parent keeps the latest report (model/report.py) per process in a
``ProcessTable``; ``combine()`` sums the heat of every process into one picture.

Memory stays bounded however many children come and go: only the newest
``MAX_ENDED`` ended children are listed; older ones are retired into running
totals, so the combined totals never lose their counts. Children's sources are
kept up to ``MAX_SOURCES`` files and ``MAX_SOURCE_TOTAL`` characters in all; later
ones are dropped (counted in ``sources_dropped``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .activity import KINDS, Activity, file_totals
from .report import MAX_SOURCE_CHARS, ChildReport, ReportError
from .snapshot import (
    LINE_FIELDS,
    MAX_NOTES,
    FileHeat,
    LineRow,
    NowLine,
    ProcessInfo,
    Snapshot,
    ThreadInfo,
    order_files,
)

MAX_ENDED = 100  # ended children listed; older ones only count in the totals
MAX_SOURCES = 5000  # child-only source files kept for the page
MAX_SOURCE_TOTAL = 64 * 1024 * 1024  # characters of those sources, over all children

# Indexes into a LineRow of the "total" fields (hits, self, incl).
_TOTALS = tuple(i for i, name in enumerate(LINE_FIELDS) if name.endswith("_total"))
_RECENT = tuple(i for i, name in enumerate(LINE_FIELDS) if name.endswith("_recent"))
_LATEST = tuple(i for i, name in enumerate(LINE_FIELDS) if name.endswith("_last_ms"))


@dataclass(slots=True)
class _Child:
    instance: str
    seq: int
    final: bool
    info: ProcessInfo
    snapshot: Snapshot


class ProcessTable:
    """The parent's view of its children: latest report per process, thread-safe."""

    def __init__(self, own_pid: int, *, max_ended: int = MAX_ENDED,
                 activity: Activity | None = None,
                 max_source_chars: int = MAX_SOURCE_TOTAL) -> None:
        self._lock = threading.Lock()
        self._activity = activity  # fed with what each report adds to the totals
        self._own_pid = own_pid
        self._max_ended = max_ended
        self._children: dict[int, _Child] = {}
        self._sources: dict[str, tuple[str, str]] = {}  # file id -> (path, text)
        self.max_source_chars = max_source_chars
        self._source_chars = 0  # in self._sources
        self.sources_dropped = 0  # sources not kept: beyond the bounds
        self._retired: dict[tuple[str, int], list[int]] = {}  # totals of dropped children
        self._retired_paths: dict[str, str] = {}
        self.retired_count = 0

    def accept(self, report: ChildReport, now: float) -> bool:
        """Take a report; False when it is stale (an older or duplicate report)."""
        pid = report.process.pid
        if pid == self._own_pid:
            raise ReportError("a report from the monitored process itself")
        with self._lock:
            known = self._children.get(pid)
            # The final report wins even over a later-numbered periodic one that a
            # thread was sending while the process exited.
            if known is not None and known.instance == report.instance and (
                    known.final or (report.seq <= known.seq and not report.final)):
                return False
            info = replace(report.process, last_report=now)
            if self._activity is not None:
                self._feed_activity(report.snapshot,
                                    known.snapshot if known is not None
                                    and known.instance == report.instance else None)
            self._children[pid] = _Child(report.instance, report.seq, report.final, info,
                                         report.snapshot)
            self._keep_sources(report.sources)
            self._retire_oldest()
        return True

    def _keep_sources(self, sources: Iterable[tuple[str, str, str]]) -> None:
        for fid, path, text in sources:
            if fid in self._sources:
                continue
            if len(self._sources) >= MAX_SOURCES or len(text) > MAX_SOURCE_CHARS \
                    or self._source_chars + len(text) > self.max_source_chars:
                self.sources_dropped += 1
                continue
            self._sources[fid] = (path, text)
            self._source_chars += len(text)

    def source_chars(self) -> int:
        """Characters of children's sources kept (at most ``max_source_chars``)."""
        with self._lock:
            return self._source_chars

    def _feed_activity(self, snap: Snapshot, before: Snapshot | None) -> None:
        assert self._activity is not None
        old = {f.id: file_totals(f.lines) for f in before.files} if before is not None else {}
        grown: list[dict[str, int]] = [{}, {}, {}]
        for f in snap.files:
            self._activity.name_file(f.id, f.name, f.path)
            prior = old.get(f.id, (0, 0, 0))
            for k, value in enumerate(file_totals(f.lines)):
                grown[k][f.id] = max(0, value - prior[k])
        for kind, per_file in zip(KINDS, grown, strict=True):
            self._activity.add(kind, per_file)

    def watch_list(self) -> list[int]:
        """Pids of children that have not said goodbye: check they still exist."""
        with self._lock:
            return [pid for pid, c in self._children.items() if c.info.state == "running"]

    def vanished(self, pid: int, exit_code: int | None) -> None:
        """The process is gone without a final report: killed (or lost)."""
        with self._lock:
            child = self._children.get(pid)
            if child is None or child.info.state != "running":
                return
            child.info = replace(child.info, state="killed", exit_code=exit_code,
                                 exit_how="vanished", cpu=None)
            self._retire_oldest()

    def _retire_oldest(self) -> None:
        ended = [c for c in self._children.values() if c.info.state != "running"]
        if len(ended) <= self._max_ended:
            return
        ended.sort(key=lambda c: c.info.last_report or c.info.started)
        for child in ended[: len(ended) - self._max_ended]:
            del self._children[child.info.pid]
            self.retired_count += 1
            for f in child.snapshot.files:
                self._retired_paths.setdefault(f.id, f.path)
                for row in f.lines:
                    totals = self._retired.setdefault((f.id, row[0]), [0] * len(_TOTALS))
                    for k, index in enumerate(_TOTALS):
                        totals[k] += row[index]

    def infos(self) -> list[ProcessInfo]:
        with self._lock:
            return sorted((c.info for c in self._children.values()), key=lambda i: i.started)

    def snapshot_of(self, pid: int) -> Snapshot | None:
        with self._lock:
            child = self._children.get(pid)
            return child.snapshot if child is not None else None

    def snapshots(self) -> list[Snapshot]:
        with self._lock:
            return [c.snapshot for c in self._children.values()]

    def retired(self) -> tuple[dict[tuple[str, int], list[int]], dict[str, str]]:
        with self._lock:
            return ({k: list(v) for k, v in self._retired.items()}, dict(self._retired_paths))

    def source(self, file_id: str) -> tuple[str, str] | None:
        with self._lock:
            return self._sources.get(file_id)


def combine(own: Snapshot, table: ProcessTable, processes: Sequence[ProcessInfo]) -> Snapshot:
    """One picture of every process: heat summed by (file, line), all threads with
    their pid. A child's recent heat counts only while its report is recent."""
    rows: dict[str, dict[int, list[int]]] = {}
    paths: dict[str, str] = {}
    ended = {p.pid: p for p in processes if p.state != "running"}
    snapshots = [own, *(_ended(s, ended[s.pid]) if s.pid in ended else s
                        for s in table.snapshots())]
    for snap in snapshots:
        stale = own.time - snap.time > snap.window
        for f in snap.files:
            paths.setdefault(f.id, f.path)
            lines = rows.setdefault(f.id, {})
            for row in f.lines:
                acc = lines.setdefault(row[0], [0] * len(LINE_FIELDS))
                for i in range(1, len(LINE_FIELDS)):
                    if i in _LATEST:
                        acc[i] = max(acc[i], row[i])
                    elif not (stale and i in _RECENT):
                        acc[i] += row[i]
    retired, retired_paths = table.retired()
    for (fid, line), totals in retired.items():
        paths.setdefault(fid, retired_paths[fid])
        acc = rows.setdefault(fid, {}).setdefault(line, [0] * len(LINE_FIELDS))
        for k, index in enumerate(_TOTALS):
            acc[index] += totals[k]
    files = [
        FileHeat(fid, paths[fid], os.path.basename(paths[fid]),
                 tuple(_row(line, acc) for line, acc in sorted(lines.items())))
        for fid, lines in rows.items()
    ]
    return replace(
        own,
        files=tuple(order_files(files, own.heat)),
        threads=tuple(_with_pid(snapshots, lambda s: s.threads)),
        now=tuple(_with_pid(snapshots, lambda s: s.now)),
        notes=_notes(own, snapshots[1:]),
        processes=tuple(processes),
        view="combined",
    )


def _ended(snap: Snapshot, info: ProcessInfo) -> Snapshot:
    """A process that has ended: its threads ended with it, nothing runs now."""
    when = info.last_report or snap.time
    threads = tuple(
        replace(t, alive=False, stack=(), kind="ended", state="ended with its process",
                cpu=None, ended=t.ended or when, hints=())
        for t in snap.threads)
    return replace(snap, threads=threads, now=())


def _row(line: int, acc: list[int]) -> LineRow:
    return (line, *acc[1:])


def _with_pid(snapshots: Iterable[Snapshot], items: Any) -> list[Any]:
    out: list[ThreadInfo | NowLine] = []
    for snap in snapshots:
        out.extend(replace(item, pid=snap.pid) for item in items(snap))
    return out


def _notes(own: Snapshot, children: Iterable[Snapshot]) -> tuple[str, ...]:
    """The program's notes, then each other note once, naming its processes."""
    by_text: dict[str, list[int]] = {}
    for snap in children:
        for note in snap.notes:
            if note not in own.notes:
                by_text.setdefault(note, []).append(snap.pid)
    notes = list(own.notes)
    for text, pids in by_text.items():
        if len(notes) >= MAX_NOTES:
            break
        named = ", ".join(map(str, pids[:5])) + (f" and {len(pids) - 5} more"
                                                  if len(pids) > 5 else "")
        notes.append(f"{text} (process{'es' if len(pids) > 1 else ''} {named})")
    return tuple(notes)
