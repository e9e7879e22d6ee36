"""Heat: counts per key in a ring of one-second buckets, and the kinds of heat.

``HeatRing`` keeps recent heat and running totals. Memory is bounded by the number
of distinct keys times the window, never by run time: a bucket older than the
window is subtracted from the recent sums and dropped. Not thread-safe; the Store
serialises access.

``HEAT_KINDS`` is the one table of the kinds of heat (sampled time, exact hits,
windows a line ran in): which line fields each reads and what its figures are
called. Snapshots carry it, so clients never restate it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)


class HeatRing(Generic[K]):
    __slots__ = ("_buckets", "_recent", "_totals", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._totals: dict[K, int] = {}
        self._recent: dict[K, int] = {}
        self._buckets: deque[tuple[int, dict[K, int]]] = deque()

    def add(self, counts: Mapping[K, int] | Iterable[tuple[K, int]], second: int) -> None:
        """Add ``counts`` as having happened during wall-clock ``second``."""
        self.expire(second)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append((second, {}))
        bucket = self._buckets[-1][1]
        totals, recent = self._totals, self._recent
        items = counts.items() if isinstance(counts, Mapping) else counts
        for key, n in items:
            bucket[key] = bucket.get(key, 0) + n
            totals[key] = totals.get(key, 0) + n
            recent[key] = recent.get(key, 0) + n

    def expire(self, second: int) -> None:
        """Forget buckets that fell out of the window ending at ``second``."""
        horizon = second - self.window
        recent = self._recent
        while self._buckets and self._buckets[0][0] <= horizon:
            _, old = self._buckets.popleft()
            for key, n in old.items():
                left = recent[key] - n
                if left:
                    recent[key] = left
                else:
                    del recent[key]

    def total(self, key: K) -> int:
        return self._totals.get(key, 0)

    def recent(self, key: K) -> int:
        return self._recent.get(key, 0)

    def keys(self) -> Iterable[K]:
        return self._totals.keys()

    def __len__(self) -> int:
        return len(self._totals)


# -- the kinds of heat ------------------------------------------------------------

HeatKind = Literal["time", "hits", "ran"]


@dataclass(frozen=True, slots=True)
class HeatKindInfo:
    """One kind of heat: what the page colours by, and the words for it.

    The one statement of these facts: snapshots carry the table (``heat_kinds``),
    and the page, the terminal view and the exports read it from there.
    """

    name: HeatKind
    stem: str  # its line fields are f"{stem}_recent" and f"{stem}_total"
    exact: bool  # counts of what happened (no inclusive fallback), not samples
    unit: str  # a line's figure
    file_unit: str  # a file's sum of its lines' figures
    short_unit: str  # a column heading in the terminal
    title: str  # what "the hottest lines by ..." ranks by
    activity_unit: str  # what a point of the activity (/api/activity) counts
    activity_title: str  # what the activity's heat of this kind is, in a sentence

    @property
    def recent(self) -> str:
        return f"{self.stem}_recent"

    @property
    def total(self) -> str:
        return f"{self.stem}_total"

    def to_dict(self) -> dict[str, Any]:
        return {"recent": self.recent, "total": self.total, "exact": self.exact,
                "unit": self.unit, "file_unit": self.file_unit,
                "short_unit": self.short_unit, "title": self.title,
                "activity_unit": self.activity_unit, "activity_title": self.activity_title}


HEAT_KINDS: dict[str, HeatKindInfo] = {info.name: info for info in (
    HeatKindInfo("time", "self", False, "self samples", "self samples", "samples",
                 "sampled CPU time", "samples",
                 "sampled time: samples in which a line of the monitored files was running "
                 "on a CPU"),
    HeatKindInfo("hits", "hits", True, "executions", "executions", "hits",
                 "executions (trace mode)", "line runs",
                 "executed lines (trace mode: exact counts)"),
    HeatKindInfo("ran", "ran", True, "windows ran in",
                 "line-windows (lines × windows each ran in)", "windows",  # noqa: RUF001
                 "0.2 s windows a line ran in (lines mode)", "lines ran",
                 "lines that ran (lines mode: each line once per 0.2 s window)"),
)}
HEAT_KINDS_JSON: dict[str, dict[str, Any]] = {k: v.to_dict() for k, v in HEAT_KINDS.items()}


def heat_for_mode(mode: str) -> HeatKind:
    """The heat a running mode produces: exact counts in trace mode, the windows a
    line ran in in lines mode alone, sampled time otherwise (sample+lines included)."""
    return "hits" if mode == "trace" else "ran" if mode == "lines" else "time"
