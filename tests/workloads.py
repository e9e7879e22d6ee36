"""Small functions with known line counts, shared by the collector tests.

Lines marked ``# <name>`` are looked up by marker, so editing this file does not
break the tests.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

FILE = str(Path(__file__).resolve())


def line_of(marker: str) -> int:
    for number, text in enumerate(Path(FILE).read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# {marker}"):
            return number
    raise LookupError(marker)


def count_to(n: int) -> int:
    total = 0
    for i in range(n):
        total += i  # body
    return total


def spin_until(stop: threading.Event) -> int:
    rounds = 0
    while not stop.is_set():  # spin
        rounds += 1
    return rounds


def wait_on(event: threading.Event) -> None:
    event.wait()  # waiting


def busy_for(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1  # busy
    return rounds


def run_in_batches(target: object, args: tuple[object, ...], batches: int = 20,
                   size: int = 10) -> None:
    """Start and join ``batches`` batches of ``size`` short-lived daemon threads."""
    for _ in range(batches):
        batch = [threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
                 for _ in range(size)]
        for thread in batch:
            thread.start()
        for thread in batch:
            thread.join(10)


def branchy(flag: bool) -> str:
    if flag:  # noqa: SIM108 (two lines, one of them not run, is the point)
        word = "yes"  # taken
    else:
        word = "no"  # not taken
    return word  # after


def once() -> int:
    return 7  # once
