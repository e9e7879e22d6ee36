"""Issue #7: who may read what, and that no request reaches a file on disk.

Every request here is sent as raw bytes over a socket (urllib and http.client would
normalise or refuse the hostile paths), against a real server: a monitor in this
process, or the server of ``stethoscope view`` on a recording. A secret file holding a
random marker sits next to the monitored program, symlinks to it are planted in the
working directory under the names a naive server would open, and no answer may ever
contain the marker.

What is checked (docs/http-api.md, Access):

* the token: every path, method and credential; 403 with one plain line and no data;
  the page and its assets are public (they hold no data); no cookie is ever set or
  honoured; a browser's request for another origin or site is refused even with the
  token (Origin, Sec-Fetch-Site); the compare is hmac's;
* the Host check on loopback binds (DNS rebinding), its absence on other binds, and
  the one-line warning such a bind prints (``trace()``, ``run``, ``view``);
* state changes: ``POST /api/mode`` only, with the token; no stop or reset endpoint
  (children report over their parent's Unix socket, not HTTP: test_trust_children.py);
* ``/metrics`` without the token only under ``metrics_public``, and only that path;
* path traversal in every encoding at every route; sources only by the id of a file
  that ran; symlinks;
* the security headers on every kind of answer, errors included.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import stethoscope
from stethoscope.config import new_token
from stethoscope.model.store import file_id_for
from stethoscope.recordings.reader import read as read_recording
from stethoscope.recordings.replay import ReplayBackend
from stethoscope.server import httpd, routes

from conftest import read_url, run_cli, start_python, wait_for

PROGRAM = '''\
"""A monitored file: its text is all that /api/source may serve of it."""


def spin(n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003  # SPIN-LINE
    return total
'''

RECORDED = '''\
import time


def spin(n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


deadline = time.monotonic() + 0.8
while time.monotonic() < deadline:
    spin(20_000)
'''

PASSWD = b"root:x:0:0:"  # the start of /etc/passwd, should a path ever reach it


# ---------------------------------------------------------------- raw HTTP


@dataclass
class Answer:
    status: int  # 0: no status line at all
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        found = self.all(name)
        return found[0] if found else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def send(port: int, target: str | bytes, *, method: str = "GET", host: str | None = None,
         no_host: bool = False, headers: dict[str, str] | None = None,
         body: bytes | None = None, addr: str = "127.0.0.1",
         version: bytes = b" HTTP/1.1") -> Answer:
    """Send one request exactly as given (``host``: the Host header, by default the
    right one for ``addr``; ``no_host``: none at all) and read the answer until the
    server closes (an event stream: until its head)."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method.encode() + b" " + target + version]
    if not no_host:
        lines.append(b"Host: " + (f"{addr}:{port}" if host is None else host).encode("latin-1"))
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}".encode("latin-1"))
    if body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    data = b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
    out = b""
    deadline = time.monotonic() + 60  # the server answers in milliseconds, idle
    with socket.create_connection((addr, port), timeout=60) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
                head = out.partition(b"\r\n\r\n")[0]
                if b"\r\n\r\n" in out and b"text/event-stream" in head:
                    break
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server may hang up on an oversized request before reading it
    return parse(out)


def parse(raw: bytes) -> Answer:
    if not raw.startswith(b"HTTP/"):
        return Answer(0, [], raw, raw)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(h.split(": ", 1)) for h in header_lines if ": " in h]
    return Answer(int(status_line.split()[1]), headers, body, raw)  # type: ignore[arg-type]


def assert_no_data(answer: Answer, code: int | tuple[int, ...] = 403) -> None:
    """A refusal: the status, one short plain line, no JSON, no asset, no cookie."""
    codes = (code,) if isinstance(code, int) else code
    assert answer.status in codes, answer.raw[:300]
    body = answer.body
    assert body.count(b"\n") <= 1 and len(body) < 200, body[:300]
    assert b"{" not in body and b"<" not in body and b"stethoscope_" not in body, body
    assert answer.all("Set-Cookie") == [], answer.headers
    if answer.body:
        assert (answer.header("Content-Type") or "").startswith("text/plain"), answer.headers


# ---------------------------------------------------------------- the program and its secret


@dataclass
class Site:
    """A monitor in this process, a monitored file of ours, and a secret next to it."""
    mon: stethoscope.Monitor
    app: Path  # the program's directory (and the working directory)
    work: Path  # the monitored file
    secret: Path  # never served: it holds `marker`
    marker: bytes
    fid: str = ""  # the monitored file's id
    module: ModuleType | None = None

    @property
    def port(self) -> int:
        return self.mon.port

    @property
    def token(self) -> str:
        return self.mon.config.token

    @property
    def auth(self) -> dict[str, str]:
        return {"X-Stethoscope-Token": self.token}

    def get(self, target: str | bytes, **kwargs: Any) -> Answer:
        answer = send(self.port, target, **kwargs)
        assert self.marker not in answer.raw, (target, answer.raw[:500])
        return answer

    def authed(self, target: str | bytes, **kwargs: Any) -> Answer:
        return self.get(target, headers={**self.auth, **kwargs.pop("headers", {})}, **kwargs)


