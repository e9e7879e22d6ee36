"""Faults (issue #7, part 6): the program behaves exactly as without the monitor.

Every test runs the same program unmonitored and monitored, in each mode where it
matters, and compares its stdout, its own stderr and its exit code. Monitored runs go
through ``harness.py`` (below): it injects one fault into stethoscope, starts
``trace()``, runs the program as ``__main__`` while a prober thread keeps asking the
server for every endpoint, and writes what the monitor showed (notes, mode, lines,
leftovers after ``stop()``) to a side file, never to the program's output.

The program's own hard cases (threads ending mid-sample, recursion at the limit,
generators and asyncio, patched threading) are in test_faults_programs.py, which
uses this harness; process-level faults (fork, signals, -W error, a third-party
test suite) are in test_faults_process.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import HAS_MONITORING, child_env, run_python

MODES = ["sample", "trace", "auto", *(["lines"] if HAS_MONITORING else [])]
needs_monitoring = pytest.mark.skipif(not HAS_MONITORING,
                                      reason="lines mode needs sys.monitoring (Python 3.12+)")
PARALLEL = 4  # monitored runs at once (a loaded 2-CPU machine)
FAULT = "RuntimeError: injected fault"

HARNESS = textwrap.dedent('''
    """python harness.py PROGRAM: run PROGRAM as __main__ under stethoscope, with the
    fault that FAULT_SPEC (JSON) names; report to FAULT_SPEC["out"]."""
    import json
    import os
    import runpy
    import sys
    import threading
    import time
    import urllib.error
    import urllib.request

    spec = json.loads(os.environ["FAULT_SPEC"])
    import stethoscope
    from stethoscope.recordings import file as recording
    from stethoscope.collectors import counting, filters, lines, monitoring, sampler, threads
    from stethoscope.model import snapshot, store
    from stethoscope.monitor import housekeeping

    ARMED = [bool(spec.get("at_start"))]  # faults fire during trace() only if at_start
    FIRED = [0]  # how many times the fault was raised
    ROUNDS = [0]  # how many times the prober has asked every endpoint
    TICKS = [0]  # how many times the sampler thread's periodic work (folds, lines ticks) ran


    def counted(run):
        def wrapper(self):
            try:
                run(self)
            finally:
                TICKS[0] += 1
        return wrapper


    housekeeping.Housekeeping.run = counted(housekeeping.Housekeeping.run)


    def own_caller():
        """True when the caller of the patched function is stethoscope's Python code
        (False when C code, e.g. the compiled tracer, calls it)."""
        caller = sys._getframe(2)
        return os.sep + "stethoscope" + os.sep in caller.f_code.co_filename


    def failing(original, after, times, only_from_c=False, caller=None, seconds=None):
        """original, made to raise on calls after+1 ... after+times once armed (or on
        every call for `seconds` from call after+1 on); only when C code calls it, or
        only when a function named `caller` calls it."""
        calls = [0]
        began = []

        def wrapper(*args, **kwargs):
            if not ARMED[0] or (only_from_c and own_caller()) \
                    or (caller and sys._getframe(1).f_code.co_name != caller):
                return original(*args, **kwargs)
            calls[0] += 1
            if seconds is not None and calls[0] > after:
                began[:] = began or [time.monotonic()]
                if time.monotonic() - began[0] < seconds:
                    FIRED[0] += 1
                    raise RuntimeError("injected fault")
            elif after < calls[0] <= after + times:
                FIRED[0] += 1
                raise RuntimeError("injected fault")
            return original(*args, **kwargs)

        return wrapper


    FAULTS = {  # name: (owner, attribute, calls that pass before it fails, caller)
        "sampler_tick": (sampler.Sampler, "_tick", 5, None),
        "lines_tick": (lines.LinesCollector, "tick", 1, None),
        "registry": (threads, "Birth", 3, None),
        "tracer_arm": (monitoring.MonitoringTool, "_arm", 3, "_on_start"),
        "tracer_counts": (counting.ThreadCounters, "new", 1, None),
        "tracer_resolve": (filters.Resolver, "__call__", 2, None),
        "trace_start": (counting.ThreadCounters, "line_counter", 0, None),
        "lines_start": (monitoring.MonitoringTool, "_arm", 2, "start"),
        "add_samples": (store.Store, "add_samples", 1, None),
        "add_hits": (store.Store, "add_hits", 1, None),
        "add_ran": (store.Store, "add_ran", 1, None),
        "snapshot_json": (snapshot.Snapshot, "to_json", 1, None),
        "recorder": (recording.Recorder, "record", 0, None),
    }
    fault = spec.get("fault")
    if fault in FAULTS:
        owner, name, after, caller = FAULTS[fault]
        setattr(owner, name, failing(getattr(owner, name), after, spec.get("times", 10**9),
                                     only_from_c=fault == "tracer_resolve", caller=caller,
                                     seconds=spec.get("seconds")))

    prog = os.path.abspath(sys.argv[1])
    files = stethoscope.files.path_contains(prog)
    if fault == "files_filter":
        def files(path):
            if path == prog:
                return True
            FIRED[0] += 1
            raise RuntimeError("injected fault")

    ENDPOINTS = ["/", "/static/js/main.js", "/api/snapshot", "/api/activity", "/metrics",
                 "/api/events"]
    seen = {e: [] for e in ENDPOINTS}
    streams = []


    def fetch(base, token, path):
        try:
            with urllib.request.urlopen(f"{base}{path}?token={token}", timeout=60) as resp:
                if path == "/api/events":  # the first event, then hang up
                    data = b""
                    while data.count(b"\\n\\n") < 2:
                        chunk = resp.read1(65536)
                        if not chunk:
                            break
                        data += chunk
                    return resp.status, data[:60].decode(errors="replace")
                resp.read()
                return resp.status, ""
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            exc.close()
            return exc.code, body
        except Exception as exc:
            return -1, f"{type(exc).__name__}: {exc}"


    def probe(base, token, stop):
        while True:
            for e in ENDPOINTS:
                seen[e].append(fetch(base, token, e))
            ROUNDS[0] += 1
            if stop.wait(0.1):
                return


    def listen(base, token, connected):
        """A long-lived event stream: everything it receives until it ends."""
        data = b""
        try:
            with urllib.request.urlopen(f"{base}/api/events?token={token}",
                                        timeout=60) as resp:
                connected.set()
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    data += chunk
        except Exception as exc:
            data += f"\\n!! {type(exc).__name__}".encode()
        streams.append(data.decode(errors="replace"))


    ORIGINAL = {"start": threading.Thread.start, "init": threading.Thread.__init__,
                "shutdown": threading._shutdown}
    kwargs = {"record": spec["record"]} if spec.get("record") else {}
    mon = stethoscope.trace(files, mode=spec["mode"], port=0, sample_hz=spec.get("hz", 100),
                            **kwargs)
    ARMED[0] = True
    start_mode = mon.mode
    base, _, token = mon.url.partition("/?token=")
    stop, connected = threading.Event(), threading.Event()
    helpers = [threading.Thread(target=listen, args=(base, token, connected),
                                name="listener", daemon=True),
               threading.Thread(target=probe, args=(base, token, stop), name="prober",
                                daemon=True)]
    helpers[0].start()
    connected.wait(60)  # the stream's first snapshot is the first build
    helpers[1].start()
    code = 0
    sys.argv = sys.argv[1:]
    try:
        runpy.run_path(prog, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    finally:
        # Before anything is read: the fault has fired (while the program ran or
        # after), the monitor has noted it (unless the spec says it notes nothing), and
        # the prober has asked every endpoint since; however long a loaded machine takes.
        deadline = time.monotonic() + 60

        def noted():
            return any("injected fault" in note for note in mon.snapshot().notes)

        def sampling():
            return any(t.name == "stethoscope-sampler" for t in threading.enumerate())

        while time.monotonic() < deadline and fault and not (
                FIRED[0] and (noted() or not spec.get("note", True))):
            time.sleep(0.02)
        # two more periodic runs: the second began after the program ended, so its fold
        # (and lines tick) holds everything the program ran
        ticks, rounds = TICKS[0], ROUNDS[0]
        while time.monotonic() < deadline and TICKS[0] < ticks + 2 and sampling():
            time.sleep(0.02)
        while time.monotonic() < deadline and ROUNDS[0] < rounds + 2:
            time.sleep(0.02)
        if spec.get("recover"):
            ARMED[0] = False  # what failed works again: the monitor may recover
        stop.set()
        helpers[1].join(60)
        final = {e: fetch(base, token, e) for e in ENDPOINTS}
        try:
            snap = mon.snapshot()
            notes = list(snap.notes)
            rows = {f.path: [r[0] for r in f.lines] for f in snap.files}
            report = {"mode": snap.mode, "rows": rows, "rate": snap.sample_hz_achieved}
        except Exception as exc:
            notes, report = list(mon.store._notes), {"error": repr(exc)}
        sampler_alive = any(t.name == "stethoscope-sampler" for t in threading.enumerate())
        stethoscope.stop()
        helpers[0].join(60)
        leaks = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
                t.name.startswith("stethoscope") for t in threading.enumerate()):
            time.sleep(0.02)
        leaks += [t.name for t in threading.enumerate() if t.name.startswith("stethoscope")]
        if sys.gettrace() is not None or threading.gettrace() is not None:
            leaks.append("a trace function")
        if sys.version_info >= (3, 12):
            leaks += [f"tool id {i}" for i in range(6) if sys.monitoring.get_tool(i)]
        now = {"start": threading.Thread.start, "init": threading.Thread.__init__,
               "shutdown": threading._shutdown}
        leaks += [f"threading {k}" for k in ORIGINAL if ORIGINAL[k] is not now[k]]
        with open(spec["out"], "w") as f:
            json.dump({"notes": notes, "seen": seen, "final": final, "streams": streams,
                       "sampler_alive": sampler_alive, "start_mode": start_mode,
                       "leaks": leaks, **report}, f)
    sys.exit(code)
''')

# The program for the collector faults: threads, a generator, asyncio; about 1 s.
WORK = textwrap.dedent('''
    import asyncio
    import sys
    import threading
    import time


    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)


    def squares(n):
        for i in range(n):
            yield i * i


    async def task(i):
        await asyncio.sleep(0.001 * (i % 3))
        return sum(squares(100 + i))


    async def gather(n):
        return sum(await asyncio.gather(*(task(i) for i in range(n))))


    def worker(i, out, lock):
        value = fib(14) + sum(squares(3000 + i))
        with lock:
            out.append(value)


    def main():
        lock = threading.Lock()
        for round_ in range(6):
            out = []
            ts = [threading.Thread(target=worker, args=(i, out, lock)) for i in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            print(round_, sorted(out), asyncio.run(gather(8)))
            time.sleep(0.06)
        print("the program's own stderr line", file=sys.stderr)
        print("done")
        sys.exit(3)


    if __name__ == "__main__":
        main()
''')


@dataclass
class Run:
    spec: dict[str, Any]
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    def monitor_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("stethoscope: ")]

    def own_stderr(self) -> str:
        return "".join(line for line in self.stderr.splitlines(keepends=True)
                       if not line.startswith("stethoscope: "))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    (root / "harness.py").write_text(HARNESS)
    (root / "prog").mkdir()
    return root


def write_program(workdir: Path, name: str, text: str) -> Path:
    path = workdir / "prog" / name
    path.write_text(text)
    return path


_baselines: dict[str, subprocess.CompletedProcess[str]] = {}


def baseline(workdir: Path, program: Path) -> subprocess.CompletedProcess[str]:
    """The program run unmonitored (once per module)."""
    if str(program) not in _baselines:
        _baselines[str(program)] = run_python([str(program)], cwd=workdir, timeout=60)
    return _baselines[str(program)]


def run_parallel(jobs: list[tuple[list[str], dict[str, str]]], cwd: Path,
                 timeout: float = 180) -> list[subprocess.CompletedProcess[str]]:
    """``python *args`` with each (args, extra environment), PARALLEL at a time."""
    done: list[subprocess.CompletedProcess[str]] = []
    for first in range(0, len(jobs), PARALLEL):
        batch = [(args, subprocess.Popen([sys.executable, *args], cwd=cwd, env=child_env(**env),
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True))
                 for args, env in jobs[first:first + PARALLEL]]
        for args, proc in batch:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                for _, other in batch:
                    other.kill()
                    other.communicate()
                raise AssertionError(f"{args} did not finish within {timeout} s") from None
            done.append(subprocess.CompletedProcess(args, proc.returncode, stdout, stderr))
    return done


def run_monitored(workdir: Path, program: Path, specs: list[dict[str, Any]],
                  timeout: float = 180) -> list[Run]:
    """Run the program under harness.py once per spec (in parallel)."""
    jobs, outs = [], []
    for n, spec in enumerate(specs):
        out = workdir / f"report-{program.stem}-{spec.get('fault')}-{spec['mode']}-{n}.json"
        out.unlink(missing_ok=True)
        outs.append(out)
        jobs.append(([str(workdir / "harness.py"), str(program)],
                     {"FAULT_SPEC": json.dumps({**spec, "out": str(out)}), **spec.get("env", {})}))
    runs = []
    for spec, out, proc in zip(specs, outs, run_parallel(jobs, workdir, timeout), strict=True):
        assert out.exists(), f"{spec}: no report; stderr:\n{proc.stderr}"
        runs.append(Run(spec, proc.returncode, proc.stdout, proc.stderr,
                        json.loads(out.read_text())))
    return runs


def assert_same_program(run: Run, plain: subprocess.CompletedProcess[str]) -> None:
    """Same stdout, same own stderr, same exit code; no leftovers after stop()."""
    where = f"{run.spec}"
    assert run.returncode == plain.returncode, (where, run.stderr)
    assert run.stdout == plain.stdout, where
    assert run.own_stderr() == plain.stderr, (where, run.stderr)
    assert "Traceback" not in run.stderr, (where, run.stderr)
    assert run.report["leaks"] == [], (where, run.report["leaks"])


def assert_one_note(run: Run, expected: str, *, besides: tuple[str, ...] = ()) -> None:
    """stderr has the serving line (and the recording's line, and lines starting with
    ``besides``) and exactly one line about the fault, which is also the snapshot's note."""
    where = f"{run.spec}"
    expected_lines = ("stethoscope: serving ", "stethoscope: recorded to ", *besides)
    lines = [line for line in run.monitor_lines() if not line.startswith(expected_lines)]
    assert len(lines) == 1, (where, run.stderr)
    message = lines[0].removeprefix("stethoscope: ")
    assert expected in message and FAULT in message, (where, message)
    assert message in run.report["notes"], (where, run.report["notes"])
    assert sum(line.startswith("stethoscope: serving ") for line in run.monitor_lines()) == 1


