"""The server's one loop thread: every connection's reads and writes, never blocking.

One thread (``stethoscope-server``) polls (``select.poll``: unlike epoll it holds
no descriptor of its own) the listening socket, the wake-up pair and every
connection the loop holds, whatever their number:

* accepts, up to ``MAX_CONNECTIONS`` open at once (a connection beyond that is
  closed at once);
* reads each request head within ``HEAD_TIMEOUT`` of the accept, all of it (a
  client trickling a byte at a time is closed then) and at most ``MAX_HEAD``
  bytes (431);
* asks routes.py about the head before a byte of a body is read: a refused
  request's body is never read; an admitted body is read within
  ``BODY_TIMEOUT``, and all bodies held at once count against ``MAX_BUFFERED``
  (beyond it: 503);
* hands the whole request to the server's workers through a bounded queue (full:
  503), sends the answer they made, and closes with a lingering close: the
  answer's end is sent (FIN), and what the client still sends is read and dropped
  for ``LINGER`` at most, so a client whose request was refused part-way still
  gets the whole answer (closing a socket with unread input resets the
  connection, and the reset can discard the answer in the client's buffers
  before it reads them).

Every descriptor is an ``_fds.OwnedSocket``, checked before each use: a
connection the program took over is forgotten silently; a lost listening socket
or wake-up pair stops the server (``Server.lost``). A fault while serving one
connection closes that connection only.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import io
import queue
import re
import select
import socket
import time
from collections import deque
from email.message import Message
from typing import TYPE_CHECKING

from .._fds import OwnedSocket
from . import routes
from .stream import WRITE_TIMEOUT

if TYPE_CHECKING:
    from .httpd import Server

HEAD_TIMEOUT = 5.0  # seconds from accept for the whole request head
BODY_TIMEOUT = 10.0  # seconds from the head's end for the whole body
MAX_HEAD = 128 * 1024  # bytes of a request head (request line and headers)
MAX_CONNECTIONS = 256  # connections open at once, event streams included
MAX_BUFFERED = 64 * 1024 * 1024  # body bytes held at once over all connections
LINGER = 1.0  # seconds a closing connection's late input is read and dropped, at most
LINGER_BYTES = 1 << 20  # and at most this much of it
ACCEPT_PAUSE = 0.1  # seconds the listener rests when the process is out of descriptors

Jobs = queue.Queue["tuple[Conn, bytes] | None"]
HEAD_END = re.compile(rb"\n\r?\n")
READ = select.POLLIN
FAULT = select.POLLERR | select.POLLHUP | select.POLLNVAL


class Conn:
    """One connection: its socket, what is read of it, and what goes out."""

    __slots__ = ("buf", "closed", "deadline", "dropped", "head_len", "out", "owned",
                 "peer", "reserved", "state", "want")

    def __init__(self, owned: OwnedSocket, peer: object, deadline: float) -> None:
        self.owned = owned
        self.peer = peer
        self.state = "head"  # head, body, work (a worker's), send, linger, stream (the pump's)
        self.buf = bytearray()
        self.deadline = deadline
        self.head_len = 0
        self.want = 0  # body bytes to read
        self.reserved = 0  # of MAX_BUFFERED
        self.out = memoryview(b"")
        self.dropped = 0
        self.closed = False


def canned(status: int, reason: str, message: str) -> bytes:
    """A one-line answer the loop gives itself, with the headers every answer has."""
    body = f"{status} {message}\n".encode()
    return (f"HTTP/1.0 {status} {reason}\r\nServer: stethoscope\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            f"Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
            f"Content-Security-Policy: {routes.CSP}\r\nReferrer-Policy: no-referrer\r\n"
            f"\r\n").encode() + body


BUSY = canned(503, "Service Unavailable", "the monitor is busy; try again")
TOO_BIG = canned(431, "Request Header Fields Too Large",
                 f"a request head may be at most {MAX_HEAD} bytes")
FULL = canned(503, "Service Unavailable", "too many request bodies held; try again")


def peek(head: bytes) -> tuple[str, str, Message] | None:
    """Method, target and headers of a plain request head; None for anything the
    worker's stdlib parser must judge (it then answers from the head alone)."""
    line, _, rest = head.partition(b"\n")
    words = line.decode("iso-8859-1").rstrip("\r\n").split()
    if len(words) != 3:
        return None
    try:
        headers = http.client.parse_headers(io.BytesIO(rest))
    except Exception:  # over 100 headers, a line over 64 KiB, ...
        return None
    return words[0], words[1], headers


