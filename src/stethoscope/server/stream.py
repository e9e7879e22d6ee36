"""``GET /api/events``: the live snapshot streams (server-sent events), one thread for all.

A worker answers the request's head and first event (``first_event``) and hands
the socket to the ``Pump``, so an open stream holds no worker. The pump's thread
(``stethoscope-stream``) sends every open stream a snapshot each
``STREAM_INTERVAL`` (one snapshot built per view per round), without ever
blocking on a client: a stream whose earlier event is still unsent skips a round.
A client that takes no data for ``WRITE_TIMEOUT`` is dropped (Linux: judged by
the bytes still queued for it, TIOCOUTQ, not only once the kernel's buffers,
megabytes, are full). On the server's stop every stream gets one last ``end``
event, for ``CLOSE_GRACE`` at most. A fault building a snapshot ends the streams
of that view (the page reconnects after ``retry``), never a 500 inside one.
"""

from __future__ import annotations

import contextlib
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._fds import OwnedSocket

if TYPE_CHECKING:
    from .loop import Conn

STREAM_INTERVAL = 0.25  # seconds between event-stream updates
WRITE_TIMEOUT = 5.0  # a client that does not take data for this long is dropped
RETRY_MS = 2000  # the client reconnects after this long when the stream ends
CLOSE_GRACE = 0.2  # seconds open streams get to take their final event on stop


def first_event(data: bytes) -> bytes:
    return b"retry: %d\n\nevent: snapshot\ndata: %s\n\n" % (RETRY_MS, data)


def event(kind: bytes, data: bytes) -> bytes:
    return b"event: " + kind + b"\ndata: " + data + b"\n\n"


def unsent(sock: socket.socket) -> int | None:
    """Bytes sent to the client that it has not taken yet (Linux); None elsewhere."""
    try:
        import fcntl
        import termios

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ
    except (ImportError, AttributeError, OSError, ValueError):
        return None
    return int.from_bytes(raw, sys.byteorder, signed=True)


class _Stream:
    __slots__ = ("conn", "pending", "queued", "sent", "took", "view")

    def __init__(self, conn: Conn, pending: bytes, view: Any) -> None:
        self.conn = conn
        self.pending = pending
        self.view = view
        self.took = time.monotonic()  # when the client last took data
        self.queued: int | None = None  # bytes queued for it after our last send
        self.sent = False  # whether a send() took bytes since the last check

    def flush(self) -> bool:
        """Send what it can without blocking; False when the client is gone or lost."""
        owned = self.conn.owned
        if not self.pending:
            return True
        if not owned.mine():
            return False
        try:
            while self.pending:
                sent = owned.sock.send(self.pending)
                self.pending = self.pending[sent:]
                self.sent = True
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return False
        self.queued = unsent(owned.sock)
        return True

    def stalled(self, now: float) -> bool:
        """Whether the client has taken nothing for WRITE_TIMEOUT: by the bytes still
        queued for it where the kernel says (a send() the kernel's buffers take is
        no sign of a reader), else by send() taking any."""
        still = unsent(self.conn.owned.sock) if self.conn.owned.mine() else None
        if still is None:
            took = self.sent or not self.pending
        else:
            took = still == 0 or (self.queued is not None and still < self.queued)
            self.queued = still
        self.sent = False
        if took:
            self.took = now
        return now - self.took > WRITE_TIMEOUT