def assert_server_answered(run: Run, broken: frozenset[str] = frozenset()) -> None:
    """Every endpoint answered 200 each time it was asked; a broken one may answer a
    one-line 500 instead (no traceback)."""
    for endpoint, answers in run.report["seen"].items():
        assert answers, (run.spec, endpoint, "never asked")
        for status, body in answers:
            if status == 500 and endpoint in broken:
                assert body == "500 internal error\n", (run.spec, endpoint, body)
            else:
                assert status == 200, (run.spec, endpoint, status, body)


# -- collector faults ----------------------------------------------------------


def test_a_sampler_that_raises_stops_alone_and_the_program_runs_on(workdir: Path) -> None:
    program = write_program(workdir, "work.py", WORK)
    plain = baseline(workdir, program)
    for run in run_monitored(workdir, program,
                             [{"fault": "sampler_tick", "mode": m} for m in MODES]):
        assert_same_program(run, plain)
        assert_one_note(run, "the sampler stopped after an internal error")
        assert not run.report["sampler_alive"]
        assert_server_answered(run)


@needs_monitoring
def test_a_lines_collector_that_raises_ends_lines_mode_but_not_the_sampler(
        workdir: Path) -> None:
    program = write_program(workdir, "work.py", WORK)
    plain = baseline(workdir, program)
    specs = [{"fault": f, "mode": m} for f in ("lines_tick", "add_ran") for m in ("lines", "auto")]
    for run in run_monitored(workdir, program, specs):
        assert_same_program(run, plain)  # add_ran also fails in stop(): the tool id is freed
        assert_one_note(run, "lines mode stopped after an internal error")
        assert run.report["sampler_alive"], "a lines fault must not stop the sampler"
        assert run.report["mode"] == "sample"
        assert_server_answered(run)


