"""Descriptors stethoscope holds, checked to still be its own before each use.

A program may close every descriptor it did not open itself (``os.closerange(3,
…)``, as daemonising code does) and then open its own files, which get the freed
numbers. A number is not an identity: a descriptor stethoscope opened is noted
with its (device, inode) when it is opened, and before each use ``mine()`` asks
``fstat`` whether the number still names that object. When it does not, that part
of stethoscope stops and never reads, writes or closes the number again: ``drop()``
forgets it (a socket object is detached, so that even its finaliser leaves the
number alone).

Nothing of stethoscope ever lands on descriptors 0-2: a number below 3 (the
program closed its stdin, stdout or stderr) is moved above them at once, so the
program's next ``open()`` still gets the number it expects.

The check and the use are two system calls: a program that closes and reopens the
number in the microseconds between them is not caught. Every case a program can
make happen on purpose (close, then open) is.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

LOWEST = 3  # the first number stethoscope may hold


class LostError(OSError):
    """The descriptor no longer is the one stethoscope opened."""


def lift(fd: int) -> int:
    """``fd`` itself when above 2, else a close-on-exec copy above 2 (the original is
    closed: the number goes back to the program)."""
    if fd >= LOWEST:
        return fd
    try:
        import fcntl

        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, LOWEST)
    except (ImportError, AttributeError):  # no fcntl: dup until above 2
        taken = [fd]
        high = os.dup(fd)
        while high < LOWEST:
            taken.append(high)
            high = os.dup(fd)
        for low in taken[1:]:
            os.close(low)
    os.close(fd)
    return high


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


class Owned:
    """A descriptor number and the identity it had when stethoscope opened it."""

    __slots__ = ("_identity", "fd", "lost", "what")

    def __init__(self, fd: int, what: str) -> None:
        self.fd = lift(fd)
        self.what = what  # "the recording file", "the listening socket", ...
        self._identity = _identity(self.fd)
        self.lost = self._identity is None

    def mine(self) -> bool:
        """True while the number still names what was opened; once False, for good."""
        if not self.lost and _identity(self.fd) != self._identity:
            self.lost = True
        return not self.lost

    def check(self) -> int:
        """The number, or LostError (with a sentence saying so) if it is not ours."""
        if not self.mine():
            raise LostError(f"{self.what} (descriptor {self.fd}) was closed or replaced "
                            f"by the program")
        return self.fd

    def close(self) -> None:
        """Close it if it is still ours; otherwise only forget it."""
        if self.mine():
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.lost = True


class OwnedSocket(Owned):
    """A socket object with its identity: ``sock`` for the calls, after ``check()``."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket, what: str) -> None:
        fd = sock.fileno()
        if 0 <= fd < LOWEST:
            high = lift(os.dup(fd))
            sock.close()
            sock = socket.socket(fileno=high)
        self.sock = sock
        super().__init__(sock.fileno(), what)

    def close(self) -> None:
        """Close the socket if it is still ours; otherwise detach it, so that neither
        this nor the socket's finaliser closes the program's descriptor."""
        if self.mine():
            with contextlib.suppress(OSError):
                self.sock.close()
        else:
            with contextlib.suppress(OSError):
                self.sock.detach()
        self.lost = True

    def shutdown(self, how: int = socket.SHUT_RDWR) -> None:
        """shutdown() if still ours (never on a number the program reuses)."""
        if self.mine():
            with contextlib.suppress(OSError):
                self.sock.shutdown(how)


def owned_socket(*args: Any, what: str, **kwargs: Any) -> OwnedSocket:
    """A new socket (socket.socket's arguments), above fd 2, close-on-exec."""
    return OwnedSocket(socket.socket(*args, **kwargs), what)


def owned_socketpair(what: str) -> tuple[OwnedSocket, OwnedSocket]:
    a, b = socket.socketpair()
    return OwnedSocket(a, what), OwnedSocket(b, what)


def open_owned(path: str, flags: int, mode: int = 0o666, *, what: str) -> Owned:
    """os.open(), close-on-exec, above fd 2, with its identity noted."""
    return Owned(os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode), what)


def read_file(path: str, limit: int = 1 << 26) -> bytes:
    """The whole of a small file (a source, a /proc entry), at most ``limit`` bytes,
    read through a descriptor stethoscope opened and closes itself at once (never
    one of 0-2 for longer than the lift). OSError as os.open/read raise it."""
    fd = lift(os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
    try:
        parts: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(1 << 20, limit - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)
