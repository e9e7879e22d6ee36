"""Notices the moment the main thread has finished.

CPython's finalisation looks up ``threading._shutdown`` by attribute and calls it
from the main thread after ``__main__`` has finished and before non-daemon
threads are joined and atexit handlers run (3.10-3.13). Wrapping it is the one
hook that fires at exactly that moment. ``uninstall()`` puts the original back,
or, if someone wrapped it after us, turns our wrapper into a pass-through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class MainFinishedHook:
    name = "exitwatch"

    def __init__(self, on_main_finished: Callable[[], None],
                 on_fault: Callable[[str], None]) -> None:
        self._callback = on_main_finished
        self._on_fault = on_fault
        self._original: Callable[[], None] | None = None
        self._enabled = False

    def start(self) -> None:
        self._original = threading._shutdown  # type: ignore[attr-defined]
        self._enabled = True
        threading._shutdown = self._shutdown  # type: ignore[attr-defined]

    def stop(self) -> None:
        self._enabled = False
        if getattr(threading, "_shutdown", None) == self._shutdown:
            threading._shutdown = self._original  # type: ignore[attr-defined]

    def _shutdown(self) -> None:
        try:
            if self._enabled:
                self._enabled = False
                self._callback()
        except KeyboardInterrupt:
            pass  # Ctrl+C while waiting means "end now": go on with the exit
        except Exception as exc:
            self._on_fault(f"exit watch failed: {type(exc).__name__}: {exc}")
        finally:
            original = self._original
            if original is not None:
                original()