class Pump:
    """Every open event stream; ``run`` is the pump thread's body."""

    def __init__(self, snapshot: Callable[[Any], bytes], closing: threading.Event,
                 wake: tuple[OwnedSocket, OwnedSocket], drop: Callable[[Conn], None],
                 lost: Callable[[str], None]) -> None:
        self._snapshot = snapshot  # view -> JSON; the final one after `closing`
        self._closing = closing
        self._wake_r, self._wake_w = wake
        self._drop = drop  # closes a connection and forgets it (the server's registry)
        self._lost = lost  # the wake-up pair is not ours any more: stop the server
        self._inbox: list[_Stream] = []
        self._lock = threading.Lock()
        self._streams: list[_Stream] = []

    def adopt(self, conn: Conn, pending: bytes, view: Any) -> None:
        """Take over an answered /api/events connection (any thread)."""
        with self._lock:
            self._inbox.append(_Stream(conn, pending, view))
        self.wake()

    def wake(self) -> None:
        if not self._wake_w.mine():
            return
        with contextlib.suppress(OSError):
            self._wake_w.sock.send(b"x")

    def run(self) -> None:
        next_round = time.monotonic() + STREAM_INTERVAL
        while not self._closing.is_set():
            self._take_inbox()
            now = time.monotonic()
            if now >= next_round:
                self._round(b"snapshot", now)
                next_round = max(next_round + STREAM_INTERVAL, now + STREAM_INTERVAL / 4)
            self._flush_all()
            if not self._wait(next_round - time.monotonic()):
                return
        self._take_inbox()
        self._finish()

    def _take_inbox(self) -> None:
        with self._lock:
            fresh, self._inbox = self._inbox, []
        self._streams.extend(fresh)

    def _round(self, kind: bytes, now: float) -> None:
        built: dict[Any, bytes | None] = {}
        keep = []
        for s in self._streams:
            if kind == b"snapshot" and s.stalled(now):
                self._drop(s.conn)
                continue
            if s.pending and kind == b"snapshot":
                keep.append(s)  # still sending the last one: this round is skipped
                continue
            if s.view not in built:
                try:
                    built[s.view] = self._snapshot(s.view)
                except Exception:  # a fault building it: end these streams
                    built[s.view] = None
            data = built[s.view]
            if data is None:
                self._drop(s.conn)
                continue
            s.pending += event(kind, data)
            keep.append(s)
        self._streams = keep

    def _flush_all(self) -> None:
        keep = []
        for s in self._streams:
            if s.flush():
                keep.append(s)
            else:
                self._drop(s.conn)
        self._streams = keep

    def _wait(self, timeout: float) -> bool:
        """Until a stream can take more, the wake-up pair rings, or ``timeout``;
        False when the wake-up pair is lost."""
        if not self._wake_r.mine():
            self._lost("the event streams' wake-up pair")
            return False
        poller = select.poll()
        poller.register(self._wake_r.fd, select.POLLIN)
        for s in self._streams:
            if s.pending and s.conn.owned.mine():
                poller.register(s.conn.owned.fd, select.POLLOUT)
        try:
            events = poller.poll(max(0, int(timeout * 1000) + 1))
        except InterruptedError:
            return True
        if any(fd == self._wake_r.fd for fd, _ in events):
            if not self._wake_r.mine():
                self._lost("the event streams' wake-up pair")
                return False
            with contextlib.suppress(OSError):
                self._wake_r.sock.recv(4096)
        return True

    def _finish(self) -> None:
        """The server stops: an ``end`` event to every stream, CLOSE_GRACE to take it."""
        self._round(b"end", time.monotonic())
        deadline = time.monotonic() + CLOSE_GRACE
        while self._streams and time.monotonic() < deadline:
            self._flush_all()
            self._streams, done = [s for s in self._streams if s.pending], \
                [s for s in self._streams if not s.pending]
            for s in done:
                self._drop(s.conn)
            if self._streams:
                poller = select.poll()
                for s in self._streams:
                    if s.conn.owned.mine():
                        poller.register(s.conn.owned.fd, select.POLLOUT)
                with contextlib.suppress(InterruptedError):
                    poller.poll(max(1, int((deadline - time.monotonic()) * 1000)))
        for s in self._streams:
            self._drop(s.conn)
        self._streams = []

    def forget(self) -> list[Conn]:
        """Every stream's connection (the server's stop or a fork closes them)."""
        return [s.conn for s in self._streams + self._inbox]
