"""The server stays bounded whatever local clients do, and keeps to its own descriptors.

Against a real monitored program in another process (``stethoscope run --port 0``):
1,000 idle connections leave its threads the fixed set and its sockets within
MAX_CONNECTIONS, a request with the token is still answered, the idle ones are
closed, and the program can still start threads of its own; a head trickled a
byte every half second is closed by HEAD_TIMEOUT; a request without the token is
answered without its body being read. In this process: a full worker queue answers
a one-line 503. In another process: a program that closes every descriptor above 2
and opens its own files loses the server (one note), never a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stethoscope.config import new_token
from stethoscope.server import httpd, loop
from stethoscope.server.loop import HEAD_TIMEOUT, MAX_CONNECTIONS

from conftest import child_env, read_url, wait_for

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")

IDLE = 1000
SLACK = 12  # sockets beyond MAX_CONNECTIONS: the listener, wake-up pairs, a request
PROGRAM = '''\
"""Waits for "go" on stdin, then starts 50 threads of its own; exit 0 if all started."""
import sys
import threading

sys.stdin.readline()
release = threading.Event()
started = []
try:
    for i in range(50):
        t = threading.Thread(target=release.wait, name=f"own-{i}")
        t.start()
        started.append(t)
except RuntimeError as exc:
    print(f"thread {len(started)} failed: {exc}", flush=True)
release.set()
for t in started:
    t.join()
sys.exit(0 if len(started) == 50 else 3)
'''


def _limit_address_space() -> None:
    # 2 GiB: room for the program, its monitor and 50 threads' stacks, not for the
    # ~1,000 threads (8 MiB of stack each) a thread per connection would start
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


class Program:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        match = re.match(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)$", url)
        assert match, url
        self.port, self.token = int(match.group(1)), match.group(2)

    def tasks(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def sockets(self) -> int:
        count = 0
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{self.proc.pid}/fd/{fd}").startswith("socket:")
        return count

    def get(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers={"X-Stethoscope-Token": self.token})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read()
        except OSError:
            return 0, b""


@pytest.fixture
def program(tmp_path: Path) -> Iterator[Program]:
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    proc = subprocess.Popen(
        [sys.executable, "-m", "stethoscope", "run", "--port", "0",
         str(script)], cwd=tmp_path, env=child_env(), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_limit_address_space)
    try:
        yield Program(proc, read_url(proc))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


def _at_eof(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (EOF or reset)."""
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_a_thousand_idle_connections_leave_the_program_its_threads_and_descriptors(
        program: Program) -> None:
    assert program.get("/api/snapshot")[0] == 200
    threads = program.tasks()  # the program's, the monitor's and the server's fixed set
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE):
            sock = socket.create_connection(("127.0.0.1", program.port), timeout=60)
            sock.setblocking(False)
            idle.append(sock)
        assert program.tasks() == threads, os.listdir(f"/proc/{program.proc.pid}/task")
        assert program.sockets() <= MAX_CONNECTIONS + SLACK, program.sockets()
        # A real request is answered while the thousand are open on this side (its
        # connection may be refused while the cap is full: it is retried until then).
        _, body = wait_for(lambda: (got := program.get("/api/snapshot"))[0] == 200
                                and got)
        assert json.loads(body)["pid"] == program.proc.pid
        assert program.tasks() == threads
        # Every idle one is closed by the server: at once beyond the cap, the rest
        # HEAD_TIMEOUT after their accept.
        wait_for(lambda: all(_at_eof(s) for s in idle))
        assert program.sockets() <= SLACK
        assert program.tasks() == threads
    finally:
        for sock in idle:
            sock.close()
    assert program.proc.stdin is not None
    program.proc.stdin.write("go\n")
    program.proc.stdin.flush()
    out, err = program.proc.communicate(timeout=120)
    assert program.proc.returncode == 0, (out, err)
    assert "Traceback" not in err, err


def test_a_head_trickled_a_byte_every_half_second_is_closed_by_the_head_deadline(
        program: Program) -> None:
    head = (f"GET /api/snapshot?token={program.token} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{program.port}\r\nX-Slow: {'a' * 200}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", program.port), timeout=60) as sock:
        began, sent, answer = time.monotonic(), 0, b""
        while sent < len(head):
            try:
                sock.sendall(head[sent:sent + 1])
            except OSError:
                break  # closed (a reset)
            sent += 1
            ready, _, _ = select.select([sock], [], [], 0.5)
            if ready:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    break
                answer += chunk
                if not chunk:
                    break
    # closed with the head unfinished (it would take 100 s), unanswered, and not
    # before its deadline
    assert sent < len(head), "the whole trickled head was taken"
    assert answer == b""
    assert time.monotonic() - began >= HEAD_TIMEOUT - 0.5


