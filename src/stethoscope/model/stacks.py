"""Every stack the sampler takes while a recording runs, interned for a compact file.

The sampler hands over (time, thread, frames) per thread and tick; frames and
whole stacks are numbered on first sight, so a sample is three numbers. ``take()``
returns what is new since the last call (new frames and stacks, and the samples),
which is exactly what the recording appends. When the tables grow past
``MAX_ENTRIES`` (a long run with ever-new stacks) they start over: ``take()`` says
so, and the reader forgets the old numbering at that point. Memory stays bounded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

StackFrame = tuple[str, int, str]  # (path, line, function)
MAX_ENTRIES = 200_000  # frames + stacks before the tables start over
MAX_PENDING = 100_000  # samples held between two take()s; more are dropped (and counted)


@dataclass(frozen=True, slots=True)
class StackBatch:
    reset: bool  # the numbering starts over with this batch
    frames: list[StackFrame]  # numbered after those already handed out
    stacks: list[tuple[int, ...]]  # frame numbers, outermost first
    samples: list[tuple[float, int, int]]  # (Unix time, thread ident, stack number)
    dropped: int  # samples lost because nobody took them in time


class StackLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[StackFrame, int] = {}
        self._stacks: dict[tuple[int, ...], int] = {}
        self._new_frames: list[StackFrame] = []
        self._new_stacks: list[tuple[int, ...]] = []
        self._samples: list[tuple[float, int, int]] = []
        self._reset = False
        self._dropped = 0

    def add(self, when: float, ident: int, frames: list[StackFrame]) -> None:
        """One thread's stack, outermost frame first."""
        with self._lock:
            if len(self._samples) >= MAX_PENDING:
                self._dropped += 1
                return
            if len(self._frames) + len(self._stacks) > MAX_ENTRIES:
                self._frames.clear()
                self._stacks.clear()
                self._new_frames.clear()
                self._new_stacks.clear()
                self._dropped += len(self._samples)  # they use the old numbering
                self._samples.clear()
                self._reset = True
            numbers = []
            for frame in frames:
                number = self._frames.get(frame)
                if number is None:
                    number = self._frames[frame] = len(self._frames)
                    self._new_frames.append(frame)
                numbers.append(number)
            key = tuple(numbers)
            stack = self._stacks.get(key)
            if stack is None:
                stack = self._stacks[key] = len(self._stacks)
                self._new_stacks.append(key)
            self._samples.append((when, ident, stack))

    def take(self) -> StackBatch:
        with self._lock:
            batch = StackBatch(self._reset, self._new_frames, self._new_stacks, self._samples,
                               self._dropped)
            self._new_frames, self._new_stacks, self._samples = [], [], []
            self._reset, self._dropped = False, 0
            return batch
