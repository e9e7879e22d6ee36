"""Reading a recording (file.py is its format and writer).

``read()`` takes what a file holds up to its end or to the first damage, and says
which (``truncated``); anything else is a RecordingError with a one-line reason.
Snapshots are rebuilt on demand from the nearest whole one, so a long recording
does not have to fit in memory as objects.
"""

from __future__ import annotations

import json
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from ..model.snapshot import SCHEMA_VERSION, Snapshot
from .file import FORMAT_VERSION, MAGIC, RECORD_EVERY, RecordingError, patch, unkeyed


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
        self._records = records  # (whole?, full or diff)
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
        full = max(i for i in range(index + 1) if self._records[i][0]) \
            if not self._records[index][0] else index
        if self._at is not None and full <= self._at[0] <= index:
            return self._at
        return full, self._records[full][1]

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
    truncated: bool  # the writer did not finish it (killed): its last moments are missing


def read(path: str) -> Recording:
    """Read a recording; RecordingError with a one-line reason when it cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC))
            if head != MAGIC:
                raise RecordingError(f"{path} is not a stethoscope recording "
                                     f"(made by stethoscope run --record FILE)")
            data = f.read()
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror}") from None
    unzip = zlib.decompressobj()
    try:
        text = unzip.decompress(data)
    except zlib.error:
        text, cut = _salvage(data), True
    else:
        cut = False
    lines = text.split(b"\n")
    cut = cut or lines[-1] != b""  # the last line was cut off mid-record
    return _parse(path, lines[:-1], cut)


def _salvage(data: bytes) -> bytes:
    """What decompresses before damage in the middle of the file."""
    unzip = zlib.decompressobj()
    out = []
    for i in range(0, len(data), 64):  # small steps: little is lost before the damage
        try:
            out.append(unzip.decompress(data[i:i + 64]))
        except zlib.error:
            break
    text = b"".join(out)
    return text[:text.rfind(b"\n") + 1]


def _parse(path: str, lines: list[bytes], cut: bool) -> Recording:
    header: dict[str, Any] | None = None
    snaps: list[tuple[bool, dict[str, Any]]] = []
    times: list[float] = []
    sources: dict[str, tuple[str, str]] = {}
    frames: list[tuple[str, int, str]] = []
    stacks: list[tuple[int, ...]] = []
    epoch_frames = epoch_stacks = 0  # where the current numbering starts
    sample_t, sample_thread, sample_stack = array("d"), array("q"), array("q")
    dropped = 0
    names: dict[int, str] = {}
    ended = False
    for line in lines:
        # A damaged zlib stream can still inflate to well-formed JSON with the wrong
        # content (deflate checks nothing until the stream's end): any record that
        # does not read as its kind is damage, and what came before it is kept.
        try:
            rec = json.loads(line)
            kind = rec["k"]
            if kind == "header":
                header = _check_header(path, rec)
            elif kind == "source":
                sources[str(rec["id"])] = (str(rec["path"]), str(rec["text"]))
            elif kind == "snap":
                change = rec.get("full") or rec.get("diff") or {}
                if not isinstance(change, dict):
                    raise TypeError("a snapshot record is not an object")
                time_ = float(rec["t"])
                snaps.append(("full" in rec, change))
                times.append(time_)
            elif kind == "stacks":
                batch = _read_stacks(rec, epoch_frames, epoch_stacks, len(frames),
                                     len(stacks))
                epoch_frames, epoch_stacks = batch.epochs
                frames += batch.frames
                stacks += batch.stacks
                sample_t.extend(batch.times)
                sample_thread.extend(batch.threads)
                sample_stack.extend(batch.stack_ids)
                dropped += batch.dropped
                names.update(batch.names)
            elif kind == "end":
                ended = True
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError):
            cut = True  # cut off mid-record, or damaged: keep what came before
            break
    if header is None:
        raise RecordingError(f"{path} ends before its header: the recording is empty")
    good = _readable_prefix(snaps)
    if good < len(snaps):
        del snaps[good:], times[good:]
        cut = True
    if not snaps:
        raise RecordingError(f"{path} holds no snapshot yet (it was cut off in its "
                             f"first {RECORD_EVERY} s)")
    snapshots = SnapshotSequence(snaps)
    samples = Samples(int(header["pid"]), 1.0 / float(header.get("sample_hz") or 100.0),
                      tuple(frames), tuple(stacks), sample_t, sample_thread, sample_stack,
                      names, dropped)
    return Recording(path, int(header["format"]), header, snapshots, times, sources, samples,
                     truncated=cut or not ended)


@dataclass(frozen=True, slots=True)
class _StackRecord:
    epochs: tuple[int, int]  # where the numbering of frames and stacks starts now
    frames: list[tuple[str, int, str]]
    stacks: list[tuple[int, ...]]
    times: list[float]
    threads: list[int]
    stack_ids: list[int]
    dropped: int
    names: dict[int, str]


def _read_stacks(rec: dict[str, Any], epoch_frames: int, epoch_stacks: int,
                 known_frames: int, known_stacks: int) -> _StackRecord:
    """A ``stacks`` record, checked whole: frames and stacks numbered after those
    already read (from the epoch of the last reset), every number in range."""
    if rec["reset"]:
        epoch_frames, epoch_stacks = known_frames, known_stacks
    frames = [(str(p), int(n), str(fn)) for p, n, fn in rec["frames"]]
    all_frames = known_frames + len(frames)
    stacks = []
    for s in rec["stacks"]:
        stack = tuple(epoch_frames + int(i) for i in s)
        if any(not 0 <= i < all_frames for i in stack):
            raise IndexError("a stack names a frame that does not exist")
        stacks.append(stack)
    all_stacks = known_stacks + len(stacks)
    base = float(rec["base"])
    times, threads, ids = [], [], []
    for offset, ident, stack_id in rec["samples"]:
        number = epoch_stacks + int(stack_id)
        if not 0 <= number < all_stacks:
            raise IndexError("a sample names a stack that does not exist")
        times.append(base + float(offset) / 1000)
        threads.append(int(ident))
        ids.append(number)
    names = {int(k): str(v) for k, v in rec.get("names", {}).items()}
    return _StackRecord((epoch_frames, epoch_stacks), frames, stacks, times, threads, ids,
                        int(rec.get("dropped", 0)), names)


def _readable_prefix(snaps: list[tuple[bool, dict[str, Any]]]) -> int:
    """How many of the recorded snapshots rebuild: all, unless damage that still read
    as JSON made one malformed; then those before the first that does not."""
    sequence = SnapshotSequence(snaps)
    try:
        if snaps:
            sequence[-1]
        return len(snaps)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError):
        pass
    for i in range(len(snaps)):  # rebuilt in order: each from the one before
        try:
            sequence[i]
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError):
            return i
    return len(snaps)


def _check_header(path: str, rec: dict[str, Any]) -> dict[str, Any]:
    version = rec.get("format")
    if version != FORMAT_VERSION:
        raise RecordingError(f"{path} is in recording format {version!r}; this stethoscope "
                             f"reads format {FORMAT_VERSION}")
    if rec.get("schema") != SCHEMA_VERSION:
        raise RecordingError(f"{path} holds snapshot schema {rec.get('schema')!r}; this "
                             f"stethoscope reads schema {SCHEMA_VERSION}")
    if isinstance(rec.get("pid"), bool) or not isinstance(rec.get("pid"), int):
        raise RecordingError(f"{path} has a malformed header (no process id)")
    return {k: v for k, v in rec.items() if k != "k"}
