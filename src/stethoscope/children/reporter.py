"""Sends a followed child's reports to the monitor of the program it belongs to.

Reports go only to the program monitor's inbox, the Unix socket the link names
(inbox.py, wire.py), one connection each, and only once the kernel has said the
socket's listener is a process of this user (``SO_PEERCRED``); a socket of
another user's is a ``StrangerError``, and the reporter stops for good with one
note. A daemon thread sends a report every ``REPORT_EVERY`` seconds (the answer
names the mode the program's monitor runs in, so a mode switched on the page
reaches the children too); ``final()`` hands the last one to the kernel from
whichever thread is exiting, within ``FINAL_TIMEOUT`` (connect and send; it does
not wait for the answer), and gives up after that: a child never waits longer to
exit. When the parent's monitor is gone (no socket there, or nobody listening)
or refuses a report, the reporter stops at once: an orphaned child costs nothing
and sends nothing anywhere.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable

from .. import _compat
from .._fds import owned_socket
from .wire import HEADER, MAX_REPLY, RefusedError, frame, peer_of, read_answer

REPORT_EVERY = 0.5  # seconds between reports
SEND_TIMEOUT = 2.0  # for the periodic reports
FINAL_TIMEOUT = 0.2  # for the last one, all steps together
GIVE_UP_AFTER = 6  # consecutive failed reports (timeouts) before the parent counts as gone

# make(final) -> (report bytes, call this once it was delivered)
MakeReport = Callable[[bool], "tuple[bytes, Callable[[], None]]"]
# The parent's monitor is gone: no socket at that path, nobody listening on it, or
# a path this process may not reach
_GONE = (FileNotFoundError, ConnectionRefusedError, PermissionError, NotADirectoryError)


class SendError(OSError):
    """A report was not delivered; the message says why."""


class StrangerError(OSError):
    """The socket at the link's path is not this user's: nothing is sent to it."""


def exchange(path: str, body: bytes, timeout: float, answer: bool = True) -> str | None:
    """Send one report to the inbox at ``path``; the mode its answer names, all
    within ``timeout``. RefusedError when the inbox refused it, StrangerError when
    the socket is another user's, another OSError when it did not get through.

    With ``answer=False`` it returns None once the report is handed to the kernel:
    the monitor reads it when it gets to it, even after this process ended.
    """
    deadline = time.monotonic() + timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SendError("timed out")
        return left

    owned = owned_socket(socket.AF_UNIX, socket.SOCK_STREAM, what="a report's connection")
    try:
        sock = owned.sock
        while True:
            sock.settimeout(remaining())
            try:
                sock.connect(path)
                break
            except (BlockingIOError, InterruptedError):  # the inbox's backlog is full
                time.sleep(min(0.01, remaining()))
        peer = peer_of(sock)
        if peer.uid != os.getuid():
            raise StrangerError(f"the report socket {path} belongs to another user "
                                f"(uid {peer.uid}, process {peer.pid})")
        owned.check()
        framed = frame(body)
        # The whole report in the kernel at once where it allows (wmem_max caps it):
        # a final report then leaves without waiting for a busy inbox to read it.
        with contextlib.suppress(OSError):
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < len(framed):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, len(framed))
        sock.settimeout(remaining())
        sock.sendall(framed)
        if not answer:
            return None
        owned.check()
        (length,) = HEADER.unpack(_receive(sock, HEADER.size, remaining))
        if length > MAX_REPLY:
            raise SendError(f"an answer of {length} bytes is not an answer to a report")
        try:
            return read_answer(_receive(sock, length, remaining))
        except ValueError as exc:
            raise SendError(f"the answer is not understood: {exc}") from None
    finally:
        owned.close()


def _receive(sock: socket.socket, size: int, remaining: Callable[[], float]) -> bytes:
    data = b""
    while len(data) < size:
        sock.settimeout(remaining())
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise SendError("the connection was closed before the answer")
        data += chunk
    return data


class Reporter:
    name = "reporter"

    def __init__(self, path: str, make: MakeReport, on_lost: Callable[[str], None],
                 on_dropped: Callable[[str], None] = lambda why: None,
                 on_mode: Callable[[str], None] = lambda mode: None) -> None:
        self._path = path
        self._make = make
        self._on_lost = on_lost
        self._on_dropped = on_dropped
        self._on_mode = on_mode
        self._stop = threading.Event()
        self._lost = False
        self._failures = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = _compat.start_thread(self._run, "stethoscope-reporter")

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(0.05)  # it may be mid-send to a stalled parent: never wait for that

    def forget_after_fork(self) -> None:
        self._stop.set()  # the thread does not exist in a forked child

    @property
    def lost(self) -> bool:
        """The reporter has stopped for good (its monitor is gone, refused, a stranger)."""
        return self._lost

    def _run(self) -> None:
        # The first report leaves at once: the process shows up on the page as soon
        # as it starts, before it has any data.
        delay = 0.0
        while not self._stop.wait(delay) and not self._lost:
            self._send(False, SEND_TIMEOUT)
            delay = REPORT_EVERY

    def final(self) -> bool:
        """The last report, bounded in time. True if it was delivered; when the
        monitor is there but too slow, one line on stderr says it was dropped."""
        self._stop.set()
        if self._lost:
            return False
        # Not waiting for the answer: a busy monitor reads the report later, and a
        # late final report still corrects a child it had marked as killed.
        failure = self._send(True, FINAL_TIMEOUT, answer=False)
        if failure is None:
            return True
        if not self._lost:  # a monitor that has gone (or refused us) needs no news
            self._on_dropped(f"the final report of process {os.getpid()} was dropped: "
                             f"{failure}")
        return False

    def _send(self, final: bool, timeout: float, answer: bool = True) -> str | None:
        """Build and send one report: None when delivered, else why not."""
        try:
            body, delivered = self._make(final)
            mode = exchange(self._path, body, timeout, answer)
        except StrangerError as exc:
            return self._failed(f"{exc}; no report is sent to it", at_once=True)
        except RefusedError as exc:
            return self._failed(f"the program's monitor refused a report: {exc}", at_once=True)
        except _GONE as exc:
            return self._failed(f"the program's monitor is gone ({exc.strerror or exc})",
                                at_once=True)
        except (OSError, ValueError) as exc:
            return self._failed(f"the program's monitor is unreachable "
                                f"({exc or type(exc).__name__})")
        self._failures = 0
        delivered()
        if mode:
            self._on_mode(mode)
        return None

    def _failed(self, why: str, at_once: bool = False) -> str:
        self._failures = GIVE_UP_AFTER if at_once else self._failures + 1
        if self._failures >= GIVE_UP_AFTER and not self._lost:
            self._lost = True
            self._stop.set()
            with contextlib.suppress(Exception):
                self._on_lost(why)
        return why
