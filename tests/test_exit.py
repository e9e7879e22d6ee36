"""A monitored program exits exactly as it would without the monitor."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import (
    child_env,
    holding_default_port,
    read_url,
    record_figure,
    run_python,
    start_python,
    wait_for,
)

WORK = textwrap.dedent("""
    import sys, time, threading
    def work():
        total = 0
        for i in range(200_000):
            total += i
        return total
    threads = [threading.Thread(target=work, daemon=d) for d in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    work()
""")


def _script(tmp_path: Path, body: str, name: str = "prog.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _exit_delay(tmp_path: Path, prologue: str) -> float:
    """Seconds from the script's last statement to the process having exited."""
    path = _script(tmp_path, prologue + WORK + "\nprint(time.time(), flush=True)\n")
    result = run_python([str(path)], timeout=60)
    ended = time.time()
    assert result.returncode == 0, result.stderr
    return ended - float(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["sample", "trace"])
def test_a_script_that_calls_trace_and_returns_exits_by_itself(tmp_path: Path, mode: str) -> None:
    # It exits, with its own status (_exit_delay checks it), though stop() is never
    # called: a monitor that kept it alive would hang it past run_python's timeout.
    # How long the exit takes is the benchmark's figure (bench/figures.py), not a
    # bound here: on a loaded machine any bound is a flaky test.
    baseline = min(_exit_delay(tmp_path, "") for _ in range(3))
    monitored = min(
        _exit_delay(tmp_path, f"import stethoscope\nstethoscope.trace(port=0, mode={mode!r})\n")
        for _ in range(3)
    )
    record_figure(f"exit delay added by a running monitor, no stop() ({mode})",
                  monitored - baseline)


def test_stop_in_an_atexit_handler_leaves_nothing_running(tmp_path: Path) -> None:
    path = _script(tmp_path, """
        import atexit, sys, threading, stethoscope
        mon = stethoscope.trace(port=0, mode="trace", quiet=True)
        def check():
            stethoscope.stop()
            alive = [t.name for t in threading.enumerate() if t.name.startswith("stethoscope")]
            print("alive", alive, "trace", sys.gettrace(), "current", stethoscope.current(),
                  flush=True)
        atexit.register(check)
    """)
    result = run_python([str(path)], timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "alive [] trace None current None"


def test_an_open_event_stream_does_not_delay_exit(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    path = _script(tmp_path, f"""
        import os, time, stethoscope
        stethoscope.trace(port=0)
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.02)
    """)
    proc = start_python([str(path)])
    try:
        url = read_url(proc)
        stream = urllib.request.urlopen(url.replace("/?", "/api/events?"), timeout=60)
        assert stream.readline().startswith(b"retry:")
        flag.write_text("")
        started = time.monotonic()
        # The process ends while this stream is still open (we read it only after):
        # an open stream that held the exit would hang it here.
        proc.wait(timeout=60)
        record_figure("exit with an event stream open, from the end of main",
                      time.monotonic() - started)
        rest = stream.read().decode()
        assert "event: end" in rest and '"state":"stopped"' in rest
        assert proc.returncode == 0
    finally:
        proc.kill()
        proc.wait()


def _snapshot(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url.replace("/?", "/api/snapshot?"), timeout=60) as answer:
        return json.load(answer)  # type: ignore[no-any-return]


KEEP_SERVING = """
    import signal, stethoscope
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stethoscope.trace(port=0, daemon=False)
    def work():
        return sum(i * i for i in range(100_000))
    work()
    print("main done", flush=True)
"""


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_daemon_false_keeps_serving_the_final_picture_until_told_to_end(
        tmp_path: Path, how: signal.Signals) -> None:
    proc = start_python([str(_script(tmp_path, KEEP_SERVING))])
    try:
        url = read_url(proc)
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "main thread has finished; still serving the final picture" in line
        assert _snapshot(url)["state"] == "main-finished"
        stream = urllib.request.urlopen(url.replace("/?", "/api/events?"), timeout=60)
        assert stream.readline().startswith(b"retry:")
        # it keeps serving, untold, for a while (by its own clock: a snapshot request
        # fails if it has ended)
        first = _snapshot(url)["time"]
        wait_for(lambda: _snapshot(url)["time"] >= first + 0.5)  # type: ignore[operator]
        assert proc.poll() is None, "the process ended without being told to"
        proc.send_signal(how)
        proc.wait(timeout=60)
        assert proc.returncode == 0
        rest = stream.read().decode()  # the open page is told the program ended
        # This stream was opened after main ended (on CPython 3.12.0-3.12.2 too, which
        # start no thread then: the server's threads were all started with it).
        assert "event: end" in rest and '"state":"stopped"' in rest
        assert proc.stdout is not None and proc.stdout.read() == "main done\n"
    finally:
        proc.kill()
        proc.wait()


def test_daemon_false_ends_on_stop_from_another_thread(tmp_path: Path) -> None:
    path = _script(tmp_path, """
        import threading, stethoscope
        stethoscope.trace(port=0, daemon=False, quiet=True)
        threading.Timer(0.5, stethoscope.stop).start()
    """)
    started = time.monotonic()
    result = run_python([str(path)], timeout=60)  # it ends: a hang fails here
    record_figure("daemon=False, stop() from another thread 0.5 s in: run time",
                  time.monotonic() - started)
    assert result.returncode == 0, result.stderr
    assert "still serving the final picture" in result.stderr


def test_sigterm_still_kills_a_monitored_program(tmp_path: Path) -> None:
    path = _script(tmp_path, """
        import time, stethoscope
        stethoscope.trace(port=0)
        while True:
            time.sleep(0.05)
    """)
    proc = start_python([str(path)])
    try:
        read_url(proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("processes", [False, True])
def test_a_forked_child_does_not_own_the_parents_monitor(tmp_path: Path, processes: bool) -> None:
    path = _script(tmp_path, f"""
        import json, os, sys, urllib.request, warnings, stethoscope
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        mon = stethoscope.trace(port=0, mode="trace", quiet=True, processes={processes})
        snapshot_url = mon.url.replace("/?", "/api/snapshot?")
        pid = os.fork()
        if pid == 0:
            cur = stethoscope.current()
            if {processes}:  # a monitor of its own, reporting to the parent's
                ok = cur is not mon and type(cur.outlet).__name__ == "ChildOutlet" and cur.running
            else:
                ok = cur is None and sys.gettrace() is None
            child = stethoscope.trace(port=0, quiet=True)  # the child may start its own
            ok = ok and (cur is None or not cur.running) and child.url != mon.url
            child.stop()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        data = json.load(urllib.request.urlopen(snapshot_url, timeout=60))
        print(os.waitstatus_to_exitcode(status), data["pid"] == os.getpid(), mon.running)
        stethoscope.stop()
    """)
    result = run_python([str(path)], timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 True True"


def test_monitor_start_and_stop_print_nothing_to_stdout(tmp_path: Path) -> None:
    path = _script(tmp_path, """
        import stethoscope
        with stethoscope.trace(port=0, mode="trace"):
            sum(range(1000))
    """)
    result = run_python([str(path)], timeout=60, env=child_env())
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr.startswith("stethoscope: serving http://127.0.0.1:")
    assert result.stderr.count("\n") == 1


def test_the_default_port_falls_back_when_busy(tmp_path: Path) -> None:
    with holding_default_port():
        path = _script(tmp_path, """
            import stethoscope
            mon = stethoscope.trace()
            print(mon.url)
            mon.stop()
        """)
        result = run_python([str(path)], timeout=60)
        assert result.returncode == 0, result.stderr
        assert ":9999/" not in result.stdout
        assert "port 9999 was busy; using port" in result.stderr


def test_python_dev_mode_and_warnings_as_errors_are_clean(tmp_path: Path) -> None:
    path = _script(tmp_path, """
        import threading, stethoscope
        with stethoscope.trace(port=0, mode="trace", quiet=True) as mon:
            t = threading.Thread(target=sum, args=(range(1000),), daemon=True)
            t.start(); t.join()
            mon.snapshot().to_json()
    """)
    result = run_python(["-X", "dev", "-W", "error", str(path)], timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert sys.version_info >= (3, 10)
