"""The requests the server answers, and the backends it answers them from.

A backend says what it is: ``Live`` (a running program's monitor: event stream,
/metrics, mode switch, children's reports) or ``Replay`` (a recording: a
timeline and its snapshots by index). Routes that one kind does not have are
answered with a one-line reason. Every request needs the token (query
parameter, or the cookie the page request sets) and a ``Host`` naming the
loopback address the server is bound to (DNS-rebinding defence). Only the fixed
assets and what the backend returns are served: no request ever names a path.
Faults in a handler answer a one-line 500 and never print a traceback.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from ..model.report import MODE_HEADER
from . import metrics
from .stream import stream

if TYPE_CHECKING:
    from .httpd import HTTPServer, Server

COOKIE = "stethoscope_token"
READ_TIMEOUT = 10.0  # a request must arrive completely within this
MAX_REPORT = 32 * 1024 * 1024  # bytes in one child report
MAX_REASON = 200  # characters of a request's own text quoted in an error answer

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

View = str | int | None


class Backend(Protocol):
    """What either kind of backend serves."""

    def snapshot_json(self, view: View = "all") -> bytes:
        """LookupError for a pid that is not one of the program's processes."""
        ...

    def source_json(self, file_id: str) -> bytes | None: ...

    def activity_json(self, view: View = "all") -> bytes:
        """Activity over time (the page's plots); LookupError for an unknown pid."""
        ...


class Live(Backend, Protocol):
    """A running program's monitor (monitor/backend.py)."""

    kind: Literal["live"]

    def accept_report(self, body: bytes) -> str | None:
        """Take a child process's report; an error message if it is refused."""
        ...

    @property
    def requested_mode(self) -> str:
        """The mode asked for last: children are told to run in it too."""
        ...

    def set_mode(self, mode: str) -> str:
        """Switch the collection mode; the mode now running. ValueError (or
        RuntimeError once stopped) with a message for a mode that cannot be asked for."""
        ...


class Replay(Backend, Protocol):
    """A recording (recordings/replay.py)."""

    kind: Literal["replay"]

    def recording_json(self) -> bytes:
        """The recording's timeline."""
        ...

    def snapshot_at_json(self, index: int, view: View = "all") -> bytes:
        """The index-th snapshot: IndexError outside it, LookupError for an unknown pid."""
        ...


AnyBackend = Live | Replay


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