class Loop:
    def __init__(self, server: Server, listener: OwnedSocket,
                 wake: tuple[OwnedSocket, OwnedSocket], jobs: Jobs) -> None:
        self._server = server
        self._listener = listener
        self._wake_r, self._wake_w = wake
        self._jobs = jobs
        self._poller = select.poll()
        self._by_fd: dict[int, Conn] = {}
        self._conns: set[Conn] = set()  # the connections in the loop's hands
        self._answers: deque[tuple[Conn, bytes]] = deque()
        self._buffered = 0
        self._paused_until = 0.0

    # -- from other threads ------------------------------------------------------

    def answer(self, conn: Conn, data: bytes) -> None:
        """A worker's answer to send (any thread)."""
        self._answers.append((conn, data))
        self.wake()

    def wake(self) -> None:
        if self._wake_w.mine():
            try:
                self._wake_w.sock.send(b"x")
            except (BlockingIOError, InterruptedError):
                pass  # it rings already
            except OSError:
                pass

    # -- the loop ----------------------------------------------------------------

    def run(self) -> None:
        closing = self._server.closing
        self._poller.register(self._listener.fd, READ)
        self._poller.register(self._wake_r.fd, READ)
        checked = time.monotonic()
        while not closing.is_set():
            events = self._poller.poll(self._timeout_ms())
            if closing.is_set():
                return
            for fd, mask in events:
                if fd == self._listener.fd:
                    self._accept()
                elif fd == self._wake_r.fd:
                    self._ring()
                elif (conn := self._by_fd.get(fd)) is not None:
                    self._guard(conn, mask)
                if closing.is_set():
                    return
            self._take_answers()
            now = time.monotonic()
            self._expire(now)
            if now - checked > 1.0:  # a listener nobody calls on is checked too
                checked = now
                if not (self._listener.mine() and self._wake_r.mine() and self._wake_w.mine()):
                    self._server.lost("the listening socket or its wake-up pair")
                    return

    def _timeout_ms(self) -> int:
        now = time.monotonic()
        soonest = min([c.deadline for c in self._conns], default=now + 1.0)
        if self._paused_until:
            if now >= self._paused_until:
                self._paused_until = 0.0
                self._poller.register(self._listener.fd, READ)
            else:
                soonest = min(soonest, self._paused_until)
        return max(0, min(1000, int((soonest - now) * 1000) + 1))

    def _ring(self) -> None:
        if not self._wake_r.mine():
            self._server.lost("the server's wake-up pair")
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            self._wake_r.sock.recv(4096)

    def _accept(self) -> None:
        if not self._listener.mine():
            self._server.lost("the listening socket")
            return
        for _ in range(64):
            try:
                sock, peer = self._listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # out of descriptors: the listener stays readable; rest, not spin
                    self._poller.unregister(self._listener.fd)
                    self._paused_until = time.monotonic() + ACCEPT_PAUSE
                    return
                continue  # ECONNABORTED and the like: that client only
            if self._server.open_count() >= MAX_CONNECTIONS:
                sock.close()
                continue
            owned = OwnedSocket(sock, "a connection")
            owned.sock.setblocking(False)  # after: a socket lifted above fd 2 is a new object
            conn = Conn(owned, peer, time.monotonic() + HEAD_TIMEOUT)
            self._server.register(conn)
            self._watch(conn, READ)

    def _watch(self, conn: Conn, mask: int) -> None:
        if not conn.owned.mine():
            self._close(conn)
            return
        self._poller.register(conn.owned.fd, mask)
        self._by_fd[conn.owned.fd] = conn
        self._conns.add(conn)

    def _unwatch(self, conn: Conn) -> None:
        self._conns.discard(conn)
        if self._by_fd.get(conn.owned.fd) is conn:
            del self._by_fd[conn.owned.fd]
            with contextlib.suppress(KeyError, ValueError):
                self._poller.unregister(conn.owned.fd)

    def _close(self, conn: Conn) -> None:
        self._unwatch(conn)
        self._release(conn)
        self._server.drop(conn)

    def _release(self, conn: Conn) -> None:
        self._buffered -= conn.reserved
        conn.reserved = 0

    def _guard(self, conn: Conn, mask: int) -> None:
        try:
            self._serve(conn, mask)
        except Exception:  # one connection's fault ends that connection only
            self._close(conn)

    def _serve(self, conn: Conn, mask: int) -> None:
        if not conn.owned.mine():
            self._close(conn)  # detached: the number is the program's now
            return
        if conn.state == "send":
            self._send(conn)
            return
        try:
            want = conn.head_len + conn.want - len(conn.buf) if conn.state == "body" else 0
            chunk = conn.owned.sock.recv(min(max(want, 65536), 1 << 20))
        except (BlockingIOError, InterruptedError):
            if mask & FAULT:
                self._close(conn)
            return
        except OSError:
            self._close(conn)
            return
        if conn.state == "linger":
            conn.dropped += len(chunk)
            if not chunk or conn.dropped > LINGER_BYTES:
                self._close(conn)
        elif conn.state == "head":
            self._read_head(conn, chunk)
        elif conn.state == "body":
            if not chunk:
                self._close(conn)  # the client went away mid-body
                return
            conn.buf += chunk
            if len(conn.buf) >= conn.head_len + conn.want:
                self._dispatch(conn, bytes(conn.buf[:conn.head_len + conn.want]))

    def _read_head(self, conn: Conn, chunk: bytes) -> None:
        if not chunk:  # the client half-closed: the worker judges what came
            if conn.buf:
                self._dispatch(conn, bytes(conn.buf))
            else:
                self._close(conn)
            return
        start = max(0, len(conn.buf) - 2)
        conn.buf += chunk
        end = HEAD_END.search(conn.buf, start)
        if end is None or end.end() > MAX_HEAD:
            if len(conn.buf) > MAX_HEAD:
                self._reply(conn, TOO_BIG)
            return
        conn.head_len = end.end()
        head = bytes(conn.buf[:conn.head_len])
        parsed = peek(head)
        want = routes.body_wanted(self._server, *parsed) if parsed is not None else 0
        if want == 0:
            self._dispatch(conn, head)
            return
        if self._buffered + want > MAX_BUFFERED:
            self._reply(conn, FULL)
            return
        self._buffered += want
        conn.reserved, conn.want, conn.state = want, want, "body"
        conn.deadline = time.monotonic() + BODY_TIMEOUT
        if len(conn.buf) >= conn.head_len + want:
            self._dispatch(conn, bytes(conn.buf[:conn.head_len + want]))

    def _dispatch(self, conn: Conn, request: bytes) -> None:
        self._unwatch(conn)
        conn.state, conn.buf = "work", bytearray()
        try:
            self._jobs.put_nowait((conn, request))
        except queue.Full:
            self._reply(conn, BUSY)

    def _take_answers(self) -> None:
        while self._answers:
            conn, data = self._answers.popleft()
            if not conn.closed:
                self._reply(conn, data)

    def _reply(self, conn: Conn, data: bytes) -> None:
        self._release(conn)
        conn.state, conn.buf, conn.out = "send", bytearray(), memoryview(data)
        conn.deadline = time.monotonic() + WRITE_TIMEOUT
        self._unwatch(conn)
        self._watch(conn, select.POLLOUT)
        if not conn.closed:
            self._send(conn)

    def _send(self, conn: Conn) -> None:
        if not conn.owned.mine():
            self._close(conn)
            return
        try:
            while conn.out:
                sent = conn.owned.sock.send(conn.out)
                conn.out = conn.out[sent:]
                conn.deadline = time.monotonic() + WRITE_TIMEOUT
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        conn.owned.shutdown(socket.SHUT_WR)  # FIN after the answer; then linger
        conn.state, conn.deadline = "linger", time.monotonic() + LINGER
        self._unwatch(conn)
        self._watch(conn, READ)

    def _expire(self, now: float) -> None:
        for conn in [c for c in self._conns if c.deadline <= now]:
            self._close(conn)  # a slow head or body, a stalled reader, a linger's end


def serve_forever(loop: Loop, server: Server) -> None:
    """The loop thread's body: anything escaping the loop stops the server with
    one note, rather than leaving a dead thread and a silent port."""
    try:
        loop.run()
    except Exception as exc:
        server.fail(f"the page and API stopped after an internal error in the server "
                    f"loop: {exc!r}")

