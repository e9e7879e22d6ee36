"""Counts per key in a ring of one-second buckets: recent heat and running totals.

Memory is bounded by the number of distinct keys times the window, never by run
time: a bucket older than the window is subtracted from the recent sums and
dropped. Not thread-safe; the Store serialises access.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

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
