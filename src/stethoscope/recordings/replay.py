"""``stethoscope view FILE``: serve a recording through the same page and API.

ReplayBackend is the server's ``Replay`` backend (server/routes.py):
``/api/snapshot?at=I`` gives the I-th recorded snapshot, ``/api/recording`` the
timeline, and ``/api/activity`` the whole run. Nothing is live: the server answers
the event stream, mode switches and child reports with a one-line reason.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from typing import Any, Literal

from ..model.activity import Activity
from ..model.snapshot import Snapshot
from ..render.source import render_source
from .file import RECORD_EVERY
from .reader import Recording


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class ReplayBackend:
    kind: Literal["replay"] = "replay"

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self._lock = threading.Lock()  # SnapshotSequence caches what it rebuilt last
        self._activity: bytes | None = None
        self._sources: dict[str, bytes] = {}
        self._timeline = self._make_timeline()

    def _at(self, index: int) -> Snapshot:
        with self._lock:
            return self.recording.snapshots[index]

    def snapshot_at_json(self, index: int, view: str | int | None = "all") -> bytes:
        """IndexError for an index outside the recording, LookupError for a pid
        that is not one of its processes."""
        if not 0 <= index < len(self.recording.snapshots):
            raise IndexError(index)
        snap = self._at(index)
        if view not in (None, "all", snap.pid):
            # A recording holds the combined picture: one process's view keeps its
            # threads (heat stays the program's).
            if all(p.pid != view for p in snap.processes):
                raise LookupError(view)
            snap = replace(snap, threads=tuple(t for t in snap.threads if t.pid == view),
                           now=tuple(n for n in snap.now if n.pid == view))
        return snap.to_json()

    def snapshot_json(self, view: str | int | None = "all") -> bytes:
        return self.snapshot_at_json(len(self.recording.snapshots) - 1, view)

    def activity_json(self, view: str | int | None = "all") -> bytes:
        with self._lock:
            if self._activity is None:
                snaps = self.recording.snapshots
                activity = Activity.from_snapshots(snaps, RECORD_EVERY)
                self._activity = _json(activity.to_dict(snaps[len(snaps) - 1].heat))
            return self._activity

    def recording_json(self) -> bytes:
        return self._timeline

    def _make_timeline(self) -> bytes:
        rec = self.recording
        keep = ("argv", "pid", "python", "mode", "sample_hz", "stethoscope")
        return _json({
            "file": os.path.basename(rec.path), "count": len(rec.snapshots),
            "times": rec.times, "truncated": rec.truncated,
            "cut_reason": rec.cut_reason or None,
            "started": rec.header.get("started"), "ended": rec.times[-1],
            "header": {k: rec.header.get(k) for k in keep},
        })

    def source_json(self, file_id: str) -> bytes | None:
        cached = self._sources.get(file_id)
        if cached is None:
            found = self.recording.sources.get(file_id)
            if found is None:
                return None
            path, text = found
            cached = _json(render_source(file_id, path, os.path.basename(path), text))
            self._sources[file_id] = cached
        return cached
