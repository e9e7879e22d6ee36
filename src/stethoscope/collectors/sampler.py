"""The stack sampler: a daemon thread that reads every thread's stack.

Each tick takes ``sys._current_frames()`` and, per thread, attributes one sample:
*self* to the innermost frame that lies in a monitored file, when the thread used
CPU since the previous tick (a thread blocked in ``sleep`` or ``queue.get`` has
no self time), and *inclusive* to every distinct monitored line on its stack,
running or waiting. A few times a second it also publishes each thread's stack
to the Store, and calls ``periodic`` (the exact-count collectors fold there), so
the monitor needs no other thread of its own.

Under the GIL the achieved rate on CPU-bound code is bounded by the switch
interval (about 160 Hz asked 1 kHz): the Store reports the achieved rate.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from .._compat import start_thread
from ..model import Store
from ..model.snapshot import NowLine
from ..model.stacks import StackLog
from .counting import is_own_thread
from .cputime import ThreadCPU
from .filters import Resolver
from .threads import ThreadDescriber, ThreadRegistry

PUBLISH_EVERY = 0.2  # seconds between thread-stack publications
BUSY_FRACTION = 0.1  # of the tick's wall time, to count a thread as running

_UNSEEN = "?"  # not a file id: file ids are hex


class Sampler:
    name = "sampler"

    def __init__(
        self,
        store: Store,
        resolver: Resolver,
        hz: float,
        *,
        on_fault: Callable[[str], None],
        registry: ThreadRegistry | None = None,
        periodic: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        stack_log: StackLog | None = None,
    ) -> None:
        self._store = store
        self._stack_log = stack_log  # a recording runs: every thread's whole stack too
        self._resolver = resolver
        self._interval = 1.0 / hz
        self._on_fault = on_fault
        self._periodic = periodic
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu = ThreadCPU()
        self.describer = ThreadDescriber(resolver, registry, self._cpu)
        self._cpu_seen: dict[int, int] = {}  # native id -> ns at the previous tick
        self._meta: dict[int, threading.Thread] = {}  # ident -> Thread, refreshed on publish
        self._own: set[int] = set()

    def start(self) -> None:
        self._thread = start_thread(self._run, "stethoscope-sampler")

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        next_publish = 0.0
        pending_self: dict[tuple[str, int], int] = {}
        pending_incl: dict[tuple[str, int], int] = {}
        ticks = 0
        last_tick = due = self._clock()
        try:
            # Wait for the next due time rather than a fixed interval, so time lost
            # waiting for the GIL does not lower the rate; after a long stall, do
            # not try to catch up with a burst.
            while not self._stop.wait(max(0.0, due - self._clock())):
                now = self._clock()
                due = max(due + self._interval, now)
                publish = now >= next_publish
                if publish:
                    self._refresh_meta()
                    next_publish = now + PUBLISH_EVERY
                self._tick(pending_self, pending_incl, publish, now - last_tick)
                last_tick = now
                ticks += 1
                if publish:
                    self._store.add_samples(pending_self, pending_incl, ticks)
                    pending_self, pending_incl, ticks = {}, {}, 0
                    if self._periodic is not None:
                        self._periodic()
        except Exception as exc:  # never let a fault escape; report once and stop
            self._on_fault(f"the sampler stopped after an internal error: "
                           f"{type(exc).__name__}: {exc}")
        finally:
            if ticks:
                try:
                    self._store.add_samples(pending_self, pending_incl, ticks)
                except Exception as exc:  # what failed above, likely: never a traceback
                    self._on_fault(f"the sampler stopped after an internal error: "
                                   f"{type(exc).__name__}: {exc}")

    def _refresh_meta(self) -> None:
        self._meta = {t.ident: t for t in threading.enumerate() if t.ident is not None}
        self._own = {i for i, t in self._meta.items() if is_own_thread(t)}
        self._own.add(threading.get_ident())
        natives = {t.native_id for t in self._meta.values() if t.native_id is not None}
        for native_id in [n for n in self._cpu_seen if n not in natives]:
            del self._cpu_seen[native_id]

    def _busy(self, thread: threading.Thread | None, elapsed: float) -> bool:
        native_id = thread.native_id if thread is not None else None
        used = self._cpu.read(native_id)
        if used is None or native_id is None:
            return True  # unknown: count it, as a plain wall-clock sampler would
        before = self._cpu_seen.get(native_id)
        self._cpu_seen[native_id] = used
        # First sight: no interval to judge yet; a waiting thread must not get
        # self time for it (a running one loses one sample).
        return before is not None and (used - before) >= BUSY_FRACTION * elapsed * 1e9

    def _tick(
        self,
        self_counts: dict[tuple[str, int], int],
        incl_counts: dict[tuple[str, int], int],
        publish: bool,
        elapsed: float,
    ) -> None:
        resolve = self._resolver
        cache = resolve.cache
        own = self._own
        now_lines: list[NowLine] = []
        refreshed = False
        frames = sys._current_frames()
        # Drop our own entry first: it is this very frame, whose locals hold
        # ``frames``; keeping it makes a reference cycle that outlives the tick, with
        # every thread's frame of that moment in it, for the cyclic GC to free (100
        # cycles a second). On 3.12.0-3.12.2 the GC can crash freeing such a cycle
        # when it holds a BytesIO.getbuffer() still in use, as multiprocessing's
        # ForkingPickler.dumps makes: "SystemError: deallocated BytesIO object has
        # exported buffers", then a segfault (CPython gh-111049 / gh-111211).
        frames.pop(threading.get_ident(), None)
        stack_log = self._stack_log
        wall = time.time() if stack_log is not None else 0.0  # only a recording needs it
        for ident, top in frames.items():
            if ident in own:
                continue
            meta = self._meta.get(ident)
            if meta is None and not refreshed:
                self._refresh_meta()  # a thread started since the last refresh
                refreshed = True
                own = self._own
                if ident in own:
                    continue
                meta = self._meta.get(ident)
            innermost: tuple[str, int] | None = None
            seen: set[tuple[str, int]] = set()
            frame: FrameType | None = top
            while frame is not None:
                filename = frame.f_code.co_filename
                fid = cache.get(filename, _UNSEEN)
                if fid == _UNSEEN:
                    fid = resolve(filename)
                if fid is not None:
                    key = (fid, frame.f_lineno or 0)
                    if innermost is None:
                        innermost = key
                    if key not in seen:
                        seen.add(key)
                        incl_counts[key] = incl_counts.get(key, 0) + 1
                frame = frame.f_back
            if innermost is not None and self._busy(meta, elapsed):
                self_counts[innermost] = self_counts.get(innermost, 0) + 1
            if stack_log is not None:
                stack_log.add(wall, ident, _whole_stack(top))
            if publish and innermost is not None:
                now_lines.append(NowLine(innermost[0], innermost[1], ident))
        if publish:
            threads = self.describer.describe(frames, self._meta, own)
            self._store.set_threads(threads, now_lines)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LAUNCHER = frozenset(os.path.join(_PACKAGE, name) for name in ("__main__.py", "cli.py",
                                                                 "runner.py"))


def _launcher(path: str) -> bool:
    """Frames of ``python -m stethoscope run``: runpy's and the command line's."""
    return path in _LAUNCHER or path == "<frozen runpy>" or path.endswith(f"{os.sep}runpy.py")


def _whole_stack(top: FrameType) -> list[tuple[str, int, str]]:
    """(path, line, function) of every frame, outermost first, without the frames
    of ``stethoscope run`` that lead to the program's own."""
    stack = []
    frame: FrameType | None = top
    while frame is not None:
        code = frame.f_code
        stack.append((code.co_filename, frame.f_lineno or 0, code.co_name))
        frame = frame.f_back
    while len(stack) > 1 and _launcher(stack[-1][0]):
        stack.pop()
    stack.reverse()
    return stack
