"""The terminal view, driven in a real terminal: a tmux pane of a fixed size.

Each test starts its own tmux server (a private socket), runs ``stethoscope top`` or
``stethoscope run --tui`` in it with this interpreter, sends keys and reads the
screen back with capture-pane until the expected text appears.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stethoscope.tui.screen import Heat, heat_of, hot_lines

from conftest import child_env, run_python

TMUX = "/usr/bin/tmux"
WIDTH, HEIGHT = 110, 32
DEADLINE = 20.0
RICH_MISSING = "stethoscope: the terminal view needs rich: pip install 'stethoscope[tui]'"

WORK = textwrap.dedent("""
    import os, sys, threading, time
    import stethoscope
    from helper import crunch

    stop = threading.Event()

    def hold():  # non-daemon, but it ends when the workload ends
        while not stop.wait(0.1):
            pass

    mon = stethoscope.trace(port=0, quiet=True)
    with open(sys.argv[1] + ".part", "w") as f:
        f.write(mon.url)
    os.replace(sys.argv[1] + ".part", sys.argv[1])
    threading.Thread(target=crunch, args=(stop,), name="crunch-worker", daemon=True).start()
    threading.Thread(target=hold, name="holder-thread", daemon=False).start()
    deadline = time.monotonic() + 60
    total = 0
    while time.monotonic() < deadline:
        total += sum(range(300))
    stop.set()
""")
HELPER = textwrap.dedent("""
    def crunch(stop):
        while not stop.is_set():
            sum(k * k for k in range(400))
""")
HOT_SOURCE = "total += sum(range(300))"

# run --tui targets; each waits for the test's go-ahead (a file) or for a deadline
PRINTS_AND_EXITS = textwrap.dedent("""
    import os, sys, time
    print("hello from the program", flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists("release") and time.monotonic() < deadline:
        sum(range(1000))
    print("bye on stderr", file=sys.stderr)
    sys.exit(7)
""")
RUNS_ON = textwrap.dedent("""
    import os, time
    with open("pid.part", "w") as f:
        f.write(str(os.getpid()))
    os.replace("pid.part", "pid")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sum(range(1000))
""")
HANGS = textwrap.dedent("""
    import threading
    done = threading.Event()

    def upload():
        done.wait()

    threading.Thread(target=upload, name="stuck-uploader").start()
    print("main is done", flush=True)
""")


@dataclass
class Pane:
    """One tmux pane on a private server; its screen is read with capture-pane."""

    socket: str
    env: dict[str, str]
    status_file: Path

    def tmux(self, *args: str) -> str:
        done = subprocess.run([TMUX, "-u", "-L", self.socket, *args], env=self.env,
                              capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, f"tmux {args}: {done.stderr}"
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-S", "-", "-t", "view")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "view", *keys)

    def wait_for(self, *texts: str, gone: tuple[str, ...] = (),
                 timeout: float = DEADLINE) -> str:
        """The screen once it shows every one of ``texts`` and none of ``gone``."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(t in screen for t in texts) and not any(t in screen for t in gone):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout} s the screen shows no {texts!r} "
                                     f"(or still {gone!r}):\n{screen}")
            time.sleep(0.1)

    def exit_status(self, timeout: float = DEADLINE) -> int:
        """The exit status of the view, once it has ended (its shell writes it down)."""
        deadline = time.monotonic() + timeout
        while not self.status_file.exists() or not self.status_file.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"the view did not end within {timeout} s:\n"
                                     f"{self.screen()}")
            time.sleep(0.1)
        return int(self.status_file.read_text())


Start = Callable[..., Pane]


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Start]:
    """Starts commands in tmux panes of WIDTH x HEIGHT; every server dies afterwards."""
    assert os.path.exists(TMUX), \
        f"{TMUX} is missing: make test installs it (scripts/ensure-debian-package.sh)"
    config = tmp_path / "tmux.conf"
    config.write_text("set -g remain-on-exit on\nset -g status off\n")
    panes: list[Pane] = []

    def start(words: list[str], cwd: Path, then: str = ":") -> Pane:
        env = child_env(TMPDIR=str(tmp_path))  # run --tui keeps its log directory there
        env.pop("TMUX", None)
        name = f"stetho-{secrets.token_hex(6)}"
        pane = Pane(name, env, tmp_path / f"{name}.status")
        panes.append(pane)
        # tmux 3.3a does not always learn a dead pane's status: the shell writes it
        status = shlex.quote(str(pane.status_file))
        command = (f"cd {shlex.quote(str(cwd))} && {shlex.join(words)}; "
                   f"echo $? > {status}.part; mv {status}.part {status}; {then}")
        pane.tmux("-f", str(config), "new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT),
                  "-s", "view", command)
        return pane

    try:
        yield start
    finally:
        for pane in panes:
            subprocess.run([TMUX, "-L", pane.socket, "kill-server"], capture_output=True,
                           timeout=10)


