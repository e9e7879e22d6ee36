"""Sends a followed child's reports to the monitor of the program it belongs to.

A daemon thread posts a report every ``REPORT_EVERY`` seconds (the answer names
the mode the program's monitor runs in, so a mode switched on the page reaches
the children too); ``final()`` hands
the last one to the kernel from whichever thread is exiting, within
``FINAL_TIMEOUT`` (connect and send; it does not wait for the answer), and gives
up after that: a child never waits longer to exit. When the parent's monitor is
gone (refused connections, or a refusal of the token), the reporter stops trying,
so an orphaned child costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable

from .._compat import block_signals
from ..config import url_host
from ..model.report import MODE_HEADER

REPORT_EVERY = 0.5  # seconds between reports
SEND_TIMEOUT = 2.0  # for the periodic reports
FINAL_TIMEOUT = 0.2  # for the last one, all steps together
GIVE_UP_AFTER = 6  # consecutive failed reports before the parent counts as gone

# make(final) -> (report bytes, call this once it was delivered)
MakeReport = Callable[[bool], "tuple[bytes, Callable[[], None]]"]


class SendError(OSError):
    """A report was not delivered; the message says why."""


MAX_ANSWER = 8192  # bytes of an answer's head that are read


def post(host: str, port: int, path: str, body: bytes, timeout: float,
         answer: bool = True) -> tuple[int, dict[str, str]]:
    """POST ``body`` as JSON; the status code and the answer's headers (names in
    lower case); everything within ``timeout``.

    With ``answer=False`` it returns (0, {}) once the request is handed to the
    kernel: the monitor reads it when it gets to it, even after this process ended.
    """
    deadline = time.monotonic() + timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SendError("timed out")
        return left

    head = (f"POST {path} HTTP/1.0\r\nHost: {url_host(host)}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    # connect() to a numeric address, not create_connection(): getaddrinfo() imports
    # the idna codec on first use, and in a forked child an import lock may be held
    # for ever by a thread that no longer exists (seen: forkserver children hung).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(remaining())
        sock.connect((host, port))
        sock.settimeout(remaining())
        sock.sendall(head + body)
        if not answer:
            sock.shutdown(socket.SHUT_WR)
            return 0, {}
        reply = b""
        while b"\r\n\r\n" not in reply and len(reply) < MAX_ANSWER:
            sock.settimeout(remaining())
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise SendError("no HTTP answer")
    headers = {}
    for raw in rest.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, sep, value = raw.decode("latin-1").partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class Reporter:
    name = "reporter"

    def __init__(self, host: str, port: int, token: str, make: MakeReport,
                 on_lost: Callable[[str], None],
                 on_dropped: Callable[[str], None] = lambda why: None,
                 on_mode: Callable[[str], None] = lambda mode: None) -> None:
        self._host = host
        self._port = port
        self._path = f"/api/report?token={token}"
        self._make = make
        self._on_lost = on_lost
        self._on_dropped = on_dropped
        self._on_mode = on_mode
        self._stop = threading.Event()
        self._lost = False
        self._failures = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stethoscope-reporter",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(0.05)  # it may be mid-send to a stalled parent: never wait for that

    def forget_after_fork(self) -> None:
        self._stop.set()  # the thread does not exist in a forked child

    def _run(self) -> None:
        block_signals()
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
            status, headers = post(self._host, self._port, self._path, body, timeout, answer)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ConnectionRefusedError):
                self._failures = GIVE_UP_AFTER  # nobody listens there any more
            return self._failed(f"the monitor at {self._host}:{self._port} is unreachable "
                                f"({exc or type(exc).__name__})")
        if status in (0, 204):
            self._failures = 0
            delivered()
            mode = headers.get(MODE_HEADER.lower())
            if mode:
                self._on_mode(mode)
            return None
        if status == 403:
            self._failures = GIVE_UP_AFTER
        return self._failed(f"the monitor at {self._host}:{self._port} refused a report "
                            f"(HTTP {status})")

    def _failed(self, why: str) -> str:
        self._failures += 1
        if self._failures >= GIVE_UP_AFTER and not self._lost:
            self._lost = True
            self._stop.set()
            with contextlib.suppress(Exception):
                self._on_lost(why)
        return why