def test_a_thread_registry_that_raises_turns_creation_sites_off(workdir: Path) -> None:
    program = write_program(workdir, "work.py", WORK)
    plain = baseline(workdir, program)
    for run in run_monitored(workdir, program, [{"fault": "registry", "mode": m} for m in MODES]):
        assert_same_program(run, plain)
        assert_one_note(run, "thread creation sites are off after an internal error")
        assert run.report["sampler_alive"]
        assert_server_answered(run)


def test_a_tracer_callback_that_raises_ends_exact_counting_only(workdir: Path) -> None:
    """3.12+: the PY_START callback (trace and lines modes) and the Python LINE
    callback; 3.10/3.11: the compiled trace function and the Python one."""
    program = write_program(workdir, "work.py", WORK)
    plain = baseline(workdir, program)
    python_path = {"STETHOSCOPE_NO_SPEEDUPS": "1"}
    if HAS_MONITORING:
        specs = [{"fault": "tracer_arm", "mode": m} for m in ("trace", "lines", "auto")]
    else:
        specs = [{"fault": "tracer_resolve", "mode": "trace"}]
    specs.append({"fault": "tracer_counts", "mode": "trace", "env": python_path})
    for run in run_monitored(workdir, program, specs):
        assert_same_program(run, plain)
        what = "exact line counting" if run.spec["mode"] == "trace" else "lines mode"
        assert_one_note(run, f"{what} stopped after an internal error")
        assert run.report["sampler_alive"]
        assert run.report["mode"] == "sample"
        assert_server_answered(run)


