"""'Why won't my program exit?': each classic hang is named, located and explained."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import child_env, read_url, record_figure, run_cli, start_python, wait_for

SCENARIOS = {
    "queue": ("""
        import queue, threading
        jobs = queue.Queue()
        def consume():
            while True:
                jobs.get()
        threading.Thread(target=consume, name="consumer").start()  # CREATED
    """, "consumer", "waiting in queue.get()", "get(timeout=...)"),
    "recv": ("""
        import socket, threading
        left, right = socket.socketpair()
        def listen():
            left.recv(1024)
        threading.Thread(target=listen, name="listener").start()  # CREATED
    """, "listener", "waiting in socket.recv()", "settimeout"),
    "event": ("""
        import threading
        never = threading.Event()
        def waiter():
            never.wait()
        threading.Thread(target=waiter, name="event-waiter").start()  # CREATED
    """, "event-waiter", "waiting in Event.wait()", "set() the event"),
    "join": ("""
        import threading
        never = threading.Event()
        stuck = threading.Thread(target=never.wait, name="stuck")
        stuck.start()
        def joiner():
            stuck.join()
        threading.Thread(target=joiner, name="joiner").start()  # CREATED
    """, "joiner", "waiting in Thread.join()", "waits in join() for thread 'stuck'"),
    "executor": ("""
        import threading
        from concurrent.futures import ThreadPoolExecutor
        never = threading.Event()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool")
        pool.submit(never.wait)  # CREATED
    """, "pool_0", "waiting in Event.wait()", "ThreadPoolExecutor worker"),
    "httpserver": ("""
        import socket, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
        class Server(ThreadingHTTPServer):
            daemon_threads = False
        server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, name="http-acceptor", daemon=True).start()
        client = socket.create_connection(server.server_address)  # holds a connection open
        client.sendall(b"GET / HTTP/1.1\\r\\n")  # CREATED
        import time
        deadline = time.monotonic() + 60  # until its request thread (non-daemon) runs:
        while time.monotonic() < deadline and not [  # alive, not only started (a thread
                t for t in threading.enumerate()  # still starting when main ends may be
                if "process_request" in t.name and t.is_alive()]:  # missed by the exit)
            time.sleep(0.01)
    """, "Thread-", "waiting in a socket read", "daemon_threads = True"),
}


def _hang_report(script: Path, timeout: float = 60.0) -> tuple[str, float]:
    """Run script under `stethoscope run --hang-report 1`; return the report and when it came."""
    proc = subprocess.Popen(
        [*_cli(), "run", "--port", "0", "--hang-report", "1", str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
    )
    started = time.monotonic()
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        while time.monotonic() - started < timeout:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "keep the process alive" in line or "keeps the process alive" in line:
                break
        elapsed = time.monotonic() - started
        # The report is one write() of a few KB (these are 1-2.5 KB): a pipe write of
        # up to PIPE_BUF (4 KiB) lands whole, so once its first line is read the rest
        # is in the pipe, and a kill cannot cut it.
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        return "".join(lines) + proc.stderr.read(), elapsed
    finally:
        proc.kill()
        proc.wait()


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "stethoscope"]


def _block(report: str, name: str) -> str:
    """The report's paragraph about thread ``name`` (a prefix for generated names)."""
    for block in report.split("\n\n"):
        if re.search(rf'Thread "{re.escape(name)}', block):
            return block
    raise AssertionError(f"no thread {name!r} in the report:\n{report}")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_classic_hang_is_named_located_and_explained(tmp_path: Path, scenario: str) -> None:
    body, thread, state, hint = SCENARIOS[scenario]
    script = tmp_path / f"scenario_{scenario}.py"  # not queue.py: that would shadow queue
    script.write_text(textwrap.dedent(body))
    created_line = next(i for i, text in enumerate(script.read_text().splitlines(), 1)
                        if text.endswith("# CREATED"))
    report, elapsed = _hang_report(script)
    assert "non-daemon thread" in report, report
    block = _block(report, thread)
    assert "non-daemon" in block.splitlines()[0]
    assert f"state: {state}" in block
    assert hint in block
    if scenario != "httpserver":  # its request thread is started inside socketserver
        assert f"created at {script}:{created_line}" in block
    else:  # started inside socketserver, by a thread the script started
        assert "socketserver.py" in block and "by thread http-acceptor, itself started at " \
            f"{script}:{created_line - 2}" in block
    # it came (within _hang_report's generous timeout); how soon is the benchmark's
    record_figure(f"hang report with --hang-report 1, from start ({scenario})", elapsed)


