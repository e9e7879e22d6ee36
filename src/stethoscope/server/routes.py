"""The requests the server answers, and the backends it answers them from.

A backend says what it is: ``Live`` (a running program's monitor: event stream,
/metrics, mode switch) or ``Replay`` (a recording: a
timeline and its snapshots by index). Routes that one kind does not have are
answered with a one-line reason.

Who may ask (``refusal``): every request needs a ``Host`` naming the loopback
address the server is bound to (DNS-rebinding defence). The page (``/``) and its
assets (``/static/...``) hold no data and need nothing more. Every other route
needs the token, in an ``X-Stethoscope-Token`` header or a ``token`` query
parameter (an EventSource cannot set headers), and refuses a request a browser
sent for another origin: an ``Origin`` that is not this server's own, or a
``Sec-Fetch-Site`` of ``cross-site`` or ``same-site`` (a page on another port of
127.0.0.1 is the same site). There is no cookie: a browser sends a cookie for
127.0.0.1 to every port of it, and rides it on any page's form posts.

The server's loop calls ``refusal`` and ``body_wanted`` on the request head before
it reads a byte of the body; a worker then answers the whole request from memory
(``Handler``), into memory: it never touches the socket. Only the fixed assets and
what the backend returns are served: no request ever names a path. Faults in a
handler answer a one-line 500 and never print a traceback.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
from collections.abc import Callable
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from . import metrics
from .stream import first_event

if TYPE_CHECKING:
    from .httpd import Server

TOKEN_HEADER = "X-Stethoscope-Token"
MAX_BODY = 4096  # bytes of a request's body (POST /api/mode needs none)
MAX_REASON = 200  # characters of a request's own text quoted in an error answer
FOREIGN_SITES = ("cross-site", "same-site")  # Sec-Fetch-Site values refused

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


def split_target(target: str) -> tuple[str, dict[str, list[str]]] | None:
    """A request target's path and query; None if it cannot be split (urlsplit raises
    ValueError on an absolute-form target with a broken IPv6 host, ``http://[``)."""
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    return parts.path, parse_qs(parts.query, keep_blank_values=True)


def _right(token: str, owner: Server) -> bool:
    return hmac.compare_digest(token.encode("utf-8", "replace"), owner.token.encode())


def refusal(owner: Server, method: str, target: str, headers: Message
            ) -> tuple[HTTPStatus, str] | None:
    """Why this request is refused (status, one line), or None: the access rule
    (module docstring). Only the head is looked at: the loop asks before any body
    is read."""
    host = headers.get("Host", "")
    if owner.loopback and host not in owner.allowed_hosts:
        return HTTPStatus.FORBIDDEN, "unexpected Host header; open the URL stethoscope printed"
    split = split_target(target)
    if split is None:
        return HTTPStatus.BAD_REQUEST, "malformed request target"
    route, query = split
    reading = method in ("GET", "HEAD")
    if reading and (route == "/" or route.startswith("/static/")):
        return None  # the page and its assets: no data in them
    if reading and route == "/metrics" and owner.metrics_public:
        return None  # opted in (metrics_public): scrapers need no token, only /metrics
    origin = headers.get("Origin")
    if origin is not None and origin != f"http://{host}":
        return HTTPStatus.FORBIDDEN, "a page of another origin may not use this API (Origin)"
    if headers.get("Sec-Fetch-Site", "").strip().lower() in FOREIGN_SITES:
        return HTTPStatus.FORBIDDEN, "a page of another site may not use this API " \
                                     "(Sec-Fetch-Site)"
    presented = query.get("token", [])[:1] + (headers.get_all(TOKEN_HEADER) or [])
    if not presented or not all(_right(str(token), owner) for token in presented):
        return HTTPStatus.FORBIDDEN, "missing or wrong token; open the URL stethoscope printed"
    return None


def content_length(headers: Message) -> int | None:
    """The Content-Length, or None when it is missing or not plain ASCII digits
    ("²".isdigit() is true, int("²") fails; and never int() of thousands of digits,
    a ValueError since Python 3.11's int limits: both were 500s)."""
    length = headers.get("Content-Length", "")
    if not (length.isascii() and length.isdigit()):
        return None
    return int(length) if len(length.lstrip("0")) <= 9 else MAX_BODY + 1


def body_wanted(owner: Server, method: str, target: str, headers: Message) -> int:
    """How many body bytes the loop reads before the request goes to a worker: a
    POST's Content-Length when the request is not refused and the length is within
    MAX_BODY; 0 otherwise (the worker then answers from the head alone)."""
    if method != "POST" or refusal(owner, method, target, headers) is not None:
        return 0
    split = split_target(target)
    length = content_length(headers)
    if split is None or length is None or length > MAX_BODY:
        return 0
    return length


class Handler(BaseHTTPRequestHandler):
    """One request, answered from memory into memory: ``request`` is the request's
    bytes (head and the body the loop read), the answer is ``wfile.getvalue()``;
    ``stream`` is set when the answer goes on as an event stream."""

    server: Server  # type: ignore[assignment]
    request: bytes
    rfile: io.BytesIO
    wfile: io.BytesIO
    server_version = "stethoscope"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    # Not the stdlib's "HTTP/0.9": under it, answers to a bare "GET /path" and errors
    # about a malformed version went out without a status line or any header.
    default_request_version = "HTTP/1.0"
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain; charset=utf-8"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the user's stderr is theirs

    @property
    def owner(self) -> Server:
        return self.server

    def setup(self) -> None:
        self.stream: tuple[AnyBackend, View] | None = None
        self.rfile = io.BytesIO(self.request)
        self.wfile = io.BytesIO()

    def finish(self) -> None:
        pass

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

    def _send(self, body: bytes, ctype: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- who may ask ---------------------------------------------------------------

    def _guarded(self, handler: Callable[[AnyBackend, str, dict[str, list[str]]], None]
                 ) -> None:
        try:
            refused = refusal(self.owner, self.command, self.path, self.headers)
            split = split_target(self.path)
            if refused is not None or split is None:
                self._plain(*(refused or (HTTPStatus.BAD_REQUEST, "malformed request target")))
                return
            handler(self.owner.backend, *split)
        except Exception:
            self.wfile = io.BytesIO()  # whatever was half-written goes
            self.stream = None
            with contextlib.suppress(Exception):
                self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

    def do_GET(self) -> None:
        self._guarded(self._get)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _not_allowed(self) -> None:
        self._plain(HTTPStatus.METHOD_NOT_ALLOWED,
                    "only GET and HEAD are served (and POST to /api/mode)")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    # -- POST ----------------------------------------------------------------------

    def _post(self, backend: AnyBackend, route: str, query: dict[str, list[str]]) -> None:
        if route == "/api/mode":
            self._set_mode(backend, query)
        else:
            self._not_allowed()

    def _set_mode(self, backend: AnyBackend, query: dict[str, list[str]]) -> None:
        """POST /api/mode?mode=M: switch what is collected; answers the mode now running."""
        length = content_length(self.headers)
        if length is not None and length > MAX_BODY:
            self._plain(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"a request body may be at most {MAX_BODY} bytes")
            return
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
            self._send(*owner.assets[route])
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
        elif route == "/api/mode":
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
        self.wfile.write(first_event(data))
        self.stream = (backend, view)  # the stream pump sends the rest (stream.py)

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
