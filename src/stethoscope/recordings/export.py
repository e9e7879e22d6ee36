"""Exports of a recording for other tools, and ``render`` in any of FORMATS.

* ``to_speedscope``: speedscope's own file format (https://www.speedscope.app), one
  sampled profile per thread of the main process, from the sampler's stacks.
* ``to_chrome``: the Chrome Trace Event Format (chrome://tracing, Perfetto,
  speedscope): the same stacks as nested slices per thread, and counters per
  process (CPU %, threads) from the snapshots.
* ``text`` / ``json``: the summary for CI logs (summary.py).

Only the main process's sampler records stacks, so the flame charts show its threads;
the counters cover the child processes too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..model.snapshot import ProcessInfo
from ..model.stacks import StackFrame as Frame
from .reader import Recording, Samples
from .summary import to_summary, to_text

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
# A thread's consecutive samples further apart than this many sample intervals do
# not continue one slice: the thread was not sampled in between (it had not started,
# or the sampler was starved), and a slice across the gap would claim time unseen.
GAP_INTERVALS = 10


# -- stacks --------------------------------------------------------------------


@dataclass(frozen=True)
class _Thread:
    """One sampled thread: what its samples are called, and which they are."""

    ident: int
    name: str  # as shown: unique among the recording's threads
    samples: list[int]  # indexes into Samples, in time order


def _threads(samples: Samples) -> list[_Thread]:
    """The sampled threads, MainThread first, then by first sample; names made
    unique with the ident where two threads share one."""
    order: dict[int, list[int]] = {}
    for index, ident in enumerate(samples.threads):
        order.setdefault(ident, []).append(index)
    names = {ident: samples.thread_names.get(ident, f"thread {ident}") for ident in order}
    taken: dict[str, int] = {}
    for name in names.values():
        taken[name] = taken.get(name, 0) + 1
    threads = [_Thread(ident, names[ident] if taken[names[ident]] == 1
                       else f"{names[ident]} [{ident}]", indexes)
               for ident, indexes in order.items()]
    return sorted(threads, key=lambda t: (t.name != "MainThread", samples.times[t.samples[0]]))


def _frame_name(frame: Frame) -> str:
    """How a frame is labelled in a flame chart: the function and where in it."""
    path, line, func = frame
    return f"{func} ({os.path.basename(path)}:{line})"


def _program(rec: Recording) -> str:
    argv = rec.header.get("argv") or []
    return " ".join(str(a) for a in argv) or f"pid {rec.header['pid']}"


def to_speedscope(rec: Recording) -> dict[str, Any]:
    """The recording as a speedscope file: one sampled profile per thread, weights in
    seconds (each sample stands for one sampling interval of wall time)."""
    samples = rec.samples
    frames: list[dict[str, Any]] = []
    index_of: dict[Frame, int] = {}
    # The recording may number a frame twice (its tables start over on long runs).
    shared = []
    for frame in samples.frames:
        if frame not in index_of:
            index_of[frame] = len(frames)
            frames.append({"name": _frame_name(frame), "file": frame[0], "line": frame[1]})
        shared.append(index_of[frame])
    start = samples.times[0] if samples.times else 0.0
    profiles = []
    for thread in _threads(samples):
        stacks = [[shared[f] for f in samples.stacks[samples.stack_ids[i]]]
                  for i in thread.samples]
        first = samples.times[thread.samples[0]] - start
        profiles.append({
            "type": "sampled",
            "name": f"{thread.name} (pid {samples.pid})",
            "unit": "seconds",
            "startValue": first,
            "endValue": first + len(stacks) * samples.interval,
            "samples": stacks,
            "weights": [samples.interval] * len(stacks),
        })
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "name": f"{_program(rec)} (pid {samples.pid})",
        "exporter": f"stethoscope {__version__}",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": profiles,
    }


@dataclass(frozen=True)
class _Slice:
    frame: Frame
    depth: int  # 0: the outermost frame
    path: int  # the call path's number (see _slices)
    repeat: int  # how often the same frame is open above this one (recursion)
    begin: int  # µs
    end: int  # µs


def _slices(samples: Samples, thread: _Thread, start: float) -> Iterable[_Slice]:
    """Every slice of one thread: consecutive samples that share the frames from the
    outermost one down to a depth share one slice at each of those depths, so slices
    nest as the stacks did.

    Each slice also carries the number of its call path (its frame and all the frames
    above it) and its recursion count: slices that meet (one ends where another
    begins, or both end at once) then never look alike. Importers that pair a slice's
    begin and end by name and arguments (speedscope's) would otherwise mix them up.
    """
    def us(t: float) -> int:
        return round((t - start) * 1_000_000)

    paths: dict[tuple[int, Frame], int] = {}  # (parent's path, frame) -> path
    limit = GAP_INTERVALS * samples.interval
    open_: list[tuple[Frame, int, int]] = []  # (frame, path, start µs), outermost first
    counts: dict[Frame, int] = {}  # open slices by frame

    def close(end: int) -> _Slice:
        frame, path, began = open_.pop()
        counts[frame] -= 1
        return _Slice(frame, len(open_), path, counts[frame], began, end)

    last = None
    for i in thread.samples:
        when = samples.times[i]
        stack = [samples.frames[f] for f in samples.stacks[samples.stack_ids[i]]]
        if last is not None and when - last > limit:
            end = us(last + samples.interval)
            while open_:
                yield close(end)
        keep = 0
        while keep < min(len(open_), len(stack)) and open_[keep][0] == stack[keep]:
            keep += 1
        now = us(when)
        while len(open_) > keep:
            yield close(now)
        for frame in stack[keep:]:
            parent = open_[-1][1] if open_ else -1
            open_.append((frame, paths.setdefault((parent, frame), len(paths)), now))
            counts[frame] = counts.get(frame, 0) + 1
        last = when
    if last is not None:
        end = us(last + samples.interval)
        while open_:
            yield close(end)


def _process_label(info: ProcessInfo) -> str:
    """A process as trace viewers list it (they add the pid themselves)."""
    command = " ".join(info.argv)
    if info.method == "main":
        return command or "main"
    what = f"{info.name} ({info.method})" if info.name else info.method
    return f"{what}: {command}" if command else what


def to_chrome(rec: Recording) -> dict[str, Any]:
    """The recording in the Trace Event Format: per thread of the main process, nested
    ``X`` slices from the stacks; per process, ``C`` counters for CPU % and threads.

    Metadata comes first, then the slices ordered by start, longest first, outermost
    first (so a reader that opens slices in file order nests equal ones right), then
    the counters by time. Times are µs from the recording's first sample or snapshot.
    """
    samples = rec.samples
    start = min([*samples.times[:1], *rec.times[:1]], default=0.0)
    counters: list[dict[str, Any]] = []
    processes: dict[int, ProcessInfo] = {}
    native: dict[int, int] = {}  # thread ident -> native id, for the main process
    for snap in rec.snapshots:
        ts = round((snap.time - start) * 1_000_000)
        alive: dict[int, list[int]] = {}
        for t in snap.threads:
            if t.pid == samples.pid and t.native_id is not None:
                native[t.ident] = t.native_id
            if t.alive:
                counts = alive.setdefault(t.pid if t.pid is not None else snap.pid, [0, 0])
                counts[0 if t.daemon else 1] += 1
        for info in snap.processes:
            processes[info.pid] = info
            if info.cpu is not None:
                counters.append({"ph": "C", "name": "CPU %", "pid": info.pid, "ts": ts,
                                 "args": {"cpu": info.cpu}})
            daemon, non_daemon = alive.get(info.pid, [0, 0])
            counters.append({"ph": "C", "name": "threads", "pid": info.pid, "ts": ts,
                             "args": {"daemon": daemon, "non-daemon": non_daemon}})
    metadata: list[dict[str, Any]] = []
    for pid in sorted({samples.pid, *processes}):
        known = processes.get(pid)
        label = _process_label(known) if known is not None else _program(rec)
        metadata.append({"ph": "M", "name": "process_name", "pid": pid,
                         "args": {"name": label}})
    slices: list[tuple[int, int, int, dict[str, Any]]] = []  # (start, -length, depth, event)
    for thread in _threads(samples):
        tid = native.get(thread.ident, thread.ident)
        metadata.append({"ph": "M", "name": "thread_name", "pid": samples.pid, "tid": tid,
                         "args": {"name": thread.name}})
        for piece in _slices(samples, thread, start):
            slices.append((piece.begin, piece.begin - piece.end, piece.depth, {
                "ph": "X", "name": _frame_name(piece.frame) + (
                    f" [recursion {piece.repeat + 1}]" if piece.repeat else ""),
                "cat": "python",
                "ts": piece.begin, "dur": piece.end - piece.begin,
                "pid": samples.pid, "tid": tid,
                "args": {"file": piece.frame[0], "line": piece.frame[1],
                         "call_path": piece.path}}))
    slices.sort(key=lambda s: s[:3])
    counters.sort(key=lambda e: int(e["ts"]))
    return {"traceEvents": [*metadata, *(s[3] for s in slices), *counters],
            "displayTimeUnit": "ms",
            "otherData": {"exporter": f"stethoscope {__version__}", "program": _program(rec),
                          "recording": rec.path}}


FORMATS = ("speedscope", "chrome", "text", "json")
SUFFIXES = {"speedscope": ".speedscope.json", "chrome": ".trace.json"}


def render(rec: Recording, format: str) -> str:
    """The recording in one of FORMATS, as text (JSON for all but ``text``)."""
    import json

    if format == "text":
        return to_text(rec)
    if format == "json":
        return json.dumps(to_summary(rec), indent=2) + "\n"
    if format == "speedscope":
        return json.dumps(to_speedscope(rec), separators=(",", ":"))
    if format == "chrome":
        return json.dumps(to_chrome(rec), separators=(",", ":"))
    raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
