"""The program monitor's inbox for its children's reports: a Unix socket in a
directory of its own.

``open()`` makes a private directory (``tempfile.mkdtemp``, mode 0700: no other
user can even reach the socket) holding the socket ``inbox``; its path is what
the link names (link.py). One daemon thread, ``stethoscope-reports``, waits in
``select.poll`` on the socket and on at most ``MAX_OPEN`` connections, and reads
one report from each (wire.py's framing) within ``READ_DEADLINE`` seconds and
``MAX_REPORT`` bytes. The kernel says who connected (``SO_PEERCRED``): a process
of another user is refused before anything is read, and ``take(body, pid)``
refuses a report about any process but the sender (Following). The answer names
the mode the program's monitor was asked to run in, or why the report was refused.

Only the process that made the directory removes it, at ``close()``; a forked
child's copy lets go of its inherited descriptors with ``forget_after_fork()``
and never touches the parent's socket or directory. Every descriptor is an
``OwnedSocket``, checked before use: a listening socket the program closed or
replaced stops the inbox with one note; such a connection is forgotten.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import _compat
from .._fds import LostError, OwnedSocket, owned_socket, owned_socketpair
from .wire import HEADER, MAX_REPORT, Peer, peer_of, refused, taken

MAX_OPEN = 64  # connections read at once; more wait in the listen backlog
BACKLOG = 128  # connections the kernel holds for us meanwhile
READ_DEADLINE = 10.0  # seconds a connection has to deliver its whole report
_CHUNK = 1 << 20
_SUN_PATH_MAX = 104  # bytes of a socket path that every platform takes (Linux: 108)
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)  # a child gone: EPIPE, not SIGPIPE

# take(report body, sender's pid) -> None when taken, else why not
Take = Callable[[bytes, int], "str | None"]


@dataclass(eq=False)
class _Connection:
    sock: OwnedSocket
    peer: Peer
    deadline: float
    want: int = -1  # the body's length, once the header is in
    parts: list[bytes] = field(default_factory=list)
    size: int = 0


class Inbox:
    def __init__(self, take: Take, mode: Callable[[], str],
                 note: Callable[[str], None]) -> None:
        self._take = take
        self._mode = mode
        self._note = note
        self.directory = ""
        self.path = ""
        self._owner = 0  # the pid that made the directory: only it removes it
        self._listener: OwnedSocket | None = None
        self._waker: tuple[OwnedSocket, OwnedSocket] | None = None
        self._connections: dict[int, _Connection] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifetime ----------------------------------------------------------------

    def open(self) -> None:
        """Make the directory and the listening socket; OSError (nothing left
        behind) when that cannot be done."""
        self.directory, self.path = _private_directory()
        self._owner = os.getpid()
        try:
            listener = owned_socket(socket.AF_UNIX, socket.SOCK_STREAM,
                                    what="the children's report socket")
            try:
                listener.sock.bind(self.path)
                listener.sock.listen(BACKLOG)
                listener.sock.setblocking(False)
                self._waker = owned_socketpair("the report inbox's waker")
            except OSError:
                listener.close()
                raise
            self._listener = listener
        except OSError:
            self._remove()
            raise

    def start(self) -> None:
        self._thread = _compat.start_thread(self._run, "stethoscope-reports")

    def close(self) -> None:
        """Stop reading, and remove the socket and its directory (only in the
        process that made them). Bounded in time."""
        self._stop.set()
        waker = self._waker
        if waker is not None and waker[1].mine():
            with contextlib.suppress(OSError):
                waker[1].sock.send(b"x", _NOSIGNAL)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)  # it may be taking a report; it closes its sockets itself
        if thread is None:
            self._close_sockets()
        self._remove()

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited copies; the parent's socket, its
        directory and its connections stay as they are."""
        self._stop.set()
        self._owner = 0
        self._close_sockets()

    def _close_sockets(self) -> None:
        for conn in list(self._connections.values()):
            conn.sock.close()
        self._connections.clear()
        for sock in (self._listener, *(self._waker or ())):
            if sock is not None:
                sock.close()

    def _remove(self) -> None:
        if self._owner != os.getpid() or not self.directory:
            return  # a forked child's copy: the directory is its parent's
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(self.directory)
        self._owner = 0

    # -- the thread --------------------------------------------------------------

    def _run(self) -> None:
        assert self._listener is not None and self._waker is not None
        listener, waker = self._listener, self._waker[0]
        poller = select.poll()
        poller.register(waker.fd, select.POLLIN)
        listening = False
        try:
            while not self._stop.is_set():
                if listening != (len(self._connections) < MAX_OPEN):
                    listening = not listening  # at the cap, the rest wait in the backlog
                    if listening:
                        poller.register(listener.fd, select.POLLIN)
                    else:
                        poller.unregister(listener.fd)
                for fd, _ in poller.poll(self._timeout_ms()):
                    if fd == listener.fd and listening:
                        if not self._accept(listener, poller):
                            return
                    elif fd in self._connections:
                        self._read(self._connections[fd], poller)
                    elif fd == waker.fd and not waker.mine():
                        poller.unregister(fd)  # the program closed it: close() waits 1 s
                self._expire(poller)
        finally:
            self._close_sockets()

    def _timeout_ms(self) -> int:
        if not self._connections:
            return 1000  # the waker ends the wait at close()
        soonest = min(c.deadline for c in self._connections.values())
        return max(1, min(1000, int((soonest - time.monotonic()) * 1000) + 1))

    def _accept(self, listener: OwnedSocket, poller: select.poll) -> bool:
        """Take the connections waiting; False when the listening socket is lost."""
        while len(self._connections) < MAX_OPEN:
            try:
                listener.check()
                raw, _ = listener.sock.accept()
            except LostError as exc:
                self._note(f"{exc}; child processes started from now on are not followed")
                return False
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as exc:  # EMFILE and the like: try again at the next wake
                self._note(f"a child's report was not taken: {exc}")
                return True
            sock = OwnedSocket(raw, "a child's report connection")
            try:
                sock.sock.setblocking(False)
                peer = peer_of(sock.sock)
            except OSError:
                sock.close()
                continue
            if peer.uid != os.getuid():  # unreachable through the directory, but root
                self._answer(sock, refused(f"process {peer.pid} is another user's"))
                continue
            conn = _Connection(sock, peer, time.monotonic() + READ_DEADLINE)
            self._connections[sock.fd] = conn
            poller.register(sock.fd, select.POLLIN)
        return True

    def _read(self, conn: _Connection, poller: select.poll) -> None:
        try:
            chunk = conn.sock.sock.recv(HEADER.size - conn.size if conn.want < 0
                                        else min(_CHUNK, conn.want - conn.size)) \
                if conn.sock.mine() else b""
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # closed (or lost) before the whole report came
            self._drop(conn, poller)
            return
        conn.parts.append(chunk)
        conn.size += len(chunk)
        if conn.want < 0 and conn.size == HEADER.size:
            (conn.want,) = HEADER.unpack(b"".join(conn.parts))
            conn.parts, conn.size = [], 0
            if conn.want > MAX_REPORT:
                self._drop(conn, poller, refused(f"a report may be at most {MAX_REPORT} "
                                                 f"bytes (this one: {conn.want})"))
                return
        if conn.want >= 0 and conn.size == conn.want:
            self._drop(conn, poller, self._verdict(b"".join(conn.parts), conn.peer))

    def _verdict(self, body: bytes, peer: Peer) -> bytes:
        try:
            why = self._take(body, peer.pid)
        except Exception as exc:  # never let a report end the inbox
            why = f"the report could not be taken: {type(exc).__name__}: {exc}"
            self._note(why)
        return taken(self._mode()) if why is None else refused(why)

    def _expire(self, poller: select.poll) -> None:
        now = time.monotonic()
        for conn in [c for c in self._connections.values() if c.deadline <= now]:
            self._drop(conn, poller, refused(f"the report did not arrive within "
                                             f"{READ_DEADLINE:g} s"))

    def _drop(self, conn: _Connection, poller: select.poll, answer: bytes = b"") -> None:
        self._connections.pop(conn.sock.fd, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            poller.unregister(conn.sock.fd)
        self._answer(conn.sock, answer)

    def _answer(self, sock: OwnedSocket, answer: bytes) -> None:
        """Send the short answer if the socket takes it at once, and close."""
        if answer and sock.mine():
            with contextlib.suppress(OSError):
                sock.sock.send(answer, _NOSIGNAL)  # a final report's sender is gone
        sock.close()


def _private_directory() -> tuple[str, str]:
    """(directory, socket path): a new directory only this user can enter, with a
    path short enough for a Unix socket (else one under /tmp)."""
    for where in (None, "/tmp"):
        directory = tempfile.mkdtemp(prefix="stethoscope-", dir=where)
        os.chmod(directory, 0o700)  # mkdtemp's mode already, whatever the umask removes
        path = os.path.join(directory, "inbox")
        if len(os.fsencode(path)) < _SUN_PATH_MAX:
            return directory, path
        os.rmdir(directory)
    raise OSError("no temporary directory has a path short enough for a Unix socket")
