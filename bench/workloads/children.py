"""N spawn children, each running the same fixed pure-Python work; optionally monitored.

    python children.py N ITERATIONS [monitor]

Prints one JSON line: the parent's wall time and each child's own work time.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time


def work(iterations: int, results: mp.Queue) -> None:  # type: ignore[type-arg]
    began = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i % 7
    results.put(time.perf_counter() - began)


def main() -> None:
    n, iterations = int(sys.argv[1]), int(sys.argv[2])
    if sys.argv[3:] == ["monitor"]:
        import stethoscope

        stethoscope.trace(port=0, quiet=True)
    began = time.perf_counter()
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=work, args=(iterations, results)) for _ in range(n)]
    for p in procs:
        p.start()
    times = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    print(json.dumps({"wall": time.perf_counter() - began, "work": sorted(times)}))


if __name__ == "__main__":
    main()
