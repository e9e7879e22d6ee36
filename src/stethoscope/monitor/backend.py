"""What the server serves for a live program: the monitor's data, as JSON.

``LiveBackend`` is the server's ``Live`` backend (server/routes.py): snapshots of
one process or of all combined, activity over time, sources by file id, children's
reports, and mode switches. A built snapshot is shared by every client for
``SNAPSHOT_MAX_AGE``, so many open pages cost what one costs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .core import Monitor

SNAPSHOT_MAX_AGE = 0.1  # seconds a built snapshot is reused for other clients


class LiveBackend:
    kind: Literal["live"] = "live"

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor
        self._lock = threading.Lock()
        self._cached: dict[object, tuple[float, tuple[object, ...], bytes]] = {}  # by view

    def snapshot_json(self, view: str | int | None = "all") -> bytes:
        """The snapshot as JSON; LookupError for a pid that is not a process of this
        program."""
        monitor = self._monitor
        with self._lock:
            now = time.monotonic()
            # Keyed by what changes at exit too: a build that began before stop()
            # or before the hang report (or a mode switch) must not be served after it.
            key = (monitor.state, monitor.hang.reported, monitor.store.generation, monitor.mode)
            cached = self._cached.get(view)
            if cached is not None and cached[1] == key and now - cached[0] < SNAPSHOT_MAX_AGE:
                return cached[2]
            data = monitor.snapshot(view).to_json()
            if len(self._cached) > 16:
                self._cached.clear()
            self._cached[view] = (now, key, data)
            return data

    def activity_json(self, view: str | int | None = "all") -> bytes:
        """Activity over the last minutes (model/activity.py); LookupError for a pid
        that is not a process of this program."""
        monitor = self._monitor
        pid: int | None = None
        if view not in (None, "all"):
            pid = int(view)
            children = monitor.children
            known = {os.getpid()} | {p.pid for p in (children.table.infos()
                                                     if children is not None else [])}
            if pid not in known:
                raise LookupError(view)
        data = monitor.store.activity.to_dict(monitor.modes.heat, pid)
        return json.dumps(data, separators=(",", ":")).encode()

    def source_json(self, file_id: str) -> bytes | None:
        return self._monitor.sources.json(file_id)

    @property
    def requested_mode(self) -> str:
        return self._monitor.requested_mode

    def set_mode(self, mode: str) -> str:
        return self._monitor.set_mode(mode)
