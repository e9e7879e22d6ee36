"""Which lines ran, at almost no cost, through ``sys.monitoring`` (3.12+).

A LINE event fires the first time a line of a monitored code object runs; the
callback notes (code, line) and returns DISABLE, so that line runs at full speed
afterwards. ``tick()`` (a few times a second, from the sampler thread) takes the
lines noted since the previous tick and calls ``sys.monitoring.restart_events()``,
which re-arms every disabled event: each tick window thus says exactly which
lines ran in it, however short, at the cost of one callback per line and window.

PY_START arms code objects in monitored files the way the exact tracer does (and
returns DISABLE too, so it costs one call per code object and window).

``restart_events()`` is global: it re-arms the disabled events of every tool, so
another tool that disables lines after their first hit (coverage.py's
``sys.monitoring`` core) sees them again once per window. Its results stay the
same; it pays one extra callback per line and window.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import CodeType
from typing import Any

from ..model import Store
from .filters import Resolver
from .monitoring import MonitoringTool


class LinesCollector(MonitoringTool):
    name = "lines"
    purpose = "lines mode"

    def __init__(self, store: Store, resolver: Resolver, on_fault: Callable[[str], None]) -> None:
        super().__init__(resolver, {}, on_fault)
        self._store = store
        self._publish_last = True
        # (id(code), line) noted since the last tick. Appended by any thread; the
        # tick takes a prefix with slicing and del, each atomic under the GIL, so
        # an append racing with it lands in the next window, never lost.
        self._seen: list[tuple[int, int]] = []

    def start(self) -> None:
        super().start()
        # Locations disabled under this id by an earlier tool stay disabled until
        # re-armed: re-arm now rather than at the first tick.
        sys.monitoring.restart_events()

    def _make_line_callback(self) -> Callable[[CodeType, int], Any]:
        append = self._seen.append
        disable = sys.monitoring.DISABLE

        def on_line(code: CodeType, line: int) -> Any:
            append((id(code), line))
            return disable

        return on_line

    def tick(self) -> None:
        """Hand the lines that ran since the last tick to the store, and re-arm."""
        if self._tool is None:
            return
        taken = self._take()
        sys.monitoring.restart_events()
        self._publish(taken)

    def _take(self) -> list[tuple[int, int]]:
        seen = self._seen
        n = len(seen)
        taken = seen[:n]
        del seen[:n]
        return taken

    def _publish(self, taken: list[tuple[int, int]]) -> None:
        keys = set()
        resolve, codes = self._resolver, self._armed
        for code_id, line in set(taken):
            code = codes.get(code_id)
            fid = resolve(code.co_filename) if code is not None else None
            if fid is not None:
                keys.add((fid, line))
        self._store.add_ran(keys, time.time())

    def _stopping(self) -> None:
        if self._publish_last:
            self._publish(self._take())  # the last window, before the codes are let go

    def stop(self) -> None:
        super().stop()
        self._armed.clear()

    def forget_after_fork(self) -> None:
        """In a forked child: stop without taking the store's lock, which another
        thread of the parent may have held at fork time."""
        self._publish_last = False
        self.stop()