@dataclass
class Workload:
    proc: subprocess.Popen[bytes]
    url: str


@pytest.fixture
def workload(tmp_path: Path) -> Iterator[Workload]:
    """A monitored program: a hot loop in main, a daemon and a non-daemon thread."""
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "helper.py").write_text(HELPER)
    url_file = tmp_path / "url"
    proc = subprocess.Popen([sys.executable, "work.py", str(url_file)], cwd=tmp_path,
                            env=child_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DEADLINE
        while not url_file.exists():
            assert proc.poll() is None, f"the workload ended with {proc.returncode}"
            assert time.monotonic() < deadline, "the workload printed no URL"
            time.sleep(0.05)
        yield Workload(proc, url_file.read_text())
    finally:
        proc.kill()
        proc.wait(timeout=10)


def stethoscope(*args: str) -> list[str]:
    return [sys.executable, "-m", "stethoscope", *args]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def turn_away_polls(url: str, count: int) -> None:
    """Return once the view has polled the gone monitor's address ``count`` more times:
    listen on its port again and close each connection unanswered (a failed poll too)."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    with socket.create_server((parts.hostname, parts.port)) as server:  # SO_REUSEADDR
        server.settimeout(DEADLINE)
        for _ in range(count):
            conn, _ = server.accept()
            with conn:
                conn.settimeout(DEADLINE)
                conn.recv(65536)  # the request, so closing sends FIN, not RST


def terminal_modes(path: Path) -> set[str]:
    """The tty flags `stty -a` wrote after the view ended."""
    deadline = time.monotonic() + DEADLINE
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, "stty never ran after the view"
        time.sleep(0.05)
    return set(path.read_text().split())


def test_top_shows_hot_lines_threads_processes_and_q_leaves_the_program_running(
        terminal: Start, workload: Workload, tmp_path: Path) -> None:
    stty = tmp_path / "stty"
    pane = terminal(stethoscope("top", workload.url), tmp_path, then=f"stty -a > {stty}")
    screen = pane.wait_for(HOT_SOURCE, "work.py:", "sum(k * k for k in range(400))",
                           "samples, recent = last")  # the snapshot's word for its heat
    assert f"pid {workload.proc.pid}" in screen, screen
    pane.keys("2")
    screen = pane.wait_for("crunch-worker", "holder-thread", "MainThread", "innermost frame")
    assert HOT_SOURCE not in screen, screen
    pane.keys("3")
    pane.wait_for("ppid", "python work.py", str(workload.proc.pid), gone=("crunch-worker",))
    pane.keys("Tab")
    pane.wait_for(HOT_SOURCE, gone=("ppid",))
    pane.keys("q")
    modes = terminal_modes(stty)  # written once the view has ended
    assert {"icanon", "echo", "isig"} <= modes, modes
    assert alive(workload.proc.pid) and workload.proc.poll() is None


def test_top_file_picker_narrows_the_lines_to_one_file(
        terminal: Start, workload: Workload, tmp_path: Path) -> None:
    pane = terminal(stethoscope("top", workload.url), tmp_path)
    pane.wait_for(HOT_SOURCE, "helper.py:", "file: all files")
    pane.keys("f")
    pane.wait_for("Pick a file", "work.py", "helper.py")
    pane.keys("Escape")
    pane.wait_for(HOT_SOURCE, "file: all files", gone=("Pick a file",))
    pane.keys("f")
    screen = pane.wait_for("Pick a file")
    rows = screen[screen.index("Pick a file"):]  # the header names work.py too
    first, second = sorted(("work.py", "helper.py"), key=rows.index)
    pane.keys("j")
    pane.wait_for(f"▸ {second}")
    pane.keys("Enter")
    screen = pane.wait_for(f"file: {second}", f"{second}:", gone=("Pick a file",))
    assert f"{first}:" not in screen, screen
    pane.keys("f")  # reopened: the cursor is on the picked file, the rows in today's order
    screen = pane.wait_for(f"▸ {second}")
    rows = screen[screen.index("Pick a file"):]
    pane.keys("k" if rows.index(first) < rows.index(second) else "j", "Enter")
    screen = pane.wait_for(f"file: {first}", f"{first}:", gone=("Pick a file",))
    assert f"{second}:" not in screen, screen
    pane.keys("f")
    pane.wait_for("Pick a file")
    pane.keys("a")
    pane.wait_for("file: all files", "work.py:", "helper.py:", gone=("Pick a file",))
    pane.keys("q")
    assert pane.exit_status() == 0


def test_top_keeps_the_last_picture_when_the_monitor_goes(
        terminal: Start, workload: Workload, tmp_path: Path) -> None:
    pane = terminal(stethoscope("top", workload.url), tmp_path)
    pane.wait_for(HOT_SOURCE, "connected to")
    workload.proc.terminate()
    workload.proc.wait(timeout=10)
    screen = pane.wait_for("monitor gone: connection refused", HOT_SOURCE)
    turn_away_polls(workload.url, 3)  # a few more failed polls
    screen = pane.wait_for("monitor gone: connection refused", HOT_SOURCE)
    assert "Traceback" not in screen, screen
    pane.keys("2")
    pane.wait_for("crunch-worker", "monitor gone")
    pane.keys("C-c")  # Ctrl+C quits like q
    assert pane.exit_status() == 0
    assert "Traceback" not in pane.screen(), pane.screen()


def test_sigterm_restores_the_terminal_and_stops_the_run_tui_program(
        terminal: Start, tmp_path: Path) -> None:
    (tmp_path / "runs.py").write_text(RUNS_ON)
    pid_file, stty = tmp_path / "view-pid", tmp_path / "stty"
    view = shlex.join(stethoscope("run", "--tui", "runs.py"))
    pane = terminal(["sh", "-c", f"echo $$ > {pid_file}; exec {view}"], tmp_path,
                    then=f"stty -a > {stty}")
    pane.wait_for("runs.py:", "running")
    program = int((tmp_path / "pid").read_text())
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    assert pane.exit_status() == 128 + signal.SIGTERM  # the program's own code
    modes = terminal_modes(stty)
    assert {"icanon", "echo", "isig"} <= modes, modes
    assert not alive(program)
    assert "Traceback" not in pane.screen(), pane.screen()


def test_run_tui_shows_the_output_and_ends_with_the_programs_code(
        terminal: Start, tmp_path: Path) -> None:
    (tmp_path / "prints.py").write_text(PRINTS_AND_EXITS)
    pane = terminal(stethoscope("run", "--tui", "prints.py"), tmp_path)
    screen = pane.wait_for("hello from the program", "output (pid", "prints.py:")
    assert "program exited" not in screen, screen
    (tmp_path / "release").write_text("")
    screen = pane.wait_for("program exited with code 7", "bye on stderr")
    assert "prints.py:" in screen, f"the final picture is gone:\n{screen}"
    pane.keys("q")
    assert pane.exit_status() == 7
    screen = pane.wait_for("hello from the program", "the program's output is in")
    assert "bye on stderr" in screen and "Traceback" not in screen, screen


def test_run_tui_q_asks_and_k_kills_the_program(terminal: Start, tmp_path: Path) -> None:
    (tmp_path / "runs.py").write_text(RUNS_ON)
    pane = terminal(stethoscope("run", "--tui", "runs.py"), tmp_path)
    pane.wait_for("runs.py:", "running")
    pid = int((tmp_path / "pid").read_text())
    pane.keys("q")
    pane.wait_for("k kill it and quit", "d detach")
    pane.keys("x")  # any other key: stay
    pane.wait_for("runs.py:", gone=("k kill it",))
    assert alive(pid)
    pane.keys("C-c")  # Ctrl+C asks too
    pane.wait_for("k kill it and quit")
    pane.keys("k")
    assert pane.exit_status() == 128 + signal.SIGTERM
    assert not alive(pid)


def test_run_tui_detach_leaves_the_program_running(terminal: Start, tmp_path: Path) -> None:
    (tmp_path / "runs.py").write_text(RUNS_ON)
    pane = terminal(stethoscope("run", "--tui", "runs.py"), tmp_path)
    pane.wait_for("runs.py:")
    pid = int((tmp_path / "pid").read_text())
    try:
        pane.keys("q")
        pane.wait_for("d detach")
        pane.keys("d")
        assert pane.exit_status() == 0
        screen = pane.wait_for(f"left the program running: pid {pid}")
        assert "stethoscope top 'http://127.0.0.1:" in screen.replace("\n", ""), screen
        assert alive(pid)
    finally:  # an orphan now: init reaps it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_run_tui_shows_the_threads_that_hold_the_exit(terminal: Start, tmp_path: Path) -> None:
    (tmp_path / "hangs.py").write_text(HANGS)
    pane = terminal(stethoscope("run", "--tui", "hangs.py"), tmp_path)
    screen = pane.wait_for("The main thread finished", "1 non-daemon thread keeps",
                           "stuck-uploader: waiting in Event.wait()", "hint: Event.wait()",
                           "main-finished")
    pane.keys("2")
    pane.wait_for("stuck-uploader", "innermost frame")
    pane.keys("q")
    pane.wait_for("k kill it")
    pane.keys("k")
    assert pane.exit_status() == 128 + signal.SIGTERM
    assert "main is done" in pane.screen(), screen


@pytest.mark.parametrize("args", [["top", "http://127.0.0.1:9/?token=x"],
                                  ["run", "--tui", "never-runs.py"]])
def test_without_rich_one_line_says_what_to_install(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "never-runs.py").write_text("open('ran', 'w').close()\n")
    code = ("import sys; sys.modules['rich'] = None\n"
            "from stethoscope.cli import main\n"
            f"raise SystemExit(main({args!r}))")
    done = run_python(["-c", code], cwd=tmp_path)
    assert (done.returncode, done.stderr, done.stdout) == (2, RICH_MISSING + "\n", "")
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1/?token=x", "https://127.0.0.1:9/?token=x",
                                 "http://127.0.0.1:9/", "http://127.0.0.1:port/?token=x"])
def test_top_with_a_bad_url_is_a_one_line_error(url: str) -> None:
    done = run_python(["-m", "stethoscope", "top", url])
    assert done.returncode == 2
    assert done.stderr.startswith("stethoscope top: error: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_top_takes_the_token_apart_and_says_when_it_is_wrong(
        terminal: Start, workload: Workload, tmp_path: Path) -> None:
    base, _, token = workload.url.partition("?token=")
    # --token=T: a random token may start with a dash
    wrong = terminal(stethoscope("top", base, f"--token={token}x"), tmp_path)
    assert wrong.exit_status() == 2
    wrong.wait_for("stethoscope: error: ", "answered HTTP 403")
    right = terminal(stethoscope("top", base, f"--token={token}"), tmp_path)
    right.wait_for(HOT_SOURCE)
    right.keys("q")
    assert right.exit_status() == 0


def test_the_heat_is_the_snapshots_own_kind_and_nothing_is_guessed_without_it() -> None:
    kinds = {"time": {"recent": "self_recent", "total": "self_total", "short_unit": "samples"},
             "odd": {"recent": "odd_now", "total": "odd_ever", "short_unit": "odds"}}
    assert heat_of({"heat": "odd", "heat_kinds": kinds}) == Heat("odd_now", "odd_ever", "odds")
    assert heat_of({"heat": "time", "heat_kinds": kinds}) == Heat("self_recent", "self_total",
                                                                  "samples")
    fields = ["line", "self_recent", "self_total", "hits_recent", "hits_total"]
    rows = {"files": [{"id": "f", "name": "a.py", "lines": [[1, 5, 5, 7, 7]]}]}
    assert hot_lines({"heat": "odd", "heat_kinds": kinds, "line_fields": fields, **rows},
                     None, 5) == []  # its fields are not in the rows
    assert [h.total for h in hot_lines({"heat": "time", "heat_kinds": kinds,
                                        "line_fields": fields, **rows}, None, 5)] == [5]
    for without in ({"heat": "time", "line_fields": fields, **rows}, {}):
        assert heat_of(without) == Heat("", "", "heat")
        assert hot_lines(without, None, 5) == []
