"""``stethoscope export``: real recordings, checked by real readers.

A known workload is recorded with ``stethoscope run --record`` (a hot line, a daemon
thread, a fork child that exits with code 5, a non-daemon thread that holds the exit
after the main thread returns); another recording is made in-process with
``stethoscope.trace(record=...)``. The exports are checked against:

* speedscope's published file-format schema (``file-format-schema.json`` from the
  speedscope npm package that scripts/ensure-speedscope.sh installs);
* speedscope's web app from that same package, in Debian's chromium, which must load
  both the speedscope export and the Chrome trace export without import warnings;
* the Trace Event Format's structural rules (every slice complete, slices on a thread
  nested, every pid and tid named);
* exact content for the text and JSON summaries.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from playwright.sync_api import Browser
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

import stethoscope
from stethoscope.model import LINE_FIELDS
from stethoscope.recordings import export
from stethoscope.recordings.reader import Recording, Samples, read
from stethoscope.recordings.summary import to_summary as summary_of

import workloads
from conftest import child_env, run_cli, wait_for

ROOT = Path(__file__).resolve().parents[1]
SPEEDSCOPE = ROOT / ".cache" / "speedscope" / "node_modules" / "speedscope"
RELEASE = SPEEDSCOPE / "dist" / "release"
SCHEMA = RELEASE / "file-format-schema.json"
LOAD_MS = 60_000  # a wait for the app, not a bound: generous for a loaded machine

WORKLOAD = '''\
"""A known workload: a hot line reached through recursion, a daemon thread, a fork
child that exits with 5, and a non-daemon thread that holds the exit for a while
after main returns."""
import multiprocessing as mp
import sys
import threading
import time


def hot(n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003  # HOT
    return total


def kid(stop):
    deadline = time.monotonic() + 60  # a bound for a broken parent only
    while not stop.is_set() and time.monotonic() < deadline:  # until main's loop ends
        hot(20_000)
    sys.exit(5)


def descend(depth, n):
    if depth:
        return descend(depth - 1, n)  # RECURSE
    return hot(n)  # DESCENT


def idle(done):
    done.wait(20)


def slow(seconds):
    time.sleep(seconds)  # SLOW


def sampled_enough(kid_pid):
    """The sampler has seen the hot line HOT_SAMPLES times in this process, and the kid
    has reported while it runs. A loop of a fixed length is sampled less, the busier
    the machine: this one lasts until what the tests read has been recorded."""
    import stethoscope
    from stethoscope.model import LINE_FIELDS

    mon = stethoscope.current()
    snap = mon.snapshot()
    heat = snap.file(__file__)
    row = heat.line(HOT) if heat is not None else None
    kid_running = any(p.pid == kid_pid and p.state == "running" for p in snap.processes)
    return kid_running and row is not None \
        and row[LINE_FIELDS.index("self_total")] >= HOT_SAMPLES


HOT = next(i for i, text in enumerate(open(__file__), 1) if text.rstrip().endswith("# HOT"))
HOT_SAMPLES = 150  # 1.5 s at 100 Hz


def main():
    done = threading.Event()
    threading.Thread(target=idle, args=(done,), name="daemon-idler", daemon=True).start()
    ctx = mp.get_context("fork")
    stop_kid = ctx.Event()
    proc = ctx.Process(target=kid, args=(stop_kid,), name="kid")
    proc.start()
    began = time.monotonic()
    rounds = 0
    while time.monotonic() < began + 60:  # the bound for a broken monitor only
        descend(rounds % 5, 20_000)  # recursion: a frame repeated on one stack
        rounds += 1
        if rounds % 25 == 0 and time.monotonic() >= began + 1.5 and sampled_enough(proc.pid):
            break
    stop_kid.set()
    proc.join(60)
    threading.Thread(target=slow, args=(1.5,), name="slow-worker", daemon=False).start()


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads on 3.12+
    main()
'''


def _marker_line(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1)
                if line.rstrip().endswith(f"# {marker}"))


def _stdout_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workload's recording, made by ``stethoscope run --record``."""
    where = tmp_path_factory.mktemp("recorded")
    script = where / "work.py"
    script.write_text(WORKLOAD)
    path = where / "work.stetho"
    result = run_cli(["run", "--port", "0", "--quiet", "--record", str(path), str(script)],
                     cwd=where, timeout=60)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def rec(recorded: Path) -> Recording:
    return read(str(recorded))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    assert SCHEMA.is_file(), f"{SCHEMA} is missing: run scripts/ensure-speedscope.sh"
    data: dict[str, Any] = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(data)
    return data


