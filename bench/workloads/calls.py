"""Call-heavy, deterministic benchmark workload: millions of calls of tiny functions.

A 2-D geometry kernel written the way "clean" code often is: every step a one-
to three-line function or method (getters, small arithmetic helpers, a tiny
vector class, predicates, a key function). A monitor pays per call and per line
here far more than on ``cpu.py``, whose lines do more work each.

Prints the same protocol as every workload: ``RESULT``, ``ELAPSED``, ``END``.
``BENCH_SCALE`` (default 1.0) scales the amount of work (~1 s on CPython 3.12).
"""

from __future__ import annotations

import os
import time

POINTS = 1_000
ROUNDS = 360


class Vec:
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def plus(self, other: Vec) -> Vec:
        return Vec(self.x + other.x, self.y + other.y)

    def dot(self, other: Vec) -> int:
        return self.x * other.x + self.y * other.y

    def norm2(self) -> int:
        return self.dot(self)


def add(a: int, b: int) -> int:
    return a + b


def mul(a: int, b: int) -> int:
    return a * b


def wrap(value: int) -> int:
    return value % 1_000_003


def is_even(value: int) -> bool:
    return value & 1 == 0


def clamp(value: int, low: int, high: int) -> int:
    if value < low:
        return low
    return high if value > high else value


def next_seed(seed: int) -> int:
    return wrap(add(mul(seed, 48271), 11))


def make_points(n: int, seed: int) -> list[Vec]:
    points = []
    for _ in range(n):
        seed = next_seed(seed)
        x = clamp(seed % 2001 - 1000, -900, 900)
        seed = next_seed(seed)
        points.append(Vec(x, clamp(seed % 2001 - 1000, -900, 900)))
    return points


def score(p: Vec, q: Vec) -> int:
    s = p.plus(q)
    return wrap(add(s.norm2(), p.dot(q)))


def key(p: Vec) -> tuple[int, int]:
    return (p.norm2(), p.x)


def one_round(points: list[Vec], shift: Vec) -> int:
    total = 0
    for p in points:
        q = p.plus(shift)
        value = score(p, q)
        total = add(total, value) if is_even(value) else add(total, mul(value, 3))
    return wrap(total + key(min(points, key=key))[0])


def main() -> None:
    scale = float(os.environ.get("BENCH_SCALE", "1.0"))
    started = time.perf_counter()
    points = make_points(POINTS, 7)
    checksum = 0
    for r in range(max(1, int(ROUNDS * scale))):
        checksum = wrap(checksum * 31 + one_round(points, Vec(r % 7 - 3, r % 5 - 2)))
    elapsed = time.perf_counter() - started
    print(f"RESULT {checksum}")
    print(f"ELAPSED {elapsed:.6f}")
    print(f"END {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