def test_a_mode_that_fails_to_start_falls_back_to_sampling(workdir: Path) -> None:
    program = write_program(workdir, "work.py", WORK)
    plain = baseline(workdir, program)
    specs = [{"fault": "trace_start", "mode": "trace", "at_start": True}]
    if HAS_MONITORING:
        specs.append({"fault": "lines_start", "mode": "lines", "at_start": True})
    for run in run_monitored(workdir, program, specs):
        assert_same_program(run, plain)
        assert_one_note(run, f"{run.spec['mode']} mode could not start after an internal error")
        assert run.report["start_mode"] == "sample"
        assert_server_answered(run)


def test_a_store_that_raises_never_reaches_the_program(workdir: Path) -> None:
    program = write_program(workdir, "work.py", WORK)
    plain = baseline(workdir, program)
    specs = [{"fault": "add_samples", "mode": m} for m in MODES]
    specs.append({"fault": "add_hits", "mode": "trace"})
    for run in run_monitored(workdir, program, specs):
        assert_same_program(run, plain)
        if run.spec["fault"] == "add_hits":
            assert_one_note(run, "exact line counting stopped after an internal error")
            assert run.report["sampler_alive"]
        else:
            assert_one_note(run, "the sampler stopped after an internal error")
        assert_server_answered(run)


