"""The hooks that see a followed child leave, on every way out.

``ExitHooks`` makes sure a child sends its last data however it ends:

* ``multiprocessing.process.BaseProcess._bootstrap`` is wrapped: it is the one
  function every multiprocessing child runs (fork, spawn, forkserver; Process,
  Pool and ProcessPoolExecutor workers), and it returns the exit code that
  multiprocessing then hands to ``os._exit``, which skips atexit;
* ``os._exit`` itself is wrapped, for children that call it directly;
* SIGTERM (``Pool.terminate()``, leaving ``with Pool()``): when its disposition is
  the default, a handler flushes, restores the default and re-sends the signal,
  so the process still dies "killed by signal 15" (no Python exit hook runs in a
  process killed by SIGTERM's default action);
* a normal exit is the monitor's atexit handler.

``on_exit(how, code)`` is called once, whichever comes first. ``stop()`` restores
everything; wrappers that someone else wrapped in turn become pass-throughs.
Module globals are never cleared: the user's own atexit handlers run as usual
(tearing them down before those handlers run breaks them).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..monitor.signals import die_of_sigterm, release_sigterm, take_sigterm

ExitCallback = Callable[[str, "int | None"], None]

FLUSH_PATIENCE = 1.0  # seconds a SIGTERM waits for a final report under way


class ExitHooks:
    name = "children"

    def __init__(self, on_exit: ExitCallback, on_bootstrap: Callable[[str], None],
                 on_fault: Callable[[str], None]) -> None:
        self._on_exit = on_exit
        self._on_bootstrap = on_bootstrap
        self._on_fault = on_fault
        self._active = False
        self._process_class: Any = None
        self._original_bootstrap: Any = None
        self._bootstrap_wrapper: Any = None
        self._original_exit: Callable[[int], Any] | None = None
        self._exit_wrapper: Callable[[int], Any] | None = None
        self._sigterm_handler: Callable[[int, FrameType | None], None] | None = None
        self._flushing = False
        self._flush_began = 0.0
        self._sigterm_pending = False

    def start(self) -> None:
        import multiprocessing.process as mp_process

        hooks = self
        self._process_class = cls = mp_process.BaseProcess
        self._original_bootstrap = original_bootstrap = cls._bootstrap  # type: ignore[attr-defined]

        def _bootstrap(process: Any, *args: Any, **kwargs: Any) -> Any:
            if hooks._active:
                hooks._entered(process)
            code = None
            try:
                code = original_bootstrap(process, *args, **kwargs)
                return code
            finally:
                if hooks._active:
                    hooks._exit("return", code)

        self._original_exit = original_exit = os._exit

        def _exit(code: int) -> Any:
            if hooks._active:
                hooks._exit("os._exit", code)
            return original_exit(code)

        self._bootstrap_wrapper, self._exit_wrapper = _bootstrap, _exit
        self._active = True
        cls._bootstrap = _bootstrap  # type: ignore[attr-defined]
        os._exit = _exit  # type: ignore[assignment]
        self._install_sigterm()

    def stop(self) -> None:
        # No import here: in a forked child another thread may have held an
        # import lock at fork time, and stop() runs on the way out.
        self._active = False
        cls = self._process_class
        if cls is not None and cls.__dict__.get("_bootstrap") is self._bootstrap_wrapper:
            cls._bootstrap = self._original_bootstrap
        if os._exit is self._exit_wrapper and self._original_exit is not None:
            os._exit = self._original_exit  # type: ignore[assignment]
        if not self._flushing:  # else _exit() does it once the final report is out
            self._uninstall_sigterm()

    def _entered(self, process: Any) -> None:
        try:
            self._on_bootstrap(str(getattr(process, "name", "") or ""))
        except Exception as exc:
            self._on_fault(f"child process hook failed: {type(exc).__name__}: {exc}")

    def _exit(self, how: str, code: int | None) -> None:
        if not self._active:
            return
        self._active = False
        self._flushing = True
        self._flush_began = time.monotonic()
        try:
            self._on_exit(how, code)
        except BaseException as exc:  # never change how the process ends
            self._on_fault(f"final report failed: {type(exc).__name__}: {exc}")
        finally:
            self._flushing = False
        if self._sigterm_pending:  # it came during the flush: now die of it
            die_of_sigterm()
        self._uninstall_sigterm()

    # -- SIGTERM -----------------------------------------------------------------

    def _install_sigterm(self) -> None:
        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self._flushing and not self._sigterm_pending \
                    and time.monotonic() - self._flush_began < FLUSH_PATIENCE:
                # Pool.terminate() right after a worker returned: let the final
                # report (bounded in time) leave first, then die of the signal.
                # A second SIGTERM, or one after FLUSH_PATIENCE, kills at once.
                self._sigterm_pending = True
                return
            if not self._flushing:
                self._exit("SIGTERM", -signal.SIGTERM)
            die_of_sigterm()  # as the sender meant

        if take_sigterm(on_sigterm):
            self._sigterm_handler = on_sigterm

    def _uninstall_sigterm(self) -> None:
        handler, self._sigterm_handler = self._sigterm_handler, None
        if handler is not None:
            release_sigterm(handler)
