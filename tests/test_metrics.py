"""``GET /metrics``: Prometheus text format read back with prometheus_client's own parser.

Real monitors only: a workload in a subprocess (threads in known states, a hot loop in
trace mode, a fork child, a main thread that finishes while a non-daemon thread waits)
and in-process monitors for the access rules. What the scrape says is compared with
``/api/snapshot?pid=all`` of the same monitor and with what the workload is known to do.
"""

from __future__ import annotations

import http.client
import math
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import stethoscope
from stethoscope.server import metrics

from conftest import child_env, wait_for

WEIRD = 'a"b\\c\nd'  # a thread name with every character the format must escape
HOT_RUNS = 5000

WORKLOAD = '''\
"""Threads in known states under a monitor; the test steers it with files in DIR.

argv: DIR MODE [child]. Writes DIR/url once serving. With "child", a fork child
lives until DIR/child-go exists, then exits with code 3. The main thread returns
once DIR/main-go exists; a non-daemon thread named WEIRD then holds the exit.
"""
import json
import multiprocessing as mp
import os
import sys
import threading
import time

import stethoscope

HERE, MODE = sys.argv[1], sys.argv[2]
WEIRD = WEIRD_VALUE


def hot(n):
    total = 0
    for i in range(n):
        total += i  # HOT
    return total


def await_file(name):
    deadline = time.monotonic() + 600  # a bound for a lost test only
    while not os.path.exists(os.path.join(HERE, name)) and time.monotonic() < deadline:
        time.sleep(0.05)


def child():
    await_file("child-go")
    sys.exit(3)


def publish(name, text):
    tmp = os.path.join(HERE, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(HERE, name))


def main():
    mon = stethoscope.current() or stethoscope.trace(port=0, mode=MODE, quiet=True)
    never = threading.Event()
    for i in range(2):
        threading.Thread(target=never.wait, args=(600,), name=f"idle-{i}", daemon=True).start()
    threading.Thread(target=never.wait, args=(600,), name=WEIRD, daemon=False).start()
    hot(HOT_RUNS)
    info = {"url": mon.url, "pid": os.getpid()}
    if "child" in sys.argv[3:]:
        proc = mp.get_context("fork").Process(target=child, name="worker-child", daemon=True)
        proc.start()
        info["child"] = proc.pid
    publish("info", json.dumps(info))
    await_file("main-go")


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads on 3.12+
    main()
'''.replace("WEIRD_VALUE", repr(WEIRD)).replace("HOT_RUNS", str(HOT_RUNS))


Families = dict[str, dict[tuple[tuple[str, str], ...], float]]


@dataclass
class Workload:
    proc: subprocess.Popen[bytes]
    dir: Path
    url: str  # the page URL, with the token
    pid: int
    child: int | None

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    @property
    def token(self) -> str:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query)["token"][0]

    def go(self, name: str) -> None:
        (self.dir / name).write_text("")