# -- speedscope ----------------------------------------------------------------


def _validate(schema: dict[str, Any], document: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(schema).validate(document)


def test_speedscope_export_follows_the_published_schema(
        recorded: Path, rec: Recording, schema: dict[str, Any]) -> None:
    result = run_cli(["export", str(recorded), "--format", "speedscope"], timeout=60)
    assert result.returncode == 0, result.stderr
    out = recorded.with_suffix(".speedscope.json")
    assert result.stderr == f"stethoscope: wrote speedscope export to {out}\n"
    doc = json.loads(out.read_text())
    _validate(schema, doc)
    # the validator is not a formality: a profile without weights is refused
    broken = copy.deepcopy(doc)
    del broken["profiles"][0]["weights"]
    with pytest.raises(jsonschema.ValidationError):
        _validate(schema, broken)

    pid = rec.header["pid"]
    names = [p["name"] for p in doc["profiles"]]
    assert names[0] == f"MainThread (pid {pid})"
    assert f"daemon-idler (pid {pid})" in names
    interval = rec.samples.interval
    assert interval == pytest.approx(0.01)
    main = doc["profiles"][0]
    assert main["unit"] == "seconds" and set(main["weights"]) == {interval}
    assert len(main["samples"]) == len(main["weights"]) \
        == sum(1 for i in rec.samples.threads if rec.samples.thread_names.get(i) == "MainThread")
    assert main["endValue"] == pytest.approx(main["startValue"] + len(main["samples"]) * interval)
    # the hot line is the innermost frame for most of the loop, which lasts until it
    # was sampled HOT_SAMPLES times (the main thread then waits at exit for
    # slow-worker: those samples end in a wait)
    frames = doc["shared"]["frames"]
    hot_line = _marker_line(WORKLOAD, "HOT")
    leaves = [frames[stack[-1]] for stack in main["samples"] if stack]
    hot = [f for f in leaves if f["file"].endswith("work.py") and f["line"] == hot_line]
    assert len(hot) * interval >= 0.5, leaves
    assert hot[0]["name"] == f"hot (work.py:{hot_line})"
    # reached through descend(): the recursion shows as repeated frames, outermost first
    recurse = _marker_line(WORKLOAD, "RECURSE")
    deepest = max(main["samples"], key=lambda stack: sum(
        frames[i]["line"] == recurse for i in stack))
    lines = [frames[i]["line"] for i in deepest if frames[i]["file"].endswith("work.py")]
    assert lines[-6:] == [recurse] * 4 + [_marker_line(WORKLOAD, "DESCENT"), hot_line], lines
    # frames are shared, not repeated
    assert len({(f["name"], f["file"], f["line"]) for f in frames}) == len(frames)


def test_speedscope_and_summary_of_an_in_process_recording(
        tmp_path: Path, schema: dict[str, Any]) -> None:
    path = tmp_path / "api.stetho"
    mon = stethoscope.trace(port=0, quiet=True, record=str(path), mode="sample")
    stop = threading.Event()
    spinner = threading.Thread(target=workloads.spin_until, args=(stop,), name="api-spinner",
                               daemon=True)
    spin = workloads.line_of("spin")

    def spun(samples: int) -> bool:
        heat = mon.snapshot().file(workloads.FILE)
        return heat is not None and sum(
            row[LINE_FIELDS.index("self_total")] for row in heat.lines
            if row[0] in (spin, spin + 1)) >= samples

    try:
        spinner.start()
        wait_for(lambda: spun(100))  # a second at 100 Hz, however long it takes here
    finally:
        stop.set()
        spinner.join(30)
        stethoscope.stop()
    rec = read(str(path))
    assert not rec.truncated
    doc = export.to_speedscope(rec)
    _validate(schema, doc)
    profile = next(p for p in doc["profiles"] if p["name"] == f"api-spinner (pid {os.getpid()})")
    frames = doc["shared"]["frames"]
    # the innermost frame in workloads.py is the spinning loop (its test or its body)
    innermost = [next((frames[i]["line"] for i in reversed(stack)
                       if frames[i]["file"] == workloads.FILE), None)
                 for stack in profile["samples"]]
    assert sum(line in (spin, spin + 1) for line in innermost) > len(innermost) * 0.8
    summary = summary_of(rec)
    assert summary["hot_lines"][0]["path"] == workloads.FILE
    assert summary["hot_lines"][0]["line"] in (spin, spin + 1)  # the loop: test or body
    spinner_info = next(t for t in summary["threads"] if t["name"] == "api-spinner")
    assert spinner_info["daemon"] is True and spinner_info["pid"] == os.getpid()
    _check_chrome(export.to_chrome(rec))


# -- chrome --------------------------------------------------------------------


def _check_chrome(doc: dict[str, Any]) -> None:
    """The Trace Event Format's rules that viewers rely on."""
    assert doc["displayTimeUnit"] == "ms"
    events = doc["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert slices, "no slices"
    for e in slices:
        assert {"ph", "ts", "dur", "pid", "tid", "name"} <= set(e), e
        assert isinstance(e["ts"], int) and isinstance(e["dur"], int) and e["dur"] >= 0, e
        assert e["ts"] >= 0
    by_thread: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for e in slices:
        by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
    for key, items in by_thread.items():
        # nested or disjoint, never partly overlapping
        items.sort(key=lambda e: (e["ts"], -e["dur"]))
        open_ends: list[int] = []
        for e in items:
            while open_ends and open_ends[-1] <= e["ts"]:
                open_ends.pop()
            end = e["ts"] + e["dur"]
            assert not open_ends or end <= open_ends[-1], (key, e)
            open_ends.append(end)
    named_pids = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    named_tids = {(e["pid"], e["tid"]) for e in events
                  if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {e["pid"] for e in events} <= named_pids
    assert set(by_thread) <= named_tids
    for e in events:
        if e["ph"] == "M":
            assert e["args"]["name"], e


def test_chrome_export_is_well_formed_and_counts_processes(recorded: Path,
                                                           rec: Recording) -> None:
    out = recorded.parent / "custom.json"
    result = run_cli(["export", str(recorded), "--format", "chrome", "-o", str(out)],
                     timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"stethoscope: wrote chrome export to {out}\n"
    doc = json.loads(out.read_text())
    _check_chrome(doc)
    events = doc["traceEvents"]
    pid = rec.header["pid"]
    kid = next(p for p in rec.snapshots[-1].processes if p.name == "kid")
    threads = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {"MainThread", "daemon-idler"} <= threads
    hot_line = _marker_line(WORKLOAD, "HOT")
    hot = [e for e in events if e["ph"] == "X" and e["args"].get("line") == hot_line
           and e["args"]["file"].endswith("work.py")]
    assert hot and all(e["pid"] == pid for e in hot)
    assert sum(e["dur"] for e in hot) > 0.5e6  # µs: the hot loop's HOT_SAMPLES, and more
    counters = [e for e in events if e["ph"] == "C"]
    assert {e["name"] for e in counters if e["pid"] == pid} == {"CPU %", "threads"}
    kid_threads = [e["args"] for e in counters if e["pid"] == kid.pid and e["name"] == "threads"]
    assert {"daemon": 0, "non-daemon": 1} in kid_threads  # its main thread, while it ran
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert processes[kid.pid].startswith("kid (fork)")


def test_chrome_slices_merge_samples_break_at_gaps_and_name_recursion() -> None:
    """Slices from hand-made samples: equal frames at equal depth merge, a gap in a
    thread's samples ends every slice, a frame repeated on a stack is named so."""
    a, b = ("/app/a.py", 1, "outer"), ("/app/a.py", 5, "inner")
    samples = Samples(
        pid=42, interval=0.01, frames=(a, b), stacks=((0,), (0, 1), (0, 1, 1)),
        times=[100.00, 100.01, 100.02, 100.03, 101.00, 101.01],
        threads=[7] * 6, stack_ids=[0, 1, 2, 1, 0, 0], thread_names={7: "worker"})
    rec = Recording("x.stetho", 1, {"pid": 42, "argv": ["app.py"]},
                    [], [], {}, samples, truncated=False)  # type: ignore[arg-type]
    doc = export.to_chrome(rec)
    _check_chrome(doc)
    slices = [(e["name"], e["ts"], e["dur"]) for e in doc["traceEvents"] if e["ph"] == "X"]
    assert slices == [
        ("outer (a.py:1)", 0, 40_000),  # until one interval after the last sample before
        ("inner (a.py:5)", 10_000, 30_000),  # the gap; then it starts over
        ("inner (a.py:5) [recursion 2]", 20_000, 10_000),
        ("outer (a.py:1)", 1_000_000, 20_000),
    ]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {(42, 7): "worker"}


# -- text and JSON ------------------------------------------------------------


def test_text_summary_names_the_hot_line_threads_child_and_exit(recorded: Path,
                                                                 rec: Recording) -> None:
    result = run_cli(["export", str(recorded), "--format", "text"], timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    text = result.stdout
    pid = rec.header["pid"]
    hot_line = _marker_line(WORKLOAD, "HOT")
    sections = text.split("\n\n")
    hottest = next(s for s in sections if s.startswith("hottest lines"))
    first = hottest.splitlines()[1]
    assert first.endswith(f"work.py:{hot_line}  total = (total + i * i) % 1_000_003  # HOT")
    assert f"'daemon-idler' (pid {pid}, daemon)" in text
    assert f"'MainThread' (pid {pid}, non-daemon, main)" in text
    assert f"'slow-worker' (pid {pid}, non-daemon" in text
    kid = next(p for p in rec.snapshots[-1].processes if p.name == "kid")
    assert f"  {kid.pid} kid (fork): exited with code 5 (return)" in text
    assert f"  {pid} main: " in text
    exit_part = next(s for s in sections if s.startswith("exit:"))
    assert "thread 'slow-worker'" in exit_part and "held the exit for" in exit_part
    assert "time.sleep" in exit_part or "sleep" in exit_part


def test_json_summary_has_the_same_facts(recorded: Path, rec: Recording) -> None:
    summary = _stdout_json(run_cli(["export", str(recorded), "--format", "json", "-o", "-"],
                                   timeout=60))
    assert summary == json.loads(json.dumps(summary_of(rec)))
    pid = rec.header["pid"]
    hot = summary["hot_lines"][0]
    assert (hot["name"], hot["line"]) == ("work.py", _marker_line(WORKLOAD, "HOT"))
    assert hot["source"] == "total = (total + i * i) % 1_000_003  # HOT"
    assert summary["heat"] == "time" and hot["self_total"] > 50 and hot["share"] > 50
    threads = {t["name"]: t for t in summary["threads"] if t["pid"] == pid}
    assert threads["daemon-idler"]["daemon"] is True
    assert threads["slow-worker"]["daemon"] is False
    assert threads["MainThread"]["main"] is True
    kid = next(p for p in summary["processes"] if p["name"] == "kid")
    assert (kid["method"], kid["state"], kid["exit_code"], kid["exit_how"]) == \
        ("fork", "exited", 5, "return")
    assert summary["processes"][0]["pid"] == pid
    held = summary["exit"]["held_exit"]
    assert [h["name"] for h in held] == ["slow-worker"]
    # it sleeps 1.5 s after main returns: seen in the records of that time (one every
    # 0.5 s), never longer than main had finished before the program ended
    assert held[0]["kind"] == "sleep" and 0.3 <= held[0]["for_seconds"] <= round(
        summary["program"]["ended"] - summary["exit"]["main_finished"], 2) + 0.01
    assert summary["recording"]["truncated"] is False
    assert summary["program"]["state"] == "stopped"


def test_a_killed_recording_is_exported_and_said_to_be_cut_off(tmp_path: Path) -> None:
    script = tmp_path / "forever.py"
    script.write_text(textwrap.dedent("""
        import time
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sum(range(10_000))  # LOOP
    """))
    path = tmp_path / "killed.stetho"
    proc = subprocess.Popen([sys.executable, "-m", "stethoscope", "run", "--port", "0",
                             "--quiet", "--record", str(path), str(script)],
                            env=child_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def has_snapshots() -> bool:
            with contextlib.suppress(Exception):
                return len(read(str(path)).snapshots) >= 2
            return False

        wait_for(has_snapshots)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    result = run_cli(["export", str(path), "--format", "text"], timeout=60)
    assert result.returncode == 0, result.stderr
    assert "the recording was cut off" in result.stdout
    assert result.stderr == (f"stethoscope: note: {path} was cut off (the program was "
                             f"killed); its last moments are missing\n")
    assert "forever.py:5" in result.stdout  # its hot line, from before the kill


def test_export_errors_are_one_line_and_exit_2(tmp_path: Path, recorded: Path) -> None:
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello\n")
    cases = [
        ([str(tmp_path / "missing.stetho"), "--format", "text"], "cannot read"),
        ([str(foreign), "--format", "json"], "is not a stethoscope recording"),
        ([str(recorded), "--format", "flamegraph"], "unknown format 'flamegraph'"),
        ([str(recorded), "--format", "chrome", "-o", str(tmp_path / "no" / "dir.json")],
         "cannot write"),
    ]
    for args, words in cases:
        result = run_cli(["export", *args], timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("stethoscope: error: "), result.stderr
        assert words in lines[0]


def test_speedscope_to_stdout(recorded: Path, schema: dict[str, Any]) -> None:
    doc = _stdout_json(run_cli(["export", str(recorded), "--format", "speedscope", "-o", "-"],
                               timeout=60))
    _validate(schema, doc)


# -- speedscope's web app, in chromium ------------------------------------------


class _Site(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """speedscope's app (from the npm package) on a local server; files put in the
    returned directory are served next to it."""
    assert (RELEASE / "index.html").is_file(), \
        f"{RELEASE} is missing: run scripts/ensure-speedscope.sh"
    root = tmp_path_factory.mktemp("speedscope-site") / "site"
    shutil.copytree(RELEASE, root)
    server = _Site(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="speedscope-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)




@dataclass
class _Loaded:
    """What speedscope made of a file: its page text, its console, and the profile
    as the app itself exports it again (None when it showed no profile)."""

    text: str
    logs: list[str]
    reexport: dict[str, Any] | None


def _open_in_speedscope(browser: Browser, site: tuple[str, Path], source: Path,
                        expect: str, wait_ms: int = LOAD_MS) -> _Loaded:
    """Load ``source`` in speedscope and wait for ``expect`` to show; then have the
    app export what it loaded (its Export button), which shows how it read the file."""
    base, root = site
    shutil.copy(source, root / source.name)
    page = browser.new_page(accept_downloads=True)
    logs: list[str] = []
    page.on("console", lambda m: logs.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
    try:
        url = f"{base}/index.html#profileURL={urllib.parse.quote(f'{base}/{source.name}')}"
        page.goto(url, timeout=LOAD_MS)
        try:
            page.get_by_text(expect, exact=False).first.wait_for(timeout=wait_ms)
        except PlaywrightTimeoutError:
            return _Loaded(page.inner_text("body", timeout=LOAD_MS), logs, None)
        text = page.inner_text("body", timeout=LOAD_MS)
        with page.expect_download(timeout=LOAD_MS) as download:
            page.get_by_text("Export", exact=False).first.click(timeout=LOAD_MS)
        reexport = json.loads(Path(download.value.path()).read_text())
        return _Loaded(text, logs, reexport)
    finally:
        page.close()


def _import_problems(logs: list[str]) -> list[str]:
    return [line for line in logs if line.startswith(("error", "pageerror"))
            or "Tried to end" in line or "still open" in line]


def _self_times(doc: dict[str, Any], index: int) -> dict[tuple[str, ...], float]:
    """How long each stack (frame names, outermost first) was the whole stack, in an
    evented profile that speedscope exported; names lose speedscope's " {args}"."""
    names = [f["name"].split(" {", 1)[0] for f in doc["shared"]["frames"]]
    out: dict[tuple[str, ...], float] = {}
    stack: list[str] = []
    last = 0.0
    for event in doc["profiles"][index]["events"]:
        if stack and event["at"] > last:
            out[tuple(stack)] = out.get(tuple(stack), 0.0) + event["at"] - last
        last = event["at"]
        if event["type"] == "O":
            stack.append(names[event["frame"]])
        else:
            assert stack.pop() == names[event["frame"]], event
    assert not stack
    return out


def _recorded_stacks(rec: Recording, thread: str, recursion: bool
                     ) -> list[tuple[int, tuple[str, ...]]]:
    """(sample index, frame names outermost first) of one thread's samples, straight
    from the recording; ``recursion`` marks repeated frames as the Chrome export does."""
    s = rec.samples
    ident = next(i for i, name in s.thread_names.items() if name == thread)
    out = []
    for index in (i for i, t in enumerate(s.threads) if t == ident):
        names = []
        seen: dict[tuple[str, int, str], int] = {}
        for number in s.stacks[s.stack_ids[index]]:
            path, line, func = s.frames[number]
            seen[s.frames[number]] = seen.get(s.frames[number], 0) + 1
            count = seen[s.frames[number]]
            names.append(f"{func} ({os.path.basename(path)}:{line})"
                         + (f" [recursion {count}]" if recursion and count > 1 else ""))
        out.append((index, tuple(names)))
    return out


@pytest.mark.browser
def test_speedscope_app_loads_the_speedscope_export(browser: Browser, site: tuple[str, Path],
                                                    recorded: Path, rec: Recording,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "work.speedscope.json"
    result = run_cli(["export", str(recorded), "--format", "speedscope", "-o", str(out)],
                     timeout=60)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    name = f"MainThread (pid {rec.header['pid']})"
    loaded = _open_in_speedscope(browser, site, out, name)
    assert f"{name} (1/{len(doc['profiles'])})" in loaded.text, (loaded.text, loaded.logs)
    assert "log: Importing as speedscope json file" in loaded.logs
    assert not _import_problems(loaded.logs), loaded.logs
    again = loaded.reexport
    assert again is not None
    assert [p["name"] for p in again["profiles"]] == [p["name"] for p in doc["profiles"]]
    # speedscope read the main thread's stacks as the sampler took them: each stack
    # for one sampling interval per sample
    expected: dict[tuple[str, ...], float] = {}
    for _, stack in _recorded_stacks(rec, "MainThread", recursion=False):
        expected[stack] = expected.get(stack, 0.0) + rec.samples.interval
    seen = _self_times(again, 0)
    assert seen.keys() == expected.keys()
    for stack, seconds in expected.items():
        assert seen[stack] == pytest.approx(seconds, rel=1e-6), stack
    recurse = _marker_line(WORKLOAD, "RECURSE")
    assert any(stack.count(f"descend (work.py:{recurse})") == 4 for stack in seen)


@pytest.mark.browser
def test_speedscope_app_loads_the_chrome_export(browser: Browser, site: tuple[str, Path],
                                                recorded: Path, rec: Recording,
                                                tmp_path: Path) -> None:
    out = tmp_path / "work.trace.json"
    result = run_cli(["export", str(recorded), "--format", "chrome", "-o", str(out)],
                     timeout=60)
    assert result.returncode == 0, result.stderr
    events = json.loads(out.read_text())["traceEvents"]
    pid = rec.header["pid"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert "MainThread" in names.values()
    # speedscope lists a process's threads by tid: MainThread's (the pid) comes first,
    # unless the kernel's pid counter wrapped while the program ran
    first = min(names)
    expect = f"(pid {pid}), {names[first]} (tid {first}) (1/{len(names)})"
    loaded = _open_in_speedscope(browser, site, out, expect)
    assert expect in loaded.text, (loaded.text, loaded.logs)
    assert "log: Importing as Trace Event Format profile" in loaded.logs
    assert not _import_problems(loaded.logs), loaded.logs
    assert loaded.reexport is not None
    # speedscope nested the slices into the stacks the sampler took, each lasting
    # until the thread's next sample (µs; a sample after a gap lasts one interval)
    s = rec.samples
    start = min(s.times[0], rec.times[0])
    samples = _recorded_stacks(rec, "MainThread", recursion=True)
    expected: dict[tuple[str, ...], float] = {}
    for k, (index, stack) in enumerate(samples):
        began = s.times[index]
        following = s.times[samples[k + 1][0]] if k + 1 < len(samples) else None
        ended = following if following is not None \
            and following - began <= export.GAP_INTERVALS * s.interval else began + s.interval
        length = round((ended - start) * 1e6) - round((began - start) * 1e6)
        expected[stack] = expected.get(stack, 0.0) + length
    expected = {stack: us for stack, us in expected.items() if us}
    seen = _self_times(loaded.reexport, 0)
    assert seen == expected


@pytest.mark.browser
def test_speedscope_app_check_fails_for_a_file_it_cannot_read(
        browser: Browser, site: tuple[str, Path], tmp_path: Path) -> None:
    """The two tests above can fail: a file that is no profile does not show one."""
    bogus = tmp_path / "bogus.speedscope.json"
    bogus.write_text(json.dumps({"profiles": "nope"}))
    loaded = _open_in_speedscope(browser, site, bogus, "(1/", wait_ms=3000)
    assert "(1/" not in loaded.text and loaded.reexport is None, (loaded.text, loaded.logs)