def test_a_snapshot_build_that_raises_answers_one_line_500s_then_recovers(
        workdir: Path) -> None:
    program = write_program(workdir, "work.py", WORK)
    plain = baseline(workdir, program)
    broken = frozenset({"/api/snapshot", "/api/events", "/metrics"})
    # Every build fails from the second on (the stream's first is the first), until
    # the program ends.
    (run,) = run_monitored(workdir, program, [{"fault": "snapshot_json", "mode": "auto",
                                               "seconds": 60, "recover": True,
                                               "note": False}])
    assert_same_program(run, plain)
    assert run.monitor_lines() == [line for line in run.monitor_lines()
                                   if line.startswith("stethoscope: serving ")]
    assert_server_answered(run, broken)
    statuses = [status for endpoint in broken for status, _ in run.report["seen"][endpoint]]
    assert 500 in statuses, "the fault never fired"
    assert {status for status, _ in run.report["final"].values()} == {200}, run.report["final"]
    # A stream open while builds failed ended there (the page reconnects), before
    # stop()'s end event; it never carries an error answer among its events.
    (stream,) = run.report["streams"]
    assert stream.startswith("retry: 2000\n\nevent: snapshot\n"), stream[:80]
    assert "HTTP/1" not in stream and "internal error" not in stream, stream[-300:]
    assert "event: end" not in stream and "!!" not in stream, stream[-300:]


def test_a_recorder_that_raises_stops_recording_with_one_note(workdir: Path) -> None:
    program = write_program(workdir, "work.py", WORK)
    plain = baseline(workdir, program)
    record = str(workdir / "faulty.stetho")
    # Its first record fails while the program is monitored (the harness waits for the
    # fault and its note before it stops the monitor), not only the last.
    (run,) = run_monitored(workdir, program, [{"fault": "recorder", "mode": "auto",
                                               "record": record}])
    assert_same_program(run, plain)
    assert_one_note(run, "stopped after an error")
    assert run.report["sampler_alive"]
    assert_server_answered(run)
    assert Path(record).read_bytes().startswith(b"STETHOSCOPE-RECORDING\n")


def test_a_files_filter_that_raises_is_reported_once(workdir: Path) -> None:
    program = write_program(workdir, "work.py", WORK)
    plain = baseline(workdir, program)
    for run in run_monitored(workdir, program,
                             [{"fault": "files_filter", "mode": m} for m in ("trace", "auto")]):
        assert_same_program(run, plain)
        assert_one_note(run, "the files filter raised",
                        besides=("stethoscope: child processes show files.user",))
        assert str(program) in run.report["rows"], "the file it accepts is monitored"
        assert_server_answered(run)
