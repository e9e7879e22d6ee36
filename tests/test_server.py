"""The HTTP server, end to end: a real monitor in this process, real sockets."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stethoscope
from stethoscope.model import SCHEMA_VERSION
from stethoscope.server.stream import WRITE_TIMEOUT

from conftest import holding_default_port, record_figure, wait_for

HERE = Path(__file__).resolve()


@pytest.fixture
def mon() -> Iterator[stethoscope.Monitor]:
    with stethoscope.trace(port=0, quiet=True) as monitor:
        yield monitor


def tok(mon: stethoscope.Monitor) -> str:
    return f"token={mon.config.token}"


def get(mon: stethoscope.Monitor, path: str, headers: dict[str, str] | None = None,
        method: str = "GET", body: bytes | None = None) -> tuple[int, Any, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", mon.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def raw(mon: stethoscope.Monitor, data: bytes, timeout: float = 60.0) -> bytes:
    """Send bytes as they are, half-close, and read the whole answer (a reset ends it)."""
    out = b""
    with socket.create_connection(("127.0.0.1", mon.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                out += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server may hang up on an oversized request before reading all of it
    return out


def host(mon: stethoscope.Monitor) -> str:
    return f"127.0.0.1:{mon.port}"


def this_file(mon: stethoscope.Monitor, timeout: float = 60.0) -> dict[str, Any]:
    """Run code in this module for 0.5 s at least (for the sampler to see), and on until
    the snapshot lists this file."""
    began, busy = time.monotonic(), 0
    while time.monotonic() < began + timeout:
        busy += sum(range(200))
        if time.monotonic() > began + 0.5:
            status, _, body = get(mon, f"/api/snapshot?{tok(mon)}")
            assert status == 200
            found = [f for f in json.loads(body)["files"] if f["name"] == HERE.name]
            if found:
                return found[0]
    raise AssertionError(f"{HERE.name} never appeared in the snapshot")


def assert_refusal(status: int, body: bytes, code: int = 403) -> None:
    assert status == code, body
    assert body.startswith(str(code).encode()) and body.endswith(b"\n"), body
    assert body.count(b"\n") == 1 and len(body) < 120, body
    assert b"{" not in body and b'"files"' not in body and b"root:" not in body, body


def own_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stethoscope")]


def stream_request(mon: stethoscope.Monitor) -> bytes:
    return (f"GET /api/events?{tok(mon)} HTTP/1.1\r\nHost: {host(mon)}\r\n\r\n").encode()


def test_snapshot_with_query_token_lists_this_test_file(mon: stethoscope.Monitor) -> None:
    status, headers, body = get(mon, f"/api/snapshot?{tok(mon)}")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    snap = json.loads(body)
    assert (snap["schema"], snap["pid"], snap["state"]) == (
        SCHEMA_VERSION, os.getpid(), "running")
    entry = this_file(mon)
    assert os.path.samefile(entry["path"], HERE) and entry["id"].isalnum()


def test_wrong_or_missing_token_is_refused_on_every_data_endpoint(
        mon: stethoscope.Monitor) -> None:
    good = mon.config.token
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    bad_tokens = ["?", "?token=", f"?token={'x' * len(good)}", f"?token={good}x",
                  f"?token={good[:-1]}", f"?token={flipped}", f"?tok={good}"]
    file_id = this_file(mon)["id"]
    endpoints = ["/api/snapshot", "/api/events", "/api/activity", f"/api/source/{file_id}",
                 "/metrics"]
    for endpoint in endpoints:
        assert get(mon, f"{endpoint}?{tok(mon)}", method="HEAD")[0] == 200
        assert get(mon, endpoint, method="HEAD", headers={"X-Stethoscope-Token": good})[0] == 200
        for query in bad_tokens:
            assert_refusal(*get(mon, endpoint + query)[::2])
        for headers in [{"X-Stethoscope-Token": flipped}, {"X-Stethoscope-Token": ""},
                        {"Cookie": f"stethoscope_token={good}"}]:
            assert_refusal(*get(mon, endpoint, headers=headers)[::2])
        # every token presented must be right
        assert_refusal(*get(mon, f"{endpoint}?{tok(mon)}",
                            headers={"X-Stethoscope-Token": flipped})[::2])


def test_page_and_assets_are_public_and_no_cookie_is_ever_set(mon: stethoscope.Monitor) -> None:
    for target in ["/", f"/?{tok(mon)}", "/static/js/main.js", "/static/js/token.js",
                   "/static/style.css"]:
        status, headers, body = get(mon, target)
        assert status == 200 and body, target
        assert headers.get_all("Set-Cookie") is None, target
    assert b"<html" in get(mon, "/")[2].lower()
    assert_refusal(*get(mon, "/static/nope.js")[::2], code=404)
    status, headers, body = get(mon, "/api/snapshot", headers={"X-Stethoscope-Token":
                                                               mon.config.token})
    assert status == 200 and json.loads(body)["pid"] == os.getpid()
    assert headers.get_all("Set-Cookie") is None


def test_foreign_or_missing_host_header_is_refused_even_with_token(
        mon: stethoscope.Monitor) -> None:
    port = mon.port
    for bad in ["evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}",
                f"localhost:{port}.evil.example", "127.0.0.1", ""]:
        assert_refusal(*get(mon, f"/api/snapshot?{tok(mon)}", headers={"Host": bad})[::2])
    answer = raw(mon, f"GET /api/snapshot?{tok(mon)} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 403 "), answer[:200]
    assert b'"files"' not in answer
    for good in [f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"]:
        status, _, body = get(mon, f"/api/snapshot?{tok(mon)}", headers={"Host": good})
        assert status == 200 and json.loads(body)["schema"] == SCHEMA_VERSION


def test_source_is_served_by_id_only(mon: stethoscope.Monitor) -> None:
    file_id = this_file(mon)["id"]
    status, headers, body = get(mon, f"/api/source/{file_id}?{tok(mon)}")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    source = json.loads(body)
    assert source["id"] == file_id and source["name"] == HERE.name
    assert source["lines"] == HERE.read_text(encoding="utf-8").splitlines()
    assert all(len(span) == 4 for span in source["tokens"])
    assert_refusal(*get(mon, f"/api/source/0123456789ab?{tok(mon)}")[::2], code=404)
    assert_refusal(*get(mon, f"/api/source/?{tok(mon)}")[::2], code=404)
    for path in ["/api/source/../../etc/passwd", "/api/source/%2e%2e%2fetc%2fpasswd",
                 "/api/source/%252e%252e%252fetc%252fpasswd", "/api/source//etc/passwd",
                 f"/api/source/{file_id}%00", f"/api/source/{file_id}/../{file_id}",
                 f"/api/source/{HERE}", "/static/../pyproject.toml",
                 "/static/js/main.js/../../../etc/passwd", "//etc/passwd", "/etc/passwd",
                 "/static/index.html", "/static/../../pyproject.toml"]:
        status, _, body = get(mon, f"{path}?{tok(mon)}")
        assert status in (403, 404), (path, status)
        assert b"root:" not in body and b"[project]" not in body and b'"lines"' not in body


def test_only_get_and_head_are_served(mon: stethoscope.Monitor) -> None:
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
        body = b"x=1" if method in ("POST", "PUT", "PATCH") else None
        status, _, answer = get(mon, f"/api/snapshot?{tok(mon)}", method=method, body=body)
        assert_refusal(status, answer, code=405)
    page = get(mon, f"/?{tok(mon)}")[2]
    answer = raw(mon, f"HEAD /?{tok(mon)} HTTP/1.1\r\nHost: {host(mon)}\r\n\r\n".encode())
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 "), head
    assert f"Content-Length: {len(page)}".encode() in head.split(b"\r\n")
    assert rest == b""


def test_security_headers_on_page_json_stream_and_errors(mon: stethoscope.Monitor) -> None:
    answers = {
        "page": get(mon, f"/?{tok(mon)}"),
        "script": get(mon, f"/static/js/main.js?{tok(mon)}"),
        "json": get(mon, f"/api/snapshot?{tok(mon)}"),
        "stream": get(mon, f"/api/events?{tok(mon)}", method="HEAD"),
        "403": get(mon, "/api/snapshot"),
        "404": get(mon, f"/nope?{tok(mon)}"),
        "405": get(mon, f"/?{tok(mon)}", method="DELETE"),
    }
    assert [a[0] for a in answers.values()] == [200, 200, 200, 200, 403, 404, 405]
    for name, (_, headers, _) in answers.items():
        csp = headers["Content-Security-Policy"]
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        assert directives["script-src"] == ["'self'"], (name, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (name, csp)
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["Cache-Control"] == "no-store", name


def test_malformed_requests_get_no_500_no_output_and_server_keeps_answering(
        mon: stethoscope.Monitor, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    crashes: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", crashes.append)
    t = tok(mon).encode()

    def req(target: bytes, extra: bytes = b"") -> bytes:
        return b"GET " + target + b" HTTP/1.1\r\nHost: " + host(mon).encode() + b"\r\n" + extra

    malformed = {
        "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xff\xfe\r\n\r\n",
        "garbage no newline": bytes(range(256)).replace(b"\n", b"") * 2,
        "long request line": req(b"/" + b"a" * 70_000, b"\r\n"),
        "200 headers": req(b"/?" + t, b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n"),
        "long header": req(b"/?" + t, b"X: " + b"y" * 70_000 + b"\r\n\r\n"),
        "not http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        "bad version": b"GET / HTTP/9.Z\r\n\r\n",
        "nul in path": req(b"/api/snapshot\x00?" + t, b"\r\n"),
        "nul in source id": req(b"/api/source/\x00abc?" + t, b"\r\n"),
        "non-ascii path": req(b"/api/source/\xc2\xb2\xff?" + t, b"\r\n"),
        "bad cookie": req(b"/api/snapshot", b"Cookie: \xff\"\\\x01\r\n\r\n"),
        "empty": b"",
    }
    for name, data in malformed.items():
        answer = raw(mon, data)
        assert b" 500 " not in answer[:40] and not answer.startswith(b"500"), (name, answer[:200])
        assert b"Traceback" not in answer and b'"files"' not in answer, name
        status, _, body = get(mon, f"/api/snapshot?{tok(mon)}")
        assert status == 200 and json.loads(body)["schema"] == SCHEMA_VERSION, name
    # slowloris-lite: a request that never finishes does not hold up others: one is
    # answered while the unfinished one is still being read (it is dropped only
    # HEAD_TIMEOUT on). How soon is the benchmark's figure.
    server = mon.outlet.server  # type: ignore[attr-defined]
    wait_for(lambda: server.open_count() == 0)  # the connections above, all closed
    with socket.create_connection(("127.0.0.1", mon.port), timeout=60) as slow:
        slow.sendall(b"GET /api/snapshot HTTP/1.1\r\nHost: x")
        wait_for(lambda: server.open_count() == 1)  # the server holds it
        began = time.monotonic()
        status, _, body = get(mon, f"/api/snapshot?{tok(mon)}")
        record_figure("snapshot while an unfinished request is open", time.monotonic() - began)
        assert status == 200 and json.loads(body)["pid"] == os.getpid()
        slow.setblocking(False)
        with pytest.raises(BlockingIOError):  # neither answered nor closed: still read
            slow.recv(1)
    mon.stop()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert crashes == []


def test_absolute_form_target_with_broken_ipv6_host_is_a_client_error(
        mon: stethoscope.Monitor) -> None:
    # urlsplit() raises ValueError on these; no token is needed to get this far
    for target in ["http://[", "http://[::1/api/snapshot", "x://[/"]:
        answer = raw(mon, f"GET {target} HTTP/1.1\r\nHost: {host(mon)}\r\n\r\n".encode())
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, (target, answer.split(b"\r\n")[0])


@contextlib.contextmanager
def open_stream(mon: stethoscope.Monitor) -> Iterator[tuple[socket.socket, bytes, bytes]]:
    """An /api/events connection: the socket, the response head, what followed it."""
    with socket.create_connection(("127.0.0.1", mon.port), timeout=60) as sock:
        sock.sendall(stream_request(mon))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, buf
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        yield sock, head, buf


def read_events(sock: socket.socket, buf: bytes, until: float, want: int
                ) -> tuple[bytes, list[dict[str, str]], bool]:
    """Read SSE blocks until ``want`` complete ones, the deadline, or EOF."""
    events: list[dict[str, str]] = []
    eof = False
    while len(events) < want and time.monotonic() < until and not eof:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        eof = chunk == b""
        buf += chunk
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            events.append(dict(line.split(": ", 1) for line in block.decode().split("\n")))
    return buf, events, eof


def test_event_stream_sends_snapshots_then_end_event_on_stop(mon: stethoscope.Monitor) -> None:
    with open_stream(mon) as (sock, head, buf):
        assert head.startswith(b"HTTP/1.0 200 ")
        assert b"Content-Type: text/event-stream" in head.split(b"\r\n")
        # retry + three snapshots, one every STREAM_INTERVAL (how many a second under
        # load is bench/load.py's figure)
        buf, events, eof = read_events(sock, buf, time.monotonic() + 60, want=4)
        assert not eof
        assert list(events[0]) == ["retry"] and events[0]["retry"].isdigit()
        assert len(events) >= 4, events
        for event in events[1:]:
            snap = json.loads(event["data"])
            assert (event["event"], snap["schema"], snap["pid"], snap["state"]) == (
                "snapshot", SCHEMA_VERSION, os.getpid(), "running")
        stopper = threading.Thread(target=mon.stop)
        stopper.start()
        buf, events, eof = read_events(sock, buf, time.monotonic() + 60, want=100)
        stopper.join(60)
        assert not stopper.is_alive() and events and events[-1]["event"] == "end", events
        assert json.loads(events[-1]["data"])["state"] == "stopped"
        assert all(e["event"] == "snapshot" for e in events[:-1])
        if not eof:
            sock.settimeout(60)
            assert sock.recv(1) == b""


def test_end_event_says_stopped_even_when_stop_lands_mid_snapshot(
        mon: stethoscope.Monitor, monkeypatch: pytest.MonkeyPatch) -> None:
    # A big process takes a while to build a snapshot; stop() may come meanwhile.
    armed, building = threading.Event(), threading.Event()
    build = mon.snapshot

    def slow_build(*args: Any) -> Any:
        snap = build(*args)
        if armed.is_set():
            armed.clear()
            building.set()
            time.sleep(0.05)  # shorter than the monitor's snapshot cache age (0.1 s)
        return snap

    monkeypatch.setattr(mon, "snapshot", slow_build)
    with open_stream(mon) as (sock, _, buf):
        buf, events, _ = read_events(sock, buf, time.monotonic() + 60, want=2)
        # retry, then one snapshot or more (the first leaves at once)
        assert len(events) >= 2 and all(e["event"] == "snapshot" for e in events[1:]), events
        armed.set()
        assert building.wait(60)
        mon.stop()
        _, events, eof = read_events(sock, buf, time.monotonic() + 60, want=100)
    assert eof and events and events[-1]["event"] == "end", events
    assert json.loads(events[-1]["data"])["state"] == "stopped"


@contextlib.contextmanager
def big_snapshots(threads: int = 100, depth: int = 60) -> Iterator[None]:
    """Deep-stacked threads make ~0.5 MB snapshots, so clients that do not read stall fast."""
    release = threading.Event()

    def dive(n: int) -> object:
        return dive(n - 1) if n else release.wait()

    workers = [threading.Thread(target=dive, args=(depth,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        release.set()
        for worker in workers:
            worker.join(30)


def send_queues(port: int) -> list[int]:
    """Linux: bytes the server has queued on each of its connections on ``port``."""
    if not os.path.exists("/proc/net/tcp"):
        return [1 << 20] * 5  # elsewhere: trust the 0.6 s the caller waited
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return [int(row[4].split(":")[0], 16) for row in rows
            if int(row[1].split(":")[1], 16) == port and row[3] == "01"]


def test_stop_is_prompt_with_stalled_and_open_streams() -> None:
    clients: list[socket.socket] = []
    ended: list[bool] = []

    def drain(sock: socket.socket) -> None:
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := sock.recv(1 << 20):
                chunks.append(chunk)
        ended.append(b"\n\nevent: end\n" in b"".join(chunks))

    with big_snapshots():
        mon = stethoscope.trace(port=0, quiet=True)
        port = mon.port
        readers = []
        try:
            for i in range(7):
                clients.append(sock := socket.socket())
                if i < 5:  # five clients that never read, with small buffers; two that do
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
                sock.settimeout(60)
                sock.connect(("127.0.0.1", port))
                sock.sendall(stream_request(mon))
                if i >= 5:
                    readers.append(threading.Thread(target=drain, args=(sock,), daemon=True))
                    readers[-1].start()
            before: list[int] = []
            deadline = time.monotonic() + 60
            while True:  # until the server's writes to the five block (Linux)
                time.sleep(0.3)  # the pace of the polls: unchanged queues over one
                now = send_queues(port)
                if sum(q > 1 << 18 and q in before for q in now) >= 5:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"the clients never stalled: {now}")
                before = now
            # stop() does not wait for them: a stream thread blocked in a write to one
            # of them would end only at WRITE_TIMEOUT, so stop() returns, and every
            # thread of the monitor is gone, before that (in milliseconds, idle: the
            # benchmark's figure, bench/load.py's "stop() ms" with stalled streams).
            began = time.monotonic()
            mon.stop()
            stopped = time.monotonic() - began
            record_figure("stop() with 5 stalled and 2 open event streams", stopped)
            assert stopped < WRITE_TIMEOUT, stopped
            while own_threads() and time.monotonic() < began + WRITE_TIMEOUT:
                time.sleep(0.01)
            assert own_threads() == []
            for reader in readers:
                reader.join(60)
            assert ended == [True, True]
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", port))
                probe.listen()
        finally:
            mon.stop()
            for sock in clients:
                sock.close()


def test_busy_explicit_port_raises_port_in_use_and_leaves_nothing_running() -> None:
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(stethoscope.PortInUseError) as info:
            stethoscope.trace(port=port, quiet=True)
    assert str(port) in str(info.value) and "port=0" in str(info.value)
    assert stethoscope.current() is None
    assert own_threads() == []
    assert fds is None or len(os.listdir("/proc/self/fd")) == fds
    with stethoscope.trace(port=0, quiet=True) as mon:  # nothing half-started blocks a retry
        assert get(mon, f"/api/snapshot?{tok(mon)}")[0] == 200


def test_default_port_busy_falls_back_and_says_so(capfd: pytest.CaptureFixture[str]) -> None:
    with holding_default_port(), stethoscope.trace(quiet=False) as mon:
        port = mon.port
        assert port != 9999
        assert mon.url == f"http://127.0.0.1:{port}/?{tok(mon)}"
        status, _, body = get(mon, f"/api/snapshot?{tok(mon)}")
        assert status == 200 and json.loads(body)["pid"] == os.getpid()
    err = capfd.readouterr().err
    assert "9999" in err and "busy" in err and str(port) in err
    assert f"serving {mon.url}" in err


def test_non_loopback_bind_still_requires_token() -> None:
    with stethoscope.trace(host="0.0.0.0", port=0, quiet=True) as mon:
        assert mon.url.startswith("http://0.0.0.0:") and mon.url.endswith(f"?{tok(mon)}")
        assert len(mon.config.token) >= 16
        for path in ["/api/snapshot", "/api/events", "/api/snapshot?token=nope"]:
            for headers in [None, {"Host": "evil.example"}]:
                assert_refusal(*get(mon, path, headers=headers)[::2])
        status, _, body = get(mon, f"/api/snapshot?{tok(mon)}")
        assert status == 200 and json.loads(body)["schema"] == SCHEMA_VERSION
        # The Host check guards loopback binds only; the token still decides here.
        status, _, _ = get(mon, f"/api/snapshot?{tok(mon)}", headers={"Host": "evil.example"})
        assert status == 200


def _whole_answer(mon: stethoscope.Monitor, data: bytes) -> bytes:
    """Send a request without half-closing (as a browser or a fuzzer would) and read
    until the server closes; a reset before the end fails the test."""
    out = b""
    with socket.create_connection(("127.0.0.1", mon.port), timeout=10) as sock:
        sock.sendall(data)
        while chunk := sock.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("request_line", [
    # many words: "Bad request syntax", whose stdlib reason quotes the whole line
    b"GET /" + b"\xfc\t" * 32_000 + b" HTTP/1.1",
    b"GET /api/snapshot HTTP/1.\xfc",  # "Bad request version"
])
def test_an_unparsable_request_gets_one_short_line_whole(mon: stethoscope.Monitor,
                                                         request_line: bytes) -> None:
    headers = b"Content-Length: 5\r\nContent-Length: 7\r\n" + b"".join(
        b"X-%d: y\r\n" % i for i in range(90))
    for _ in range(5):  # a reset would lose the answer only some of the time
        answer = _whole_answer(mon, request_line + b"\r\n" + headers + b"\r\n")
        status_line, _, rest = answer.partition(b"\r\n")
        _, _, body = rest.partition(b"\r\n\r\n")
        assert status_line.startswith(b"HTTP/1.0 400 ") and status_line.isascii()
        assert len(status_line) < 300, status_line[:100]
        assert body.startswith(b"400 ") and body.endswith(b"\n") and body.count(b"\n") == 1
        assert len(body) < 300, body[:100]


def test_a_refused_request_with_an_unread_body_still_gets_the_whole_answer(
        mon: stethoscope.Monitor) -> None:
    body = b"x" * 4_000_000  # refused for its token before a byte of it is read
    head = (f"POST /api/report?token=wrong-token HTTP/1.1\r\nHost: {host(mon)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", mon.port), timeout=10) as sock:
        sock.sendall(head + body[:1_000_000])  # more than the server reads
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.0 403 "), out[:100]
    assert out.endswith(b"\r\n\r\n403 missing or wrong token; open the URL stethoscope printed\n")
