"""Signals the monitor takes, always leaving the program's own choices alone.

* SIGTERM is taken only while the program left it at its default disposition, and
  only from the main thread (the only one that may set handlers); whoever takes it
  gives it back if it is still theirs, and ``die_of_sigterm`` ends the process the
  way the sender meant (the parent sees "killed by signal 15").
* The dump signal (``trace(dump_signal=...)``) prints the thread report.
* ``wait_for_end`` blocks until asked to end: an event, Ctrl+C, or a SIGTERM left
  at its default (``daemon=False`` serving the final picture, ``stethoscope view``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

Handler = Callable[[int, "FrameType | None"], Any]


def take_sigterm(handler: Handler) -> bool:
    """Handle SIGTERM with ``handler`` if the program left SIGTERM at its default
    (a handler of the program's own, or SIG_IGN, decides for itself) and this is
    the main thread, the only one that may set handlers. True if installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return False
    return True


def release_sigterm(handler: Handler) -> None:
    """SIGTERM back to its default, if ``handler`` is still the one installed."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:
        pass


def die_of_sigterm() -> None:
    """End the process by SIGTERM's default action, so its parent sees signal 15."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def wait_for_end(ended: threading.Event, poll: float = 0.2) -> None:
    """Block the calling (main) thread until ``ended`` is set, Ctrl+C arrives, or a
    SIGTERM that the program left at its default."""
    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        ended.set()

    took = take_sigterm(on_sigterm)
    try:
        while not ended.wait(poll):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if took:
            release_sigterm(on_sigterm)


class DumpSignal:
    """``report()`` on stderr when ``signum`` arrives, while installed."""

    def __init__(self, signum: int, report: Callable[[], str],
                 write: Callable[[str], None]) -> None:
        self._signum = signum
        self._report = report
        self._write = write
        self._previous: Any = None
        self._installed = False

    def install(self, note: Callable[[str], None]) -> None:
        if threading.current_thread() is not threading.main_thread():
            note("dump_signal is ignored: signal handlers can only be set when trace() "
                 "is called from the main thread")
            return
        self._previous = signal.signal(self._signum, self._on_signal)
        self._installed = True

    def _on_signal(self, received: int, frame: FrameType | None) -> None:
        self._write(self._report())

    def uninstall(self) -> None:
        if not self._installed:
            return
        try:
            if signal.getsignal(self._signum) == self._on_signal:
                signal.signal(self._signum, self._previous)
        except ValueError:  # not the main thread: leave it; it only prints a report
            pass
        self._installed = False
