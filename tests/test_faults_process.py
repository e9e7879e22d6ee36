"""Faults at the process level (issue #7, part 6): fork() with a live event stream,
signals during stop(), ``-X dev -W error``, and a third-party test suite under
``stethoscope run -m pytest``. Each program runs unmonitored and monitored; its
stdout and exit code must be the same, and stderr may only add the monitor's line.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
import threading
import urllib.request
from pathlib import Path

from conftest import (
    HAS_MONITORING,
    child_env,
    read_url,
    record_figure,
    run_cli,
    run_python,
    wait_for,
)

MODES = ["sample", "trace", "auto", *(["lines"] if HAS_MONITORING else [])]


def _monitor_lines_only(stderr: str) -> list[str]:
    """stderr's lines, which must all be the monitor's."""
    lines = stderr.splitlines()
    assert all(line.startswith("stethoscope: ") for line in lines), stderr
    return lines


# -- fork() while the server runs ----------------------------------------------

FORK = textwrap.dedent('''
    import os
    import sys
    import threading
    import time

    MODE = os.environ.get("FAULTS_MODE")
    SYNC = os.environ.get("FAULTS_SYNC")  # where the test and the program meet


    def wait_for_file(name):
        deadline = time.monotonic() + 60
        while SYNC and not os.path.exists(os.path.join(SYNC, name)):
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {name}")
            time.sleep(0.02)


    def work(n):
        return sum(i * i for i in range(n))


    def main():
        if MODE:
            import stethoscope
            stethoscope.trace(mode=MODE, port=0)
        wait_for_file("streaming")
        print("parent before", work(10000))
        for how in ("os._exit", "sys.exit"):
            sys.stdout.flush()  # or the child writes the parent's buffer out again
            pid = os.fork()
            if pid == 0:
                print("child", how, work(30000))
                t = threading.Thread(target=lambda: print("child thread", work(1000)))
                t.start()
                t.join()
                sys.stdout.flush()
                if how == "os._exit":
                    os._exit(7)
                sys.exit(5)
            _, status = os.waitpid(pid, 0)
            print("child exited", os.waitstatus_to_exitcode(status))
        if SYNC:
            open(os.path.join(SYNC, "forked"), "w").close()
        wait_for_file("seen")
        print("parent after", work(10000))
        if MODE:
            stethoscope.stop()


    if __name__ == "__main__":
        main()
''')

# CPython 3.12+ warns on fork() in any process with more than one OS thread; the
# monitor's threads (sampler, server) make it one, so the warning is expected there.
FORK_WARNING = re.compile(r"^.*DeprecationWarning: This process \(pid=\d+\) is multi-threaded, "
                          r"use of fork\(\) may lead to deadlocks in the child\.\n.*\n",
                          re.MULTILINE)


class _Stream:
    """An event-stream client in a thread: counts the events it receives."""

    def __init__(self, url: str) -> None:
        base, _, token = url.partition("/?token=")
        self.response = urllib.request.urlopen(f"{base}/api/events?token={token}", timeout=60)
        self.events: list[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        with self.response:
            while chunk := self.response.read1(65536):
                buffer += chunk
                while b"\n\n" in buffer:
                    event, buffer = buffer.split(b"\n\n", 1)
                    if event.startswith(b"event: "):
                        self.events.append(event.split(b"\n", 1)[0][7:])


def test_fork_with_a_live_event_stream(tmp_path: Path) -> None:
    program = tmp_path / "fork.py"
    program.write_text(FORK)
    plain = run_python([str(program)], cwd=tmp_path, timeout=60)
    assert plain.returncode == 0 and plain.stdout.count("child exited") == 2, plain
    for mode in MODES:
        sync = tmp_path / mode
        sync.mkdir()
        proc = subprocess.Popen([sys.executable, str(program)], cwd=tmp_path,
                                env=child_env(FAULTS_MODE=mode, FAULTS_SYNC=str(sync)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stream = _Stream(read_url(proc))
            wait_for(lambda: stream.events)  # noqa: B023
            (sync / "streaming").touch()
            wait_for((sync / "forked").exists)
            before = len(stream.events)
            # The parent's stream goes on after the forks: the child closed only its
            # copies of the sockets.
            wait_for(lambda: len(stream.events) >= before + 2)  # noqa: B023
            (sync / "seen").touch()
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.communicate()
        stream.thread.join(30)
        assert stream.events[-1] == b"end", (mode, stream.events[-3:])  # stop() ended it
        assert set(stream.events[:-1]) == {b"snapshot"}, mode
        assert proc.returncode == plain.returncode, (mode, stderr)
        assert stdout == plain.stdout, mode  # nothing twice, nothing lost
        if HAS_MONITORING:
            stderr = FORK_WARNING.sub("", stderr)
        assert stderr == "", (mode, stderr)  # after the serving line, which read_url took


# -- signals arriving during stop() ----------------------------------------------

SIGNALS = textwrap.dedent('''
    import json
    import os
    import signal
    import sys
    import threading
    import time

    MODE = os.environ.get("FAULTS_MODE")
    SIGS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    received = {s: 0 for s in SIGS}
    during = [0]
    in_stop = [False]
    if MODE:
        import stethoscope


    def handler(signum, frame):
        received[signum] += 1
        if in_stop[0]:
            during[0] += 1
            if MODE and signum == signal.SIGTERM:
                stethoscope.stop()  # a graceful-shutdown handler: stop() inside stop()


    def listen(url, connected):
        """An open event stream: stop() gives it time for its last event."""
        import urllib.request
        base, _, token = url.partition("/?token=")
        with urllib.request.urlopen(f"{base}/api/events?token={token}", timeout=60) as resp:
            connected.set()
            while resp.read1(65536):
                pass


    def sender():
        while not done.is_set():
            for s in SIGS:
                os.kill(os.getpid(), s)
            time.sleep(0.002)  # the pace of the signals: all along, not a wait


    for s in SIGS:
        signal.signal(s, handler)
    done = threading.Event()
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    took = []
    cycle = 0
    # trace() ... stop(), with signals arriving all along; stop() takes milliseconds,
    # so on a loaded machine go on until one signal has arrived during it.
    while cycle < 3 or (MODE and not during[0] and cycle < 60):
        cycle += 1
        if MODE:
            mon = stethoscope.trace(mode=MODE, port=0, quiet=True)
            connected = threading.Event()
            listener = threading.Thread(target=listen, args=(mon.url, connected), daemon=True)
            listener.start()
            connected.wait(60)
        total = sum(i * i for i in range(100000))
        time.sleep(0.1)  # monitored, with signals arriving: part of the workload
        in_stop[0] = True
        began = time.monotonic()
        if MODE:
            stethoscope.stop()
        took.append(time.monotonic() - began)
        in_stop[0] = False
        if MODE:
            listener.join(60)
    time.sleep(0.05)  # signals go on arriving after the last stop(): the handlers stay
    done.set()
    t.join()
    print("total", total)
    print("every handler ran:", all(received[s] > 0 for s in SIGS))
    print("handlers kept:", all(signal.getsignal(s) is handler for s in SIGS))
    print("stopped:", not MODE or stethoscope.current() is None)
    if MODE:
        with open(os.environ["FAULTS_OUT"], "w") as f:
            json.dump({"during": during[0], "took": max(took)}, f)
''')


def test_signals_during_stop_run_their_handlers_and_stop_completes(tmp_path: Path) -> None:
    program = tmp_path / "signals.py"
    program.write_text(SIGNALS)
    plain = run_python([str(program)], cwd=tmp_path, timeout=60)
    assert plain.returncode == 0 and "every handler ran: True" in plain.stdout, plain
    for mode in MODES:
        out = tmp_path / f"{mode}.json"
        # up to 60 cycles on a loaded machine: a generous timeout (a hang fails here)
        run = run_python([str(program)], cwd=tmp_path, timeout=100,
                         env=child_env(FAULTS_MODE=mode, FAULTS_OUT=str(out)))
        assert (run.returncode, run.stdout, run.stderr) == \
            (plain.returncode, plain.stdout, plain.stderr), mode
        report = json.loads(out.read_text())
        assert report["during"] > 0, (mode, "no signal arrived during stop()")
        # stop() completed every time (the program went on and said so above); how
        # long it took is the benchmark's figure
        record_figure(f"stop() with signals arriving: max ({mode})", report["took"])


# -- python -X dev -W error: no warning at all ------------------------------------

DEV = textwrap.dedent('''
    import json
    import os
    import sys
    import threading
    import urllib.request

    import stethoscope

    mon = stethoscope.current()
    own = mon is None
    if own:
        mon = stethoscope.trace(mode=os.environ["FAULTS_MODE"], port=0)


    def work(n):
        return sum(i * i for i in range(n))


    threads = [threading.Thread(target=work, args=(50000,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    base, _, token = mon.url.partition("/?token=")
    with urllib.request.urlopen(f"{base}/?token={token}", timeout=60) as resp:
        page = resp.read()
    with urllib.request.urlopen(f"{base}/api/snapshot?token={token}", timeout=60) as resp:
        snap = json.load(resp)
    stream = urllib.request.urlopen(f"{base}/api/events?token={token}", timeout=60)
    data = b""
    while data.count(b"event: snapshot") < 2:
        data += stream.read1(65536)
    stream.close()
    if own:
        stethoscope.stop()
    print("ok", b"<html" in page.lower(), snap["pid"] == os.getpid())
''')


def test_no_warning_at_all_under_dev_mode_and_warnings_as_errors(tmp_path: Path) -> None:
    program = tmp_path / "dev.py"
    program.write_text(DEV)
    strict = ["-X", "dev", "-W", "error"]
    runs = []
    for mode in MODES:
        runs.append((f"trace() {mode}", run_python([*strict, str(program)], cwd=tmp_path,
                                                     env=child_env(FAULTS_MODE=mode))))
    for mode in ("auto", "trace"):
        runs.append((f"run {mode}", run_python(
            [*strict, "-m", "stethoscope", "run", "--port", "0", "--mode", mode, str(program)],
            cwd=tmp_path)))
    for what, run in runs:
        assert run.returncode == 0, (what, run.stderr)
        assert run.stdout == "ok True True\n", (what, run.stdout, run.stderr)
        lines = _monitor_lines_only(run.stderr)
        assert len(lines) == 1 and lines[0].startswith("stethoscope: serving "), (what, lines)


# -- a real third-party test suite under stethoscope run -m pytest -----------------

MIXED = textwrap.dedent('''
    import sys
    import threading

    import pytest


    def test_passes_with_threads():
        out = []
        ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert sorted(out) == list(range(8))


    def test_fails():
        assert 1 + 1 == 3


    def test_recursion_error_is_caught():
        def forever(n):
            return forever(n + 1)
        with pytest.raises(RecursionError):
            forever(0)


    @pytest.mark.skip(reason="skipped on purpose")
    def test_skipped():
        pass


    @pytest.mark.xfail(reason="fails on purpose", strict=True)
    def test_xfails():
        assert sys.maxsize < 0
''')


def _networkx_tests() -> list[str]:
    spec = importlib.util.find_spec("networkx")
    assert spec is not None and spec.submodule_search_locations, \
        "networkx is not installed: pip install -e '.[test]'"
    root = Path(next(iter(spec.submodule_search_locations)))
    paths = [f"algorithms/shortest_paths/tests/test_{name}.py"
             for name in ("weighted", "unweighted", "generic", "astar")]
    paths += [f"classes/tests/test_{name}.py" for name in ("graph", "digraph", "function")]
    return [str(root / path) for path in paths]


def _outcome(run: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """The counts of pytest's summary line, e.g. {'passed': 810, 'skipped': 2}."""
    last = run.stdout.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last.split(" in ")[0])}
    assert counts.get("passed", 0) > 300, run.stdout[-2000:]
    return counts


def test_a_third_party_test_suite_under_stethoscope_run_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_mixed.py").write_text(MIXED)
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
            str(tmp_path / "test_mixed.py"), *_networkx_tests()]
    plain = run_python(args, cwd=tmp_path, timeout=100)
    expected = _outcome(plain)
    assert plain.returncode == 1 and expected["failed"] == 1 and expected["xfailed"] == 1, \
        plain.stdout[-2000:]
    # networkx's own lines are in site-packages: show them, so trace mode counts them.
    modes = ["auto", "trace"] if sys.version_info[:2] == (3, 12) else ["auto"]
    for mode in modes:
        run = run_cli(["run", "--port", "0", "--mode", mode, "--files", "contains:networkx",
                       *args], cwd=tmp_path, timeout=100)
        assert _outcome(run) == expected, (mode, run.stdout[-2000:])
        assert run.returncode == plain.returncode, (mode, run.stderr)
        own = [line for line in run.stderr.splitlines(keepends=True)
               if not line.startswith("stethoscope: ")]
        assert "".join(own) == plain.stderr, (mode, run.stderr)
        assert run.stderr.count("stethoscope: ") == 1, (mode, run.stderr)
        assert "stethoscope: serving " in run.stderr, (mode, run.stderr)

