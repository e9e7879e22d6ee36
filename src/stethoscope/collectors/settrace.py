"""Exact line counts on 3.10/3.11 through ``sys.settrace``.

The global trace function is called for every new frame; it returns the
counting local tracer only for frames of monitored files, so other frames pay
only that call. New threads get the tracer through ``threading.settrace``; the
thread calling ``start()`` gets it directly, and its frames already on the stack
are traced from their next line on. Threads already running elsewhere cannot
be traced on these versions (CPython offers no way to set another thread's
trace function): the sampler still sees them, and a note says so.

``stop()`` restores the previous ``sys.gettrace()`` of the calling thread and
the previous ``threading`` hook, and takes the local tracers off every frame of
every thread; other threads drop the global tracer at their next call.

Accelerated (``ACCELERATED``): when stethoscope._speedups has its ``Tracer``
and no other tool traces (``sys.gettrace()`` and ``threading.gettrace()`` are
None), the same work is done by a C trace function (PyEval_SetTrace): no Python
call per event and no sync of the frame's locals around it, which is most of
the cost of the Python tracer. It counts into the compiled LineCounter, folded
with the rest; frames of files not monitored get ``f_trace_lines = False`` (no
LINE events), put back at stop() for frames still on a stack. With another
tool's trace function present, the Python tracer runs, because it chains to
that function's restoration correctly.
"""

from __future__ import annotations

import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, cast

from .counting import (
    LineCounts,
    ThreadCounters,
    compiled_module,
    current_thread_is_own,
    is_own_thread,
)
from .filters import Resolver

TraceFunc = Callable[[FrameType, str, Any], Any]

NOTE_RUNNING_THREADS = (
    "exact counts on Python < 3.12 cover the thread that called trace() and threads "
    "started after it; threads already running are sampled, not counted"
)

# The compiled tracer's type (stethoscope._speedups.Tracer; Python < 3.12), or None.
_CompiledTracer: Any = getattr(compiled_module(), "Tracer", None)
# True when trace mode on 3.10/3.11 counts with the C trace function (unless another
# tool's trace function is set when it starts), False when it runs the Python one.
ACCELERATED = _CompiledTracer is not None


