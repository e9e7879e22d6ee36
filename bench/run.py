"""The side-by-side benchmark on the running interpreter (`make bench` runs it per version).

    python bench/run.py [--runs N] [--columns a,b,...] [--out results.json]
    python bench/run.py --report results-3.11.json results-3.12.json ...

Every column is a fresh process running the same CPU-bound workload
(bench/workloads/cpu.py, ~2 s unmonitored on CPython 3.11):

    unmonitored          python bench/workloads/cpu.py
    stethoscope-sample   bench/harness.py: stethoscope.trace(mode="sample", ...)
    stethoscope-trace    bench/harness.py: stethoscope.trace(mode="trace", ...)
    heartrate            bench/harness.py: heartrate.trace(...)       (if installed)
    bare-callback        bench/harness.py: a per-line callback that only counts
                         (sys.monitoring on 3.12+, settrace before): the floor
                         for exact line counting
    viztracer            bench/harness.py: VizTracer().start()        (if installed)
    pyinstrument         bench/harness.py: Profiler().start()         (if installed)

First every column runs once on a small workload as a check (the stethoscope
columns also verify, inside the process, that the monitor ran in the requested
mode and saw the workload); then N rounds, each running every column once, in an
order that rotates from round to round, so drift in the machine's speed spreads
over all columns alike.

Measured per run: the wall time of the whole process from outside (the headline,
start-up and exit included), the workload's own time from inside (ELAPSED), and
the exit delay: from the workload's last line (END <unix time>) to the moment the
process had exited. Reported per column: median and min-max wall time, the ratio
of medians to unmonitored, the same ratio for the workload's own time, and the
exit delay minus unmonitored's.

A stethoscope column that fails (import error, wrong mode, no data, wrong result,
hang, timeout) fails the benchmark: exit status 1. A third-party column that fails
is shown as failed in the table.

Environment: BENCH_RUNS (default 5), BENCH_COLUMNS (comma-separated),
BENCH_TIMEOUT (seconds per process, default 600), BENCH_SCALE (workload size,
default 1.0).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOAD = os.path.join(HERE, "workloads", "cpu.py")
HARNESS = os.path.join(HERE, "harness.py")

COLUMNS = [
    "unmonitored",
    "stethoscope-sample",
    "stethoscope-trace",
    "heartrate",
    "bare-callback",
    "viztracer",
    "pyinstrument",
]
OURS = {"stethoscope-sample", "stethoscope-trace"}
THIRD_PARTY = {"heartrate": "heartrate", "viztracer": "viztracer", "pyinstrument": "pyinstrument"}
LABELS = {
    "unmonitored": "unmonitored",
    "stethoscope-sample": "stethoscope sample",
    "stethoscope-trace": "stethoscope trace",
    "heartrate": "heartrate",
    "bare-callback": "bare line callback",
    "viztracer": "viztracer",
    "pyinstrument": "pyinstrument",
}
CHECK_SCALE = 0.2
TIMES, DASH = "\u00d7", "\u2013"  # the table's "x" and "-", spelled out for ruff
EXIT_CODES = {97: "hung after the workload ended", 98: "in-process check failed"}


class RunFailed(Exception):
    pass


def log(text: str) -> None:
    print(text, flush=True)


def command(column: str) -> list[str]:
    if column == "unmonitored":
        return [sys.executable, WORKLOAD]
    return [sys.executable, HARNESS, column, WORKLOAD]


def run_once(column: str, scale: float, timeout: float, check: bool = False) -> dict[str, Any]:
    """Run one process; return its measurements or raise RunFailed."""
    env = dict(os.environ, BENCH_SCALE=repr(scale), BENCH_CHECK="1" if check else "0")
    cmd = command(column)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RunFailed(f"timed out after {timeout:.0f} s (killed)\n{tail(exc.stderr)}") from exc
    wall = time.perf_counter() - started
    exited = time.time()

    values: dict[str, str] = {}
    harness: list[str] = []
    for line in proc.stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key in ("RESULT", "ELAPSED", "END"):
            values[key] = rest.strip()
        elif key == "HARNESS":
            harness.append(rest.strip())
    if proc.returncode != 0:
        why = EXIT_CODES.get(proc.returncode, f"exit status {proc.returncode}")
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        raise RunFailed(f"{why}: {last}\n{tail(proc.stderr)}")
    missing = [k for k in ("RESULT", "ELAPSED", "END") if k not in values]
    if missing:
        raise RunFailed(f"the workload did not print {missing}\n{tail(proc.stdout + proc.stderr)}")
    return {
        "column": column,
        "wall": wall,
        "elapsed": float(values["ELAPSED"]),
        "exit_after_end": exited - float(values["END"]),
        "result": values["RESULT"],
        "harness": harness,
    }


def tail(text: str | bytes | None, lines: int = 15) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(("    " + line) for line in (text or "").rstrip().splitlines()[-lines:])


def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        uname = subprocess.run(
            ["uname", "-a"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        uname = " ".join(platform.uname())
    versions = {}
    for dist in ("stethoscope", "heartrate", "viztracer", "pyinstrument"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "uname": uname,
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "python_full": sys.version,
        "executable": sys.executable,
        "packages": versions,
        "git": git or None,
    }


def summarize(runs: list[dict[str, Any]], base: dict[str, Any] | None) -> dict[str, Any]:
    walls = [r["wall"] for r in runs]
    inside = [r["elapsed"] for r in runs]
    exits = [r["exit_after_end"] for r in runs]
    out: dict[str, Any] = {
        "n": len(runs),
        "wall_median": statistics.median(walls),
        "wall_min": min(walls),
        "wall_max": max(walls),
        "elapsed_median": statistics.median(inside),
        "elapsed_min": min(inside),
        "elapsed_max": max(inside),
        "exit_after_end_median": statistics.median(exits),
    }
    if base:
        out["ratio"] = out["wall_median"] / base["wall_median"]
        out["elapsed_ratio"] = out["elapsed_median"] / base["elapsed_median"]
        out["exit_delay"] = out["exit_after_end_median"] - base["exit_after_end_median"]
    return out


def benchmark(columns: list[str], runs: int, timeout: float, scale: float) -> dict[str, Any]:
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    notes: dict[str, list[str]] = {}

    for column in list(columns):
        module = THIRD_PARTY.get(column)
        if module and importlib.util.find_spec(module) is None:
            skipped[column] = f"{module} is not installed in this environment"
            columns.remove(column)
            log(f"SKIPPED: {column}: {skipped[column]}")

    def fail(column: str, message: str) -> None:
        failed[column] = message
        loud = "FAILED" if column in OURS or column == "unmonitored" else "failed"
        log(f"{loud}: {column}: {message}")

    # Check round: small workload, every column once, results must agree.
    log(f"check round (workload scale {CHECK_SCALE})")
    reference = run_once("unmonitored", CHECK_SCALE, timeout)
    for column in columns[1:]:
        try:
            rec = run_once(column, CHECK_SCALE, timeout, check=True)
        except RunFailed as exc:
            fail(column, str(exc))
            continue
        if rec["result"] != reference["result"]:
            fail(column, f"wrong workload result {rec['result']} != {reference['result']}")
            continue
        notes[column] = [h for h in rec["harness"] if h.startswith(("NOTE", "VERSION", "CHECK"))]
        log(f"  {column:20s} ok  {'; '.join(notes[column])}")

    records: list[dict[str, Any]] = []
    expected: str | None = None
    log(f"{runs} interleaved rounds (workload scale {scale})")
    loads: list[float] = []
    for i in range(runs):
        loads.append(os.getloadavg()[0])
        active = [c for c in columns if c not in failed]
        k = i % len(active)
        for column in active[k:] + active[:k]:
            if column in failed:
                continue
            try:
                rec = run_once(column, scale, timeout)
            except RunFailed as exc:
                fail(column, f"round {i + 1}: {exc}")
                if column == "unmonitored":
                    raise SystemExit("the unmonitored run failed; no baseline") from None
                continue
            expected = expected or rec["result"]
            if rec["result"] != expected:
                fail(column, f"round {i + 1}: wrong workload result {rec['result']} != {expected}")
                continue
            rec["round"] = i + 1
            records.append(rec)
            log(
                f"  [{i + 1}/{runs}] {column:20s} {rec['wall']:7.3f} s   "
                f"work {rec['elapsed']:7.3f} s   exit {rec['exit_after_end'] * 1000:6.1f} ms"
            )

    summary: dict[str, Any] = {}
    base_runs = [r for r in records if r["column"] == "unmonitored"]
    base = summarize(base_runs, None) if base_runs else None
    for column in columns:
        mine = [r for r in records if r["column"] == column]
        if column not in failed and mine:
            summary[column] = summarize(mine, base)
    loads.append(os.getloadavg()[0])
    busy = max(loads) > (os.cpu_count() or 1)
    if busy:
        log(
            f"WARNING: the machine was busy (1-min load average up to {max(loads):.1f} on "
            f"{os.cpu_count()} CPUs): other processes competed for the CPU; results are noisy"
        )
    return {
        "machine": machine_info(),
        "loadavg_per_round": loads,
        "busy": busy,
        "workload": os.path.relpath(WORKLOAD, ROOT),
        "scale": scale,
        "runs": runs,
        "columns": columns,
        "summary": summary,
        "failed": failed,
        "skipped": skipped,
        "notes": notes,
        "records": records,
    }


# --- the table ----------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        f"| Python | monitor | median s | min{DASH}max s | ratio | work ratio | exit delay ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    notes: dict[str, list[str]] = {}  # by column, in column order
    for res in results:
        py = res["machine"]["python"]
        for column in res["columns"]:
            label = LABELS.get(column, column)
            if column in res["failed"]:
                reason = res["failed"][column].splitlines()[0]
                rows.append(f"| {py} | {label} | **FAILED**: {reason} | | | | |")
                continue
            s = res["summary"].get(column)
            if s is None:
                continue
            if column == "unmonitored":
                ratio = work = f"1.00{TIMES}"
                delay = f"({s['exit_after_end_median'] * 1000:.0f} base)"
            else:
                ratio = f"{s['ratio']:.2f}{TIMES}"
                work = f"{s['elapsed_ratio']:.2f}{TIMES}"
                delay = f"{s['exit_delay'] * 1000:+.0f}"
            rows.append(
                f"| {py} | {label} | {s['wall_median']:.2f} | "
                f"{s['wall_min']:.2f}{DASH}{s['wall_max']:.2f} | {ratio} | {work} | {delay} |"
            )
        for column, why in res["skipped"].items():
            rows.append(f"| {py} | {LABELS.get(column, column)} | skipped: {why} | | | | |")
        for column, column_notes in res["notes"].items():
            mine = notes.setdefault(column, [])
            for note in column_notes:
                if note.startswith("NOTE ") and note[5:] not in mine:
                    mine.append(note[5:])
    first = results[0]
    m = first["machine"]
    runs = {r["runs"] for r in results}
    lines = [
        *rows,
        "",
        f"Median of {'/'.join(map(str, sorted(runs)))} interleaved runs of "
        f"`{first['workload']}` per cell, each a fresh process; wall time from outside "
        f"(start-up and exit included). *ratio*: median wall time / unmonitored; "
        f"*work ratio*: the same for the workload's own time measured inside the process; "
        f"*exit delay*: time from the workload's last line to process exit, minus "
        f"unmonitored's. Machine: {m['cpu']}, {m['nproc']} CPUs, {m['uname'].split()[2]}.",
    ]
    busy = [r["machine"]["python"] for r in results if r.get("busy")]
    if busy:
        lines += [
            "",
            f"**Warning**: the machine was busy during the runs on {', '.join(busy)} "
            f"(load average above the number of CPUs); those numbers are noisy.",
        ]
    ordered = [n for c in COLUMNS for n in notes.get(c, [])]
    if ordered:
        lines += ["", *[f"- {n}" for n in ordered]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS") or "5"))
    parser.add_argument("--columns", default=os.environ.get("BENCH_COLUMNS") or ",".join(COLUMNS))
    parser.add_argument(
        "--timeout", type=float, default=float(os.environ.get("BENCH_TIMEOUT") or "600")
    )
    parser.add_argument(
        "--scale", type=float, default=float(os.environ.get("BENCH_SCALE") or "1.0")
    )
    parser.add_argument("--out", help="write the raw results here (JSON)")
    parser.add_argument(
        "--report", nargs="+", metavar="JSON", help="print the table of earlier results and exit"
    )
    args = parser.parse_args()

    if args.report:
        results = []
        for path in args.report:
            with open(path) as f:
                results.append(json.load(f))
        print(table(results))
        return 0

    columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        parser.error(f"unknown columns {unknown}; choose from {COLUMNS}")
    columns = ["unmonitored"] + [c for c in columns if c != "unmonitored"]
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    log(f"CPython {platform.python_version()} ({sys.executable}): {', '.join(columns)}")
    result = benchmark(columns, args.runs, args.timeout, args.scale)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        log(f"raw results: {os.path.relpath(args.out, ROOT)}")
    log("")
    log(table([result]))
    ours_failed = sorted(set(result["failed"]) & (OURS | {"unmonitored"}))
    if ours_failed:
        log(f"\nFAILED: {', '.join(ours_failed)} (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
