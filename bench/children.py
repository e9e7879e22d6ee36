"""How much following child processes slows them: 1 child vs 8 concurrent children.

    python bench/children.py [--runs 5] [--iterations 20000000]

Each configuration is a fresh program (bench/workloads/children.py) that starts
N spawn children doing the same fixed work. Configurations run interleaved, in
an order that rotates each round; the table gives medians (and min-max) of the
children's own work time, and the ratio monitored / unmonitored for each N. The
claim to check: 8 monitored children slow down no more than one does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "workloads", "children.py")
CONFIGS = [(1, False), (1, True), (8, False), (8, True)]


def run(n: int, monitored: bool, iterations: int) -> dict[str, float]:
    args = [sys.executable, WORKLOAD, str(n), str(iterations)] + (["monitor"] if monitored else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=900, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {"wall": data["wall"], "work": statistics.median(data["work"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20_000_000)
    args = parser.parse_args()
    results: dict[tuple[int, bool], list[dict[str, float]]] = {c: [] for c in CONFIGS}
    for r in range(args.runs):
        order = CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]
        for n, monitored in order:
            results[(n, monitored)].append(run(n, monitored, args.iterations))
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} runs, "
          f"{args.iterations:,} iterations per child\n")
    print("| children | monitored | child work median s (min-max) | ratio | wall median s |")
    print("|---:|---|---:|---:|---:|")
    for n, monitored in CONFIGS:
        work = [x["work"] for x in results[(n, monitored)]]
        wall = [x["wall"] for x in results[(n, monitored)]]
        base = statistics.median(x["work"] for x in results[(n, False)])
        print(f"| {n} | {'yes' if monitored else 'no'} | {statistics.median(work):.2f} "
              f"({min(work):.2f}-{max(work):.2f}) | {statistics.median(work) / base:.2f}x "
              f"| {statistics.median(wall):.2f} |")


if __name__ == "__main__":
    main()
