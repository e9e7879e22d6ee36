"""A small, locked-down HTTP server for the page, the JSON API and the event stream.

* stdlib ``ThreadingHTTPServer`` with daemon handler threads, never joined on close;
  its accept loop runs in a daemon thread and wakes at once on ``stop()`` through a
  socket pair, so stopping takes milliseconds even with event streams open.
* Every request needs the token (query parameter, or the cookie the page request
  sets); the ``Host`` header must name the loopback address the server is bound to
  (DNS-rebinding defence). Only fixed assets and what the Backend returns are
  served: no request ever names a path on disk.
* Faults in a handler answer a one-line 500 and never print a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import io
import json
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from .._compat import block_signals
from ..model.processes import MODE_HEADER
from . import metrics
from .errors import PortInUseError

COOKIE = "stethoscope_token"
STREAM_INTERVAL = 0.25  # seconds between event-stream updates
WRITE_TIMEOUT = 5.0  # a client that does not take data for this long is dropped
READ_TIMEOUT = 10.0  # a request must arrive completely within this
CLOSE_GRACE = 0.2  # seconds open streams get to send their final event on stop

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}


MAX_REPORT = 32 * 1024 * 1024  # bytes in one child report


class Backend(Protocol):
    """What the server serves; the Monitor implements it."""

    def snapshot_json(self, view: str | int | None = "all") -> bytes:
        """LookupError for a pid that is not one of the program's processes."""
        ...

    def source_json(self, file_id: str) -> bytes | None: ...

    def activity_json(self, view: str | int | None = "all") -> bytes:
        """Activity over time (the page's plots); LookupError for an unknown pid."""
        ...

    def recording_json(self) -> bytes | None:
        """A recording's timeline; None for a live program."""
        ...

    def snapshot_at_json(self, index: int, view: str | int | None = "all") -> bytes:
        """A recording's index-th snapshot: IndexError outside it, LookupError for
        an unknown pid."""
        ...

    def accept_report(self, body: bytes) -> str | None:
        """Take a child process's report; an error message if it is refused."""
        ...

    @property
    def requested_mode(self) -> str:
        """The mode asked for last: children are told to run in it too."""
        ...

    def set_mode(self, mode: str) -> str:
        """Switch the collection mode; the mode now running. ValueError with a
        message for a mode that cannot be asked for."""
        ...


