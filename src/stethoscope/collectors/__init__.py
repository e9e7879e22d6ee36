"""Collectors: each one observes the program and writes flat facts into the Store.

Every collector has ``start()`` and ``stop()``; ``stop()`` restores everything
``start()`` changed and is safe to call twice. A collector never lets an
exception reach the user's code: it records a note and turns itself off.
"""

from __future__ import annotations

from typing import Protocol


class Collector(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class CollectorUnavailable(RuntimeError):
    """The collector cannot run here; the message says why (shown as a note)."""