def load(path: Path) -> ModuleType:
    """Import a file under its own path (its code objects carry that path)."""
    spec = importlib.util.spec_from_file_location(f"sec_{secrets.token_hex(4)}", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_until_listed(mon: stethoscope.Monitor, module: ModuleType, path: str) -> str:
    """Run the module's hot loop until the monitor lists `path`; its file id."""
    def listed() -> str | None:
        # Longer than the GIL's switch interval (5 ms): a sampler thread only gets
        # to look while the loop runs if the loop outlasts it (sample mode, < 3.12).
        module.spin(300_000)
        for f in mon.snapshot("all").files:
            if f.path == path:
                return f.id
        return None

    return str(wait_for(listed, interval=0.01))


def make_secret(directory: Path) -> tuple[Path, bytes]:
    marker = f"SECRET-{secrets.token_hex(12)}"
    directory.mkdir(parents=True, exist_ok=True)
    secret = directory / "secret.py"
    secret.write_text(f'PASSWORD = "{marker}"\n')
    return secret, marker.encode()


def plant(app: Path, secret: Path, names: list[str]) -> None:
    """Symlinks to the secret under the names a server that opened request paths
    relative to its working directory would reach."""
    for name in names:
        link = app / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(secret)


@contextlib.contextmanager
def site_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **trace_kwargs: Any
            ) -> Iterator[Site]:
    app = tmp_path / "app"
    app.mkdir(parents=True)
    secret, marker = make_secret(tmp_path / "private")
    work = app / "work.py"
    work.write_text(PROGRAM)
    monkeypatch.chdir(app)
    with stethoscope.trace(port=0, quiet=True, **trace_kwargs) as mon:
        yield Site(mon, app, work, secret, marker)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The monitor has seen work.py run; the secret is planted around it."""
    with site_at(tmp_path, monkeypatch) as s:
        s.module = load(s.work)
        s.fid = run_until_listed(s.mon, s.module, str(s.work))
        plant(s.app, s.secret, ["etc/passwd", "passwd", "main.js", "static/js/main.js",
                                "static/style.css", "static/index.html", "index.html",
                                "metrics", s.fid, f"api/source/{s.fid}", "secret.py"])
        yield s


# ---------------------------------------------------------------- 1. access


PUBLIC = [("GET", "/"), ("HEAD", "/"), ("GET", "/static/js/main.js"),
          ("GET", "/static/js/token.js"), ("GET", "/static/style.css")]  # no data in them
ROUTES = [  # (method, target without the token); every one needs the token
    ("GET", "/api/snapshot"), ("GET", "/api/snapshot?pid=all"), ("GET", "/api/events"),
    ("HEAD", "/api/events"), ("GET", "/api/activity"), ("GET", "/api/recording"),
    ("GET", "/api/source/FID"), ("GET", "/metrics"), ("POST", "/api/mode?mode=sample"),
    ("POST", "/api/report"),  # no such route any more: refused without the token all the same
    ("GET", "/api/mode"), ("GET", "/nope"), ("PUT", "/"),
]


def test_every_route_refuses_a_missing_or_wrong_token_with_no_data(site: Site) -> None:
    good = site.token
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    wrong = [
        ("", {}), ("?token=", {}), (f"?token={flipped}", {}), (f"?token={good}x", {}),
        (f"?token={good[:-1]}", {}), (f"?token={good.upper()}", {}),
        (f"?TOKEN={good}", {}), (f"?token%3D{good}", {}), (f"?tok={good}", {}),
        (f"?token={flipped}&token={good}", {}),  # the first one counts
        (f"?token={good}%00", {}), ("?token=%C3%A9" + good[2:], {}),
        ("", {"X-Stethoscope-Token": flipped}),
        ("", {"X-Stethoscope-Token": good[:-1]}),
        ("", {"X-Stethoscope-Token": ""}),
        ("", {"X-Stethoscope-Token": f" {good}x"}),
        ("", {"X-Stethoscope-Tokens": good}),
        ("", {"Cookie": f"stethoscope_token={good}"}),  # no cookie is honoured
        ("", {"Authorization": f"Bearer {good}"}),
        # a wrong token anywhere is not rescued by a right one elsewhere
        (f"?token={flipped}", {"X-Stethoscope-Token": good}),
        (f"?token={good}", {"X-Stethoscope-Token": flipped}),
    ]
    for method, route in ROUTES:
        route = route.replace("FID", site.fid)
        for query, headers in wrong:
            target = route + "&" + query[1:] if query and "?" in route else route + query
            body = b"{}" if method == "POST" else None
            answer = site.get(target, method=method, headers=headers, body=body)
            # Methods never served answer 405 before the token is looked at: no data.
            assert_no_data(answer, code=405 if method == "PUT" else 403)
    # The controls: each of them is served with the token.
    for method, route in ROUTES:
        if route in ("/nope", "/api/mode", "/api/recording", "/api/report") or method == "PUT":
            continue
        route = route.replace("FID", site.fid)
        sep = "&" if "?" in route else "?"
        body = b"{}" if method == "POST" else None
        answer = site.get(f"{route}{sep}token={good}", method=method, body=body)
        assert answer.status == 200, (method, route, answer.raw[:200])
    assert site.mon.requested_mode == "sample"  # the one authorised switch


def test_tokens_are_compared_with_hmac_compare_digest(site: Site,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = routes.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(routes.hmac, "compare_digest", spy)
    wrong = "w" * len(site.token)
    assert_no_data(site.get(f"/api/snapshot?token={wrong}"))
    assert (wrong.encode(), site.token.encode()) in calls
    calls.clear()
    assert site.get("/api/snapshot", headers=site.auth).status == 200
    assert (site.token.encode(), site.token.encode()) in calls


def test_the_page_is_public_no_cookie_is_set_and_the_token_header_authorises(
        site: Site) -> None:
    good = site.token
    # The page and its assets, with a token, a wrong one or none: the same bytes.
    for method, target in PUBLIC:
        plain = site.get(target, method=method)
        assert plain.status == 200 and plain.all("Set-Cookie") == [], target
        for query in [f"?token={good}", f"?token={good}x", "?token="]:
            answer = site.get(target + query, method=method)
            assert answer.status == 200 and answer.body == plain.body, (target, query)
            assert answer.all("Set-Cookie") == [], (target, query)
    assert b"<html" in site.get("/").body.lower()
    # The header alone authorises everything, and sets nothing.
    for target in ["/api/snapshot", f"/api/source/{site.fid}", "/api/activity", "/metrics"]:
        answer = site.get(target, headers=site.auth)
        assert answer.status == 200 and answer.all("Set-Cookie") == [], target
    # The token in the query authorises that one request (an EventSource sends it so).
    for method, target in [("GET", "/api/snapshot"), ("GET", "/api/activity"),
                           ("GET", f"/api/source/{site.fid}"), ("GET", "/metrics"),
                           ("HEAD", "/api/events"), ("POST", "/api/mode?mode=auto")]:
        sep = "&" if "?" in target else "?"
        answer = site.get(f"{target}{sep}token={good}", method=method)
        assert answer.status == 200 and answer.all("Set-Cookie") == [], (method, target)
    # Not a page route that merely looks like one.
    for target in [f"/index.html?token={good}", f"/.?token={good}", f"/%2f?token={good}",
                   f"/static/?token={good}", f"/;?token={good}"]:
        answer = site.get(target)
        assert answer.status == 404 and answer.all("Set-Cookie") == [], target


def test_a_request_a_browser_sent_for_another_origin_or_site_is_refused_with_the_token(
        site: Site) -> None:
    port, good = site.port, site.token
    foreign = [{"Origin": f"http://127.0.0.1:{port + 1}"}, {"Origin": "null"},
               {"Origin": "http://evil.example"}, {"Origin": f"https://127.0.0.1:{port}"},
               {"Origin": f"http://localhost:{port}"},  # the request names 127.0.0.1
               {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
               {"Sec-Fetch-Site": "Cross-Site"},
               {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-site"}]
    for headers in foreign:
        for method, target in [("GET", "/api/snapshot"), ("GET", "/api/events"),
                               ("GET", f"/api/source/{site.fid}"), ("GET", "/metrics"),
                               ("POST", "/api/mode?mode=sample")]:
            answer = site.get(target, method=method, body=b"" if method == "POST" else None,
                              headers={**site.auth, **headers})
            assert_no_data(answer)
            why = b"(Origin)" if "Sec-Fetch-Site" not in headers else b"(Sec-Fetch-Site)"
            assert why in answer.body, (headers, answer.body)
    assert site.mon.requested_mode == "auto"
    # The page's own requests: its origin, same-origin or none (a typed address).
    for headers in [{"Origin": f"http://127.0.0.1:{port}"}, {"Sec-Fetch-Site": "same-origin"},
                    {"Sec-Fetch-Site": "none"},
                    {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}]:
        answer = site.get(f"/api/snapshot?token={good}", headers=headers)
        assert answer.status == 200, headers
    answer = site.get("/api/snapshot", host=f"localhost:{port}",
                      headers={**site.auth, "Origin": f"http://localhost:{port}"})
    assert answer.status == 200
    # The page itself may be opened from anywhere (a link): no data in it.
    assert site.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status == 200


def test_host_header_must_name_the_loopback_address_bound(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    with site_at(tmp_path, monkeypatch, metrics_public=True) as s:
        port = s.port
        foreign = ["evil.example", f"evil.example:{port}", f"127.0.0.1:{port}.evil.example",
                   f"127.0.0.1.evil.example:{port}", f"localhost.:{port}",
                   f"127.0.0.1:{port + 1}", f"127.0.0.1:{port}@evil.example", "127.0.0.1",
                   f"[::ffff:127.0.0.1]:{port}", f"127.1:{port}", f"0x7f000001:{port}", ""]
        for host in foreign:
            for method, target in [("GET", f"/?token={s.token}"),
                                   ("GET", f"/api/snapshot?token={s.token}"),
                                   ("POST", f"/api/mode?mode=sample&token={s.token}"),
                                   ("GET", "/metrics")]:  # public here, still behind Host
                assert_no_data(s.get(target, method=method, host=host, headers=s.auth))
        assert_no_data(s.get(f"/api/snapshot?token={s.token}", no_host=True))
        assert s.mon.requested_mode == "auto"
        for host in [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"]:
            assert s.get(f"/api/snapshot?token={s.token}", host=host).status == 200, host
            assert s.get("/metrics", host=host).status == 200, host


# -- binds that are not loopback


def own_address() -> tuple[str, str]:
    """(address to bind, address to connect to): this machine's own non-loopback
    IPv4 address when it has one (traffic stays on this machine), else 0.0.0.0
    reached through 127.0.0.1."""
    try:
        words = subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                               timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        words = []
    for word in words:
        try:
            ip = ipaddress.ip_address(word)
        except ValueError:
            continue
        if ip.version != 4 or ip.is_loopback or ip.is_link_local:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((word, 0))
            except OSError:
                continue
        return word, word
    return "0.0.0.0", "127.0.0.1"


WARNING = re.compile(r"^stethoscope: warning: .*reachable from the network.*"
                     r"token is the only guard")


def warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if "warning" in line and "network" in line]


def test_a_non_loopback_bind_warns_once_and_still_needs_the_token(
        capfd: pytest.CaptureFixture[str]) -> None:
    bind, addr = own_address()
    with stethoscope.trace(host=bind, port=0, quiet=True) as mon:
        port = mon.port
        token = mon.config.token
        for target, headers in [("/api/snapshot", {}), ("/metrics", {}),
                                ("/api/snapshot?token=nope-nope", {}),
                                ("/api/snapshot", {"X-Stethoscope-Token": "nope-nope"}),
                                ("/api/snapshot", {"Cookie": f"stethoscope_token={token}"})]:
            assert_no_data(send(port, target, addr=addr, headers=headers))
        assert_no_data(send(port, "/api/mode?mode=sample", method="POST", addr=addr))
        assert mon.requested_mode == "auto"
        answer = send(port, f"/api/snapshot?token={token}", addr=addr)
        assert answer.status == 200 and json.loads(answer.body)["pid"] == os.getpid()
        # No Host check off loopback (no name is known to be right); the token decides.
        answer = send(port, f"/api/snapshot?token={token}", addr=addr, host="evil.example")
        assert answer.status == 200
    lines = warnings_in(capfd.readouterr().err)
    assert len(lines) == 1 and WARNING.match(lines[0]), lines  # printed even when quiet
    assert f" {bind}," in lines[0] or f" {bind} " in lines[0], lines
    # A loopback bind says nothing of the kind.
    with stethoscope.trace(port=0):
        pass
    err = capfd.readouterr().err
    assert "serving http://127.0.0.1:" in err and warnings_in(err) == [], err


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short program recorded by ``stethoscope run --record``."""
    directory = tmp_path_factory.mktemp("rec")
    script = directory / "recorded.py"
    script.write_text(RECORDED)
    rec = directory / "run.stetho"
    done = run_cli(["run", "--record", str(rec), "--quiet", "--port", "0", str(script)],
                   cwd=directory, timeout=60)
    assert done.returncode == 0, done.stderr
    assert rec.exists() and rec.stat().st_size > 0
    return rec


