"""A small, locked-down HTTP server for the page, the JSON API and the event stream.

* A fixed set of daemon threads, started with the server whatever the number of
  connections: the loop (``stethoscope-server``, loop.py: accepts, reads request
  heads and bodies, sends answers, lingering closes), ``WORKERS`` workers
  (``stethoscope-http-N``: answer one complete request each, from memory into
  memory, taken from a queue of ``QUEUE_SIZE``) and the stream pump
  (``stethoscope-stream``, stream.py: every open event stream).
* ``stop()`` takes milliseconds even with streams open (they get their ``end``
  event for CLOSE_GRACE at most), is idempotent, and waits for no thread without
  a timeout. ``forget()``, in a forked child, closes the inherited copies of the
  sockets without ``shutdown()``, which would cut the parent's connections.
* Every socket is an ``_fds.OwnedSocket``: a program that closes and reuses the
  server's descriptor numbers loses the server (one note, ``note``), never a file.
* What a request may ask for, and of whom, is routes.py's; the static files are
  listed once, when the server is made (``static_assets``), so no request ever
  names a path on disk.
"""

from __future__ import annotations

import contextlib
import errno
import queue
import socket
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

from .._compat import start_thread
from .._fds import OwnedSocket, owned_socketpair
from .._stderr import say
from ..config import is_loopback, url_host
from .errors import PortInUseError
from .loop import Conn, Jobs, Loop, serve_forever
from .routes import AnyBackend, Handler, View
from .stream import CLOSE_GRACE, Pump

WORKERS = 4  # threads answering requests
QUEUE_SIZE = 64  # complete requests waiting for a worker; beyond: 503
BACKLOG = 128  # listen() backlog: many children may report at once
JOIN_TIMEOUT = 1.0  # seconds stop() waits for each thread, at most
INTERNAL_ERROR = (b"HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain; "
                  b"charset=utf-8\r\nContent-Length: 19\r\n\r\n500 internal error\n")
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


def _listen(host: str, port: int) -> OwnedSocket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    owned = OwnedSocket(sock, "the server's listening socket")
    owned.sock.setblocking(False)
    return owned


