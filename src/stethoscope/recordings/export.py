"""Exports of a recording: flame charts for other tools, a summary for CI logs.

* ``to_speedscope``: speedscope's own file format (https://www.speedscope.app), one
  sampled profile per thread of the main process, from the sampler's stacks.
* ``to_chrome``: the Chrome Trace Event Format (chrome://tracing, Perfetto,
  speedscope): the same stacks as nested slices per thread, and counters per
  process (CPU %, threads) from the snapshots.
* ``to_summary`` / ``to_text``: what a CI log wants to keep: the hottest lines with
  their source, every thread and process seen, notes, and what held the exit.

Only the main process's sampler records stacks, so the flame charts show its threads;
the counters and the summary cover the child processes too. Totals come from the
last snapshot, which holds the whole run's figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..model.heat import HEAT_KINDS
from ..model.snapshot import LINE_FIELDS, ProcessInfo, Snapshot, ThreadInfo
from ..model.stacks import StackFrame as Frame
from .file import Recording, Samples

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
SUMMARY_VERSION = 1
HOT_LINES = 15  # lines in the summary's hottest-lines table
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


# -- summary -------------------------------------------------------------------


def _source_line(rec: Recording, file_id: str, line: int) -> str | None:
    found = rec.sources.get(file_id)
    if found is None:
        return None
    lines = found[1].splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else None


def _hot_lines(rec: Recording, last: Snapshot) -> list[dict[str, Any]]:
    field = HEAT_KINDS[last.heat].total
    index = LINE_FIELDS.index(field)
    total = sum(f.sum(field) for f in last.files)
    rows = [(f, row) for f in last.files for row in f.lines if row[index] > 0]
    rows.sort(key=lambda fr: (fr[1][index], fr[1][LINE_FIELDS.index("incl_total")]),
              reverse=True)
    out = []
    for f, row in rows[:HOT_LINES]:
        values = dict(zip(LINE_FIELDS, row, strict=True))
        share = None if last.heat == "ran" else round(100.0 * row[index] / total, 1)
        out.append({"file": f.id, "path": f.path, "name": f.name, "line": row[0],
                    "source": _source_line(rec, f.id, row[0]), "share": share,
                    **{k: values[k] for k in ("hits_total", "self_total", "incl_total",
                                              "ran_total")}})
    return out


@dataclass
class _ThreadRun:
    """One thread over the recording: its latest description and its CPU readings."""

    info: ThreadInfo
    pid: int
    cpu: list[float]


@dataclass
class _Seen:
    """What the whole snapshot stream showed, gathered in one pass (a long recording
    rebuilds each snapshot from differences, so it is walked only once).

    ``threads``: every thread any snapshot listed (ended ones drop out after 30 s, so
    the last snapshot alone misses short-lived ones). ``processes``: likewise (only
    the newest 100 ended children stay listed). ``held``: the threads that kept the
    process alive after its main thread finished, with how long (as far as the
    snapshots saw) and what they were doing then.
    """

    threads: dict[tuple[int, int, str], _ThreadRun]
    processes: dict[int, ProcessInfo]
    held: dict[int, dict[str, Any]]


def _scan(rec: Recording) -> _Seen:
    seen = _Seen({}, {}, {})
    for snap in rec.snapshots:
        for t in snap.threads:
            pid = t.pid if t.pid is not None else snap.pid
            run = seen.threads.setdefault((pid, t.ident, t.name), _ThreadRun(t, pid, []))
            run.info = t
            if t.alive and t.cpu is not None:
                run.cpu.append(t.cpu)
            if snap.exit is not None and t.ident in snap.exit.blocking and pid == snap.pid:
                seen.held[t.ident] = {
                    "ident": t.ident, "name": t.name, "pid": pid,
                    "for_seconds": round(snap.time - snap.exit.main_finished, 2),
                    "state": t.state, "kind": t.kind, "hints": list(t.hints),
                    "stack": [f"{f.path}:{f.line} in {f.func}" for f in t.stack[:5]]}
        for info in snap.processes:
            seen.processes[info.pid] = info
    return seen


def to_summary(rec: Recording) -> dict[str, Any]:
    """The recording's summary as JSON-ready data (the content of ``to_text``)."""
    last = rec.snapshots[-1]
    samples = rec.samples
    seen = _scan(rec)
    threads = sorted(seen.threads.values(), key=lambda r: (
        r.pid != last.pid, not r.info.main, r.pid, r.info.started or 0.0))
    return {
        "summary": SUMMARY_VERSION,
        "recording": {"path": rec.path, "format": rec.version, "truncated": rec.truncated,
                      "snapshots": len(rec.snapshots), "samples": len(samples.times),
                      "dropped_samples": samples.dropped, "sample_interval": samples.interval},
        "program": {"pid": last.pid, "argv": list(rec.header.get("argv") or last.argv),
                    "python": last.python, "stethoscope": rec.header.get("stethoscope"),
                    "mode": last.mode, "requested_mode": last.requested_mode,
                    "started": last.started, "ended": last.time,
                    "duration": round(last.time - last.started, 3), "state": last.state},
        "heat": last.heat,
        "hot_lines": _hot_lines(rec, last),
        "threads": [{"pid": r.pid, "ident": r.info.ident, "name": r.info.name,
                     "daemon": r.info.daemon, "main": r.info.main, "alive": r.info.alive,
                     "state": r.info.state, "kind": r.info.kind,
                     "cpu_mean": round(sum(r.cpu) / len(r.cpu), 1) if r.cpu else None,
                     "cpu_max": max(r.cpu) if r.cpu else None,
                     "created_by": r.info.created_by}
                    for r in threads],
        "processes": [{"pid": p.pid, "ppid": p.ppid, "method": p.method, "name": p.name,
                       "argv": list(p.argv), "state": p.state, "exit_code": p.exit_code,
                       "exit_how": p.exit_how, "cpu_seconds": p.cpu_seconds}
                      for p in seen.processes.values()],
        "notes": list(last.notes),
        "exit": None if last.exit is None else {
            "main_finished": last.exit.main_finished,
            "after_seconds": round(last.exit.main_finished - last.started, 3),
            "blocking": list(last.exit.blocking),
            "held_exit": sorted(seen.held.values(), key=lambda h: -h["for_seconds"]),
        },
    }


