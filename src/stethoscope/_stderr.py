"""Writing to the user's stderr from anywhere in the monitor, at any time.

``os.write`` on fd 2, never ``sys.stderr``: no buffer lock is shared with the
program (a daemon thread holding it can stall or abort interpreter shutdown), and
it is safe from a daemon thread while the interpreter finalises.

Everything written is made ``printable`` line by line first: reports quote thread
names, file names and source lines that come from the program (or from a
recording someone sent), and an escape sequence in one of them must not retitle
the window, clear the screen or move the cursor of whoever reads it.
"""

from __future__ import annotations

import contextlib
import os
import re

PREFIX = "stethoscope: "

# What a terminal may act on rather than show: C0 controls, DEL and C1 controls (0x9b
# is CSI on 8-bit terminals), lone surrogates (undecodable file names; they cannot be
# encoded either), the line and paragraph separators, and the bidirectional
# overrides and isolates (they reorder what is shown: "Trojan source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\t":
        return " "
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """One line safe to show on a terminal: every control character (newlines too)
    as a visible escape (ESC as the four characters ``\\x1b``), a tab as a space;
    any other Unicode as it is."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """``printable`` applied to each line: the newlines stay (a ``\\r`` does not)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def write_stderr(text: str) -> None:
    data = printable_lines(text).encode(errors="replace")
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(2, data):]


def say(message: str) -> None:
    """One line for the user, marked as stethoscope's."""
    write_stderr(f"{PREFIX}{printable(message)}\n")
