#!/usr/bin/env python3
"""The timings the test suite measures but does not bound: run those tests, report them.

    python bench/figures.py [--runs 3] [--out FILE]      (the test environment's python)
    python bench/figures.py --report FILE...

A test must not bound a duration or a rate: the suite runs on loaded machines (two
interpreters side by side, a browser beside them), where any bound makes it flaky.
The tests below still measure what they used to bound (how soon an exit, a hang
report or a drop comes; a latency; a sample rate) and hand it to
``conftest.record_figure``, which appends it to the file STETHOSCOPE_FIGURES names.
This runs them ``--runs`` times with it set, on this machine as it is (run it idle),
and prints each figure's median and range; the tests' own pass/fail is reported too.
tests/test_bench.py checks that TESTS lists every test that records a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
FIGURES_ENV = "STETHOSCOPE_FIGURES"  # tests/conftest.py's
TIMEOUT = 1800  # seconds for one pytest run of all of them

# Every test that calls record_figure (parametrized ones: all their cases).
TESTS = [
    "tests/test_children.py::test_a_child_whose_monitor_is_gone_exits_at_once",
    "tests/test_children.py::test_eight_busy_children_keep_the_page_live",
    "tests/test_children.py::test_sigterm_ends_a_child_whose_main_thread_blocks_without_timeout",
    "tests/test_exit.py::test_a_script_that_calls_trace_and_returns_exits_by_itself",
    "tests/test_exit.py::test_an_open_event_stream_does_not_delay_exit",
    "tests/test_exit.py::test_daemon_false_ends_on_stop_from_another_thread",
    "tests/test_faults_process.py::"
    "test_signals_during_stop_run_their_handlers_and_stop_completes",
    "tests/test_faults_programs.py::test_hundreds_of_threads_ending_mid_sample_at_1000_hz",
    "tests/test_fuzz.py::test_slowloris_clients_do_not_hold_up_others",
    "tests/test_fuzz.py::test_stalled_requests_are_dropped_after_read_timeout",
    "tests/test_hang.py::test_each_classic_hang_is_named_located_and_explained",
    "tests/test_processes.py::test_the_final_report_reaches_a_monitor_that_answers_late",
    "tests/test_recording.py::test_a_killed_process_leaves_a_readable_recording",
    "tests/test_server.py::"
    "test_malformed_requests_get_no_500_no_output_and_server_keeps_answering",
    "tests/test_server.py::test_stop_is_prompt_with_stalled_and_open_streams",
]


def measure(runs: int) -> dict[str, Any]:
    """Run TESTS ``runs`` times; every figure they recorded, and each run's status."""
    figures: list[dict[str, Any]] = []
    statuses = []
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", os.path.join(ROOT, "src"))
    for run in range(runs):
        with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as out:
            env[FIGURES_ENV] = out.name
            print(f"figures: run {run + 1} of {runs}: {len(TESTS)} tests", flush=True)
            try:
                code = subprocess.run(
                    [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
                    cwd=ROOT, env=env, timeout=TIMEOUT, check=False).returncode
            except subprocess.TimeoutExpired:
                code = 124
            statuses.append(code)
            for line in out.read().splitlines():
                figure = json.loads(line)
                figures.append({**figure, "run": run})
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": platform.python_version(),
        "nproc": os.cpu_count(), "uname": " ".join(platform.uname()),
        "loadavg": os.getloadavg(), "runs": runs, "pytest_exit": statuses,
        "figures": figures,
    }


def report(result: dict[str, Any]) -> str:
    by_name: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for figure in result["figures"]:
        by_name.setdefault(figure["figure"], []).append(figure["value"])
        units[figure["figure"]] = figure["unit"]
    lines = [
        f"Figures the tests measure, not bound: CPython {result['python']}, "
        f"{result['nproc']} CPUs, load average {result['loadavg'][0]:.2f} at start, "
        f"{result['runs']} runs (pytest exit {', '.join(map(str, result['pytest_exit']))})",
        "",
        "| figure | n | median | min - max |",
        "|---|---:|---:|---:|",
    ]

    def fmt(value: float, unit: str) -> str:
        return f"{value * 1000:.1f} ms" if unit == "s" else f"{value:.1f} {unit}"

    for name in sorted(by_name):
        values, unit = by_name[name], units[name]
        lines.append(f"| {name} | {len(values)} | {fmt(statistics.median(values), unit)} | "
                     f"{fmt(min(values), unit)} - {fmt(max(values), unit)} |")
    if any(result["pytest_exit"]):
        lines.append("\nFAILED: a test that records figures failed (see its output above)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", help="raw results (JSON); default "
                                      "bench/results/<date>-figures.json")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="print the tables of saved results and exit")
    args = parser.parse_args(argv)
    if args.report:
        for path in args.report:
            with open(path) as f:
                print(report(json.load(f)) + "\n")
        return 0
    if not 1 <= args.runs <= 20:
        parser.error("--runs: 1 to 20")
    result = measure(args.runs)
    out = args.out or os.path.join(RESULTS, time.strftime("%Y-%m-%dT%H%M%S") + "-figures.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print()
    print(report(result))
    print(f"\n(raw results: {os.path.relpath(out, ROOT)})")
    return 1 if any(result["pytest_exit"]) else 0


if __name__ == "__main__":
    sys.exit(main())
