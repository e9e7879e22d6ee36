"""A recording's bytes as numbered lines, with bounded memory whatever the file holds.

A recording is untrusted input (it may have come from anyone), so nothing here
trusts its size: the file is read in chunks, decompressed with an output bound
(``decompressobj().decompress(data, max_length)``), and no line may grow past
MAX_RECORD_BYTES; a 1 MB file that inflates to gigabytes is refused after
MAX_RECORD_BYTES of a line, never held. Two limits a real recording can reach,
MAX_TOTAL_BYTES and MAX_RECORDS, cut the recording there instead (``Lines.cut``):
what came before is read.

``Lines.cut`` also says when the bytes simply stop (the writer was killed, or is
still writing), and when the compressed stream breaks (damage on disk): the lines
before the break are read. Trailing zero bytes (what a machine crash can leave at
the end of a file) count as the end.
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Iterator

from .file import MAGIC, RecordingError

MAX_RECORD_BYTES = 64 * 2**20  # one record (one JSON line), decompressed
MAX_TOTAL_BYTES = 512 * 2**20  # a whole recording, decompressed: beyond it, cut
MAX_RECORDS = 2_000_000  # records in one recording: beyond them, cut
CHUNK = 2**20  # compressed bytes read at a time
_PIECE = 16 * 2**20  # decompressed bytes made at a time
_STEP = 256  # compressed bytes fed at a time once the stream is damaged

KILLED = "the program was killed"  # the cut of a file whose bytes stop mid-stream
DAMAGED = "its compressed data is damaged"  # the cut where the stream breaks


class Lines:
    """Iterate for ``(number, line)``, numbered from 1 (the header); afterwards
    ``cut`` says why the lines stopped before the end, or is "" when they did not."""

    def __init__(self, path: str) -> None:
        self._path = path
        self.cut = ""

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        number = 0
        total = 0
        pending = b""  # the line being put together
        for piece in self._inflated():
            total += len(piece)
            over = total > MAX_TOTAL_BYTES
            if over:  # the lines up to the limit are read, the rest is not
                piece = piece[:len(piece) - (total - MAX_TOTAL_BYTES)]
                self.cut = (f"it holds more than {MAX_TOTAL_BYTES >> 20} MiB of records, "
                            f"the most one recording is read for")
            parts = piece.split(b"\n")
            parts[0] = pending + parts[0]
            pending = parts.pop()
            for line in parts:
                number += 1
                if len(line) > MAX_RECORD_BYTES:
                    raise self._too_long(number)
                if number > MAX_RECORDS:
                    self.cut = (f"it holds more than {MAX_RECORDS} records, the most one "
                                f"recording is read for")
                    return
                yield number, line
            if over:
                return
            if len(pending) > MAX_RECORD_BYTES:
                raise self._too_long(number + 1)
        if pending and not self.cut:
            self.cut = KILLED  # cut off mid-record

    def _too_long(self, number: int) -> RecordingError:
        return RecordingError(f"{self._path}: record {number} is longer than "
                              f"{MAX_RECORD_BYTES >> 20} MiB decompressed: this is not a "
                              f"recording stethoscope wrote")

    def _inflated(self) -> Iterator[bytes]:
        """The decompressed bytes, at most _PIECE at a time; sets ``cut``
        when the stream breaks. (The writer never ends its stream: a file simply
        stops, and the line it stops in tells whether it stopped mid-record.)"""
        unzip = zlib.decompressobj()
        zeros = 0  # zero bytes held back: they may be the file's end
        for data in self._chunks():
            if zeros:
                data, zeros = b"\0" * zeros + data, 0
            stripped = data.rstrip(b"\0")
            zeros = len(data) - len(stripped)
            before = unzip.copy()  # to start this chunk over if it is damaged
            given = 0  # bytes of this chunk's output already given
            try:
                for out in _bounded(unzip, stripped):
                    given += len(out)
                    yield out
            except zlib.error:
                self.cut = DAMAGED
                yield from _salvage(before, stripped, given)
                return

    def _chunks(self) -> Iterator[bytes]:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self._path, flags)  # O_NONBLOCK: a FIFO does not hang us here
        except OSError as exc:
            raise RecordingError(f"cannot read {self._path}: {exc.strerror}") from None
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            regular = False
        if not regular:
            os.close(fd)
            raise RecordingError(f"cannot read {self._path}: not a regular file")
        with os.fdopen(fd, "rb") as f:
            try:
                head = f.read(len(MAGIC))
                if head != MAGIC:
                    raise RecordingError(f"{self._path} is not a stethoscope recording "
                                         f"(made by stethoscope run --record FILE)")
                while data := f.read(CHUNK):
                    yield data
            except OSError as exc:
                raise RecordingError(f"cannot read {self._path}: {exc.strerror}") from None


def _salvage(unzip: zlib._Decompress, data: bytes, given: int) -> Iterator[bytes]:
    """What decompresses of ``data`` before the damage in it, less the first ``given``
    bytes (given already): in steps of _STEP bytes, and the step that fails again a
    byte at a time, so nothing before the damage is lost."""
    step = _STEP
    at = 0
    while at < len(data):
        before = unzip.copy()
        try:
            out = b"".join(_bounded(unzip, data[at:at + step]))
        except zlib.error:
            if step == 1:
                return
            unzip, step = before, 1
            continue
        at += step
        skip = min(given, len(out))
        given -= skip
        if skip < len(out):
            yield out[skip:]


def _bounded(unzip: zlib._Decompress, data: bytes) -> Iterator[bytes]:
    """``data`` through ``unzip``, never more than _PIECE bytes of output at once."""
    yield unzip.decompress(data, _PIECE)
    while unzip.unconsumed_tail:
        yield unzip.decompress(unzip.unconsumed_tail, _PIECE)
