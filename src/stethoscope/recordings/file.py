"""Recordings: the snapshot stream and the sampled stacks, in one compact file.

The file is ``MAGIC`` and then one zlib stream of JSON lines, flushed to the OS
(``Z_SYNC_FLUSH``, unbuffered writes) every ``RECORD_EVERY`` seconds. Everything
up to the last flush is readable, so a process that is killed loses at most that
much; the reader notices the missing ``end`` record and says the recording was
cut off. Records (field ``k``):

* ``header``: format version, snapshot schema, the program (argv, pid, python...);
* ``source``: a monitored file's text, once, when it first has heat;
* ``snap``: a combined snapshot, whole (``full``) every ``FULL_EVERY`` records and
  otherwise as the difference from the one before (``diff``): files by id and
  lines by number, so a record holds only the lines whose counts moved;
* ``stacks``: the sampler's stacks since the last record (model/stacks.py);
* ``end``: the recorder was closed.

``read()`` rebuilds snapshots on demand from the nearest whole one, so a long
recording does not have to fit in memory as objects.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from ..model.snapshot import SCHEMA_VERSION, Snapshot
from ..model.stacks import StackLog

MAGIC = b"STETHOSCOPE-RECORDING\n"
FORMAT_VERSION = 1
RECORD_EVERY = 0.5  # seconds between flushed records: what a kill can lose
FULL_EVERY = 120  # records between whole snapshots (the rest are differences)
_DEL = "$del"  # in a difference: the keys that are gone


class RecordingError(Exception):
    """A recording cannot be written or read; the message says why, in one line."""


# -- snapshot differences ------------------------------------------------------


def _keyed(snap: Snapshot) -> dict[str, Any]:
    """The snapshot as nested dicts keyed by identity, so differences stay small."""
    d = snap.to_dict()
    files = d.pop("files")
    d["files"] = {f["id"]: {"path": f["path"], "name": f["name"],
                            "lines": {str(row[0]): row for row in f["lines"]}}
                  for f in files}
    d["file_order"] = [f["id"] for f in files]
    threads = d.pop("threads")
    d["threads"] = {f"{t['pid']}:{t['ident']}": t for t in threads}
    d["thread_order"] = list(d["threads"])
    processes = d.pop("processes")
    d["processes"] = {str(p["pid"]): p for p in processes}
    d["process_order"] = list(d["processes"])
    return d


def _unkeyed(d: dict[str, Any]) -> Snapshot:
    plain = {k: v for k, v in d.items() if not k.endswith("_order")}
    plain["files"] = [{"id": fid, "path": d["files"][fid]["path"],
                       "name": d["files"][fid]["name"],
                       "lines": sorted(d["files"][fid]["lines"].values())}
                      for fid in d["file_order"]]
    plain["threads"] = [d["threads"][key] for key in d["thread_order"]]
    plain["processes"] = [d["processes"][key] for key in d["process_order"]]
    return Snapshot.from_dict(plain)


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What turns ``old`` into ``new``: changed keys, nested where both are dicts.
    ``$del`` is reserved (no snapshot key starts with ``$``)."""
    if _DEL in new:
        raise ValueError(f"{_DEL!r} is reserved in recorded data")
    out: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            out[key] = value
        elif old[key] != value:
            before = old[key]
            both = isinstance(value, dict) and isinstance(before, dict)
            out[key] = diff(before, value) if both else value
    gone = [key for key in old if key not in new]
    if gone:
        out[_DEL] = gone
    return out


