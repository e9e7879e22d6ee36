"""Exact line counts on 3.12+ through ``sys.monitoring`` (PEP 669).

PY_START is the only global event. Its callback decides once per code object:
a code object in a monitored file gets LINE events switched on locally; every
PY_START location returns DISABLE, so after the first call of any function,
monitored or not, it runs at full speed. Code that is already running when
``start()`` is called (any thread) is armed by walking every thread's stack.

The tool id is taken from a fallback list (the ids CPython reserves for no
one first, the profiler's last, so that cProfile still works); if every id is
taken, ``start()`` raises CollectorUnavailable naming the holders.
``stop()`` turns off every event it turned on, unregisters its callbacks and
frees the id, and never touches another tool's id. ``MonitoringTool`` is that
shared part; lines mode (lines.py) is the other tool built on it.
"""

from __future__ import annotations

import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, ClassVar

from .counting import HAS_SPEEDUPS, LineCounts, ThreadCounters
from .filters import Resolver

TOOL_NAME = "stethoscope"
# True when trace mode counts lines in C (stethoscope._speedups; see counting.py),
# False when it runs the pure-Python callback.
ACCELERATED = HAS_SPEEDUPS


def _tool_ids() -> tuple[int, ...]:
    # The ids CPython leaves to anyone first; PROFILER_ID last, because cProfile
    # (3.12+) takes it and fails when it is taken; never DEBUGGER_ID or COVERAGE_ID.
    mon = sys.monitoring
    return (3, 4, mon.OPTIMIZER_ID, mon.PROFILER_ID)


class MonitoringTool:
    """A ``sys.monitoring`` tool that switches LINE events on for the code objects
    of monitored files: PY_START (global, returning DISABLE) arms each code object
    on its first call, and code already running on any thread is armed at start.

    ``start()`` raises CollectorUnavailable when every id is taken; ``stop()``
    turns off every event it turned on, unregisters its callbacks and frees the id,
    and never touches another tool's id.
    """

    name = "monitoring"
    purpose = "this collector"  # "... needs a free sys.monitoring tool id"
    # Tool ids this process has used before. Locations that returned DISABLE stay
    # disabled for that id even after it was freed, so reusing one needs
    # restart_events() (which also re-arms other tools' disabled events, once).
    _used_ids: ClassVar[set[int]] = set()

    def __init__(self, resolver: Resolver, armed: dict[int, CodeType],
                 on_fault: Callable[[str], None]) -> None:
        self._resolver = resolver
        self._on_fault = on_fault
        self._tool: int | None = None
        self._armed = armed  # id -> code object with LINE events on (kept alive)

    def _make_line_callback(self) -> Callable[[CodeType, int], Any]:
        raise NotImplementedError

    def start(self) -> None:
        from . import CollectorUnavailable

        mon = sys.monitoring
        for tool in _tool_ids():
            if mon.get_tool(tool) is None:
                try:
                    mon.use_tool_id(tool, TOOL_NAME)
                except ValueError:  # taken between the check and the call
                    continue
                self._tool = tool
                break
        else:
            holders = ", ".join(f"{i}={mon.get_tool(i)}" for i in _tool_ids())
            raise CollectorUnavailable(
                f"{self.purpose} needs a free sys.monitoring tool id, and all are taken "
                f"({holders}); showing sampled time instead"
            )
        tool = self._tool
        if tool in MonitoringTool._used_ids:
            mon.restart_events()
        MonitoringTool._used_ids.add(tool)
        mon.register_callback(tool, mon.events.PY_START, self._on_start)
        mon.register_callback(tool, mon.events.LINE, self._make_line_callback())
        mon.set_events(tool, mon.events.PY_START)
        top: FrameType | None = None
        for top in sys._current_frames().values():
            frame: FrameType | None = top
            while frame is not None:
                self._arm(frame.f_code)
                frame = frame.f_back
        top = None  # it ended on this very frame: no reference cycle (see Sampler._tick)

    def _arm(self, code: CodeType) -> None:
        if id(code) in self._armed or self._tool is None:
            return
        if self._resolver(code.co_filename) is not None:
            self._armed[id(code)] = code
            sys.monitoring.set_local_events(self._tool, code, sys.monitoring.events.LINE)

    def _on_start(self, code: CodeType, offset: int) -> Any:
        try:
            self._arm(code)
        except Exception as exc:
            self._fault(exc)
        return sys.monitoring.DISABLE

    def _fault(self, exc: BaseException) -> None:
        self.stop()
        self._on_fault(f"{self.purpose} stopped after an internal error: "
                       f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        tool, self._tool = self._tool, None
        if tool is None:
            return
        mon = sys.monitoring
        mon.set_events(tool, mon.events.NO_EVENTS)
        try:
            self._stopping()
        finally:  # a fault handing over the last data must not keep the tool id
            for code in list(self._armed.values()):
                mon.set_local_events(tool, code, mon.events.NO_EVENTS)
            mon.register_callback(tool, mon.events.PY_START, None)
            mon.register_callback(tool, mon.events.LINE, None)
            mon.free_tool_id(tool)

    def _stopping(self) -> None:
        """Called by stop() once global events are off, before the codes are let go."""


class MonitoringTracer(MonitoringTool):
    """Counts every line of monitored code. The LINE callback is the compiled
    counter when stethoscope._speedups is available (``accelerated``), else a
    Python function counting into per-thread dicts; both fold the same way."""

    name = "trace"
    purpose = "exact line counting"

    def __init__(self, resolver: Resolver, counters: ThreadCounters,
                 on_fault: Callable[[str], None]) -> None:
        super().__init__(resolver, counters.codes, on_fault)
        self._counters = counters
        self._local = threading.local()
        self.accelerated = False  # set by start(): which callback counts

    def _make_line_callback(self) -> Callable[[CodeType, int], Any]:
        counter = self._counters.line_counter(on_fault=self._fault)
        self.accelerated = counter is not None
        if counter is not None:
            return counter
        local = self._local
        new_counts = self._counters.new
        fault = self._fault

        def on_line(code: CodeType, line: int) -> None:
            try:
                counts = local.counts
            except AttributeError:
                try:
                    counts = local.counts = new_counts()
                except Exception as exc:  # never reach the user's code
                    fault(exc)
                    return
            try:
                counts[id(code)][line] += 1
            except KeyError:
                lines: LineCounts = defaultdict(int)
                lines[line] = 1
                counts[id(code)] = lines
            except Exception as exc:  # e.g. MemoryError; never reach the user's code
                fault(exc)

        return on_line
