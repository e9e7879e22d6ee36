"""Writing to the user's stderr from anywhere in the monitor, at any time.

``os.write`` on fd 2, never ``sys.stderr``: no buffer lock is shared with the
program (a daemon thread holding it can stall or abort interpreter shutdown), and
it is safe from a daemon thread while the interpreter finalises.
"""

from __future__ import annotations

import contextlib
import os

PREFIX = "stethoscope: "


def write_stderr(text: str) -> None:
    data = text.encode(errors="replace")
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(2, data):]


def say(message: str) -> None:
    """One line for the user, marked as stethoscope's."""
    write_stderr(f"{PREFIX}{message}\n")