def patch(old: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The inverse of diff(): a new dict; ``old`` is left as it was."""
    new = dict(old)
    for key in change.get(_DEL, ()):
        new.pop(key, None)
    for key, value in change.items():
        if key == _DEL:
            continue
        before = new.get(key)
        both = isinstance(value, dict) and isinstance(before, dict)
        new[key] = patch(before, value) if both else value  # type: ignore[arg-type]
    return new


# -- writing -------------------------------------------------------------------


class Recorder:
    """Appends to a recording from a daemon thread; ``close()`` writes the end.

    ``snapshot`` gives the combined picture and ``source`` a file's (path, text);
    both are the monitor's. Faults are reported once through ``on_fault`` and end
    the recording (what was written stays readable); they never reach the program.
    """

    def __init__(self, path: str, header: dict[str, Any], *,
                 snapshot: Callable[[], Snapshot],
                 source: Callable[[str], tuple[str, str] | None],
                 stack_log: StackLog, on_fault: Callable[[str], None]) -> None:
        self.path = os.path.abspath(path)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                               0o600)
        except OSError as exc:
            raise RecordingError(f"cannot write the recording {self.path!r}: "
                                 f"{exc.strerror}") from None
        self._snapshot = snapshot
        self._source = source
        self.stack_log = stack_log
        self._on_fault = on_fault
        self._lock = threading.Lock()
        self._zip = zlib.compressobj(6)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: dict[str, Any] | None = None
        self._records = 0
        self._sent_sources: set[str] = set()
        self._named: dict[int, str] = {}  # thread ident -> name, as sent
        self._closed = False
        self._append([{"k": "header", "format": FORMAT_VERSION, "schema": SCHEMA_VERSION,
                       "interval": RECORD_EVERY, **header}])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stethoscope-recorder",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(RECORD_EVERY):
                self.record()
        except Exception as exc:  # record() catches its own faults: this is the last guard
            with self._lock:
                already, self._closed = self._closed, True
            if not already:
                self._on_fault(f"the recording {self.path} stopped after an error: "
                               f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(OSError):
                    os.close(self._fd)

    def record(self, final: bool = False) -> None:
        """Append what happened since the last record (and the end, when final)."""
        with self._lock:
            if self._closed:
                return
            try:
                records = self._records_now()
                if final:
                    records.append({"k": "end", "t": time.time()})
                self._append(records)
            except Exception as exc:
                self._closed = True
                self._on_fault(f"the recording {self.path} stopped after an error: "
                               f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                return
            if final:
                self._closed = True
                os.close(self._fd)

    def _records_now(self) -> list[dict[str, Any]]:
        snap = self._snapshot()
        records: list[dict[str, Any]] = []
        for f in snap.files:
            if f.id not in self._sent_sources:
                self._sent_sources.add(f.id)
                found = self._source(f.id)
                if found is not None:
                    records.append({"k": "source", "id": f.id, "path": found[0],
                                    "text": found[1]})
        batch = self.stack_log.take()
        if batch.samples or batch.reset or batch.dropped:
            base = snap.started
            names = {t.ident: t.name for t in snap.threads if t.pid in (None, snap.pid)}
            new_names = {ident: names[ident] for ident in {s[1] for s in batch.samples}
                         if ident in names and self._named.get(ident) != names[ident]}
            self._named.update(new_names)
            records.append({"k": "stacks", "reset": batch.reset, "base": base,
                            "names": {str(k): v for k, v in new_names.items()},
                            "frames": batch.frames, "stacks": batch.stacks,
                            "samples": [(round((t - base) * 1000, 1), ident, stack)
                                        for t, ident, stack in batch.samples],
                            "dropped": batch.dropped})
        keyed = _keyed(snap)
        if self._previous is None or self._records % FULL_EVERY == 0:
            records.append({"k": "snap", "t": snap.time, "full": keyed})
        else:
            records.append({"k": "snap", "t": snap.time, "diff": diff(self._previous, keyed)})
        self._previous = keyed
        self._records += 1
        return records

    def _append(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        data = self._zip.compress(text.encode()) + self._zip.flush(zlib.Z_SYNC_FLUSH)
        if self._records == 0 and records and records[0]["k"] == "header":
            data = MAGIC + data
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def close(self, timeout: float = 2.0) -> None:
        """The final record and the end; idempotent. Call after the collectors stop."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if not self._closed:  # after a fault, what was written stays as it is
            self.record(final=True)

    def forget(self) -> None:
        """In a forked child: let go of the file without writing to it."""
        self._stop.set()
        self._closed = True
        with contextlib.suppress(OSError):
            os.close(self._fd)


# -- reading -------------------------------------------------------------------


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
        return _unkeyed(keyed)

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