def _load_assets() -> dict[str, tuple[bytes, str]]:
    static = resources.files(__package__).joinpath("static")
    return {route: (static.joinpath(name).read_bytes(), ctype)
            for route, (name, ctype) in ASSETS.items()}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # server_close() must never wait for a handler
    request_queue_size = 128  # listen() backlog: many children may report at once

    def __init__(self, address: tuple[str, int], owner: Server) -> None:
        self.owner = owner
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address),
                                  name="stethoscope-http", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            # CPython 3.12.0-3.12.2 refuse new threads once __main__ has finished
            # (gh-113964). Answer in this thread instead; an event stream served
            # here sends one event per request (streams in their own threads go on).
            self.process_request_thread(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def open_connections(self) -> list[socket.socket]:
        with self._conns_lock:
            return list(self._conns)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that misbehaves or goes away is not news; never print a traceback


class Server:
    def __init__(self, backend: Backend, *, host: str, port: int, token: str,
                 fallback_port: bool = False, loopback: bool = True,
                 metrics_public: bool = False) -> None:
        self.backend = backend
        self.token = token
        self.loopback = loopback
        self.metrics_public = metrics_public  # GET /metrics without the token (opt-in)
        self.closing = threading.Event()
        self.assets = _load_assets()
        self._httpd = self._bind(host, port, fallback_port)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def _bind(self, host: str, port: int, fallback_port: bool) -> _HTTPServer:
        try:
            return _HTTPServer((host, port), self)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise OSError(exc.errno, f"stethoscope cannot listen on {host}:{port}: "
                                         f"{exc.strerror}") from None
            if fallback_port:
                return _HTTPServer((host, 0), self)
            raise PortInUseError(
                errno.EADDRINUSE,
                f"port {port} on {host} is already in use; pass another port, or port=0 "
                f"(CLI: --port 0) for any free one",
            ) from None

    @property
    def allowed_hosts(self) -> frozenset[str]:
        names = {self.host, "localhost", "127.0.0.1", "[::1]"} if self.loopback else set()
        return frozenset(f"{name}:{self.port}" for name in names)

    @property
    def accept_thread(self) -> threading.Thread | None:
        return self._thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="stethoscope-server",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        block_signals()  # handler threads it starts inherit the mask
        httpd = self._httpd
        with selectors.DefaultSelector() as selector:
            selector.register(httpd.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.closing.is_set():
                for key, _ in selector.select(timeout=1.0):
                    if key.fileobj is httpd.socket and not self.closing.is_set():
                        httpd._handle_request_noblock()  # type: ignore[attr-defined]

    def stop(self, timeout: float = 1.0) -> None:
        """Send open streams their final event, close every socket, end the thread."""
        if self._stopped:
            return
        self._stopped = True
        self.closing.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        # Streams wake on `closing` and send their end event; give them a moment,
        # then cut whatever is still open (a stalled client cannot hold us).
        deadline = threading.Event()
        for _ in range(int(CLOSE_GRACE / 0.01)):
            if not self._httpd.open_connections():
                break
            deadline.wait(0.01)
        for conn in self._httpd.open_connections():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def forget(self) -> None:
        """In a forked child: close inherited sockets without touching the parent's."""
        self._stopped = True
        self.closing.set()
        for sock in [self._httpd.socket, self._wake_r, self._wake_w,
                     *self._httpd.open_connections()]:
            # close(), never shutdown(): that would cut the parent's connections too
            with contextlib.suppress(OSError):
                sock.close()


class _RequestReader(io.RawIOBase):
    """The connection's incoming bytes, all of which must arrive by ``deadline``: the
    socket's own timeout bounds each recv() only, so a client trickling a byte every
    few seconds could otherwise hold its connection (and a thread) forever."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive within READ_TIMEOUT")
        timeout = self._sock.gettimeout()
        self._sock.settimeout(left if timeout is None else min(left, timeout))
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(timeout)


def _unsent(sock: socket.socket) -> int | None:
    """Bytes sent to the client that it has not taken yet (Linux); None elsewhere."""
    try:
        import fcntl
        import termios

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ
    except (ImportError, AttributeError, OSError, ValueError):
        return None
    return int.from_bytes(raw, sys.byteorder, signed=True)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "stethoscope"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    # Not the stdlib's "HTTP/0.9": under it, answers to a bare "GET /path" and errors
    # about a malformed version went out without a status line or any header.
    default_request_version = "HTTP/1.0"
    timeout = READ_TIMEOUT
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain; charset=utf-8"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the user's stderr is theirs

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the whole request must arrive within READ_TIMEOUT
        self.rfile = io.BufferedReader(
            _RequestReader(self.connection, time.monotonic() + READ_TIMEOUT))

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def _plain(self, status: HTTPStatus, message: str) -> None:
        body = f"{status.value} {message}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send(self, body: bytes, ctype: str, cookie: str | None = None) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if cookie is not None:
            self.send_header("Set-Cookie",
                             f"{COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _token_from_request(self, query: dict[str, list[str]]) -> tuple[str | None, bool]:
        """The token presented, and whether it came in the query string."""
        if "token" in query:
            return query["token"][0], True
        # Split by hand, not SimpleCookie: before CPython 3.12.6 its unquoting is quadratic
        # (CVE-2024-7592), and one 64 KiB Cookie header cost ~20 s of the program's CPU
        # before the token was even checked. Our cookie's value never needs quoting.
        for part in self.headers.get("Cookie", "").split(";"):
            name, sep, value = part.partition("=")
            if sep and name.strip() == COOKIE:
                value = value.strip()
                quoted = len(value) >= 2 and value[0] == value[-1] == '"'
                return (value[1:-1] if quoted else value), False
        return None, False

    def _refusal(self, query: dict[str, list[str]]) -> str | None:
        owner = self.server.owner
        if owner.loopback and self.headers.get("Host", "") not in owner.allowed_hosts:
            return "unexpected Host header; open the URL stethoscope printed"
        if owner.metrics_public and self.command in ("GET", "HEAD") \
                and urlsplit(self.path).path == "/metrics":
            return None  # opted in (metrics_public): scrapers need no token, only /metrics
        token, _ = self._token_from_request(query)
        if token is None or not hmac.compare_digest(token.encode("utf-8", "replace"),
                                                    owner.token.encode()):
            return "missing or wrong token; open the URL stethoscope printed"
        return None

    def _guarded(self, handler: Callable[[str, dict[str, list[str]]], None]) -> None:
        try:
            try:
                parts = urlsplit(self.path)
            except ValueError:  # e.g. an absolute-form target with a broken IPv6 host
                self._plain(HTTPStatus.BAD_REQUEST, "malformed request target")
                return
            query = parse_qs(parts.query, keep_blank_values=True)
            refusal = self._refusal(query)
            if refusal is not None:
                self._plain(HTTPStatus.FORBIDDEN, refusal)
                return
            handler(parts.path, query)
        except (ConnectionError, TimeoutError, OSError):
            pass  # the client went away or stalled
        except Exception:
            with contextlib.suppress(OSError):
                self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

    def do_GET(self) -> None:
        self._guarded(self._get)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _not_allowed(self) -> None:
        self._plain(HTTPStatus.METHOD_NOT_ALLOWED,
                    "only GET and HEAD are served (and POST to /api/report and /api/mode)")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _post(self, route: str, query: dict[str, list[str]]) -> None:
        if route == "/api/mode":
            self._set_mode(query)
            return
        if route != "/api/report":
            self._not_allowed()
            return
        length = self.headers.get("Content-Length", "")
        # ASCII digits only ("²".isdigit() is true, int("²") fails), and never int() of
        # thousands of digits (a ValueError since Python 3.11's int limits): both were 500s
        if not (length.isascii() and length.isdigit()):
            self._plain(HTTPStatus.LENGTH_REQUIRED, "a report needs a Content-Length")
            return
        if len(length.lstrip("0")) > 9 or int(length) > MAX_REPORT:
            self._plain(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"a report may be at most {MAX_REPORT} bytes")
            return
        body = self.rfile.read(int(length))
        error = self.server.owner.backend.accept_report(body)
        if error is not None:
            self._plain(HTTPStatus.BAD_REQUEST, error)
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self.send_header(MODE_HEADER, self.server.owner.backend.requested_mode)
        self.end_headers()

    def _set_mode(self, query: dict[str, list[str]]) -> None:
        """POST /api/mode?mode=M: switch what is collected; answers the mode now running."""
        backend = self.server.owner.backend
        try:
            running = backend.set_mode(query.get("mode", [""])[0])
        except (ValueError, RuntimeError) as exc:
            self._plain(HTTPStatus.BAD_REQUEST, str(exc))
            return
        self._send(json.dumps({"mode": running}).encode(), "application/json")

    def _view(self, query: dict[str, list[str]]) -> str | int | None:
        """The ``pid`` query parameter: "all" (the default), or one process's pid."""
        value = query.get("pid", ["all"])[0]
        if value == "all":
            return "all"
        if value.isdigit() and len(value) < 10:
            return int(value)
        raise ValueError(value)

    def _get(self, route: str, query: dict[str, list[str]]) -> None:
        owner = self.server.owner
        if route in owner.assets:
            body, ctype = owner.assets[route]
            token, from_query = self._token_from_request(query)
            self._send(body, ctype, cookie=token if route == "/" and from_query else None)
        elif route == "/api/recording":
            timeline = owner.backend.recording_json()  # None: a live program
            self._send(b"null" if timeline is None else timeline, "application/json")
        elif route == "/api/events" and owner.backend.recording_json() is not None:
            self._plain(HTTPStatus.NOT_FOUND, "a recording has no live events: "
                                              "use /api/snapshot?at=INDEX")
        elif route in ("/api/snapshot", "/api/events", "/api/activity"):
            try:
                view = self._view(query)
                data = self._data(route, view, query)
            except ValueError:
                self._plain(HTTPStatus.BAD_REQUEST, "pid must be all or a process id")
                return
            except IndexError:
                self._plain(HTTPStatus.BAD_REQUEST,
                            "at must be the index of a recorded snapshot (see /api/recording)")
                return
            except LookupError:
                self._plain(HTTPStatus.NOT_FOUND, "no process of this program has that pid")
                return
            if route == "/api/events":
                self._stream(owner, view, data)
            else:
                self._send(data, "application/json")
        elif route.startswith("/api/source/"):
            file_id = route[len("/api/source/"):]
            source = owner.backend.source_json(file_id) if file_id.isalnum() else None
            if source is None:
                self._plain(HTTPStatus.NOT_FOUND, "no monitored file has that id")
            else:
                self._send(source, "application/json")
        elif route == "/metrics" and owner.backend.recording_json() is not None:
            self._plain(HTTPStatus.NOT_FOUND, "a recording has no live metrics")
        elif route == "/metrics":
            snapshot = json.loads(owner.backend.snapshot_json("all"))
            self._send(metrics.render(snapshot), metrics.CONTENT_TYPE)
        elif route in ("/api/mode", "/api/report"):
            self._plain(HTTPStatus.METHOD_NOT_ALLOWED, f"{route} takes POST only")
        else:
            self._plain(HTTPStatus.NOT_FOUND, "not found")

    def _data(self, route: str, view: str | int | None, query: dict[str, list[str]]) -> bytes:
        backend = self.server.owner.backend
        if route == "/api/activity":
            return backend.activity_json(view)
        if "at" not in query:
            return backend.snapshot_json(view)
        at = query["at"][0]
        if not at.isdigit() or len(at) > 9 or backend.recording_json() is None:
            raise IndexError(at)
        return backend.snapshot_at_json(int(at), view)

    def _stream(self, owner: Server, view: str | int | None, data: bytes) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if self.command == "HEAD":
            return
        self.connection.settimeout(WRITE_TIMEOUT)
        write: Callable[[bytes], Any] = self.wfile.write
        write(b"retry: 2000\n\n")
        write(b"event: snapshot\ndata: " + data + b"\n\n")
        if threading.current_thread() is owner.accept_thread:
            return  # inline: the client reconnects after `retry` for the next one
        # A client that stops reading is dropped WRITE_TIMEOUT after it last took data,
        # not only once the kernel's buffers (megabytes: minutes of events) are full.
        took, queued = time.monotonic(), _unsent(self.connection)
        while True:
            ending = owner.closing.wait(STREAM_INTERVAL)
            still = _unsent(self.connection)
            if still is None or queued is None or still == 0 or still < queued:
                took = time.monotonic()
            elif not ending and time.monotonic() - took > WRITE_TIMEOUT:
                return
            try:
                try:
                    data = owner.backend.snapshot_json(view)
                except LookupError:  # the process dropped out of the list
                    data = owner.backend.snapshot_json("all")
            except Exception:  # a fault building it: end the stream, never a 500 inside it
                return  # (the page reconnects after `retry`)
            event = b"end" if ending else b"snapshot"
            write(b"event: " + event + b"\ndata: " + data + b"\n\n")
            if ending:
                return
            queued = _unsent(self.connection)
