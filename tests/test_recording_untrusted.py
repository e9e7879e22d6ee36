"""Recordings are untrusted input: whatever a file holds, reading it ends in a
recording, a cut one, or one line on stderr and exit status 2, never a traceback;
memory stays bounded (a zlib bomb under an address-space limit), and seeking costs
at most FULL_EVERY - 1 patches.

Every damaged file is made from a real recording (``stethoscope run --record`` of a
small program), decompressed into its records, changed, and written back the way
the writer writes (one zlib stream, sync-flushed, never finished).
"""

from __future__ import annotations

import copy
import json
import os
import random
import resource
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stethoscope.model.stacks import StackLog
from stethoscope.recordings import inflate
from stethoscope.recordings import reader as reader_module
from stethoscope.recordings.export import FORMATS, render
from stethoscope.recordings.file import FULL_EVERY, MAGIC, Recorder, RecordingError
from stethoscope.recordings.inflate import MAX_RECORD_BYTES
from stethoscope.recordings.reader import read
from stethoscope.recordings.replay import ReplayBackend

from conftest import child_env, run_cli

Record = dict[str, Any]
PROGRAM = textwrap.dedent('''\
    import threading, time
    def hot(n):
        total = 0
        for i in range(n):
            total += i
        return total
    def work():
        hot(200_000)
    t = threading.Thread(target=work, name="worker")
    t.start()
    t.join()
    end = time.time() + 1.2  # three records or so (one every 0.5 s)
    while time.time() < end:
        hot(10_000)
''')


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("untrusted")
    script = where / "small.py"
    script.write_text(PROGRAM)
    out = where / "small.stetho"
    proc = run_cli(["run", "--port", "0", "--quiet", "--record", str(out), str(script)],
                   timeout=100)
    assert proc.returncode == 0, proc.stderr
    rec = read(str(out))
    assert not rec.truncated and len(rec.snapshots) >= 2 and len(rec.samples.times) > 0
    return out


def records_of(path: Path) -> list[Record]:
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    text = zlib.decompressobj().decompress(data[len(MAGIC):])
    return [json.loads(line) for line in text.splitlines()]


def compressed(text: bytes) -> bytes:
    """As the writer writes: one stream, sync-flushed, not finished."""
    zip_ = zlib.compressobj(6)
    return MAGIC + zip_.compress(text) + zip_.flush(zlib.Z_SYNC_FLUSH)