def _heat_text(heat: str, line: dict[str, Any], interval: float) -> str:
    if heat == "time":
        seconds = line["self_total"] * interval
        return f"{line['share']:5.1f}%  {seconds:7.2f} s"
    if heat == "hits":
        return f"{line['share']:5.1f}%  {line['hits_total']:>9} runs"
    return f"ran in {line['ran_total']} windows"


def _exit_text(state: str, code: int | None, how: str) -> str:
    if state == "running":
        return "running"
    if state == "killed":
        return f"killed (signal {-code})" if code is not None and code < 0 else "killed"
    parts = ["exited"] + ([f"with code {code}"] if code is not None else []) \
        + ([f"({how})"] if how else [])
    return " ".join(parts)


def to_text(rec: Recording) -> str:
    """A plain-text summary of the recording, for a CI log."""
    s = to_summary(rec)
    prog, meta = s["program"], s["recording"]
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(prog["started"]))
    out = [
        f"stethoscope recording {meta['path']}",
        f"program: {' '.join(prog['argv'])}",
        f"  pid {prog['pid']}, Python {prog['python']}, mode {prog['mode']} "
        f"(asked: {prog['requested_mode']}), recorded by stethoscope {prog['stethoscope']}",
        f"  started {when}, {prog['duration']:.1f} s recorded, {meta['snapshots']} snapshots, "
        f"{meta['samples']} stack samples of the main process",
    ]
    if meta["truncated"]:
        out.append("  the recording was cut off (the program was killed): its last moments "
                   "are missing")
    if meta["dropped_samples"]:
        out.append(f"  {meta['dropped_samples']} samples were dropped (the recorder fell "
                   f"behind)")
    heat_name = HEAT_KINDS[s["heat"]].title
    out += ["", f"hottest lines, whole run, by {heat_name}:"]
    if not s["hot_lines"]:
        out.append("  (none: no monitored line was seen)")
    for line in s["hot_lines"]:
        out.append(f"  {_heat_text(s['heat'], line, meta['sample_interval'])}  "
                   f"{line['name']}:{line['line']}  {line['source'] or ''}".rstrip())
        out.append(f"  {'':>18}{line['path']}")
    out += ["", f"threads ({len(s['threads'])} seen):"]
    for t in s["threads"]:
        flags = ", ".join(["daemon" if t["daemon"] else "non-daemon"]
                          + (["main"] if t["main"] else []) + ([] if t["alive"] else ["ended"]))
        cpu = "CPU n/a" if t["cpu_mean"] is None else \
            f"CPU mean {t['cpu_mean']:.0f}%, max {t['cpu_max']:.0f}%"
        out.append(f"  {t['name']!r} (pid {t['pid']}, {flags}): {t['state'] or t['kind']}; "
                   f"{cpu}")
    out += ["", f"processes ({len(s['processes'])}):"]
    for p in s["processes"]:
        label = f"{p['name']} ({p['method']})" if p["name"] else p["method"]
        out.append(f"  {p['pid']} {label}: "
                   f"{_exit_text(p['state'], p['exit_code'], p['exit_how'])}, "
                   f"CPU {p['cpu_seconds']:.2f} s; {' '.join(p['argv'])}")
    if s["notes"]:
        out += ["", "notes:"] + [f"  - {note}" for note in s["notes"]]
    out += [""]
    exit_info = s["exit"]
    if exit_info is None:
        out.append("exit: the main thread had not finished when the recording ended")
    else:
        out.append(f"exit: the main thread finished {exit_info['after_seconds']:.1f} s "
                   f"after start")
        for held in exit_info["held_exit"]:
            out.append(f"  thread {held['name']!r} (ident {held['ident']}) held the exit for "
                       f"{held['for_seconds']:.1f} s: {held['state']}")
            out += [f"      at {frame}" for frame in held["stack"]]
            out += [f"      hint: {hint}" for hint in held["hints"]]
        if not exit_info["held_exit"]:
            out.append("  no non-daemon thread held the exit")
    return "\n".join(out) + "\n"


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