class SettraceTracer:
    name = "trace"

    def __init__(self, resolver: Resolver, counters: ThreadCounters,
                 on_fault: Callable[[str], None]) -> None:
        self._resolver = resolver
        self._counters = counters
        self._on_fault = on_fault
        self._active = False
        self._prev_sys: TraceFunc | None = None
        self._prev_threading: TraceFunc | None = None
        self._caller: int | None = None
        self._compiled: Any = None  # the running stethoscope._speedups.Tracer, if any
        self.accelerated = False  # set by start(): which tracer counts

    def start(self) -> None:
        self._prev_sys = cast("TraceFunc | None", sys.gettrace())
        self._prev_threading = cast("TraceFunc | None", threading.gettrace())
        self._active = True
        self._caller = threading.get_ident()
        self.accelerated = self._start_compiled()
        if self.accelerated:
            return
        threading.settrace(self._thread_entry)
        global_trace, local_tracer = self._tracers(restore=self._prev_sys)
        sys.settrace(global_trace)
        # Frames already running in this thread: trace them from their next line.
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            local = local_tracer(frame.f_code)
            if local is not None:
                frame.f_trace = local
            frame = frame.f_back

    def _start_compiled(self) -> bool:
        """Start the C tracer if it exists and no other tool traces; False if not."""
        if _CompiledTracer is None or self._prev_sys is not None \
                or self._prev_threading is not None:
            return False
        counter = self._counters.line_counter(on_fault=self._fault)
        if counter is None:
            return False
        # exclude: the monitor's own threads run untraced (asked once per new thread).
        tracer = _CompiledTracer(counter, self._resolver, exclude=current_thread_is_own,
                                 on_fault=self._fault)
        self._compiled = tracer
        threading.settrace(tracer)
        tracer.start_thread()  # this thread's running frames count from their next line
        return True

    def _stop_compiled(self, tracer: Any) -> None:
        tracer.stop()  # every other thread takes it off at its next event
        threading.settrace(self._prev_threading)
        if sys.gettrace() is tracer:
            sys.settrace(self._prev_sys)
        # Frames of files not monitored had their LINE events switched off: switch
        # them back on, so that a debugger started later sees their lines.
        resolve = self._resolver
        top: FrameType | None = None
        for top in sys._current_frames().values():
            frame: FrameType | None = top
            while frame is not None:
                if not frame.f_trace_lines and resolve(frame.f_code.co_filename) is None:
                    frame.f_trace_lines = True
                frame = frame.f_back
        top = None  # it ended on this very frame: no reference cycle (see Sampler._tick)

    def _thread_entry(self, frame: FrameType, event: str, arg: Any) -> Any:
        """Runs as the first trace call of every new thread: install its tracer.

        That first call is ``Thread.run``, whose ``self`` tells the monitor's own
        threads apart: they run untraced.
        """
        if not self._active or is_own_thread(frame.f_locals.get("self")):
            sys.settrace(self._prev_threading)
            return self._prev_threading(frame, event, arg) if self._prev_threading else None
        try:
            global_trace, _ = self._tracers(restore=self._prev_threading)
        except Exception as exc:  # never reach the user's thread: run it untraced
            self._fault(exc)
            sys.settrace(self._prev_threading)
            return self._prev_threading(frame, event, arg) if self._prev_threading else None
        sys.settrace(global_trace)
        return global_trace(frame, event, arg)

    def _tracers(self, restore: TraceFunc | None
                 ) -> tuple[TraceFunc, Callable[[CodeType], TraceFunc | None]]:
        """The global trace function for the calling thread, and its lookup of the
        local tracer for a code object (None when the code is not monitored).

        Each monitored code object gets, once per thread, a local tracer bound to
        its own {line: count} dict, so a line event costs one subscript; the
        global function's per-call work is one dict lookup for monitored code.
        ``restore`` is the trace function this thread gets back once stopped.
        """
        counts = self._counters.new()
        codes = self._counters.codes
        resolve = self._resolver
        cache = resolve.cache
        tracer = self
        # id(code) -> local tracer, for monitored code only: those code objects are
        # pinned in `codes`, so their ids cannot be reused.
        local_for: dict[int, TraceFunc] = {}

        def local_tracer(code: CodeType) -> TraceFunc | None:
            local = local_for.get(id(code))
            if local is not None:
                return local
            filename = code.co_filename
            if (cache[filename] if filename in cache else resolve(filename)) is None:
                return None
            codes[id(code)] = code
            lines: LineCounts = counts.setdefault(id(code), defaultdict(int))

            def local_trace(frame: FrameType, event: str, arg: Any) -> Any:
                if event == "line":
                    try:
                        lines[frame.f_lineno] += 1
                    except Exception as exc:  # MemoryError: never reach the user's code
                        tracer._fault(exc)
                        return None
                return local_trace

            local_trace.stethoscope = True  # type: ignore[attr-defined]
            local_for[id(code)] = local_trace
            return local_trace

        def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
            if not tracer._active:
                sys.settrace(restore)
                return None
            code = frame.f_code
            local = local_for.get(id(code))
            if local is not None:
                return local
            try:
                return local_tracer(code)
            except RecursionError:
                return None  # the program is at its recursion limit: skip this frame
            except Exception as exc:
                tracer._fault(exc)
                return None

        return global_trace, local_tracer

    def _fault(self, exc: BaseException) -> None:
        self._active = False
        self._on_fault(f"exact line counting stopped after an internal error: "
                       f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        if not self._active and self._caller is None:
            return
        self._active = False
        compiled, self._compiled = self._compiled, None
        if compiled is not None:
            self._caller = None
            self._stop_compiled(compiled)
            return
        threading.settrace(self._prev_threading)
        # From another thread, the thread that called start() drops the tracer
        # at its next call event instead (see global_trace).
        if threading.get_ident() == self._caller:
            sys.settrace(self._prev_sys)
        self._caller = None
        # Local tracers do not check for stop (that would cost every line event):
        # take them off every frame of every thread instead.
        top: FrameType | None = None
        for top in sys._current_frames().values():
            frame: FrameType | None = top
            while frame is not None:
                if getattr(frame.f_trace, "stethoscope", False):
                    frame.f_trace = None
                frame = frame.f_back
        top = None  # it ended on this very frame: no reference cycle (see Sampler._tick)