class Server:
    def __init__(self, *, host: str, port: int, token: str, fallback_port: bool = False,
                 loopback: bool = True, metrics_public: bool = False,
                 note: Callable[[str], None] = say) -> None:
        self.token = token
        self.loopback = loopback
        self.metrics_public = metrics_public  # GET /metrics without the token (opt-in)
        self.note = note  # one line for the user: the server stopped by itself, and why
        self.closing = threading.Event()
        self.assets = static_assets()
        self._listener = self._bind(host, port, fallback_port)
        self.host = host
        self.port: int = self._listener.sock.getsockname()[1]
        self._wake = owned_socketpair("the server's wake-up pair")
        self._pump_wake = owned_socketpair("the event streams' wake-up pair")
        for end in (*self._wake, *self._pump_wake):
            end.sock.setblocking(False)
        self._jobs: Jobs = queue.Queue(QUEUE_SIZE)
        self._open: set[Conn] = set()
        self._open_lock = threading.Lock()
        self._loop = Loop(self, self._listener, self._wake, self._jobs)
        self._pump = Pump(self._stream_snapshot, self.closing, self._pump_wake, self.drop,
                          self.lost)
        self._threads: list[threading.Thread] = []
        self._backend: AnyBackend | None = None
        self._stopped = False
        self._failed = False
        self._abandon = False  # a descriptor was lost: let go of every socket, close none
        self._fail_lock = threading.Lock()

    def _bind(self, host: str, port: int, fallback_port: bool) -> OwnedSocket:
        try:
            return _listen(host, port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise OSError(exc.errno, f"stethoscope cannot listen on {host}:{port}: "
                                         f"{exc.strerror}") from None
            if fallback_port:
                return _listen(host, 0)
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

    def start(self, backend: AnyBackend) -> None:
        """Serve ``backend`` from now on: every thread the server will have, started."""
        self._backend = backend
        for n in range(1, WORKERS + 1):
            self._threads.append(start_thread(self._work, f"stethoscope-http-{n}"))
        self._threads.append(start_thread(self._pump_forever, "stethoscope-stream"))
        # the loop last: no request is answered before start() is all but done (a
        # caller that answers SIGTERM installs its handler right after)
        self._threads.append(start_thread(lambda: serve_forever(self._loop, self),
                                          "stethoscope-server"))

    # -- the connections' registry (every thread) ---------------------------------

    def register(self, conn: Conn) -> None:
        with self._open_lock:
            self._open.add(conn)

    def open_count(self) -> int:
        return len(self._open)

    def drop(self, conn: Conn) -> None:
        """Close a connection (if its number is still ours) and forget it; once."""
        with self._open_lock:
            if conn.closed:
                return
            conn.closed = True
            self._open.discard(conn)
            self._let_go(conn.owned)

    def _let_go(self, owned: OwnedSocket) -> None:
        """Close a socket of ours; after a lost descriptor, only forget it. A program
        that closed one of our numbers is closing descriptors wholesale and opening
        its own on them: between our check (``mine()``) and our close() it may give
        the number to its own file, and a socket or two left open is the lesser harm."""
        if not self._abandon:
            owned.close()
            return
        owned.lost = True
        with contextlib.suppress(OSError):
            owned.sock.detach()

    # -- the workers -------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None or self.closing.is_set():
                return
            conn, request = job
            try:
                handler = Handler(request, conn.peer, self)  # type: ignore[arg-type]
                out, stream = handler.wfile.getvalue(), handler.stream
            except Exception:
                out, stream = INTERNAL_ERROR, None
            try:
                if self.closing.is_set():
                    self.drop(conn)
                elif stream is not None:
                    conn.state = "stream"
                    self._pump.adopt(conn, out, stream[1])
                else:
                    self._loop.answer(conn, out)
            except Exception:  # this connection only; the worker goes on
                self.drop(conn)

    def _pump_forever(self) -> None:
        try:
            self._pump.run()
        except Exception as exc:  # never a dead thread and streams that go quiet
            self.fail(f"the page and API stopped after an internal error in the event "
                      f"streams: {exc!r}")

    def _stream_snapshot(self, view: View) -> bytes:
        backend = self.backend
        try:
            return backend.snapshot_json(view)
        except LookupError:  # the process dropped out of the list
            return backend.snapshot_json("all")

    # -- ending ------------------------------------------------------------------

    def lost(self, what: str) -> None:
        """One of the server's own descriptors is not its own any more."""
        self._abandon = True
        self.fail(f"{what} was closed or replaced by the program; the page and API "
                  f"have stopped")

    def fail(self, message: str) -> None:
        """Stop by itself, with exactly one note saying why."""
        with self._fail_lock:
            first, self._failed = not self._failed, True
        if first and not self._stopped:
            try:
                self.note(message)
            finally:
                self.stop()

    def stop(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Send open streams their final event, close every socket, end the threads."""
        if self._stopped:
            return
        self._stopped = True
        self.closing.set()
        self._loop.wake()
        self._pump.wake()
        for _ in range(WORKERS):
            try:
                self._jobs.put_nowait(None)
            except queue.Full:
                break  # the workers see `closing` after the job in hand
        me = threading.current_thread()
        for thread in self._threads:
            if thread is not me:
                thread.join(timeout + (CLOSE_GRACE if thread.name == "stethoscope-stream"
                                       else 0.0))
        with self._open_lock:
            left = list(self._open)
        for conn in left:  # whatever no thread closed: cut it (a stalled client cannot hold us)
            if not self._abandon:
                conn.owned.shutdown()
            self.drop(conn)
        for sock in (self._listener, *self._wake, *self._pump_wake):
            self._let_go(sock)

    def forget(self) -> None:
        """In a forked child: close inherited sockets without touching the parent's."""
        self._stopped = True
        self.closing.set()
        # no lock: a parent thread may have held it at the fork; close(), never
        # shutdown(): that would cut the parent's connections too
        for conn in list(self._open):
            conn.closed = True
            conn.owned.close()
        for sock in (self._listener, *self._wake, *self._pump_wake):
            sock.close()
