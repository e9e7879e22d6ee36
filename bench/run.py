"""The side-by-side benchmark on the running interpreter (`make bench` runs it per version).

    python bench/run.py [--runs N] [--rows a,b] [--columns a,b,...] [--out results.json]
    python bench/run.py --report results-3.11.json results-3.12.json ...

Rows are workloads (bench/workloads: cpu.py, calls.py, threads.py and
thirdparty.py, which runs Pygments), columns are monitors (bench/matrix.py):

    unmonitored          python WORKLOAD.py
    stethoscope-sample   harness: stethoscope.trace(mode="sample", sample_hz=100, ...)
    stethoscope-lines    harness: stethoscope.trace(mode="lines", ...); n/a with the
                         reason when this stethoscope refuses the mode
    stethoscope-trace    harness: stethoscope.trace(mode="trace", ...)
    bare-callback        harness: a per-line callback that only counts (sys.monitoring
                         on 3.12+, settrace before): the floor for exact line counting
    heartrate            harness: heartrate.trace(...)
    viztracer            harness: VizTracer(include_files=...).start()
    pyinstrument         harness: Profiler(interval=0.001).start()
    py-spy               py-spy record --rate 100 --format raw -o TMP -- python WORKLOAD.py

1. A check round on a small workload: every cell once; the stethoscope columns
   verify inside the process that the monitor ran in the requested mode and saw
   the workload; every cell must print the row's result. A column that cannot run
   here (lines before it exists, py-spy without ptrace) becomes n/a with its reason.
2. N timing rounds; each runs every cell once, the columns in an order that rotates
   from round to round, so drift in the machine's speed spreads over all columns.
3. The browser pass: each stethoscope cell once more, at full scale, with headless
   chromium showing the page (bench/browser.py); only stop()'s latency is kept.

Measured per run (bench/measure.py): wall time from outside, process CPU time and
peak RSS (wait4), exit delay (workload's last line to exit), and for stethoscope
stop()'s latency and the sampler's achieved rate. bench/report.py makes the tables.

A stethoscope column that fails (import error, wrong mode, no data, wrong result,
hang, timeout) fails the benchmark: exit status 1. A third-party column that fails
is shown as failed in the table.

Environment: BENCH_RUNS (default 5), BENCH_ROWS, BENCH_COLUMNS (comma-separated),
BENCH_TIMEOUT (seconds per process, default 600), BENCH_SCALE (multiplies every
row's own scale, default 1.0), BENCH_BROWSER (0 skips the browser pass).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

from matrix import COLUMNS, OURS, ROOT, ROW_NAMES, ROWS, Row, command, missing
from measure import NotAvailable, RunFailed, run_once
from report import SCHEMA, summarize, table

CHECK_SCALE = 0.2


def log(text: str) -> None:
    print(text, flush=True)


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
    uname = " ".join(platform.uname())
    versions = {}
    for dist in ("stethoscope", "heartrate", "viztracer", "pyinstrument", "py-spy",
                 "pygments", "playwright"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                         text=True, cwd=ROOT, check=False).stdout.strip()
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


def src_fingerprint() -> str:
    """A digest of stethoscope's installed sources (editable: src/), to tell whether
    they changed while the benchmark ran (the rounds would then mix two versions)."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("stethoscope")
    if spec is None or not spec.submodule_search_locations:
        return "not installed"
    digest = hashlib.sha256()
    for folder in spec.submodule_search_locations:
        for dirpath, dirnames, filenames in sorted(os.walk(folder)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    digest.update(path.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


class Bench:
    """One interpreter's run: the state shared by the check, timing and browser passes."""

    def __init__(self, rows: list[Row], columns: list[str], timeout: float,
                 scale: float) -> None:
        self.rows = rows
        self.columns = columns
        self.timeout = timeout
        self.scale = scale
        self.failed: dict[str, dict[str, str]] = {r.name: {} for r in rows}
        self.na: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.notes: dict[str, list[str]] = {}
        self.expected: dict[str, str] = {}
        self.records: list[dict[str, Any]] = []
        self.filters = {r.name: os.pathsep.join(r.filter_dirs()) for r in rows}

    def env(self, row: Row, scale: float, check: bool) -> dict[str, str]:
        env = dict(os.environ, BENCH_SCALE=repr(row.scale * scale),
                   BENCH_CHECK="1" if check else "0", BENCH_FILTER=self.filters[row.name])
        env.pop("BENCH_BROWSER_WAIT", None)
        return env

    def run(self, row: Row, column: str, scale: float, check: bool = False) -> dict[str, Any]:
        return run_once(command(column, row), self.env(row, scale, check), self.timeout,
                        ROOT, na_ok=column == "py-spy" and check)

    def fail(self, row: Row, column: str, message: str) -> None:
        self.failed[row.name][column] = message
        loud = "FAILED" if column in OURS or column == "unmonitored" else "failed"
        log(f"{loud}: {row.name} / {column}: {message}")

    def active(self, row: Row) -> list[str]:
        return [c for c in self.columns if c not in self.na and c not in self.skipped
                and c not in self.failed[row.name]]

    def check_round(self) -> None:
        for column in self.columns:
            why = missing(column)
            if why:
                self.skipped[column] = why
                log(f"SKIPPED: {column}: {why}")
        log(f"check round (row scale x {CHECK_SCALE})")
        for row in self.rows:
            reference = self.run(row, "unmonitored", CHECK_SCALE)["result"]
            for column in self.active(row)[1:]:
                try:
                    rec = self.run(row, column, CHECK_SCALE, check=True)
                except NotAvailable as exc:
                    self.na[column] = str(exc)
                    log(f"  {row.name:9s} {column:20s} n/a: {exc}")
                    continue
                except RunFailed as exc:
                    self.fail(row, column, str(exc))
                    continue
                if rec["result"] != reference:
                    self.fail(row, column, f"wrong workload result {rec['result']} != {reference}")
                    continue
                mine = self.notes.setdefault(column, [])
                mine += [h for h in rec["harness"]
                         if h.startswith(("NOTE", "VERSION")) and h not in mine]
                checks = [h for h in rec["harness"] if h.startswith("CHECK")]
                log(f"  {row.name:9s} {column:20s} ok  {'; '.join(checks)}")

    def timing_rounds(self, runs: int) -> list[float]:
        loads: list[float] = []
        log(f"{runs} interleaved rounds (row scale x {self.scale})")
        for i in range(runs):
            loads.append(os.getloadavg()[0])
            for row in self.rows:
                active = self.active(row)
                k = i % len(active)
                for column in active[k:] + active[:k]:
                    self.timed(row, column, i + 1, runs)
        loads.append(os.getloadavg()[0])
        return loads

    def timed(self, row: Row, column: str, round_: int, runs: int) -> None:
        try:
            rec = self.run(row, column, self.scale)
        except (RunFailed, NotAvailable) as exc:
            self.fail(row, column, f"round {round_}: {exc}")
            if column == "unmonitored":
                raise SystemExit("the unmonitored run failed; no baseline") from None
            return
        expected = self.expected.setdefault(row.name, rec["result"])
        if rec["result"] != expected:
            self.fail(row, column, f"round {round_}: wrong result {rec['result']} != {expected}")
            return
        rec.update(row=row.name, column=column, round=round_)
        self.records.append(rec)
        extra = f"   stop {rec['stop_ms']:5.1f} ms" if rec["stop_ms"] is not None else ""
        log(f"  [{round_}/{runs}] {row.name:9s} {column:20s} {rec['wall']:7.3f} s   "
            f"cpu {rec['cpu']:7.3f} s   rss {rec['maxrss_mib']:5.0f} MiB   "
            f"exit {rec['exit_after_end'] * 1000:6.1f} ms{extra}")

    def browser_pass(self) -> tuple[dict[str, dict[str, Any]], str | None]:
        ours = [c for c in self.columns if c in OURS]
        if not ours or os.environ.get("BENCH_BROWSER", "1") == "0":
            return {}, "BENCH_BROWSER=0" if ours else None
        from browser import Browser

        browser = Browser()
        if browser.unavailable:
            log(f"browser pass skipped: {browser.unavailable}")
            return {}, browser.unavailable
        log("browser pass: stop() with chromium showing the page")
        out: dict[str, dict[str, Any]] = {}
        try:
            for row in self.rows:
                for column in [c for c in self.active(row) if c in OURS]:
                    cmd = command(column, row)
                    got = browser.stop_latency(cmd, self.env(row, self.scale, False),
                                               self.timeout, ROOT)
                    out.setdefault(row.name, {})[column] = got
                    shown = (f"stop() {got['stop_ms']:.1f} ms, page then "
                             f"{got['page_state_after']!r}" if "stop_ms" in got
                             else f"error: {got['error']}")
                    log(f"  {row.name:9s} {column:20s} {shown}")
        finally:
            browser.close()
        return out, None

    def summary(self) -> dict[str, dict[str, Any]]:
        cells: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            base = [r for r in self.records if r["row"] == row.name
                    and r["column"] == "unmonitored"]
            for column in self.columns:
                mine = [r for r in self.records if r["row"] == row.name
                        and r["column"] == column]
                if mine and column not in self.failed[row.name]:
                    cells.setdefault(row.name, {})[column] = summarize(mine, base)
        return cells


def benchmark(rows: list[Row], columns: list[str], runs: int, timeout: float,
              scale: float) -> dict[str, Any]:
    started = time.monotonic()
    machine = machine_info()
    source = src_fingerprint()
    bench = Bench(rows, columns, timeout, scale)
    bench.check_round()
    loads = bench.timing_rounds(runs)
    browser, browser_unavailable = bench.browser_pass()
    changed = src_fingerprint() != source
    if changed:
        log("WARNING: stethoscope's sources changed during the run: the rounds mix versions")
    busy = max(loads) > (os.cpu_count() or 1)
    if busy:
        log(f"WARNING: the machine was busy (1-min load average up to {max(loads):.1f} on "
            f"{os.cpu_count()} CPUs): other processes competed for the CPU; results are noisy")
    return {
        "schema": SCHEMA,
        "machine": machine,
        "seconds": round(time.monotonic() - started, 1),
        "loadavg_per_round": loads,
        "busy": busy,
        "source_changed": changed,
        "source_fingerprint": source,
        "scale": scale,
        "runs": runs,
        "rows": [{"name": r.name, "label": r.label, "workload": r.workload,
                  "scale": r.scale * scale, "filter": bench.filters[r.name].split(os.pathsep)}
                 for r in rows],
        "columns": columns,
        "cells": bench.summary(),
        "browser": browser,
        "browser_unavailable": browser_unavailable,
        "failed": {k: v for k, v in bench.failed.items() if v},
        "na": bench.na,
        "skipped": bench.skipped,
        "notes": bench.notes,
        "records": bench.records,
    }


def load(paths: list[str]) -> list[dict[str, Any]]:
    results = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        if data.get("schema") != SCHEMA:
            raise SystemExit(f"{path}: results of an older benchmark (no rows and columns); "
                             f"run `make bench` again")
        results.append(data)
    return results


def names(text: str, known: list[str], what: str, parser: argparse.ArgumentParser) -> list[str]:
    chosen = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown}; choose from {known}")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    parser.add_argument("--runs", type=int, default=int(env("BENCH_RUNS") or "5"))
    parser.add_argument("--rows", default=env("BENCH_ROWS") or ",".join(ROW_NAMES))
    parser.add_argument("--columns", default=env("BENCH_COLUMNS") or ",".join(COLUMNS))
    parser.add_argument("--timeout", type=float, default=float(env("BENCH_TIMEOUT") or "600"))
    parser.add_argument("--scale", type=float, default=float(env("BENCH_SCALE") or "1.0"))
    parser.add_argument("--out", help="write the raw results here (JSON)")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="print the tables of saved results and exit")
    args = parser.parse_args()

    if args.report:
        print(table(load(args.report)))
        return 0
    row_names = names(args.rows, ROW_NAMES, "rows", parser)
    rows = [r for r in ROWS if r.name in row_names]
    columns = names(args.columns, COLUMNS, "columns", parser)
    columns = ["unmonitored"] + [c for c in COLUMNS if c in columns and c != "unmonitored"]
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    log(f"CPython {platform.python_version()} ({sys.executable})")
    log(f"rows: {', '.join(r.name for r in rows)}; columns: {', '.join(columns)}")
    result = benchmark(rows, columns, args.runs, args.timeout, args.scale)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        log(f"raw results: {os.path.relpath(args.out, ROOT)}")
    log("")
    log(table([result]))
    ours_failed = sorted({c for failed in result["failed"].values() for c in failed}
                         & (OURS | {"unmonitored"}))
    if ours_failed:
        log(f"\nFAILED: {', '.join(ours_failed)} (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
