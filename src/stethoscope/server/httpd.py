"""A small, locked-down HTTP server for the page, the JSON API and the event stream.

* stdlib ``ThreadingHTTPServer`` with daemon handler threads, never joined on close;
  its accept loop runs in a daemon thread and wakes at once on ``stop()`` through a
  socket pair, so stopping takes milliseconds even with event streams open.
* What a request may ask for, and of whom, is routes.py's; the static files are
  listed once, when the server is made (``static_assets``), so no request ever
  names a path on disk.
* A connection closes with a lingering close: the answer's end is sent (FIN), and
  what the client still sends is read and dropped for a moment, so a client whose
  request was refused part-way still gets the whole answer (closing a socket with
  unread input resets the connection, and the reset can discard the answer in the
  client's buffers before it reads them).
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from importlib import resources
from typing import Any

from .._compat import block_signals
from .._stderr import say
from ..config import is_loopback, url_host
from .errors import PortInUseError
from .routes import AnyBackend, Handler

CLOSE_GRACE = 0.2  # seconds open streams get to send their final event on stop
LINGER = 1.0  # seconds a closing connection's late input is read and dropped, at most
LINGER_BYTES = 1 << 20  # and at most this much of it
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
                 ".png": "image/png"}


def static_assets() -> dict[str, tuple[bytes, str]]:
    """Every file of the page, read once: route -> (bytes, content type). The page
    itself is at ``/``, the rest at ``/static/<its path under static/>``; only files
    of the types in CONTENT_TYPES are served."""
    assets: dict[str, tuple[bytes, str]] = {}
    root = resources.files(__package__).joinpath("static")

    def walk(folder: Any, prefix: str) -> None:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
                continue
            ctype = CONTENT_TYPES.get("." + entry.name.rpartition(".")[2])
            if ctype is None:
                continue
            route = "/" if prefix == "" and entry.name == "index.html" \
                else f"/static/{prefix}{entry.name}"
            assets[route] = (entry.read_bytes(), ctype)

    walk(root, "")
    return assets


def warn_if_exposed(host: str) -> None:
    """One line on stderr when the server listens on a non-loopback address (trace(),
    stethoscope run/demo and stethoscope view say it with the same words)."""
    if not is_loopback(host):
        say(f"warning: serving on {url_host(host)}, not a loopback address: the page and "
            f"API are reachable from the network, and the token is the only guard")


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # server_close() must never wait for a handler
    request_queue_size = 128  # listen() backlog: many children may report at once

    def __init__(self, address: tuple[str, int], owner: Server) -> None:
        self.owner = owner
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, Handler)

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
        if threading.current_thread() is not self.owner.accept_thread \
                and not self.owner.closing.is_set():
            _linger(request)
        super().shutdown_request(request)

    def open_connections(self) -> list[socket.socket]:
        with self._conns_lock:
            return list(self._conns)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that misbehaves or goes away is not news; never print a traceback


def _linger(sock: socket.socket) -> None:
    """Send FIN after the answer, then read and drop what the client still sends
    until it closes, for at most LINGER seconds and LINGER_BYTES."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER
        dropped = 0
        while dropped < LINGER_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            dropped += len(chunk)
    except OSError:
        pass


class Server:
    def __init__(self, *, host: str, port: int, token: str, fallback_port: bool = False,
                 loopback: bool = True, metrics_public: bool = False) -> None:
        self.token = token
        self.loopback = loopback
        self.metrics_public = metrics_public  # GET /metrics without the token (opt-in)
        self.closing = threading.Event()
        self.assets = static_assets()
        self._httpd = self._bind(host, port, fallback_port)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._backend: AnyBackend | None = None
        self._stopped = False

    def _bind(self, host: str, port: int, fallback_port: bool) -> HTTPServer:
        try:
            return HTTPServer((host, port), self)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise OSError(exc.errno, f"stethoscope cannot listen on {host}:{port}: "
                                         f"{exc.strerror}") from None
            if fallback_port:
                return HTTPServer((host, 0), self)
            raise PortInUseError(
                errno.EADDRINUSE,
                f"port {port} on {host} is already in use; pass another port, or port=0 "
                f"(CLI: --port 0) for any free one",
            ) from None

    @property
    def backend(self) -> AnyBackend:
        assert self._backend is not None, "start() first"
        return self._backend

    @property
    def allowed_hosts(self) -> frozenset[str]:
        names = {self.host, "localhost", "127.0.0.1", "[::1]"} if self.loopback else set()
        return frozenset(f"{name}:{self.port}" for name in names)

    @property
    def accept_thread(self) -> threading.Thread | None:
        return self._thread

    def start(self, backend: AnyBackend) -> None:
        """Serve ``backend`` from now on."""
        self._backend = backend
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
