"""Checking each recorded snapshot as it is read, at the cost of its difference.

``check(keyed, before, change, whole)`` raises Malformed unless ``keyed`` (file.py's
keyed form) turns into a Snapshot that ``unkeyed`` builds and its users can use
(records.check_snapshot). A whole snapshot is built; a difference is checked where
it changed things: the scalar fields always (they are few), and the files, threads
and processes it added or changed (a file by its changed lines), against a
``before`` that was checked already. Every snapshot of a recording is thus known
good once it is read, without rebuilding each one (which costs as much as the
whole snapshot, many times the difference).
"""

from __future__ import annotations

from typing import Any

from ..model.snapshot import FileHeat, ProcessInfo, Snapshot, ThreadInfo
from .file import unkeyed
from .records import Malformed, check_snapshot

_DEL = "$del"
_PARTS = ("files", "threads", "processes")
# What checking damaged data can raise (all of it is refused).
ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
          RecursionError)


def check(keyed: dict[str, Any], before: dict[str, Any], change: dict[str, Any],
          whole: bool) -> None:
    try:
        if whole:
            check_snapshot(unkeyed(keyed))
            return
        scalars = {k: v for k, v in keyed.items()
                   if not k.endswith("_order") and k not in _PARTS}
        check_snapshot(Snapshot.from_dict({**scalars, "files": [], "threads": [],
                                           "processes": []}))
        _check_files(keyed, before, change)
        for part, order, read in (("threads", "thread_order", ThreadInfo.from_dict),
                                  ("processes", "process_order", ProcessInfo.from_dict)):
            items = keyed[part]
            for key in _changed(items, before[part], change.get(part)):
                read(items[key])
            _check_order(items, keyed[order], order)
    except Malformed:
        raise
    except ERRORS as exc:
        detail = str(exc) if isinstance(exc, ValueError) else \
            f"{type(exc).__name__}: {exc!s:.60}"
        raise Malformed(f"its snapshot does not rebuild ({detail})") from None


def _changed(items: Any, before: Any, change: Any) -> list[str]:
    """The keys of ``items`` to check: all of them unless ``change`` patched the
    checked ``before`` key by key (file.py's patch: both dicts)."""
    if not isinstance(items, dict):
        raise Malformed("its snapshot does not rebuild (a part of it is not an object)")
    if change is None:
        return []
    if not isinstance(change, dict) or not isinstance(before, dict):
        return list(items)
    return [key for key in change if key != _DEL and key in items]


def _check_order(items: dict[str, Any], order: Any, name: str) -> None:
    if not isinstance(order, list) or any(not isinstance(k, str) or k not in items
                                          for k in order):
        raise Malformed(f"its snapshot does not rebuild ({name} names what it does not hold)")


def _check_files(keyed: dict[str, Any], before: dict[str, Any], change: dict[str, Any]
                 ) -> None:
    files, old = keyed["files"], before["files"]
    changes = change.get("files")
    for fid in _changed(files, old, changes):
        entry = files[fid]
        own = changes.get(fid) if isinstance(changes, dict) else None
        lines = entry["lines"]
        if not isinstance(lines, dict):
            raise Malformed(f"its snapshot does not rebuild (the lines of {fid!r:.40} are "
                            f"not an object)")
        was = old.get(fid) if isinstance(old, dict) else None
        rows = list(lines) if not isinstance(own, dict) or not isinstance(was, dict) else \
            _changed(lines, was["lines"], own.get("lines"))
        heat = FileHeat.from_dict({"id": fid, "path": entry["path"], "name": entry["name"],
                                   "lines": [lines[row] for row in rows]})
        for row in heat.lines:
            if min(row) < 0:
                raise Malformed(f"line {row[0]} of {heat.name!r:.40} has a negative count")
    _check_order(files, keyed["file_order"], "file_order")
