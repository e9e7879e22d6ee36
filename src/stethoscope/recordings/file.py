"""Recordings: the snapshot stream and the sampled stacks, in one compact file.

The file is ``MAGIC`` and then one zlib stream of JSON lines, flushed to the OS
(``Z_SYNC_FLUSH``, unbuffered writes) every ``RECORD_EVERY`` seconds. Everything
up to the last flush is readable, so a process that is killed loses at most that
much; the reader notices the missing ``end`` record and says the recording was
cut off. Records (field ``k``):

* ``header``: format version, snapshot schema, the program (argv, pid, python...);
* ``source``: a monitored file's text, once, when it first has heat;
* ``snap``: a combined snapshot, whole (``full``) every ``FULL_EVERY`` records and
  otherwise as the difference from the one before (``diff``): files by id and
  lines by number, so a record holds only the lines whose counts moved;
* ``stacks``: the sampler's stacks since the last record (model/stacks.py);
* ``end``: the recorder was closed.

This module is the format and its writer, ``Recorder``; reader.py reads it back
(inflate.py, records.py and snapcheck.py check it: a recording is untrusted input).
"""

from __future__ import annotations

import json
import os
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from .._compat import start_thread
from .._fds import LostError, open_owned
from ..model.snapshot import SCHEMA_VERSION, Snapshot
from ..model.stacks import StackLog

MAGIC = b"STETHOSCOPE-RECORDING\n"
FORMAT_VERSION = 1
RECORD_EVERY = 0.5  # seconds between flushed records: what a kill can lose
# Records between whole snapshots (the rest are differences). A format rule, not only
# the writer's habit: the reader refuses more than FULL_EVERY - 1 differences in a
# row, so seeking anywhere costs at most that many patches.
FULL_EVERY = 120
_DEL = "$del"  # in a difference: the keys that are gone


class RecordingError(Exception):
    """A recording cannot be written or read; the message says why, in one line."""


# -- snapshot differences ------------------------------------------------------


def _keyed(snap: Snapshot) -> dict[str, Any]:
    """The snapshot as nested dicts keyed by identity, so differences stay small."""
    d = snap.to_dict()
    files = d.pop("files")
    d["files"] = {f["id"]: {"path": f["path"], "name": f["name"],
                            "lines": {str(row[0]): row for row in f["lines"]}}
                  for f in files}
    d["file_order"] = [f["id"] for f in files]
    threads = d.pop("threads")
    d["threads"] = {f"{t['pid']}:{t['ident']}": t for t in threads}
    d["thread_order"] = list(d["threads"])
    processes = d.pop("processes")
    d["processes"] = {str(p["pid"]): p for p in processes}
    d["process_order"] = list(d["processes"])
    return d


def unkeyed(d: dict[str, Any]) -> Snapshot:
    plain = {k: v for k, v in d.items() if not k.endswith("_order")}
    plain["files"] = [{"id": fid, "path": d["files"][fid]["path"],
                       "name": d["files"][fid]["name"],
                       "lines": sorted(d["files"][fid]["lines"].values())}
                      for fid in d["file_order"]]
    plain["threads"] = [d["threads"][key] for key in d["thread_order"]]
    plain["processes"] = [d["processes"][key] for key in d["process_order"]]
    return Snapshot.from_dict(plain)


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What turns ``old`` into ``new``: changed keys, nested where both are dicts.
    ``$del`` is reserved (no snapshot key starts with ``$``)."""
    if _DEL in new:
        raise ValueError(f"{_DEL!r} is reserved in recorded data")
    out: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            out[key] = value
        elif old[key] != value:
            before = old[key]
            both = isinstance(value, dict) and isinstance(before, dict)
            out[key] = diff(before, value) if both else value
    gone = [key for key in old if key not in new]
    if gone:
        out[_DEL] = gone
    return out


def patch(old: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The inverse of diff(): a new dict; ``old`` is left as it was."""
    new = dict(old)
    for key in change.get(_DEL, ()):
        new.pop(key, None)
    for key, value in change.items():
        if key == _DEL:
            continue
        before = new.get(key)
        both = isinstance(value, dict) and isinstance(before, dict)
        new[key] = patch(before, value) if both else value  # type: ignore[arg-type]
    return new


# -- writing -------------------------------------------------------------------


