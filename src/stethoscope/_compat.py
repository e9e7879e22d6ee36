"""The only place that switches on the Python version (and the platform)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable

HAS_MONITORING = sys.version_info >= (3, 12)
PY_VERSION = ".".join(str(part) for part in sys.version_info[:3])


def block_signals() -> None:
    """Call first thing in every thread the monitor starts: the program's signals
    must go to the program's threads.

    The kernel hands a process-directed signal (SIGTERM, SIGINT, ...) to any thread
    that does not block it. When it picks a monitor thread, the C handler only sets
    a flag, and a main thread blocked in a call without timeout (a multiprocessing
    Pool worker waiting on its queue's lock, say) never wakes to run the Python
    handler: the process ignores SIGTERM, and ``Pool.terminate()`` waits forever.
    Without our threads the main thread would have been interrupted.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def start_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """Start a daemon thread of the monitor's with every signal blocked from its
    first instruction: the mask is set in the starting thread around ``start()``
    (a new thread inherits it) and restored at once, so there is no moment in
    which the kernel can hand the program's signal to the new thread."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    if not hasattr(signal, "pthread_sigmask"):
        thread.start()
        return thread
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return thread
