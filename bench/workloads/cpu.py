"""CPU-bound, deterministic, pure-Python benchmark workload (~2 s on CPython 3.11).

Four kinds of work that stress a line monitor differently:

1. a small expression language: regex tokenizer, recursive-descent parser and a
   recursive evaluator (method calls, short lines, recursion);
2. order records: objects with __slots__ and a property, grouping into dicts,
   sorting with key functions, f-string formatting (the "business code" share);
3. an n-body simulation (float arithmetic in tight loops);
4. word counting and string building (dict and str operations, small calls).

The mix is calibrated so that a bare per-line callback costs about what the
issue's reference measurements say (a counting ``sys.monitoring`` LINE callback
about 4x on 3.12, a counting ``settrace`` about 6-7x): the ``bare callback``
column of the benchmark shows it. A workload of nothing but trivial lines (a
stack-machine dispatch loop, say) would put even a bare callback at 15-25x.

The output is the protocol the benchmark runner reads:

    RESULT <checksum>     the same on every run and every interpreter
    ELAPSED <seconds>     the workload's own time, measured inside the process
    END <unix time>       printed as the last line, to measure exit delay

``BENCH_SCALE`` (default 1.0) scales the amount of work.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable

# --- 1. a small expression language -------------------------------------------

TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_]\w*)|(.))")

Node = tuple  # ("num", 3) | ("name", "x") | (op, left, right)


def tokenize(text: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for num, name, op in TOKEN.findall(text):
        if num:
            out.append(("num", int(num)))
        elif name:
            out.append(("name", name))
        elif op.strip():
            out.append(("op", op))
    out.append(("end", None))
    return out


class Parser:
    def __init__(self, tokens: list[tuple[str, object]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, object]:
        return self.tokens[self.pos]

    def take(self) -> tuple[str, object]:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            node = (self.take()[1], node, self.term())
        return node

    def term(self) -> Node:
        node = self.atom()
        while self.peek() in (("op", "*"), ("op", "%")):
            node = (self.take()[1], node, self.atom())
        return node

    def atom(self) -> Node:
        kind, value = self.take()
        if kind == "op" and value == "(":
            node = self.expr()
            self.take()
            return node
        return (kind, value)


OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "%": lambda a, b: a % b if b else 0,
}

PROGRAM = [
    "(x * x + y) % 97",
    "x * (y - 3) + (x + y) * (x - y)",
    "((x + 1) * (y + 2) * (x + 3)) % 1009",
    "x - y * 2 + (x * 3) % 7",
]


def evaluate(node: Node, env: dict[str, int]) -> int:
    kind = node[0]
    if kind == "num":
        return int(node[1])
    if kind == "name":
        return env[node[1]]
    return OPS[kind](evaluate(node[1], env), evaluate(node[2], env))


def interpret(n: int) -> int:
    total = 0
    trees: list[Node] = []
    for i in range(n):
        if i % 50 == 0:
            trees = [Parser(tokenize(src)).expr() for src in PROGRAM]
        env = {"x": i % 101, "y": i % 37}
        for tree in trees:
            total += evaluate(tree, env)
    return total


# --- 2. order records ------------------------------------------------------------

CITIES = ["Lyon", "Oslo", "Kyoto", "Lima", "Pune", "Graz", "Cork"]


class Order:
    __slots__ = ("city", "customer", "id", "items")

    def __init__(self, id: int, customer: str, items: list[tuple[int, int]], city: str) -> None:
        self.id = id
        self.customer = customer
        self.items = items
        self.city = city

    @property
    def total(self) -> int:
        return sum(qty * price for qty, price in self.items)


def make_orders(n: int, seed: int) -> list[Order]:
    orders = []
    for i in range(n):
        seed = (seed * 48271) % 2147483647
        items = [(1 + (seed >> k) % 5, 1 + (seed >> (k + 3)) % 40) for k in range(seed % 4 + 1)]
        orders.append(Order(i, f"c{seed % 500:03d}", items, CITIES[seed % len(CITIES)]))
    return orders


def summarize(orders: list[Order]) -> str:
    by_city: dict[str, dict[str, int]] = {}
    best: dict[str, Order] = {}
    for order in orders:
        stats = by_city.setdefault(order.city, {"n": 0, "sum": 0})
        stats["n"] += 1
        stats["sum"] += order.total
        if order.city not in best or order.total > best[order.city].total:
            best[order.city] = order
    lines = []
    for city, stats in sorted(by_city.items(), key=lambda kv: (-kv[1]["sum"], kv[0])):
        lines.append(f"{city:<6} {stats['n']:5d} {stats['sum']:8d} {best[city].customer}")
    top = sorted(orders, key=lambda o: (-o.total, o.id))[:20]
    lines.extend(f"{o.id}:{o.customer}:{o.total}" for o in top)
    return "\n".join(lines)


def records(n: int) -> int:
    size = 0
    for chunk in range(max(1, n // 2000)):
        size += len(summarize(make_orders(2000, 7 + chunk)))
    return size


# Work per part at BENCH_SCALE=1 (about 2 s in all on CPython 3.11).
INTERPRET = 24_000
RECORDS = 300_000
NBODY = 32_000
WORDS = 1_200_000


# --- 3. n-body ------------------------------------------------------------------

SOLAR_MASS = 4 * math.pi * math.pi
DAYS_PER_YEAR = 365.24


def make_bodies() -> list[list[float]]:
    # x, y, z, vx, vy, vz, mass: the sun and the four gas giants
    # fmt: off
    return [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, SOLAR_MASS],
        [4.84143144246472090e00, -1.16032004402742839e00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * DAYS_PER_YEAR, 7.69901118419740425e-03 * DAYS_PER_YEAR,
         -6.90460016972063023e-05 * DAYS_PER_YEAR, 9.54791938424326609e-04 * SOLAR_MASS],
        [8.34336671824457987e00, 4.12479856412430479e00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * DAYS_PER_YEAR, 4.99852801234917238e-03 * DAYS_PER_YEAR,
         2.30417297573763929e-05 * DAYS_PER_YEAR, 2.85885980666130812e-04 * SOLAR_MASS],
        [1.28943695621391310e01, -1.51111514016986312e01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * DAYS_PER_YEAR, 2.37847173959480950e-03 * DAYS_PER_YEAR,
         -2.96589568540237556e-05 * DAYS_PER_YEAR, 4.36624404335156298e-05 * SOLAR_MASS],
        [1.53796971148509165e01, -2.59193146099879641e01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * DAYS_PER_YEAR, 1.62824170038242295e-03 * DAYS_PER_YEAR,
         -9.51592254519715870e-05 * DAYS_PER_YEAR, 5.15138902046611451e-05 * SOLAR_MASS],
    ]
    # fmt: on


def advance(bodies: list[list[float]], dt: float, steps: int) -> None:
    pairs = [(a, b) for i, a in enumerate(bodies) for b in bodies[i + 1 :]]
    for _ in range(steps):
        for a, b in pairs:
            dx = a[0] - b[0]
            dy = a[1] - b[1]
            dz = a[2] - b[2]
            dist2 = dx * dx + dy * dy + dz * dz
            mag = dt / (dist2 * math.sqrt(dist2))
            bm = b[6] * mag
            am = a[6] * mag
            a[3] -= dx * bm
            a[4] -= dy * bm
            a[5] -= dz * bm
            b[3] += dx * am
            b[4] += dy * am
            b[5] += dz * am
        for body in bodies:
            body[0] += dt * body[3]
            body[1] += dt * body[4]
            body[2] += dt * body[5]


def energy(bodies: list[list[float]]) -> float:
    e = 0.0
    for i, a in enumerate(bodies):
        e += 0.5 * a[6] * (a[3] * a[3] + a[4] * a[4] + a[5] * a[5])
        for b in bodies[i + 1 :]:
            dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
            e -= a[6] * b[6] / math.sqrt(dx * dx + dy * dy + dz * dz)
    return e


# --- 4. words: dict and string operations ---------------------------------------

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "qu", "ph", "st"]


def word(seed: int) -> str:
    parts = []
    for _ in range(1 + seed % 3):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        parts.append(SYLLABLES[seed % len(SYLLABLES)])
    return "".join(parts)


def count_words(n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in range(n):
        w = word(i * 2654435761 % 1000003)
        counts[w] = counts.get(w, 0) + 1
    return counts


def render_report(counts: dict[str, int]) -> str:
    lines = []
    for w, c in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"{w:>8} {c:6d} {'#' * (c % 40)}")
    return "\n".join(lines)


# --- driver -----------------------------------------------------------------


def main() -> None:
    scale = float(os.environ.get("BENCH_SCALE", "1.0"))
    started = time.perf_counter()

    evaluated = interpret(int(INTERPRET * scale))
    size = records(int(RECORDS * scale))
    bodies = make_bodies()
    advance(bodies, 0.01, int(NBODY * scale))
    e = energy(bodies)
    report = render_report(count_words(int(WORDS * scale)))

    checksum = ((evaluated * 31 + size) * 31 + round(e * 1e9)) * 31 + len(report)
    elapsed = time.perf_counter() - started
    print(f"RESULT {checksum}")
    print(f"ELAPSED {elapsed:.6f}")
    print(f"END {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
