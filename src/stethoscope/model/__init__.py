"""Plain data: heat counters, records and immutable snapshots. No threads, no I/O."""

from .heat import HeatRing
from .snapshot import (
    LINE_FIELDS,
    SCHEMA_VERSION,
    ExitInfo,
    FileHeat,
    Frame,
    Snapshot,
    ThreadInfo,
)
from .store import Store

__all__ = [
    "LINE_FIELDS",
    "SCHEMA_VERSION",
    "ExitInfo",
    "FileHeat",
    "Frame",
    "HeatRing",
    "Snapshot",
    "Store",
    "ThreadInfo",
]
