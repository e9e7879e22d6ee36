"""Smoke test of the benchmark (bench/run.py): one tiny row, three columns, one round.

Not a measurement: it checks that the benchmark runs end to end on this
interpreter, that its table and raw JSON have the cells asked for with sane
figures, and that ``--report`` prints the same table from the saved JSON.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"
COLUMNS = ["unmonitored", "stethoscope-sample", "bare-callback"]


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, BENCH_BROWSER="0", BENCH_HANG_LIMIT="20")
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120, check=False)


def test_bench_runs_one_small_row_and_reports_sane_figures(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = run_bench("--runs", "1", "--scale", "0.05", "--rows", "calls",
                     "--columns", ",".join(COLUMNS), "--timeout", "60", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    result = json.loads(out.read_text())
    assert result["columns"] == COLUMNS
    assert [r["name"] for r in result["rows"]] == ["calls"]
    assert result["failed"] == {} and result["na"] == {}
    cells = result["cells"]["calls"]
    assert set(cells) == set(COLUMNS)
    # Sane means present, finite and of the right sign: how large a time or a ratio is
    # depends on the machine and its load, and is the benchmark's to report, not ours.
    for column in COLUMNS:
        cell = cells[column]
        assert cell["n"] == 1
        assert 0 < cell["wall_median"] < math.inf
        assert 0 < cell["cpu_median"] < math.inf
        assert 5 < cell["maxrss_mib_median"] < 2000
    for column in COLUMNS[1:]:
        assert 0 < cells[column]["ratio"] < math.inf
        assert cells[column]["ratio_min"] <= cells[column]["ratio"] <= cells[column]["ratio_max"]
        assert 0 < cells[column]["cpu_ratio"] < math.inf
        assert math.isfinite(cells[column]["exit_delay_ms"])
    sample = cells["stethoscope-sample"]
    assert sample["stop_ms_median"] is not None and 0 <= sample["stop_ms_median"] < math.inf
    assert sample["sample_hz_median"] is not None and sample["sample_hz_median"] >= 0
    assert result["machine"]["python"] == ".".join(map(str, sys.version_info[:3]))
    results = {r["result"] for r in result["records"]}
    assert len(results) == 1  # every column computed the same thing

    header = "| Python | workload | none | sample | bare cb |"
    assert header in proc.stdout
    row = next(line for line in proc.stdout.splitlines()
               if line.startswith(f"| {result['machine']['python']} | calls |"))
    assert "\u00d7" in row and "FAILED" not in row

    report = run_bench("--report", str(out))
    assert report.returncode == 0, report.stderr
    assert header in report.stdout
    assert report.stdout.strip() in proc.stdout


def test_the_figures_benchmark_runs_every_test_that_records_a_figure() -> None:
    """bench/figures.py reports what the tests measure but do not bound (a bound on a
    duration is a flaky test); a test that records a figure it does not run is lost."""
    import ast
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_figures", ROOT / "bench" / "figures.py")
    assert spec is not None and spec.loader is not None
    figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures)
    recording = set()
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and any(
                    isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                    and call.func.id == "record_figure" for call in ast.walk(node)):
                recording.add(f"tests/{path.name}::{node.name}")
    assert recording  # the check can fail
    assert set(figures.TESTS) == recording