def test_a_request_without_the_token_is_answered_without_its_body_being_read(
        program: Program) -> None:
    for target in ["/api/report", "/api/mode?mode=sample", "/api/report?token=wrong"]:
        head = (f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{program.port}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", program.port), timeout=60) as sock:
            sock.sendall(head)  # and never the body: a server that waited for it
            out = b""           # would close at its body deadline, unanswered
            while chunk := sock.recv(65536):
                out += chunk
        assert out.startswith(b"HTTP/1.0 403 "), (target, out[:200])
        assert out.endswith(b"403 missing or wrong token; open the URL stethoscope printed\n")


class Blocking:
    """A live backend whose snapshots wait until released: the workers stay busy."""

    kind = "live"
    requested_mode = "auto"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def snapshot_json(self, view: Any = "all") -> bytes:
        with self._lock:
            self.waiting += 1
        self.release.wait(60)
        return b'{"pid": 1}'

    def source_json(self, file_id: str) -> bytes | None:
        return None

    def activity_json(self, view: Any = "all") -> bytes:
        return b"{}"

    def set_mode(self, mode: str) -> str:
        return mode


def test_a_full_worker_queue_answers_a_one_line_503() -> None:
    backend = Blocking()
    server = httpd.Server(host="127.0.0.1", port=0, token=new_token())
    server.start(backend)  # type: ignore[arg-type]
    total = httpd.WORKERS + httpd.QUEUE_SIZE + 12
    request = (f"GET /api/snapshot?token={server.token} HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{server.port}\r\n\r\n").encode()
    socks = []
    try:
        for _ in range(httpd.WORKERS):  # first every worker busy
            socks.append(sock := socket.create_connection(("127.0.0.1", server.port), 60))
            sock.sendall(request)
        wait_for(lambda: backend.waiting == httpd.WORKERS)
        for _ in range(total - httpd.WORKERS):
            socks.append(sock := socket.create_connection(("127.0.0.1", server.port), 60))
            sock.sendall(request)
        answers = []
        for sock in socks[httpd.WORKERS + httpd.QUEUE_SIZE:]:  # the queue is full for these
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
            answers.append(out)
        assert all(a.startswith(b"HTTP/1.0 503 ") for a in answers), answers[:1]
        assert all(a.endswith(b"\r\n\r\n503 the monitor is busy; try again\n")
                   for a in answers), answers[:1]
        backend.release.set()
        for sock in socks[:httpd.WORKERS + httpd.QUEUE_SIZE]:  # the rest are answered
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
            assert out.startswith(b"HTTP/1.0 200 "), out[:100]
    finally:
        backend.release.set()
        server.stop()
        for sock in socks:
            sock.close()


CLOSER = '''\
"""Under trace(): closes every descriptor above 2 (as daemonising code does), opens
files of its own on the freed numbers, waits for the server to notice, and checks
that its files are untouched after the monitor stops."""
import os
import sys
import time

import stethoscope

with stethoscope.trace(port=0) as mon:
    sys.stdin.readline()
    os.closerange(3, 1024)
    files = [open(f"own-{i}.txt", "w+") for i in range(20)]
    for f in files:
        f.write(f"mine {f.fileno()}\\n")
        f.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            "page and API have stopped" in note for note in mon.snapshot("all").notes):
        time.sleep(0.05)
for f in files:
    f.seek(0)
    assert f.read() == f"mine {f.fileno()}\\n", f.fileno()
    os.fstat(f.fileno())  # still open
print("FILES OK", [f.fileno() for f in files], flush=True)
'''


def test_a_program_that_closes_and_reuses_the_servers_descriptors_loses_only_the_server(
        tmp_path: Path) -> None:
    script = tmp_path / "closer.py"
    script.write_text(CLOSER)
    run = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=child_env(),
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    url = read_url(run)
    port = int(url.split(":")[2].split("/")[0])
    assert run.stdin is not None
    run.stdin.write("go\n")
    run.stdin.flush()
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, (out, err)
    assert "FILES OK" in out, (out, err)
    assert "Traceback" not in err, err
    notes = [line for line in err.splitlines() if "page and API have stopped" in line]
    assert len(notes) == 1, err
    with pytest.raises(OSError):  # nobody listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_fault_escaping_the_loop_stops_the_server_with_one_note(
        monkeypatch: pytest.MonkeyPatch) -> None:
    notes: list[str] = []
    server = httpd.Server(host="127.0.0.1", port=0, token=new_token(), note=notes.append)

    def broken(self: object) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(loop.Loop, "_take_answers", broken)  # runs every round of the loop
    server.start(Blocking())  # type: ignore[arg-type]
    try:
        wait_for(lambda: server.closing.is_set())
        wait_for(lambda: not any(t.is_alive() for t in threading.enumerate()
                                 if t.name.startswith("stethoscope")))
        assert len(notes) == 1 and "internal error" in notes[0], notes
        assert "injected" in notes[0]
        with pytest.raises(OSError):  # not a silent port: nobody listens any more
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    finally:
        server.stop()  # idempotent
    assert len(notes) == 1
