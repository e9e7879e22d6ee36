"""The model: what the monitor knows, as plain data, and the one place it is kept.

Records and snapshots (snapshot.py, report.py) are frozen, JSON-round-tripping
data; ``HeatRing`` and ``Activity`` are bounded counters over time; the ``Store``
is the lock-guarded place collectors write into (its methods are short and take
one lock; it stats a source file once, when the file is first seen); the
``ProcessTable`` holds the latest report of each child. Nothing here starts a
thread, and nothing here reads a file's contents.
"""

from .heat import HEAT_KINDS, HeatKind, HeatRing, heat_for_mode
from .processes import ProcessTable, combine
from .report import ChildReport, ReportError
from .snapshot import (
    LINE_FIELDS,
    SCHEMA_VERSION,
    EndInfo,
    ExitInfo,
    FileHeat,
    Frame,
    NowLine,
    ProcessInfo,
    Snapshot,
    StuckInfo,
    ThreadInfo,
    WaitStep,
)
from .store import Store

__all__ = [
    "HEAT_KINDS",
    "LINE_FIELDS",
    "SCHEMA_VERSION",
    "ChildReport",
    "EndInfo",
    "ExitInfo",
    "FileHeat",
    "Frame",
    "HeatKind",
    "HeatRing",
    "NowLine",
    "ProcessInfo",
    "ProcessTable",
    "ReportError",
    "Snapshot",
    "Store",
    "StuckInfo",
    "ThreadInfo",
    "WaitStep",
    "combine",
    "heat_for_mode",
]