def test_run_and_view_warn_with_the_same_words_on_a_non_loopback_bind(
        tmp_path: Path, recording: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bind, addr = own_address()
    script = tmp_path / "quick.py"
    script.write_text("print('done')\n")
    ran = run_cli(["run", "--host", bind, "--port", "0", str(script)], cwd=tmp_path)
    assert ran.returncode == 0 and ran.stdout == "done\n", ran.stderr
    run_lines = warnings_in(ran.stderr)
    assert len(run_lines) == 1 and WARNING.match(run_lines[0]), ran.stderr
    assert ran.stderr.splitlines()[0].startswith("stethoscope: serving http://")

    view = start_python(["-m", "stethoscope", "view", str(recording), "--host", bind,
                         "--port", "0"], cwd=tmp_path)
    try:
        url = read_url(view)
        port = int(re.search(r":(\d+)/", url).group(1))  # type: ignore[union-attr]
        token = url.split("token=", 1)[1]
        # The server runs: the warning, printed before it starts, is out.
        assert_no_data(send(port, "/api/recording", addr=addr))
        assert_no_data(send(port, "/api/snapshot?at=0&token=nope-nope", addr=addr))
        answer = send(port, f"/api/recording?token={token}", addr=addr)
        assert answer.status == 200 and json.loads(answer.body)["count"] >= 1
    finally:
        view.send_signal(signal.SIGTERM)
        view.wait(timeout=60)
        assert view.stderr is not None and view.stdout is not None
        err = view.stderr.read()  # what read_url() has not taken, its buffer included
        view.stderr.close()
        view.stdout.close()
    assert view.returncode == 0, err
    view_lines = warnings_in(err)
    assert view_lines == run_lines, (view_lines, run_lines)
    # and trace() in a program says it the same way
    with stethoscope.trace(host=bind, port=0, quiet=True):
        pass
    assert warnings_in(capfd.readouterr().err) == run_lines


# -- state changes


def test_mode_switch_is_post_only_and_token_checked_and_nothing_stops_the_monitor(
        site: Site) -> None:
    mon, good = site.mon, site.token
    assert mon.requested_mode == "auto"
    refused = [
        ("GET", f"/api/mode?mode=sample&token={good}", {}, 405),
        ("HEAD", f"/api/mode?mode=sample&token={good}", {}, 405),
        ("PUT", f"/api/mode?mode=sample&token={good}", {}, 405),
        ("PATCH", f"/api/mode?mode=sample&token={good}", {}, 405),
        ("POST", "/api/mode?mode=sample", {}, 403),
        ("POST", "/api/mode?mode=sample&token=nope-nope", {}, 403),
        ("POST", "/api/mode?mode=sample", {"X-Stethoscope-Token": "nope-nope"}, 403),
        ("POST", "/api/mode?mode=sample", {"Cookie": f"stethoscope_token={good}"}, 403),
        ("POST", "/api/mode/?mode=sample", site.auth, 405),
        ("POST", "/api/mode%3Fmode=sample", site.auth, 405),
        ("POST", "/api/mode;mode=sample", site.auth, 405),
    ]
    for method, target, headers, code in refused:
        answer = site.get(target, method=method, headers=headers, body=b"")
        assert answer.status == code, (method, target, answer.raw[:200])
        if code == 403:
            assert_no_data(answer)
        assert mon.requested_mode == "auto", (method, target)
    # Nothing stops, resets or clears the monitor over HTTP.
    for route in ["/api/stop", "/api/reset", "/api/clear", "/api/quit", "/api/shutdown",
                  "/api/exit", "/api/kill", "/stop", "/api/mode/stop"]:
        assert site.get(f"{route}?token={good}", method="POST", body=b"").status == 405
        assert site.get(f"{route}?token={good}").status == 404
        assert site.get(f"{route}?token={good}", method="DELETE").status == 405
    assert site.get(f"/api/snapshot?token={good}", method="DELETE").status == 405
    assert mon.running
    before = mon.snapshot("all")
    assert any(f.id == site.fid for f in before.files)  # nothing was cleared
    # The control: the one way, with the token (the header is enough).
    answer = site.get("/api/mode?mode=sample", method="POST", headers=site.auth, body=b"")
    assert answer.status == 200 and json.loads(answer.body) == {"mode": "sample"}
    assert mon.requested_mode == "sample"


# -- /metrics


def test_metrics_without_the_token_only_when_public_and_only_that_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with site_at(tmp_path / "private", monkeypatch) as s:
        for target in ["/metrics", "/metrics?x=1", "/metrics?token=nope-nope"]:
            assert_no_data(s.get(target))
        assert s.get("/metrics", headers=s.auth).status == 200
    with site_at(tmp_path / "public", monkeypatch, metrics_public=True) as s:
        for method, target in [("GET", "/metrics"), ("HEAD", "/metrics"),
                               ("GET", "/metrics?x=1"), ("GET", "/metrics?token=nope-nope"),
                               ("GET", "//metrics")]:  # http.server makes "//" at the start "/"
            answer = s.get(target, method=method)
            assert answer.status == 200, (method, target)
            assert (answer.header("Content-Type") or "").startswith("text/plain")
            assert answer.all("Set-Cookie") == []
            if method == "GET":
                assert b"stethoscope_up 1" in answer.body
        assert_no_data(s.get("/metrics", method="PUT", body=b""), code=405)
        for method, target in [("POST", "/metrics"),
                               ("GET", "/metrics/"), ("GET", "/metrics/../"),
                               ("GET", "/metrics/../api/snapshot"), ("GET", "/metrics/.."),
                               ("GET", "/metrics%2f..%2fapi%2fsnapshot"),
                               ("GET", "/metrics/..%2fapi%2fsnapshot"),
                               ("GET", "/Metrics"), ("GET", "/metrics%00"),
                               ("GET", "/metrics;/api/snapshot"),
                               ("GET", "/metrics\\..\\api\\snapshot"),
                               ("GET", "/api/snapshot"), ("GET", "/api/events"),
                               ("GET", "/api/activity"),
                               ("POST", "/api/mode?mode=sample"), ("POST", "/api/report")]:
            assert_no_data(s.get(target, method=method, body=b"" if method == "POST" else None))
        # absolute-form requests name a path too: only /metrics is public there as well
        assert s.get(f"http://127.0.0.1:{s.port}/metrics").status == 200
        assert_no_data(s.get(f"http://127.0.0.1:{s.port}/api/snapshot"))
        assert s.mon.requested_mode == "auto"


# ---------------------------------------------------------------- 2. no file escape


def traversal_targets(site: Site) -> list[bytes]:
    fid, secret = site.fid, str(site.secret)
    quoted = "".join(f"%{b:02x}" for b in secret.encode())
    unseen = file_id_for(secret)  # the id the secret would have, had it run
    t = [
        # the page
        "/..", "/../", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
        "/%252e%252e%252fetc%252fpasswd", "//etc/passwd", "/%2fetc%2fpasswd", "/etc/passwd",
        "/./etc/passwd", "/.%2e/.%2e/etc/passwd", "/..\\..\\etc\\passwd", "/%5c..%5cetc%5cpasswd",
        "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "/%c0%af..%c0%afetc%c0%afpasswd",
        "/%e0%80%ae%e0%80%ae/etc/passwd", "/index.html%00", "/%00", secret, quoted,
        "/secret.py", "/passwd", f"/{fid}", "file:///etc/passwd", f"file://{secret}",
        "http://127.0.0.1/../../etc/passwd", f"http://127.0.0.1:{site.port}/..%2fsecret.py",
        # the assets
        "/static/js/..%2f..%2fmain.js", "/static/../../etc/passwd", "/static/js/../../main.js",
        "/static/js/../../etc/passwd", "/static/js/%2e%2e/%2e%2e/main.js",
        "/static/js/%2e%2e/style.css", "/static/js/../style.css",
        "/static/%2e%2e/%2e%2e/etc/passwd", "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/%252e%252e%252f%252e%252e%252fetc%252fpasswd", "/static/..\\..\\etc\\passwd",
        "/static/js\\..\\..\\main.js", "/static\\..\\..\\etc\\passwd",
        "/static/js/main.js%00", "/static/js/main.js%00.html",
        "/static/js/main.js/../../../../etc/passwd", "/static/js/main.js/",
        "/static/js/./main.js", "/static/./js/main.js", "/static//js/main.js",
        "/static/js//main.js", "/static/js/%6dain.js", "/static/%6as/main.js",
        "/static/JS/MAIN.JS", "/static/index.html",
        "/static/secret.py", "/static/passwd", f"/static/{secret}", f"/static/{quoted}",
        "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "/static/js/%c0%ae%c0%ae%c0%afmain.js",
        "/static/", "/static", "/static/js/", "/static/js", "/./static/js/main.js",
        # sources: only ids of files that ran
        "/api/source/../../etc/passwd", "/api/source/..%2f..%2fetc%2fpasswd",
        "/api/source/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/source/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "/api/source/..\\..\\etc\\passwd", "/api/source/%5c..%5cetc%5cpasswd",
        "/api/source/%c0%ae%c0%ae%c0%afetc%c0%afpasswd", f"/api/source/{secret}",
        f"/api/source/{quoted}", f"/api/source//{secret}", "/api/source/etc/passwd",
        "/api/source/passwd", "/api/source/secret.py", f"/api/source/{fid}%00",
        f"/api/source/{fid}%00.py", f"/api/source/{fid}/../{unseen}",
        f"/api/source/{fid}/..%2f..%2fetc%2fpasswd", f"/api/source/{fid}%2f..%2f{unseen}",
        f"/api/source/{fid}/", f"/api/source/{fid}x",
        # an id of digits only (1 in ~300) is its own upper case: the real id, served
        *([f"/api/source/{fid.upper()}"] if fid.upper() != fid else []),
        f"/api/source/{unseen}", f"/api/source/{file_id_for('/etc/passwd')}",
        f"/api/source/{file_id_for('etc/passwd')}", "/api/source/", "/api/source/%00",
        # views: a pid is a number or "all"
        "/api/snapshot?pid=../..", "/api/snapshot?pid=..%2f..%2fetc%2fpasswd",
        "/api/snapshot?pid=%2e%2e%2f", "/api/snapshot?pid=%252e%252e%252f",
        f"/api/snapshot?pid={secret}", "/api/snapshot?pid=%00", "/api/snapshot?pid=1%00",
        "/api/snapshot?pid=..\\..", "/api/snapshot?pid=-1", "/api/snapshot?pid=0x10",
        "/api/snapshot?pid=99999999999999", "/api/snapshot?pid=%c0%ae%c0%ae",
        "/api/snapshot?at=../..", f"/api/snapshot?at={secret}", "/api/snapshot?at=0",
        "/api/activity?pid=../..", f"/api/activity?pid={secret}", "/api/activity?pid=%00",
        "/api/activity?pid=%2e%2e%2f", "/api/events?pid=../..", f"/api/events?pid={secret}",
        "/api/events?pid=%00", "/api/events?pid=%252e%252e%252f",
        "/api/snapshot/../../etc/passwd", "/api/snapshot%2f..%2f..%2fetc%2fpasswd",
        "/api/recording/../../etc/passwd", "/api/../../etc/passwd", "/api/",
        # metrics
        "/metrics/../", "/metrics/..", "/metrics/../../etc/passwd",
        "/metrics%2f..%2f..%2fetc%2fpasswd", "/metrics/..%2f..%2fetc%2fpasswd", "/metrics/",
    ]
    raw = [
        b"/static/\xc0\xae\xc0\xae/\xc0\xae\xc0\xae/etc/passwd",  # overlong UTF-8, unencoded
        b"/api/source/\xc0\xae\xc0\xae\xc0\xafetc\xc0\xafpasswd",
        b"/api/source/" + fid.encode() + b"\x00",
        b"/static/js/main.js\x00.html",
        b"/\x00/etc/passwd",
        b"/api/snapshot?pid=\x00",
        b"/static/\xff\xfe",
        b"/api/source/\xc0\xaa\xb5",  # latin-1 letters: str.isalnum() takes them
    ]
    return [target.encode("latin-1") for target in t] + raw


def test_no_hostile_path_at_any_route_reaches_a_file(site: Site) -> None:
    page = site.authed("/").body
    app_js = site.authed("/static/js/main.js").body
    work_source = site.authed(f"/api/source/{site.fid}")
    assert work_source.status == 200  # the control: the monitored file is served by id
    targets = traversal_targets(site)
    for target in targets:
        for kwargs in [{"headers": site.auth}, {}]:
            answer = site.get(target, **kwargs)
            assert site.marker not in answer.raw, target
            assert PASSWD not in answer.raw, target
            # without the token: a refusal, or 404 under the public /static/ (no data there)
            assert answer.status in (400, 403, 404), (target, answer.raw[:300])
            assert_no_data(answer, code=(400, 403, 404))
            assert answer.body != app_js and answer.body != page
            assert b'"lines"' not in answer.body and b"SPIN-LINE" not in answer.body, target
    # Still answering, and what it served was only ever asked for by id.
    assert site.authed(f"/api/source/{site.fid}").body == work_source.body
    assert json.loads(work_source.body)["lines"] == PROGRAM.splitlines()


def test_page_request_with_hostile_query_is_just_the_page(site: Site) -> None:
    page = site.authed("/").body
    for query in ["file=../../etc/passwd", f"path={site.secret}", "static=..%2fsecret.py",
                  f"id={file_id_for(str(site.secret))}", "%00", "src=%252e%252e%252f"]:
        answer = site.authed(f"/?{query}")
        assert answer.status == 200 and answer.body == page, query


def test_a_monitored_file_reached_through_a_symlink_is_served_by_id_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The program runs linked.py, a symlink to real.py: its text is served under the
    id of the path that ran; the target's own path, and a symlink to the secret
    planted next to it (named like a monitored file, never run), have no source."""
    with site_at(tmp_path, monkeypatch) as s:
        real = s.app / "real.py"
        real.write_text(PROGRAM.replace("SPIN-LINE", "REAL-LINE"))
        linked = s.app / "linked.py"
        linked.symlink_to(real)
        fid = run_until_listed(s.mon, load(linked), str(linked))
        assert fid == file_id_for(str(linked))
        answer = s.authed(f"/api/source/{fid}")
        assert answer.status == 200
        assert json.loads(answer.body)["lines"] == real.read_text().splitlines()
        plant(s.app, s.secret, ["helper.py", "linked2.py", "work2.py"])
        for path in [real, s.app / "helper.py", s.app / "linked2.py", s.app / "work2.py",
                     s.secret, s.secret.resolve()]:
            assert_no_data(s.authed(f"/api/source/{file_id_for(str(path))}"), code=404)
        snap = s.authed("/api/snapshot").body
        assert str(s.secret).encode() not in snap


def test_a_monitored_symlink_retargeted_at_a_secret_is_not_served(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with site_at(tmp_path, monkeypatch) as s:
        real = s.app / "real.py"
        real.write_text(PROGRAM)
        linked = s.app / "linked.py"
        linked.symlink_to(real)
        fid = run_until_listed(s.mon, load(linked), str(linked))
        swap = s.app / "linked.tmp"
        swap.symlink_to(s.secret)
        os.replace(swap, linked)  # the same path now leads to the secret
        answer = send(s.port, f"/api/source/{fid}", headers=s.auth)
        assert s.marker not in answer.raw, answer.raw[:300]
        assert b"no longer the file that ran" in answer.raw, answer.raw[:300]


def test_a_symlink_planted_over_a_monitored_file_is_not_served(site: Site) -> None:
    swap = site.app / "work.tmp"
    swap.symlink_to(site.secret)
    os.replace(swap, site.work)  # work.py ran; now a symlink named like it leads away
    answer = send(site.port, f"/api/source/{site.fid}", headers=site.auth)
    assert site.marker not in answer.raw, answer.raw[:300]
    assert b"no longer the file that ran" in answer.raw, answer.raw[:300]


def test_a_source_asked_for_before_a_swap_stays_what_was_served(site: Site) -> None:
    first = site.authed(f"/api/source/{site.fid}")
    assert first.status == 200 and b"SPIN-LINE" in first.body
    swap = site.app / "work.tmp"
    swap.symlink_to(site.secret)
    os.replace(swap, site.work)
    again = site.authed(f"/api/source/{site.fid}")  # Site.get asserts: no marker
    assert again.body == first.body


# -- the server of a recording


@pytest.fixture
def replay(recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[httpd.Server, Path, bytes]]:
    """``stethoscope view``'s server, in this process, with the secret planted."""
    secret, marker = make_secret(tmp_path / "private")
    monkeypatch.chdir(tmp_path)
    plant(tmp_path, secret, ["etc/passwd", "passwd", "static/js/main.js", "secret.py",
                             "run.stetho"])
    server = httpd.Server(host="127.0.0.1", port=0, token=new_token(), loopback=True)
    server.start(ReplayBackend(read_recording(str(recording))))
    try:
        yield server, secret, marker
    finally:
        server.stop()


def test_a_recordings_server_keeps_the_same_rules(
        replay: tuple[httpd.Server, Path, bytes]) -> None:
    server, secret, marker = replay
    port, token = server.port, server.token
    auth = {"X-Stethoscope-Token": token}
    timeline = send(port, "/api/recording", headers=auth)
    assert timeline.status == 200
    count = json.loads(timeline.body)["count"]
    snap = json.loads(send(port, "/api/snapshot?at=0", headers=auth).body)
    fid = snap["files"][0]["id"] if snap["files"] else "0123456789ab"
    for target in ["/api/recording", "/api/snapshot?at=0", f"/api/source/{fid}"]:
        assert_no_data(send(port, target))
        assert_no_data(send(port, target + "?token=nope-nope"))
    for target in [f"/api/snapshot?at={count}", "/api/snapshot?at=-1", "/api/snapshot?at=../..",
                   "/api/snapshot?at=%00", f"/api/snapshot?at={secret}",
                   "/api/snapshot?at=0&pid=../..", "/api/snapshot?at=1e3",
                   "/api/snapshot?at=9999999999999", f"/api/source/{file_id_for(str(secret))}",
                   "/api/source/../../etc/passwd", "/api/source/%2e%2e%2fsecret.py",
                   "/static/js/..%2f..%2fmain.js", "/static/../../etc/passwd", "/run.stetho",
                   "/api/recording/../../etc/passwd", "/api/events", "/api/events?pid=../..",
                   "/api/activity?pid=../..", "/metrics/../"]:
        answer = send(port, target, headers=auth)
        assert marker not in answer.raw and PASSWD not in answer.raw, target
        assert_no_data(answer, code=(400, 404))
    answer = send(port, f"/api/mode?mode=sample&token={token}", method="POST", body=b"")
    assert answer.status == 400 and b"recording" in answer.body, answer.raw[:200]
    for method in ["PUT", "DELETE", "GET"]:
        answer = send(port, f"/api/mode?mode=sample&token={token}", method=method, body=b"")
        assert answer.status == 405, (method, answer.raw[:200])


# ---------------------------------------------------------------- 4. headers on every answer


def assert_security_headers(answer: Answer, what: str) -> None:
    assert answer.status, f"{what}: no status line: {answer.raw[:200]!r}"
    for name, value in [("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"),
                        ("Referrer-Policy", "no-referrer")]:
        assert answer.all(name) == [value], (what, name, answer.headers)
    csps = answer.all("Content-Security-Policy")
    assert len(csps) == 1, (what, answer.headers)
    directives: dict[str, list[str]] = {}
    for part in csps[0].split(";"):
        words = part.split()
        if words:
            assert words[0] not in directives, (what, csps[0])
            directives[words[0]] = words[1:]
    assert directives.get("frame-ancestors") == ["'none'"], (what, csps[0])
    assert directives.get("script-src") == ["'self'"], (what, csps[0])
    assert directives.get("default-src") == ["'none'"], (what, csps[0])
    assert directives.get("base-uri") == ["'none'"], (what, csps[0])
    assert "unsafe-inline" not in csps[0] and "unsafe-eval" not in csps[0], (what, csps[0])
    assert "*" not in csps[0] and "data:" not in " ".join(directives.get("script-src", [])), what


def test_every_kind_of_answer_carries_the_security_headers(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    good = site.token
    cases: dict[str, tuple[Callable[[], Answer], int]] = {
        "page": (lambda: site.get(f"/?token={good}"), 200),
        "script": (lambda: site.authed("/static/js/main.js"), 200),
        "style": (lambda: site.authed("/static/style.css"), 200),
        "json": (lambda: site.authed("/api/snapshot"), 200),
        "source": (lambda: site.authed(f"/api/source/{site.fid}"), 200),
        "activity": (lambda: site.authed("/api/activity"), 200),
        "metrics": (lambda: site.authed("/metrics"), 200),
        "stream": (lambda: site.authed("/api/events"), 200),
        "stream head": (lambda: site.authed("/api/events", method="HEAD"), 200),
        "head": (lambda: site.authed("/", method="HEAD"), 200),
        "mode": (lambda: site.authed("/api/mode?mode=auto", method="POST", body=b""), 200),
        "no report route": (lambda: site.authed("/api/report", method="POST", body=b"{}"),
                            405),
        "bad pid": (lambda: site.authed("/api/snapshot?pid=x"), 400),
        "bad mode": (lambda: site.authed("/api/mode?mode=x", method="POST", body=b""), 400),
        "bad request line": (lambda: site.get("/", version=b" HTTP/9.Z"), 400),
        "request syntax": (lambda: site.get("/ x y", no_host=True), 400),
        "broken ipv6": (lambda: site.get("http://[::1/api/snapshot"), 400),
        "no token": (lambda: site.get("/api/snapshot"), 403),
        "foreign host": (lambda: site.get(f"/?token={good}", host="evil.example"), 403),
        "not found": (lambda: site.authed("/nope"), 404),
        "no such source": (lambda: site.authed("/api/source/0123456789ab"), 404),
        "no such pid": (lambda: site.authed("/api/snapshot?pid=1"), 404),
        "get mode": (lambda: site.authed("/api/mode"), 405),
        "put": (lambda: site.authed("/", method="PUT", body=b"x"), 405),
        "options": (lambda: site.authed("*", method="OPTIONS"), 405),
        "trace": (lambda: site.authed("/", method="TRACE"), 405),
        "too large": (lambda: site.authed("/api/mode?mode=auto", method="POST",
                                          headers={"Content-Length": str(64 << 20)}), 413),
        "long target": (lambda: site.get("/" + "a" * 70_000), 414),
        "too many headers": (lambda: site.get(
            "/", headers={f"X-{i}": "y" for i in range(120)}), 431),
        "unknown method": (lambda: site.authed("/", method="BREW"), 501),
        "http/2": (lambda: site.get("/", version=b" HTTP/2.0"), 505),
        # a request line without a version (HTTP/0.9) gets a status line and headers
        "no version": (lambda: site.get(f"/api/snapshot?token={good}", version=b""), 200),
        "no version, no token": (lambda: site.get("/api/snapshot", version=b""), 403),
        "no version, not GET": (lambda: site.authed("/", method="HEAD", version=b""), 400),
    }
    for what, (request, code) in cases.items():
        answer = request()
        assert answer.status == code, (what, answer.raw[:300])
        assert_security_headers(answer, what)
    # A fault inside a handler: a one-line 500, with the headers too.
    def broken(view: object = "all") -> bytes:
        raise RuntimeError("boom")

    backend = site.mon.outlet.server.backend  # type: ignore[attr-defined]
    monkeypatch.setattr(backend, "snapshot_json", broken)
    answer = site.authed("/api/snapshot")
    assert answer.status == 500 and answer.body == b"500 internal error\n", answer.raw[:300]
    assert_security_headers(answer, "500")
    assert b"boom" not in answer.raw and b"Traceback" not in answer.raw


def test_the_page_is_never_framed_sniffed_or_cached(site: Site) -> None:
    """The answer that matters most for clickjacking, checked once more on its own."""
    answer = site.get(f"/?token={site.token}")
    assert answer.status == 200
    assert answer.header("Content-Type") == "text/html; charset=utf-8"
    assert_security_headers(answer, "page")
    assert answer.all("X-Frame-Options") in ([], ["DENY"])
    assert answer.all("Access-Control-Allow-Origin") == []


def test_hostile_requests_from_several_threads_at_once_change_nothing(site: Site) -> None:
    """After a burst of the hostile requests above, from several threads at once,
    the monitor still answers and still serves only what it should."""
    targets = traversal_targets(site)[:40]
    failures: list[str] = []

    def hammer() -> None:
        for target in targets:
            try:
                answer = send(site.port, target, headers=site.auth)
            except OSError as exc:
                failures.append(f"{target!r}: {exc}")
                continue
            if site.marker in answer.raw or answer.status not in (400, 403, 404):
                failures.append(f"{target!r}: {answer.raw[:120]!r}")

    threads = [threading.Thread(target=hammer, name=f"hammer-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert site.authed("/api/snapshot").status == 200
