"""A recording's summary, for a CI log: ``to_summary`` (JSON-ready) and ``to_text``.

The hottest lines with their source, every thread and process seen, the notes,
and what held the exit. Totals come from the last snapshot, which holds the whole
run's figures; threads and processes are gathered over every snapshot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..model.heat import HEAT_KINDS
from ..model.snapshot import LINE_FIELDS, ProcessInfo, Snapshot, ThreadInfo
from .inflate import KILLED
from .reader import Recording

SUMMARY_VERSION = 1
HOT_LINES = 15  # lines in the summary's hottest-lines table


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
                      "cut_reason": rec.cut_reason or None,
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
        missing = "its last moments are missing" if meta["cut_reason"] == KILLED else \
            "what follows is not read"
        out.append(f"  the recording was cut off ({meta['cut_reason']}): {missing}")
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
