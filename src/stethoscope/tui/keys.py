"""Keys and the terminal: what the user typed, what it changes, and the tty's mode.

The contract: ``parse_keys`` turns the terminal's bytes into key names and
``apply_key`` changes a ViewState for one of them, both pure. ``keys_mode`` and
``quit_signals`` change the terminal's mode and the process's signal handlers for
the view's lifetime and restore the previous ones on every way out, so a view that
ends however it ends leaves the shell as it found it. ``Terminated`` is how a signal
or a vanished terminal unwinds the view.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterator
from types import FrameType

from .screen import PANELS, ViewState

ESCAPES = {"\x1b[A": "up", "\x1b[B": "down", "\x1bOA": "up", "\x1bOB": "down",
           "\x1b[C": "right", "\x1b[D": "left", "\x1bOC": "right", "\x1bOD": "left"}
PLAIN_KEYS = {"\r": "enter", "\n": "enter", "\t": "tab", "\x03": "ctrl-c"}


def parse_keys(data: str) -> list[str]:
    """Key names from what the terminal sent: arrows, esc, enter, tab, ctrl-c or a char."""
    keys = []
    i = 0
    while i < len(data):
        if data[i] != "\x1b":
            keys.append(PLAIN_KEYS.get(data[i], data[i]))
            i += 1
        elif data[i:i + 3] in ESCAPES:
            keys.append(ESCAPES[data[i:i + 3]])
            i += 3
        elif data[i + 1:i + 2] in ("[", "O"):  # another sequence: skip to its final byte
            j = i + 2
            while j < len(data) and not (data[j].isalpha() or data[j] == "~"):
                j += 1
            i = j + 1
        else:
            keys.append("esc")
            i += 1
    return keys


def apply_key(state: ViewState, key: str, files: list[str], program_running: bool) -> str | None:
    """Change the view for one key; return "quit", "kill" or "detach" when the view ends."""
    if state.confirm_quit:
        state.confirm_quit = False
        return {"k": "kill", "d": "detach"}.get(key)
    if key in ("q", "ctrl-c"):
        if program_running:
            state.confirm_quit = True
            return None
        return "quit"
    if state.picker is not None:
        _picker_key(state, key)
    elif key in ("1", "2", "3"):
        state.panel = int(key) - 1
    elif key == "tab":
        state.panel = (state.panel + 1) % len(PANELS)
    elif key == "f":  # the rows stay put while it is open, however the heat moves
        state.picker_files = list(files)
        state.picker = files.index(state.file_id) if state.file_id in files else 0
    elif key == "a":
        state.file_id = None
    elif key == "?":
        state.help = not state.help
    return None


def _picker_key(state: ViewState, key: str) -> None:
    files, cursor = state.picker_files, state.picker or 0
    if key in ("up", "k"):
        state.picker = max(0, cursor - 1)
    elif key in ("down", "j"):
        state.picker = min(max(0, len(files) - 1), cursor + 1)
    elif key == "enter":
        state.file_id = files[cursor] if cursor < len(files) else None
        state.picker = None
    elif key == "a":
        state.file_id, state.picker = None, None
    elif key == "esc":
        state.picker = None


class Terminated(Exception):
    """SIGTERM or SIGHUP reached the view: unwind so the terminal is restored."""


@contextlib.contextmanager
def keys_mode(fd: int) -> Iterator[None]:
    """cbreak without signal keys (Ctrl+C arrives as a key, so it can ask like q does);
    the previous mode comes back on every way out."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        mode = termios.tcgetattr(fd)
        mode[3] &= ~termios.ISIG  # lflag
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def quit_signals(requests: list[str]) -> Iterator[None]:
    """SIGINT (from kill; the keyboard's comes as a key) asks to quit like q does;
    SIGTERM and SIGHUP end the view through Terminated. Handlers are restored after."""

    def ask(signum: int, frame: FrameType | None) -> None:
        requests.append("ctrl-c")

    def end(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signal.Signals(signum).name)

    wanted = {signal.SIGINT: ask, signal.SIGTERM: end, signal.SIGHUP: end}
    saved = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def read_keys(fd: int, timeout: float) -> list[str]:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return []
    data = os.read(fd, 256)
    if not data:  # the terminal is gone
        raise Terminated("end of input")
    return parse_keys(data.decode("utf-8", "replace"))