def _start(tmp_path: Path, *args: str, cli: list[str] | None = None) -> Workload:
    """Run the workload (under ``stethoscope run`` when ``cli`` gives its options)."""
    import json

    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    head = [sys.executable, "-m", "stethoscope", "run", *cli] if cli is not None \
        else [sys.executable]
    with (tmp_path / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen([*head, str(script), str(tmp_path), *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=child_env(), cwd=tmp_path)
    info_file = tmp_path / "info"
    try:
        wait_for(lambda: info_file.exists() or proc.poll() is not None)
        assert info_file.exists(), (tmp_path / "stderr.txt").read_text()
    except BaseException:
        _end(proc)
        raise
    info = json.loads(info_file.read_text())
    return Workload(proc, tmp_path, info["url"], info["pid"], info.get("child"))


def _end(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=60)


@pytest.fixture
def trace_workload(tmp_path: Path) -> Iterator[Workload]:
    work = _start(tmp_path, "trace")
    yield work
    _end(work.proc)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Status, Content-Type and body of a GET; error statuses are answers too."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()


def _parse(text: str) -> Families:
    """Every sample by name and labels (prometheus_client raises on malformed text)."""
    out: Families = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _scrape(base: str, token: str | None) -> tuple[Families, str]:
    status, ctype, body = _get(f"{base}/metrics" + (f"?token={token}" if token else ""))
    assert status == 200, body
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    return _parse(body), body


def _snapshot(work: Workload) -> dict[str, Any]:
    import json

    status, _, body = _get(f"{work.base}/api/snapshot?pid=all&token={work.token}")
    assert status == 200, body
    data: dict[str, Any] = json.loads(body)
    return data


def _labels(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _value(families: Families, name: str, **labels: str) -> float:
    return families[name][_labels(**labels)]


def _consistent(work: Workload) -> tuple[Families, dict[str, Any]]:
    """A scrape and a snapshot that show the same moment (the monitor shares a built
    snapshot for 0.1 s; the workload's polling loop moves trace counts in between).
    A measurement taken again until the two meet, not an assertion retried: a loaded
    machine may take longer than 0.1 s between the two requests many times over."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        families, _ = _scrape(work.base, work.token)
        snap = _snapshot(work)
        total = sum(f["hits_total"] for f in snap["files"])
        if _value(families, "stethoscope_lines_executed_total") == total:
            return families, snap
    raise AssertionError("no scrape matched a snapshot within 60 s")


def test_metrics_match_the_snapshot(trace_workload: Workload) -> None:
    work = trace_workload
    # wait until every thread of the workload is seen in its known state (a thread list
    # is published 5 times a second), in a scrape that matches its snapshot
    def settled() -> tuple[Families, dict[str, Any]] | None:
        families, snap = _consistent(work)
        alive = [t for t in snap["threads"] if t["alive"]]
        waiting = sum(1 for t in alive if t["kind"] == "event")
        non_daemon = sum(1 for t in alive if not t["daemon"])
        return (families, snap) if waiting == 3 and non_daemon == 2 else None

    families, snap = wait_for(settled)
    pid = str(work.pid)

    expected: dict[tuple[tuple[str, str], ...], int] = {}
    for t in snap["threads"]:
        key = _labels(pid=str(t["pid"]), daemon=str(t["daemon"]).lower(), kind=t["kind"],
                      alive=str(t["alive"]).lower())
        expected[key] = expected.get(key, 0) + 1
    assert families["stethoscope_threads"] == expected
    # what the workload is known to run: two idle daemon threads, and main + WEIRD
    # (non-daemon), all of them alive
    assert _value(families, "stethoscope_threads", pid=pid, daemon="true", kind="event",
                  alive="true") == 2
    non_daemon = sum(v for k, v in families["stethoscope_threads"].items()
                     if ("daemon", "false") in k and ("alive", "true") in k)
    assert non_daemon == 2

    hits = sum(f["hits_total"] for f in snap["files"])
    assert hits >= HOT_RUNS  # the hot line alone ran that often
    assert _value(families, "stethoscope_lines_executed_total") == hits
    assert _value(families, "stethoscope_line_samples_total") == \
        sum(f["self_total"] for f in snap["files"])
    assert _value(families, "stethoscope_sampler_achieved_hz") == snap["sample_hz"]["achieved"]
    assert _value(families, "stethoscope_sampler_requested_hz") == 100
    assert _value(families, "stethoscope_info", version=stethoscope.__version__,
                  python=snap["python"], mode="trace", requested_mode="trace", pid=pid) == 1
    assert _value(families, "stethoscope_up") == 1
    assert math.isclose(_value(families, "stethoscope_uptime_seconds"),
                        snap["time"] - snap["started"], abs_tol=1e-6)
    main_proc = snap["processes"][0]
    assert _value(families, "stethoscope_process_cpu_seconds_total", pid=pid) == \
        main_proc["cpu_seconds"] > 0
    cpu = families.get("stethoscope_process_cpu_percent", {}).get(_labels(pid=pid))
    assert cpu == main_proc["cpu"]  # None (no sample) while not measured yet
    assert _value(families, "stethoscope_main_finished") == 0
    assert _value(families, "stethoscope_exit_blocked") == 0
    assert _value(families, "stethoscope_exit_blocking_threads") == 0
    assert "stethoscope_exit_blocking_thread" not in families
    assert "stethoscope_child_processes" not in families  # no children: no series


def test_exit_blocked_flips_when_main_finishes_while_a_non_daemon_thread_waits(
        trace_workload: Workload) -> None:
    work = trace_workload
    families, _ = _scrape(work.base, work.token)
    assert _value(families, "stethoscope_exit_blocked") == 0
    work.go("main-go")

    def blocked() -> Families | None:
        families, _ = _scrape(work.base, work.token)
        return families if _value(families, "stethoscope_exit_blocked") == 1 else None

    families = wait_for(blocked)
    assert _value(families, "stethoscope_main_finished") == 1
    assert _value(families, "stethoscope_exit_blocking_threads") == 1
    snap = _snapshot(work)
    (ident,) = snap["exit"]["blocking"]
    # the name travels escaped and comes back intact through prometheus_client's parser
    assert families["stethoscope_exit_blocking_thread"] == {
        _labels(pid=str(work.pid), ident=str(ident), name=WEIRD, kind="event"): 1}
    _, text = _scrape(work.base, work.token)
    assert 'name="a\\"b\\\\c\\nd"' in text


def test_render_escapes_label_values_and_help_exactly() -> None:
    snap = {
        "pid": 7, "python": 'x"y\\z\nw', "mode": "sample", "requested_mode": "auto",
        "time": 11.5, "started": 10.0, "sample_hz": {"requested": 100.0, "achieved": 99.5},
        "files": [{"hits_total": 3, "self_total": 4}, {"hits_total": 5, "self_total": 6}],
        "threads": [{"pid": 7, "ident": 1, "name": WEIRD, "daemon": False, "alive": True,
                     "kind": "event"}],
        "processes": [{"pid": 7, "method": "main", "state": "running", "cpu": None,
                       "cpu_seconds": 0.25}],
        "exit": {"blocking": [1]},
    }
    text = metrics.render(snap).decode()
    assert 'python="x\\"y\\\\z\\nw"' in text
    assert 'stethoscope_exit_blocking_thread{pid="7",ident="1",name="a\\"b\\\\c\\nd",' \
        'kind="event"} 1\n' in text
    assert "stethoscope_lines_executed_total 8\n" in text
    assert "stethoscope_line_samples_total 10\n" in text
    assert "stethoscope_uptime_seconds 1.5\n" in text
    assert "stethoscope_process_cpu_percent" in text  # the family is declared ...
    assert "stethoscope_process_cpu_percent{" not in text  # ... but cpu None has no sample
    families = _parse(text)
    assert _value(families, "stethoscope_info", version=stethoscope.__version__,
                  python=snap["python"], mode="sample", requested_mode="auto", pid="7") == 1
    assert _value(families, "stethoscope_exit_blocked") == 1
    # every family has exactly one HELP and one TYPE line, HELP first
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP")]
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert names == types and len(names) == len(set(names))


@pytest.fixture
def monitor() -> Iterator[stethoscope.Monitor]:
    mon = stethoscope.trace(port=0, quiet=True)
    try:
        yield mon
    finally:
        stethoscope.stop()


@pytest.fixture
def public_monitor() -> Iterator[stethoscope.Monitor]:
    mon = stethoscope.trace(port=0, quiet=True, metrics_public=True)
    try:
        yield mon
    finally:
        stethoscope.stop()


def _base(mon: stethoscope.Monitor) -> str:
    return mon.url.split("/?", 1)[0]


def _token(mon: stethoscope.Monitor) -> str:
    return mon.url.split("token=", 1)[1]


def test_metrics_need_the_token(monitor: stethoscope.Monitor) -> None:
    base = _base(monitor)
    for url, headers in [
        (f"{base}/metrics", {}),
        (f"{base}/metrics?token=wrong-token-123", {}),
        (f"{base}/metrics", {"X-Stethoscope-Token": "wrong-token-123"}),
    ]:
        status, _, body = _get(url, headers)
        assert status == 403, (url, headers, body)
        assert "stethoscope_" not in body and "token" in body
    status, _, body = _get(f"{base}/metrics", {"X-Stethoscope-Token": _token(monitor)})
    assert status == 200 and "stethoscope_up 1" in body
    families, _ = _scrape(base, _token(monitor))
    assert _value(families, "stethoscope_info", version=stethoscope.__version__,
                  python=f"{sys.version_info.major}.{sys.version_info.minor}."
                  f"{sys.version_info.micro}", mode=monitor.mode, requested_mode="auto",
                  pid=str(os.getpid())) == 1


def test_metrics_public_serves_metrics_only(public_monitor: stethoscope.Monitor) -> None:
    base = _base(public_monitor)
    ready = threading.Event()
    worker = threading.Thread(target=ready.wait, args=(30,), name="public-idle", daemon=True)
    worker.start()
    try:
        families, _ = _scrape(base, None)
        assert _value(families, "stethoscope_up") == 1
        for path in ["/api/snapshot", "/api/events", "/api/activity", "/api/source/abc",
                     "/metrics/"]:
            status, _, body = _get(base + path)
            assert status == 403, (path, body)
        # the Host check still applies to a loopback bind
        host, port = urllib.parse.urlsplit(base).netloc.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("GET", "/metrics", headers={"Host": f"evil.example:{port}"})
            response = conn.getresponse()
            assert response.status == 403
            assert b"stethoscope_" not in response.read()
        finally:
            conn.close()
    finally:
        ready.set()
        worker.join(30)


def test_cli_metrics_public_and_child_processes(tmp_path: Path) -> None:
    work = _start(tmp_path, "auto", "child", cli=["--port", "0", "--quiet", "--metrics-public"])
    try:
        assert work.child is not None
        child = str(work.child)

        def counted(state: str) -> Families | None:
            families, _ = _scrape(work.base, None)  # --metrics-public: no token
            children = families.get("stethoscope_child_processes", {})
            return families if children.get(_labels(state=state, method="fork")) == 1 \
                else None

        def reported() -> Families | None:
            # listed as running at once; its threads once its first report is in
            families = counted("running")
            return families if families and any(
                ("pid", child) in k for k in families["stethoscope_threads"]) else None

        families = wait_for(reported)
        assert _labels(pid=child) in families["stethoscope_process_cpu_seconds_total"]
        status, _, _ = _get(f"{work.base}/api/snapshot")
        assert status == 403  # only /metrics is public

        work.go("child-go")
        families = wait_for(lambda: counted("exited"))
        assert _labels(state="running", method="fork") not in \
            families["stethoscope_child_processes"]
        snap = _snapshot(work)
        child_info = next(p for p in snap["processes"] if p["pid"] == work.child)
        assert (child_info["state"], child_info["exit_code"]) == ("exited", 3)
    finally:
        _end(work.proc)


def test_metrics_stay_private_by_default_under_the_cli(tmp_path: Path) -> None:
    work = _start(tmp_path, "sample", cli=["--port", "0", "--quiet"])
    try:
        status, _, body = _get(f"{work.base}/metrics")
        assert status == 403 and "stethoscope_" not in body
        families, _ = _scrape(work.base, work.token)
        assert _value(families, "stethoscope_up") == 1
    finally:
        _end(work.proc)
