"""Reading a recording (file.py is its format and writer).

A recording is untrusted input. ``read()`` takes what a file holds and either
returns it whole, returns it cut (``truncated``, with ``cut_reason``), or raises a
RecordingError whose one line names the file, the record and what is wrong:

* cut: the bytes stop (the writer was killed, or is still writing: KILLED), the
  compressed stream breaks (damage on disk: DAMAGED; the cut is before the first
  record that does not read), or a limit a real recording can reach (inflate.py:
  MAX_TOTAL_BYTES, MAX_RECORDS) is met; what came before is read;
* refused: anything else the writer does not write: a record too long
  (MAX_RECORD_BYTES), not JSON, out-of-range numbers, too deep (records.py), a
  field of the wrong type, a stack or sample naming what does not exist, a
  snapshot that does not rebuild, or more than FULL_EVERY - 1 differences in a row.

Every snapshot is rebuilt once while reading, so none fails later; afterwards they
are rebuilt on demand from the nearest whole one (at most FULL_EVERY - 1 patches),
so a long recording does not have to fit in memory as objects.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from ..model.snapshot import Snapshot
from .file import FULL_EVERY, RECORD_EVERY, RecordingError, patch, unkeyed
from .inflate import DAMAGED, KILLED, Lines
from .records import (
    Malformed,
    VersionError,
    check_header,
    check_snap,
    check_source,
    check_stacks,
    parse,
)
from .snapcheck import ERRORS, check


@dataclass(frozen=True, slots=True)
class Samples:
    """Every stack the main process's sampler took while recording, in time order."""

    pid: int
    interval: float  # seconds between samples, as asked for
    frames: tuple[tuple[str, int, str], ...]  # (path, line, function)
    stacks: tuple[tuple[int, ...], ...]  # frame indexes, outermost first
    times: Sequence[float]  # Unix time of each sample
    threads: Sequence[int]  # thread ident of each sample
    stack_ids: Sequence[int]  # index into stacks of each sample
    thread_names: dict[int, str] = field(default_factory=dict)
    dropped: int = 0  # samples the recorder could not keep up with


class SnapshotSequence(Sequence[Snapshot]):
    """The recorded snapshots, rebuilt from the nearest whole one when asked for."""

    def __init__(self, records: list[tuple[bool, dict[str, Any]]]) -> None:
        self._records = records  # (whole?, full or diff); the first is whole
        self._wholes = [i for i, (whole, _) in enumerate(records) if whole]
        self._at: tuple[int, dict[str, Any]] | None = None  # the last one rebuilt

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> Snapshot: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Snapshot]: ...

    def __getitem__(self, index: int | slice) -> Snapshot | Sequence[Snapshot]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start, keyed = self._base_for(index)
        for i in range(start + 1, index + 1):
            keyed = patch(keyed, self._records[i][1])
        self._at = (index, keyed)
        return unkeyed(keyed)

    def _base_for(self, index: int) -> tuple[int, dict[str, Any]]:
        whole = self._wholes[bisect.bisect_right(self._wholes, index) - 1]
        if self._at is not None and whole <= self._at[0] <= index:
            return self._at
        return whole, self._records[whole][1]

    def __iter__(self) -> Iterator[Snapshot]:
        for i in range(len(self)):
            yield self[i]


@dataclass(frozen=True)
class Recording:
    path: str
    version: int
    header: dict[str, Any]
    snapshots: SnapshotSequence
    times: list[float]
    sources: dict[str, tuple[str, str]]
    samples: Samples
    truncated: bool  # the writer did not finish it, or not all of it is read
    cut_reason: str = ""  # why, when truncated: KILLED, damage, or a limit


def read(path: str) -> Recording:
    """Read a recording; RecordingError with a one-line reason when it cannot be read."""
    lines = Lines(path)
    records = iter(lines)
    state = _Reading()
    for number, line in records:
        try:
            state.add(parse(line))
        except VersionError as exc:
            raise RecordingError(f"{path} {exc}") from None
        except Malformed as exc:
            if _breaks_later(records, lines):
                break  # damage, not a record the writer wrote: cut before it
            raise RecordingError(f"{path}: record {number}: {exc}") from None
    return state.recording(path, lines.cut)


def _breaks_later(records: Iterator[tuple[int, bytes]], lines: Lines) -> bool:
    """Whether the compressed stream breaks after the record that did not read.
    Deflate checks nothing before its end, so damage on disk can inflate to a few
    wrong records before zlib notices: in a stream that then breaks, a record that
    does not read is part of the damage. In an intact one it is refused."""
    try:
        for _ in records:
            pass
    except RecordingError:
        return False
    return lines.cut == DAMAGED