def test_a_thread_started_from_main_without_daemon_is_called_inherited(tmp_path: Path) -> None:
    script = tmp_path / "lib.py"
    script.write_text(textwrap.dedent(SCENARIOS["queue"][0]))
    block = _block(_hang_report(script)[0], "consumer")
    assert "inherited from its creator" in block
    assert "started from MainThread (itself non-daemon) without daemon=" in block


def test_explicit_daemon_false_is_not_called_inherited(tmp_path: Path) -> None:
    script = tmp_path / "explicit.py"
    script.write_text(textwrap.dedent("""
        import threading
        never = threading.Event()
        threading.Thread(target=never.wait, name="explicit", daemon=False).start()
    """))
    block = _block(_hang_report(script)[0], "explicit")
    assert "inherited" not in block


def test_a_program_whose_threads_end_prints_no_report(tmp_path: Path) -> None:
    script = tmp_path / "clean.py"
    script.write_text(textwrap.dedent("""
        import threading, time
        def work():
            time.sleep(0.3)  # a non-daemon thread that ends on its own, soon after main
        threading.Thread(target=work, name="finisher").start()
    """))
    # it must end well before the report is due, however loaded the machine
    result = run_cli(["run", "--port", "0", "--hang-report", "30", str(script)], timeout=100)
    assert result.returncode == 0
    assert "keep" not in result.stderr and "non-daemon" not in result.stderr, result.stderr


def test_hang_report_zero_turns_it_off(tmp_path: Path) -> None:
    script = tmp_path / "off.py"
    script.write_text(textwrap.dedent("""
        import threading, time
        # it holds the exit past the default --hang-report (3 s): without the 0 the
        # report would come
        threading.Thread(target=time.sleep, args=(4,), name="sleeper").start()
    """))
    result = run_cli(["run", "--port", "0", "--hang-report", "0", str(script)], timeout=100)
    assert result.returncode == 0
    assert "sleeper" not in result.stderr


def test_the_page_data_carries_the_exit_banner(tmp_path: Path) -> None:
    script = tmp_path / "banner.py"
    script.write_text(textwrap.dedent("""
        import json, threading, time, urllib.request, stethoscope
        never = threading.Event()
        threading.Thread(target=never.wait, name="holder").start()
        url = stethoscope.current().url.replace("/?", "/api/snapshot?")
        def watch():
            deadline = time.monotonic() + 60
            while True:  # until the hang report is out (--hang-report 1)
                data = json.load(urllib.request.urlopen(url, timeout=60))
                if data["exit"] and data["exit"]["reported"] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            holder = next(t for t in data["threads"] if t["name"] == "holder")
            blocking = data["exit"]["blocking"]
            print(data["state"], data["exit"]["reported"], holder["ident"] in blocking,
                  holder["kind"], bool(holder["hints"]), flush=True)
            never.set()
        threading.Thread(target=watch, name="watcher", daemon=True).start()
    """))
    result = run_cli(["run", "--port", "0", "--hang-report", "1", str(script)], timeout=100)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "main-finished True True event True"


def test_dump_signal_prints_the_thread_report(tmp_path: Path) -> None:
    script = tmp_path / "dumpme.py"
    script.write_text(textwrap.dedent("""
        import threading, time
        threading.Thread(target=time.sleep, args=(300,), name="napper", daemon=True).start()
        print("ready", flush=True)
        time.sleep(300)  # the program the test signals, then kills
    """))
    proc = start_python(["-m", "stethoscope", "run", "--port", "0", "--dump-signal", "USR1",
                         str(script)])
    try:
        snapshot_url = read_url(proc).replace("/?", "/api/snapshot?")

        def napping() -> bool:  # the sampler has published the napper, asleep
            data = json.load(urllib.request.urlopen(snapshot_url, timeout=60))
            return any(t["name"] == "napper" and t["kind"] == "sleep" for t in data["threads"])

        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        wait_for(napping)
        proc.send_signal(signal.SIGUSR1)
        assert proc.stderr is not None
        text = ""
        deadline = time.monotonic() + 60
        # the report up to the napper's state line (header, creation site, state)
        while not re.search(r'Thread "napper.*\n(.*\n)*?\s+state: .*\n', text) \
                and time.monotonic() < deadline:
            text += proc.stderr.readline()
        # the signal did not end the program: it still serves
        assert proc.poll() is None and napping(), "the signal must not end the program"
        proc.kill()
        proc.wait()
        block = _block(text + proc.stderr.read(), "napper")
        assert "state: sleeping in time.sleep()" in block
        assert f"created at {script}:3" in block
    finally:
        proc.kill()
        proc.wait()