class Recorder:
    """Appends to a recording from a daemon thread; ``close()`` writes the end.

    ``snapshot`` gives the combined picture and ``source`` a file's (path, text);
    both are the monitor's. Faults are reported once through ``on_fault`` and end
    the recording (what was written stays readable); they never reach the program.
    """

    def __init__(self, path: str, header: dict[str, Any], *,
                 snapshot: Callable[[], Snapshot],
                 source: Callable[[str], tuple[str, str] | None],
                 stack_log: StackLog, on_fault: Callable[[str], None]) -> None:
        self.path = os.path.abspath(path)
        try:
            self._file = open_owned(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600,
                                    what=f"the recording {self.path}")
        except OSError as exc:
            raise RecordingError(f"cannot write the recording {self.path!r}: "
                                 f"{exc.strerror}") from None
        self._snapshot = snapshot
        self._source = source
        self.stack_log = stack_log
        self._on_fault = on_fault
        self._lock = threading.Lock()
        self._zip = zlib.compressobj(6)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: dict[str, Any] | None = None
        self._records = 0
        self._sent_sources: set[str] = set()
        self._named: dict[int, str] = {}  # thread ident -> name, as sent
        self._closed = False
        self.failed = False  # a fault ended it early: what was written stays readable
        self._append([{"k": "header", "format": FORMAT_VERSION, "schema": SCHEMA_VERSION,
                       "interval": RECORD_EVERY, **header}])

    def start(self) -> None:
        self._thread = start_thread(self._run, "stethoscope-recorder")

    def _run(self) -> None:
        try:
            while not self._stop.wait(RECORD_EVERY):
                self.record()
        except Exception as exc:  # record() catches its own faults: this is the last guard
            with self._lock:
                already, self._closed = self._closed, True
            if not already:
                self._fault(exc)

    def record(self, final: bool = False) -> None:
        """Append what happened since the last record (and the end, when final)."""
        with self._lock:
            if self._closed:
                return
            try:
                records = self._records_now()
                if final:
                    records.append({"k": "end", "t": time.time()})
                self._append(records)
            except Exception as exc:
                self._closed = True
                self._fault(exc)
                return
            if final:
                self._closed = True
                self._file.close()

    def _fault(self, exc: Exception) -> None:
        """One note, and the file let go (closed only if it still is ours)."""
        self.failed = True
        if isinstance(exc, LostError):
            self._on_fault(f"the recording {self.path} stopped: the program closed or "
                           f"replaced its descriptor {self._file.fd}, which is left to the "
                           f"program from now on")
        else:
            self._on_fault(f"the recording {self.path} stopped after an error: "
                           f"{type(exc).__name__}: {exc}")
        self._file.close()

    def _records_now(self) -> list[dict[str, Any]]:
        snap = self._snapshot()
        records: list[dict[str, Any]] = []
        for f in snap.files:
            if f.id not in self._sent_sources:
                self._sent_sources.add(f.id)
                found = self._source(f.id)
                if found is not None:
                    records.append({"k": "source", "id": f.id, "path": found[0],
                                    "text": found[1]})
        batch = self.stack_log.take()
        if batch.samples or batch.reset or batch.dropped:
            base = snap.started
            names = {t.ident: t.name for t in snap.threads if t.pid in (None, snap.pid)}
            new_names = {ident: names[ident] for ident in {s[1] for s in batch.samples}
                         if ident in names and self._named.get(ident) != names[ident]}
            self._named.update(new_names)
            records.append({"k": "stacks", "reset": batch.reset, "base": base,
                            "names": {str(k): v for k, v in new_names.items()},
                            "frames": batch.frames, "stacks": batch.stacks,
                            "samples": [(round((t - base) * 1000, 1), ident, stack)
                                        for t, ident, stack in batch.samples],
                            "dropped": batch.dropped})
        keyed = _keyed(snap)
        if self._previous is None or self._records % FULL_EVERY == 0:
            records.append({"k": "snap", "t": snap.time, "full": keyed})
        else:
            records.append({"k": "snap", "t": snap.time, "diff": diff(self._previous, keyed)})
        self._previous = keyed
        self._records += 1
        return records

    def _append(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        data = self._zip.compress(text.encode()) + self._zip.flush(zlib.Z_SYNC_FLUSH)
        if self._records == 0 and records and records[0]["k"] == "header":
            data = MAGIC + data
        view = memoryview(data)
        while view:
            # checked before every write: a program that closed our descriptor and
            # opened a file of its own on that number must never get our bytes
            view = view[os.write(self._file.check(), view):]

    def close(self, timeout: float = 2.0) -> None:
        """The final record and the end; idempotent. Call after the collectors stop."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if not self._closed:  # after a fault, what was written stays as it is
            self.record(final=True)

    def forget(self) -> None:
        """In a forked child: let go of the file without writing to it."""
        self._stop.set()
        self._closed = True
        self._file.close()