class Handler(BaseHTTPRequestHandler):
    server: HTTPServer
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

    @property
    def owner(self) -> Server:
        return self.server.owner

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the whole request must arrive within READ_TIMEOUT
        self.rfile = io.BufferedReader(
            _RequestReader(self.connection, time.monotonic() + READ_TIMEOUT))

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """The stdlib's answer to a request it cannot parse, as one short line. Its
        reasons quote the request's own text (a 64 KiB request line, say), in the
        status line as well as the body: keep them short, ASCII and on one line."""
        if message is not None:
            message = message.encode("ascii", "backslashreplace").decode("ascii")
            message = message.replace("\r", " ").replace("\n", " ")
            if len(message) > MAX_REASON:
                message = message[:MAX_REASON] + "..."
        super().send_error(code, message, None)

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

    # -- who may ask ---------------------------------------------------------------

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
        owner = self.owner
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

    def _guarded(self, handler: Callable[[AnyBackend, str, dict[str, list[str]]], None]
                 ) -> None:
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
            handler(self.owner.backend, parts.path, query)
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

    # -- POST ----------------------------------------------------------------------

    def _post(self, backend: AnyBackend, route: str, query: dict[str, list[str]]) -> None:
        if route == "/api/mode":
            self._set_mode(backend, query)
        elif route == "/api/report":
            self._report(backend)
        else:
            self._not_allowed()

    def _report(self, backend: AnyBackend) -> None:
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
        if backend.kind == "replay":
            self._plain(HTTPStatus.BAD_REQUEST, "this is a recording: it takes no reports")
            return
        error = backend.accept_report(self.rfile.read(int(length)))
        if error is not None:
            self._plain(HTTPStatus.BAD_REQUEST, error)
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self.send_header(MODE_HEADER, backend.requested_mode)
        self.end_headers()

    def _set_mode(self, backend: AnyBackend, query: dict[str, list[str]]) -> None:
        """POST /api/mode?mode=M: switch what is collected; answers the mode now running."""
        if backend.kind == "replay":
            self._plain(HTTPStatus.BAD_REQUEST, "this is a recording: it cannot switch modes")
            return
        try:
            running = backend.set_mode(query.get("mode", [""])[0])
        except (ValueError, RuntimeError) as exc:
            self._plain(HTTPStatus.BAD_REQUEST, str(exc))
            return
        self._send(json.dumps({"mode": running}).encode(), "application/json")

    # -- GET -----------------------------------------------------------------------

    def _view(self, query: dict[str, list[str]]) -> View:
        """The ``pid`` query parameter: "all" (the default), or one process's pid."""
        value = query.get("pid", ["all"])[0]
        if value == "all":
            return "all"
        if value.isdigit() and len(value) < 10:
            return int(value)
        raise ValueError(value)

    def _get(self, backend: AnyBackend, route: str, query: dict[str, list[str]]) -> None:
        owner = self.owner
        if route in owner.assets:
            body, ctype = owner.assets[route]
            token, from_query = self._token_from_request(query)
            self._send(body, ctype, cookie=token if route == "/" and from_query else None)
        elif route == "/api/recording":
            self._send(b"null" if backend.kind == "live" else backend.recording_json(),
                       "application/json")
        elif route == "/api/events" and backend.kind == "replay":
            self._plain(HTTPStatus.NOT_FOUND, "a recording has no live events: "
                                              "use /api/snapshot?at=INDEX")
        elif route in ("/api/snapshot", "/api/events", "/api/activity"):
            self._data_route(backend, route, query)
        elif route.startswith("/api/source/"):
            file_id = route[len("/api/source/"):]
            source = backend.source_json(file_id) if file_id.isalnum() else None
            if source is None:
                self._plain(HTTPStatus.NOT_FOUND, "no monitored file has that id")
            else:
                self._send(source, "application/json")
        elif route == "/metrics" and backend.kind == "replay":
            self._plain(HTTPStatus.NOT_FOUND, "a recording has no live metrics")
        elif route == "/metrics":
            snapshot = json.loads(backend.snapshot_json("all"))
            self._send(metrics.render(snapshot), metrics.CONTENT_TYPE)
        elif route in ("/api/mode", "/api/report"):
            self._plain(HTTPStatus.METHOD_NOT_ALLOWED, f"{route} takes POST only")
        else:
            self._plain(HTTPStatus.NOT_FOUND, "not found")

    def _data_route(self, backend: AnyBackend, route: str, query: dict[str, list[str]]
                    ) -> None:
        try:
            view = self._view(query)
            data = self._data(backend, route, view, query)
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
        if route != "/api/events":
            self._send(data, "application/json")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if self.command == "HEAD":
            return

        def snapshot() -> bytes:
            try:
                return backend.snapshot_json(view)
            except LookupError:  # the process dropped out of the list
                return backend.snapshot_json("all")

        stream(self.connection, self.wfile.write, data, snapshot, self.owner.closing,
               once=threading.current_thread() is self.owner.accept_thread)

    def _data(self, backend: AnyBackend, route: str, view: View,
              query: dict[str, list[str]]) -> bytes:
        if route == "/api/activity":
            return backend.activity_json(view)
        if "at" not in query:
            return backend.snapshot_json(view)
        at = query["at"][0]
        if not at.isdigit() or len(at) > 9 or backend.kind != "replay":
            raise IndexError(at)
        return backend.snapshot_at_json(int(at), view)