class _Reading:
    """The records read so far, each checked against those before it."""

    def __init__(self) -> None:
        self.header: dict[str, Any] | None = None
        self.snaps: list[tuple[bool, dict[str, Any]]] = []
        self.times: list[float] = []
        self.sources: dict[str, tuple[str, str]] = {}
        self.frames: list[tuple[str, int, str]] = []
        self.stacks: list[tuple[int, ...]] = []
        self.epochs = (0, 0)  # where the numbering of frames and stacks starts now
        self.sample_t, self.sample_thread, self.sample_stack = array("d"), array("q"), \
            array("q")
        self.dropped = 0
        self.names: dict[int, str] = {}
        self.ended = False
        self._keyed: dict[str, Any] = {}  # the last snapshot, keyed (file.py)
        self._since_whole = 0  # differences since the last whole snapshot

    def add(self, rec: dict[str, Any]) -> None:
        kind = rec["k"]
        if self.header is None and kind != "header":
            raise Malformed(f"a {kind} record comes before the header")
        if self.ended:
            raise Malformed(f"a record ({kind}) follows the end")
        if kind == "header":
            if self.header is not None:
                raise Malformed("a second header")
            self.header = check_header(rec)
        elif kind == "source":
            file_id, path, text = check_source(rec)
            self.sources[file_id] = (path, text)
        elif kind == "snap":
            self._add_snap(*check_snap(rec))
        elif kind == "stacks":
            self._add_stacks(check_stacks(rec))
        else:  # end
            self.ended = True

    def _add_snap(self, whole: bool, time: float, change: dict[str, Any]) -> None:
        if whole:
            self._since_whole = 0
        elif not self.snaps:
            raise Malformed("a difference comes before the first whole snapshot")
        else:
            self._since_whole += 1
            if self._since_whole >= FULL_EVERY:  # seeking would patch without bound
                raise Malformed(f"{self._since_whole} differences in a row: the writer "
                                f"writes a whole snapshot at least every {FULL_EVERY}")
        try:
            keyed = change if whole else patch(self._keyed, change)
        except ERRORS as exc:
            raise Malformed(f"its difference does not apply ({type(exc).__name__}: "
                            f"{exc!s:.60})") from None
        check(keyed, self._keyed, change, whole)
        self._keyed = keyed
        self.snaps.append((whole, change))
        self.times.append(time)

    def _add_stacks(self, rec: dict[str, Any]) -> None:
        """Frames and stacks numbered after those already read (from the epoch of the
        last reset), every number in range."""
        epoch_frames, epoch_stacks = self.epochs
        if rec["reset"]:
            epoch_frames, epoch_stacks = len(self.frames), len(self.stacks)
        frames = [(p, n, fn) for p, n, fn in rec["frames"]]
        all_frames = len(self.frames) + len(frames)
        stacks = []
        for s in rec["stacks"]:
            stack = tuple(epoch_frames + i for i in s)
            if any(i >= all_frames for i in stack):
                raise Malformed("a stack names a frame that does not exist")
            stacks.append(stack)
        all_stacks = len(self.stacks) + len(stacks)
        base = float(rec["base"])
        times, threads, ids = [], [], []
        for offset, ident, stack_id in rec["samples"]:
            number = epoch_stacks + stack_id
            if number >= all_stacks:
                raise Malformed("a sample names a stack that does not exist")
            times.append(base + offset / 1000)
            threads.append(ident)
            ids.append(number)
        self.epochs = (epoch_frames, epoch_stacks)
        self.frames += frames
        self.stacks += stacks
        self.sample_t.extend(times)
        self.sample_thread.extend(threads)
        self.sample_stack.extend(ids)
        self.dropped += rec["dropped"]
        self.names.update({int(k): v for k, v in rec["names"].items()})

    def recording(self, path: str, cut: str) -> Recording:
        if self.header is None:
            if cut and cut != KILLED:
                raise RecordingError(f"{path}: nothing can be read before its header: {cut}")
            raise RecordingError(f"{path} ends before its header: the recording is empty")
        if not self.snaps:
            raise RecordingError(f"{path} holds no snapshot yet (it was cut off in its "
                                 f"first {RECORD_EVERY} s)")
        snapshots = SnapshotSequence(self.snaps)
        try:  # each was checked as it came; this is the last guard
            snapshots[-1]
        except ERRORS as exc:
            raise RecordingError(f"{path}: its last snapshot does not rebuild "
                                 f"({type(exc).__name__}: {exc!s:.60})") from None
        header = self.header
        samples = Samples(header["pid"], 1.0 / float(header.get("sample_hz") or 100.0),
                          tuple(self.frames), tuple(self.stacks), self.sample_t,
                          self.sample_thread, self.sample_stack, self.names, self.dropped)
        cut = cut or ("" if self.ended else KILLED)
        return Recording(path, header["format"], header, snapshots,
                         self.times, self.sources, samples, truncated=bool(cut),
                         cut_reason=cut)
