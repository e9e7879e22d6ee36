"""``GET /api/events``: the live snapshot stream (server-sent events).

A snapshot goes out every ``STREAM_INTERVAL``; on the server's stop, one last
``end`` event. A client that stops reading is dropped ``WRITE_TIMEOUT`` after it
last took data (Linux: by the bytes still queued for it), not only once the
kernel's buffers (megabytes: minutes of events) are full. A fault building a
snapshot ends the stream (the page reconnects after ``retry``), never a 500
inside it.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

STREAM_INTERVAL = 0.25  # seconds between event-stream updates
WRITE_TIMEOUT = 5.0  # a client that does not take data for this long is dropped
RETRY_MS = 2000  # the client reconnects after this long when the stream ends


def unsent(sock: socket.socket) -> int | None:
    """Bytes sent to the client that it has not taken yet (Linux); None elsewhere."""
    try:
        import fcntl
        import termios

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ
    except (ImportError, AttributeError, OSError, ValueError):
        return None
    return int.from_bytes(raw, sys.byteorder, signed=True)


def stream(sock: socket.socket, write: Callable[[bytes], Any], first: bytes,
           snapshot: Callable[[], bytes], closing: threading.Event, *,
           once: bool = False) -> None:
    """Send ``first``, then a snapshot each interval until ``closing`` (then ``end``).
    ``once``: only the first (served inline by the accept thread, which must not
    stay here; the client comes back after ``retry``)."""
    sock.settimeout(WRITE_TIMEOUT)
    write(b"retry: %d\n\n" % RETRY_MS)
    write(b"event: snapshot\ndata: " + first + b"\n\n")
    if once:
        return
    took, queued = time.monotonic(), unsent(sock)
    while True:
        ending = closing.wait(STREAM_INTERVAL)
        still = unsent(sock)
        if still is None or queued is None or still == 0 or still < queued:
            took = time.monotonic()
        elif not ending and time.monotonic() - took > WRITE_TIMEOUT:
            return
        try:
            data = snapshot()
        except Exception:  # a fault building it: end the stream, never a 500 inside it
            return
        event = b"end" if ending else b"snapshot"
        write(b"event: " + event + b"\ndata: " + data + b"\n\n")
        if ending:
            return
        queued = unsent(sock)
