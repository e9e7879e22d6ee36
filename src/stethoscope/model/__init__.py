"""Plain data: heat counters, records and immutable snapshots. No threads, no I/O."""

from .heat import HeatRing
from .processes import ChildReport, ProcessTable, ReportError, combine
from .snapshot import (
    LINE_FIELDS,
    SCHEMA_VERSION,
    ExitInfo,
    FileHeat,
    Frame,
    NowLine,
    ProcessInfo,
    Snapshot,
    ThreadInfo,
)
from .store import Store

__all__ = [
    "LINE_FIELDS",
    "SCHEMA_VERSION",
    "ChildReport",
    "ExitInfo",
    "FileHeat",
    "Frame",
    "HeatRing",
    "NowLine",
    "ProcessInfo",
    "ProcessTable",
    "ReportError",
    "Snapshot",
    "Store",
    "ThreadInfo",
    "combine",
]
