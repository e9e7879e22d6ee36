"""What goes over a child's connection to the program's inbox, and who is at the
other end.

One report per connection (AF_UNIX, SOCK_STREAM), framed by a length prefix:

* the child sends ``HEADER`` (4 bytes, unsigned big-endian: the length N of the
  body, at most ``MAX_REPORT``), then N bytes: the report as JSON (model/report.py);
* the inbox answers the same way: 4 bytes of length (at most ``MAX_REPLY``), then
  JSON: ``{"mode": "<the mode the program's monitor was asked to run in>"}`` when
  the report was taken, ``{"refused": "<why>"}`` when it was not. A final report
  does not wait for the answer.

Either side asks the kernel who is at the other end (Linux: ``SO_PEERCRED``, the
pid, uid and gid of the process that connected, or that listens; macOS:
``LOCAL_PEERCRED`` and ``LOCAL_PEERPID``) and deals only with its own user:
``peer_of`` gives those; a platform without them follows no children.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
from typing import NamedTuple

MAX_REPORT = 8 * 1024 * 1024  # bytes of one report's body; a longer one is refused
MAX_REPLY = 4096  # bytes of an answer's body
HEADER = struct.Struct(">I")
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
SO_PEERCRED: int | None = getattr(socket, "SO_PEERCRED", None)
# macOS (sys/un.h, sys/ucred.h; Python names none of them): getsockopt level
# SOL_LOCAL 0, LOCAL_PEERCRED 1 gives struct xucred {u_int cr_version (0); uid_t
# cr_uid; short cr_ngroups; gid_t cr_groups[16]}, LOCAL_PEERPID 2 a pid_t.
# Not exercised by this project's test machines; a reading that does not look
# right is an OSError, so the worst case is children not followed.
_DARWIN = sys.platform == "darwin" and SO_PEERCRED is None
_XUCRED = struct.Struct("=IIhxx16I")
HAS_PEERCRED = (SO_PEERCRED is not None or _DARWIN) and hasattr(socket, "AF_UNIX")


class Peer(NamedTuple):
    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket) -> Peer:
    """Who is at the other end of a connected Unix socket, as the kernel says
    (recorded when it connected or listened). OSError when it cannot say."""
    if SO_PEERCRED is not None:
        return Peer(*_UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_PEERCRED,
                                                   _UCRED.size)))
    if _DARWIN:
        raw = sock.getsockopt(0, 1, _XUCRED.size)
        if len(raw) < 12:
            raise OSError(f"LOCAL_PEERCRED gave {len(raw)} bytes")
        version, uid, ngroups = struct.unpack_from("=IIh", raw)
        if version != 0 or ngroups < 1 or len(raw) < 16:
            raise OSError("LOCAL_PEERCRED is not understood")
        (gid,) = struct.unpack_from("=I", raw, 12)
        (pid,) = struct.unpack("=i", sock.getsockopt(0, 2, 4))
        return Peer(pid, uid, gid)
    raise OSError("this platform cannot tell who is at the other end of a socket")


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def taken(mode: str) -> bytes:
    """The framed answer to a report that was taken."""
    return frame(json.dumps({"mode": mode}).encode())


def refused(why: str) -> bytes:
    """The framed answer to a report that was not taken."""
    return frame(json.dumps({"refused": why[:1000]}).encode())


class RefusedError(OSError):
    """The program's monitor refused the report; the message says why."""


def read_answer(body: bytes) -> str:
    """The mode named by an answer's body; RefusedError for a refusal, ValueError
    for anything else."""
    d = json.loads(body)
    if isinstance(d, dict) and isinstance(d.get("refused"), str):
        raise RefusedError(d["refused"])
    if isinstance(d, dict) and isinstance(d.get("mode"), str):
        return str(d["mode"])
    raise ValueError("not an answer to a report")