def lines(records: list[Record]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()


def _first(records: list[Record], kind: str, whole: bool | None = None) -> Record:
    return next(r for r in records if r["k"] == kind
                and (whole is None or ("full" in r) == whole))


def _set(kind: str, key: str, value: Any, whole: bool | None = None
         ) -> Callable[[list[Record]], bytes]:
    """The first record of ``kind`` with ``key`` (a path: "full.heat") set to ``value``."""
    def change(records: list[Record]) -> bytes:
        target = _first(records, kind, whole)
        *parents, last = key.split(".")
        for part in parents:
            target = target[part] if isinstance(target, dict) else target[int(part)]
        target[last if isinstance(target, dict) else int(last)] = value
        return compressed(lines(records))
    return change


def _raw(kind: str, key: str, text: str) -> Callable[[list[Record]], bytes]:
    """Like _set, with JSON text the json module would not write (NaN, 1e400)."""
    marker = "__RAW__"

    def change(records: list[Record]) -> bytes:
        _set(kind, key, marker)(records)
        return compressed(lines(records).replace(f'"{marker}"'.encode(), text.encode()))
    return change


def _with(make: Callable[[list[Record]], list[Record]]) -> Callable[[list[Record]], bytes]:
    return lambda records: compressed(lines(make(records)))


def _diff_run(count: int) -> Callable[[list[Record]], list[Record]]:
    """The header, one whole snapshot, then ``count`` (empty) differences."""
    def make(records: list[Record]) -> list[Record]:
        full = _first(records, "snap", whole=True)
        diffs = [{"k": "snap", "t": full["t"] + i, "diff": {}} for i in range(1, count + 1)]
        return [records[0], full, *diffs, {"k": "end", "t": full["t"] + count}]
    return make


def _stacks(**fields: Any) -> Callable[[list[Record]], list[Record]]:
    def make(records: list[Record]) -> list[Record]:
        extra = {"k": "stacks", "reset": False, "base": 1.0, "names": {}, "frames": [],
                 "stacks": [], "samples": [], "dropped": 0, **fields}
        return [*records[:-1], extra, records[-1]]
    return make


DEEP = "[" * 100_000 + "]" * 100_000
# (what is damaged, how, words of the one line that refuses it)
CORPUS: list[tuple[str, Callable[[list[Record]], bytes], str]] = [
    ("empty file", lambda r: b"", "is not a stethoscope recording"),
    ("magic only", lambda r: MAGIC, "ends before its header"),
    ("not JSON", lambda r: compressed(lines(r[:1]) + b"{not json\n"), "record 2: it is not JSON"),
    ("not UTF-8", lambda r: compressed(lines(r[:1]) + b'{"k":"\xff\xfe"}\n'), "not UTF-8"),
    ("not an object", lambda r: compressed(lines(r[:1]) + b"[1, 2]\n"), "not a JSON object"),
    ("unknown kind", lambda r: compressed(lines(r[:1]) + b'{"k":"x"}\n'), "kind 'x' is none"),
    ("no kind", lambda r: compressed(lines(r[:1]) + b'{"t":1}\n'), "kind None is none"),
    ("format 2", _set("header", "format", 2), "is in recording format 2"),
    ("format as text", _set("header", "format", "1"), 'is in recording format "1"'),
    ("schema 99", _set("header", "schema", 99), "holds snapshot schema 99"),
    ("pid as text", _set("header", "pid", "12"), "record 1: its 'pid' must be a process id"),
    ("argv an object", _set("header", "argv", {"a": 1}), "'argv' must be a list of strings"),
    ("sample rate 0", _set("header", "sample_hz", 0), "'sample_hz' must be a rate"),
    ("sample rate text", _set("header", "sample_hz", "fast"), "'sample_hz' must be a rate"),
    ("a second header", lambda r: compressed(lines([r[0], *r])), "record 2: a second header"),
    ("no header first", lambda r: compressed(lines(r[1:])), "comes before the header"),
    ("time as text", _set("snap", "t", "now"), "'t' must be a number"),
    ("time 1e400", _raw("snap", "t", "1e400"), "the number 1e400 is out of range"),
    ("time NaN", _raw("snap", "t", "NaN"), "NaN is not a number"),
    ("time -Infinity", _raw("snap", "t", "-Infinity"), "-Infinity is not a number"),
    ("huge integer", _raw("snap", "full.pid", "1" * 5000), "is out of range"),
    ("integer past 64 bits", _set("snap", "full.pid", 2**64), "is out of range"),
    ("deep nesting", _raw("snap", "full.argv", DEEP), "nested more than 32 deep"),
    ("full and diff", _set("snap", "diff", {}, whole=True), "holds one of 'full' and 'diff'"),
    ("full a list", _set("snap", "full", [1]), "'full' must be an object"),
    ("heat unknown", _set("snap", "full.heat", "warmth"), "does not rebuild (unknown heat"),
    ("heat a list", _set("snap", "full.heat", []), "does not rebuild"),
    ("files a string", _set("snap", "full.files", "x"), "does not rebuild"),
    ("state unknown", _set("snap", "full.state", 5), "does not rebuild"),
    ("schema missing", _set("snap", "full.schema", None), "does not rebuild"),
    ("start out of range", _set("snap", "full.started", 10**17), "time is out of range"),
    ("difference first", _with(lambda r: [r[0], {"k": "snap", "t": 1.0, "diff": {}}, r[-1]]),
     "a difference comes before the first whole snapshot"),
    ("deletion not a list", _with(lambda r: [*r[:-1], {"k": "snap", "t": 2e9, "diff": {
        "$del": 7}}, r[-1]]), "its difference does not apply"),
    ("diff run too long", _with(_diff_run(FULL_EVERY)),
     f"{FULL_EVERY} differences in a row: the writer writes a whole snapshot at least "
     f"every {FULL_EVERY}"),
    ("stack of no frame", _with(_stacks(stacks=[[10**6]])), "a stack names a frame"),
    ("sample of no stack", _with(_stacks(samples=[[1.0, 1, 10**6]])), "a sample names a stack"),
    ("frame malformed", _with(_stacks(frames=[["a.py", "1", "f"]])), "'frames' must be"),
    ("names malformed", _with(_stacks(names={"x": "y"})), "'names' must be"),
    ("dropped negative", _with(_stacks(dropped=-1)), "'dropped' must be a count"),
    ("reset a string", _with(_stacks(reset="yes")), "'reset' must be true or false"),
    ("source text a surrogate", _with(lambda r: [*r[:-1], {"k": "source", "id": "a",
                                                            "path": "p", "text": "\udcff"},
                                                 r[-1]]), "'text' must be text without"),
    ("source text a list", _with(lambda r: [*r[:-1], {"k": "source", "id": "a", "path": "p",
                                                       "text": []}, r[-1]]), "'text' must be"),
    ("after the end", lambda r: compressed(lines([*r, r[-1]])), "follows the end"),
]


@pytest.fixture(params=[c[0] for c in CORPUS])
def damaged(request: pytest.FixtureRequest, recorded: Path, tmp_path: Path
            ) -> tuple[Path, str]:
    _, make, words = next(c for c in CORPUS if c[0] == request.param)
    path = tmp_path / "damaged.stetho"
    path.write_bytes(make(records_of(recorded)))
    return path, words


def _one_line_exit_2(args: list[str]) -> str:
    result = run_cli(args, timeout=100)
    assert result.returncode == 2, (args, result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines_ = result.stderr.splitlines()
    assert len(lines_) == 1, result.stderr[-2000:]
    return lines_[0]


def test_every_damaged_file_is_one_line_and_exit_2(damaged: tuple[Path, str]) -> None:
    path, words = damaged
    for args in (["export", str(path), "--format", "text"],
                 ["export", str(path), "--format", "chrome", "-o", "-"],
                 ["view", str(path), "--port", "0"]):  # view reads first
        line = _one_line_exit_2(args)
        assert line.startswith(f"stethoscope: error: {path}"), line
        assert words in line, (words, line)


def test_a_directory_and_a_fifo_are_refused(tmp_path: Path) -> None:
    line = _one_line_exit_2(["export", str(tmp_path), "--format", "text"])
    assert line == f"stethoscope: error: cannot read {tmp_path}: not a regular file"
    fifo = tmp_path / "fifo.stetho"
    os.mkfifo(fifo)
    line = _one_line_exit_2(["view", str(fifo), "--port", "0"])
    assert line == f"stethoscope: error: cannot read {fifo}: not a regular file"


def _limit_memory() -> None:
    gib = 2**30
    resource.setrlimit(resource.RLIMIT_AS, (gib, gib))


def test_a_zlib_bomb_is_refused_in_bounded_memory(recorded: Path, tmp_path: Path) -> None:
    """1 GiB of zeros, compressed to about a MiB: with the address space limited to
    1 GiB the reader refuses it (one record past MAX_RECORD_BYTES), not MemoryError."""
    zip_ = zlib.compressobj(9)
    block = bytes(2**24)
    bomb = tmp_path / "bomb.stetho"
    with open(bomb, "wb") as f:
        f.write(MAGIC + zip_.compress(lines(records_of(recorded)[:1])))
        for _ in range(64):  # 64 times 16 MiB
            f.write(zip_.compress(block))
        f.write(zip_.flush(zlib.Z_SYNC_FLUSH))
    assert bomb.stat().st_size < 2**21
    result = subprocess.run([sys.executable, "-m", "stethoscope", "export", str(bomb),
                             "--format", "text"], env=child_env(), capture_output=True,
                            text=True, timeout=300, preexec_fn=_limit_memory)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        f"stethoscope: error: {bomb}: record 2 is longer than {MAX_RECORD_BYTES >> 20} MiB "
        f"decompressed: this is not a recording stethoscope wrote"]


@pytest.mark.parametrize(("limit", "value", "reason"), [
    ("MAX_RECORDS", 3, "it holds more than 3 records, the most one recording is read for"),
    ("MAX_TOTAL_BYTES", 2**20 // 4, None),  # a quarter MiB: shown as 0 MiB
])
def test_a_recording_past_a_limit_a_real_one_can_reach_is_cut_there(
        recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str,
        value: int, reason: str | None) -> None:
    records = records_of(recorded)
    full = _first(records, "snap", whole=True)
    padding = [{"k": "source", "id": f"pad{i}", "path": "p", "text": "x" * 4096}
               for i in range(100)]  # 400 KiB
    path = tmp_path / "long.stetho"
    path.write_bytes(compressed(lines([records[0], full, *padding, full, records[-1]])))
    monkeypatch.setattr(inflate, limit, value)
    rec = read(str(path))
    assert rec.truncated and len(rec.snapshots) == 1
    assert rec.cut_reason == (reason or "it holds more than 0 MiB of records, the most one "
                                        "recording is read for")
    assert f"the recording was cut off ({rec.cut_reason}): what follows is not read" in \
        render(rec, "text")


def test_a_record_past_its_limit_is_refused(recorded: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    records = records_of(recorded)
    path = tmp_path / "big.stetho"
    path.write_bytes(compressed(lines([*records[:-1], {"k": "source", "id": "big", "path": "p",
                                                        "text": "x" * 2**20}, records[-1]])))
    monkeypatch.setattr(inflate, "MAX_RECORD_BYTES", 2**19)
    with pytest.raises(RecordingError, match=rf"^{path}: record {len(records)} is longer than "
                                             rf"0 MiB decompressed"):
        read(str(path))


def test_a_diff_run_up_to_the_bound_reads_and_seeks_in_bounded_patches(
        recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "run.stetho"
    records = records_of(recorded)
    make = _diff_run(FULL_EVERY - 1)
    path.write_bytes(compressed(lines([*make(records)[:-1], *make(records)[1:]])))
    rec = read(str(path))
    assert not rec.truncated and len(rec.snapshots) == 2 * FULL_EVERY
    patches = []
    original = reader_module.patch

    def counted(old: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
        patches.append(1)
        return original(old, change)

    monkeypatch.setattr(reader_module, "patch", counted)
    snapshots = rec.snapshots
    for index in (2 * FULL_EVERY - 1, FULL_EVERY - 1, FULL_EVERY, 1):
        snapshots[0]  # away from the last one rebuilt (it is kept to go on from)
        patches.clear()
        snapshots[index]
        assert len(patches) == index % FULL_EVERY <= FULL_EVERY - 1  # from the whole one


def test_the_writer_writes_a_whole_snapshot_every_full_every_records(
        recorded: Path, tmp_path: Path) -> None:
    snap = read(str(recorded)).snapshots[-1]
    out = tmp_path / "writer.stetho"
    faults: list[str] = []
    ticks = iter(range(10**6))
    recorder = Recorder(str(out), {"pid": snap.pid},
                        snapshot=lambda: replace(snap, time=snap.time + next(ticks)),
                        source=lambda file_id: None, stack_log=StackLog(),
                        on_fault=faults.append)
    for _ in range(2 * FULL_EVERY + 5):
        recorder.record()
    recorder.close()
    assert faults == []
    wholes = [i for i, r in enumerate(r for r in records_of(out) if r["k"] == "snap")
              if "full" in r]
    assert wholes == [0, FULL_EVERY, 2 * FULL_EVERY]
    assert len(read(str(out)).snapshots) == 2 * FULL_EVERY + 6


# -- fuzzing: whatever the bytes, a recording or a RecordingError --------------


def _reads_or_refuses(path: Path, done: set[tuple[int, ...]] | None = None) -> str:
    """"refused" (in one line), or "read"/"cut" once everything a reader of a
    recording does with it has worked. ``done``: what a recording of the same size
    was, to use it all only once for them (many prefixes of a file read the same)."""
    try:
        rec = read(str(path))
    except RecordingError as exc:
        assert "\n" not in str(exc)
        return "refused"
    outcome = "cut" if rec.truncated else "read"
    size = (len(rec.snapshots), len(rec.samples.times), len(rec.sources), rec.truncated)
    if done is not None and size in done:
        return outcome
    for format in FORMATS:
        render(rec, format)
    backend = ReplayBackend(rec)
    backend.activity_json()
    for index in range(len(rec.snapshots)):
        backend.snapshot_at_json(index)
    for file_id in rec.sources:
        backend.source_json(file_id)
    if done is not None:
        done.add(size)
    return outcome


def _fields(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths to every value nested in ``value`` (the first 3 items of each list)."""
    items = value.items() if isinstance(value, dict) else \
        enumerate(value[:3]) if isinstance(value, list) else ()
    for key, item in items:
        yield (*path, key)
        yield from _fields(item, (*path, key))


REPLACEMENTS = [None, True, 0, -1, 2**62, 1.5, -1e15, "", "\x1b[2J", "\udcff", [], [[1]], {},
                {"a": {}}]


def test_every_field_of_every_type_reads_or_is_refused(recorded: Path, tmp_path: Path
                                                       ) -> None:
    records = records_of(recorded)
    path = tmp_path / "typed.stetho"
    chance = random.Random(7)
    seen: dict[str, int] = {}
    for number, record in enumerate(records):
        paths = list(_fields(record))
        for where in chance.sample(paths, min(len(paths), 30)):
            for value in REPLACEMENTS:
                changed = copy.deepcopy(records)
                target = changed[number]
                for key in where[:-1]:
                    target = target[key]
                target[where[-1]] = value
                path.write_bytes(compressed(lines(changed)))
                outcome = _reads_or_refuses(path)
                seen[outcome] = seen.get(outcome, 0) + 1
    assert seen.get("refused", 0) > 100 and seen.get("read", 0) > 100, seen


def test_cut_at_every_offset_or_flipped_anywhere_reads_or_is_refused(
        recorded: Path, tmp_path: Path) -> None:
    data = recorded.read_bytes()
    path = tmp_path / "cut.stetho"
    seen: dict[str, int] = {}
    done: set[tuple[int, ...]] = set()
    for end in range(len(data) + 1):
        path.write_bytes(data[:end])
        outcome = _reads_or_refuses(path, done)
        seen[f"cut {outcome}"] = seen.get(f"cut {outcome}", 0) + 1
    chance = random.Random(11)
    offsets = range(len(MAGIC), len(data))
    for at in sorted(chance.sample(offsets, min(len(offsets), 400))):
        for junk in (data[at] ^ 0xFF, chance.randrange(256)):
            flipped = bytearray(data)
            flipped[at] = junk
            path.write_bytes(bytes(flipped))
            outcome = _reads_or_refuses(path)
            seen[f"flip {outcome}"] = seen.get(f"flip {outcome}", 0) + 1
    assert seen.get("cut cut", 0) > 10 and seen.get("cut refused", 0) > 10, seen
    assert seen.get("flip refused", 0) > 10, seen
