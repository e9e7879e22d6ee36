"""Collection modes: lines mode (3.12+), auto, and switching modes while the program runs."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import stethoscope
from stethoscope.config import ConfigError
from stethoscope.model import LINE_FIELDS

import workloads
from conftest import HAS_MONITORING, wait_for
from workloads import line_of

only_workloads = stethoscope.files.path_contains("workloads.py")
needs_monitoring = pytest.mark.skipif(not HAS_MONITORING,
                                      reason="lines mode needs sys.monitoring (Python 3.12+)")
TICK = 0.2  # the sampler's publish period: one lines window


def _rows(mon: stethoscope.Monitor) -> dict[int, dict[str, int]]:
    heat = mon.snapshot().file(workloads.FILE)
    if heat is None:
        return {}
    return {row[0]: dict(zip(LINE_FIELDS, row, strict=True)) for row in heat.lines}


def _field(mon: stethoscope.Monitor, marker: str, field: str) -> int:
    return _rows(mon).get(line_of(marker), {}).get(field, 0)


def _windows(mon: stethoscope.Monitor) -> int:
    return mon.snapshot().ran_windows[1]


def _next_window(mon: stethoscope.Monitor) -> None:
    """Wait until the current lines window has ended, and the next one too (lines
    mode, or auto on 3.12+, counts every window): what ran before is in the store,
    and what runs next is in a window of its own. However late the sampler thread's
    ticks come on a loaded machine."""
    now = _windows(mon)
    wait_for(lambda: _windows(mon) >= now + 2)


@needs_monitoring
def test_lines_mode_reports_exactly_the_lines_that_ran_in_each_window() -> None:
    began = time.monotonic()
    # window=600: every window of the test is recent, however long a loaded machine takes
    with stethoscope.trace(only_workloads, port=0, quiet=True, mode="lines",
                           window=600) as mon:
        assert mon.mode == "lines"
        before = time.time()
        for _ in range(3):
            workloads.branchy(True)
            _next_window(mon)
        workloads.once()
        _next_window(mon)
        rows = _rows(mon)
        snap = mon.snapshot()
    elapsed = time.monotonic() - began
    assert snap.mode == "lines" and snap.heat == "ran" and snap.requested_mode == "lines"
    # Every window counted, also those in which nothing ran (the waits above count on
    # it), and no more than one a tick (at most five a second).
    recent, total = snap.ran_windows
    assert 8 <= total <= elapsed / TICK + 2 and recent == total, (snap.ran_windows, elapsed)
    for marker in ("taken", "after"):
        row = rows[line_of(marker)]
        # Three calls, each in a window of its own: three windows, however short.
        assert row["ran_total"] == 3, (marker, row)
        assert row["ran_last_ms"] >= before * 1000
    assert line_of("not taken") not in rows or rows[line_of("not taken")]["ran_total"] == 0
    once = rows[line_of("once")]
    assert once["ran_total"] == 1 and once["ran_recent"] == 1
    assert once["ran_last_ms"] > rows[line_of("taken")]["ran_last_ms"]
    # Lines mode counts no executions and does not pretend to.
    assert all(r["hits_total"] == 0 for r in rows.values())


@needs_monitoring
def test_lines_mode_sees_other_threads_and_code_already_running() -> None:
    stop = threading.Event()
    spinner = threading.Thread(target=workloads.spin_until, args=(stop,), daemon=True)
    spinner.start()
    try:
        with stethoscope.trace(only_workloads, port=0, quiet=True, mode="lines") as mon:
            # The spinner's frame started before the monitor: armed from the stacks.
            wait_for(lambda: _field(mon, "spin", "ran_total") >= 3)
            worker = threading.Thread(target=workloads.branchy, args=(False,), daemon=True)
            worker.start()
            worker.join(30)
            wait_for(lambda: _field(mon, "not taken", "ran_total") == 1)
            assert _field(mon, "taken", "ran_total") == 0
    finally:
        stop.set()
        spinner.join(30)


def test_auto_mode_combines_sampling_with_lines_where_it_can() -> None:
    with stethoscope.trace(only_workloads, port=0, quiet=True) as mon:
        # busy until sampled (the sampler gets fewer ticks on a loaded machine)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                r["self_total"] for r in _rows(mon).values()):
            workloads.busy_for(0.2)
        workloads.once()
        if HAS_MONITORING:
            _next_window(mon)
        snap = mon.snapshot()
        rows = _rows(mon)
    assert snap.heat == "time"
    if HAS_MONITORING:
        assert snap.mode == "sample+lines"
        assert rows[line_of("once")]["ran_total"] == 1  # far too short to be sampled
        assert rows[line_of("once")]["self_total"] == 0
    else:
        assert snap.mode == "sample"
        assert all(r["ran_total"] == 0 for r in rows.values())
    assert sum(r["self_total"] for r in rows.values()) > 0


@pytest.mark.skipif(HAS_MONITORING, reason="Python 3.12+ has lines mode")
def test_lines_mode_before_312_samples_and_says_why() -> None:
    with stethoscope.trace(only_workloads, port=0, quiet=True, mode="lines") as mon:
        snap = mon.snapshot()
    assert snap.mode == "sample" and snap.heat == "time"
    assert any("lines mode needs Python 3.12+" in n for n in snap.notes), snap.notes


def test_switching_modes_keeps_counts_consistent() -> None:
    with stethoscope.trace(only_workloads, port=0, quiet=True, mode="trace") as mon:
        workloads.count_to(1000)
        wait_for(lambda: _field(mon, "body", "hits_total") == 1000)
        assert mon.set_mode("sample") == "sample"
        assert mon.snapshot().requested_mode == "sample"
        workloads.count_to(500)  # not counted: sampling only (the 1250 below says so)
        assert _field(mon, "body", "hits_total") == 1000
        assert mon.snapshot().heat == "time"
        if HAS_MONITORING:
            assert mon.set_mode("lines") == "lines"
            workloads.count_to(10)
            wait_for(lambda: _field(mon, "body", "ran_total") >= 1)
        assert mon.set_mode("trace") == "trace"
        workloads.count_to(250)
        wait_for(lambda: _field(mon, "body", "hits_total") >= 1250)  # folded
        # Exactly the calls made while counting: nothing lost, nothing twice.
        assert _field(mon, "body", "hits_total") == 1250
        assert mon.snapshot().heat == "hits"
        assert mon.set_mode("trace") == "trace"  # the same mode again: counting goes on
        workloads.count_to(1)
        wait_for(lambda: _field(mon, "body", "hits_total") == 1251)
        with pytest.raises(ConfigError, match="mode must be one of"):
            mon.set_mode("fast")
        assert mon.mode == "trace"
    with pytest.raises(RuntimeError, match="stopped"):
        mon.set_mode("sample")


def test_switching_to_trace_from_another_thread() -> None:
    with stethoscope.trace(only_workloads, port=0, quiet=True, mode="sample") as mon:
        result: list[object] = []

        def switch() -> None:
            try:
                result.append(mon.set_mode("trace"))
            except ConfigError as exc:
                result.append(exc)

        t = threading.Thread(target=switch)
        t.start()
        t.join(60)
        if HAS_MONITORING:
            assert result == ["trace"]
            workloads.count_to(100)  # in this (the main) thread
            wait_for(lambda: _field(mon, "body", "hits_total") == 100)
        else:
            assert isinstance(result[0], ConfigError)
            assert "main thread" in str(result[0])
            assert mon.mode == "sample"


def _post(url: str, path: str, method: str = "POST") -> tuple[int, str]:
    u = urllib.parse.urlsplit(url)
    req = urllib.request.Request(f"http://{u.netloc}{path}{'&' if '?' in path else '?'}{u.query}",
                                 method=method, data=b"" if method == "POST" else None)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_mode_switch_over_http() -> None:
    with stethoscope.trace(only_workloads, port=0, quiet=True, mode="sample") as mon:
        status, body = _post(mon.url, "/api/mode?mode=trace")
        if HAS_MONITORING:
            assert (status, json.loads(body)) == (200, {"mode": "trace"})
            assert mon.mode == "trace"
            workloads.count_to(10)
            wait_for(lambda: _field(mon, "body", "hits_total") == 10)
            status, body = _post(mon.url, "/api/mode?mode=lines")
            assert (status, json.loads(body)) == (200, {"mode": "lines"})
        else:
            assert status == 400 and "main thread" in body
        assert _post(mon.url, "/api/mode?mode=warp")[0] == 400
        status, body = _post(mon.url, "/api/mode?mode=sample", method="GET")
        assert status == 405 and "POST only" in body
        # Without the token: refused, and nothing changes.
        u = urllib.parse.urlsplit(mon.url)
        before = mon.mode
        status, _ = _post(f"http://{u.netloc}/?token=wrong-token", "/api/mode?mode=sample")
        assert status == 403 and mon.mode == before


@needs_monitoring
def test_lines_mode_leaves_another_tools_line_results_alone() -> None:
    """restart_events() re-arms every tool's disabled events. A tool that records
    lines and disables them after the first hit, as coverage.py's sys.monitoring
    core does, sees a line again in later windows but records the same set."""
    mon_api = sys.monitoring
    tool = mon_api.COVERAGE_ID  # the id coverage.py takes
    assert mon_api.get_tool(tool) is None
    mon_api.use_tool_id(tool, "coverage-like")
    calls: list[tuple[int, int]] = []

    def on_line(code: object, line: int) -> object:
        calls.append((id(code), line))
        return mon_api.DISABLE

    recorded: set[int] = set()
    try:
        mon_api.register_callback(tool, mon_api.events.LINE, on_line)
        mon_api.set_local_events(tool, workloads.branchy.__code__, mon_api.events.LINE)
        with stethoscope.trace(only_workloads, port=0, quiet=True, mode="lines") as mon:
            for _ in range(3):
                workloads.branchy(True)
                _next_window(mon)
            assert _field(mon, "taken", "ran_total") == 3
        recorded = {line for _, line in calls}
    finally:
        mon_api.set_local_events(tool, workloads.branchy.__code__, 0)
        mon_api.register_callback(tool, mon_api.events.LINE, None)
        mon_api.free_tool_id(tool)
    assert recorded == {line_of("taken") - 1, line_of("taken"), line_of("after")}
    # Re-armed once per window by our restart_events(): one extra call per line and window.
    assert len(calls) == 3 * len(recorded)


@needs_monitoring
def test_a_fault_in_lines_mode_stops_it_with_a_note_and_the_program_runs_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stethoscope.collectors.lines import LinesCollector

    def broken(self: LinesCollector, code: object) -> None:
        raise MemoryError("injected")

    with stethoscope.trace(only_workloads, port=0, quiet=True, mode="lines") as mon:
        monkeypatch.setattr(LinesCollector, "_arm", broken)
        assert workloads.once() == 7  # a new code object: PY_START -> _arm -> fault
        wait_for(lambda: mon.mode == "sample")
        snap = mon.snapshot()
    assert any("lines mode stopped after an internal error: MemoryError: injected" in n
               for n in snap.notes), snap.notes
