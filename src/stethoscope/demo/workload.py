"""stethoscope's demo: a small program with something for every panel.

* the main thread renders a Mandelbrot set over and over (CPU-hot lines);
* "cruncher" counts primes in a daemon thread (more CPU, another hot file region);
* "fetcher" waits on a queue and sleeps like an I/O-bound worker;
* "uploader" is a non-daemon thread: when you press Ctrl+C it keeps the program
  alive for a few seconds, finishing an "upload", then gives up;
* "renderer" is a child process (multiprocessing, spawn) rendering a bigger set:
  the page lists it under the main process and sums its heat into the picture.

Run it with ``stethoscope demo`` and open the printed URL.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import threading
import time
from typing import Any


def mandelbrot_row(y: float, width: int, max_iter: int) -> list[int]:
    row = []
    for x in range(width):
        c = complex(-2.2 + 3.0 * x / width, y)
        z = 0j
        n = 0
        while abs(z) <= 2.0 and n < max_iter:
            z = z * z + c
            n += 1
        row.append(n)
    return row


def mandelbrot(width: int = 60, height: int = 30, max_iter: int = 60) -> int:
    total = 0
    for j in range(height):
        y = -1.2 + 2.4 * j / height
        total += sum(mandelbrot_row(y, width, max_iter))
    return total


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def cruncher(stop: threading.Event) -> None:
    start = 10_000
    while not stop.is_set():
        found = sum(1 for n in range(start, start + 2_000) if is_prime(n))
        start += 2_000 if found else 1
        time.sleep(0.01)


def fetcher(jobs: queue.Queue[int], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            job = jobs.get(timeout=0.5)
        except queue.Empty:
            continue
        time.sleep(0.2)  # pretend to wait for the network
        jobs.task_done()
        del job


def uploader(stop: threading.Event, linger: float) -> None:
    """A non-daemon worker: it holds the process open for `linger` seconds after
    the program is asked to stop, then gives up."""
    stop.wait()
    deadline = time.monotonic() + linger
    while time.monotonic() < deadline:
        time.sleep(0.1)  # "finishing the upload"


def renderer(stop: Any) -> None:
    """The child process's work: a bigger picture, until the parent says stop."""
    try:
        while not stop.is_set():
            mandelbrot(80, 40, 80)
    except KeyboardInterrupt:  # Ctrl+C reaches the whole process group
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--linger", type=float, default=5.0)
    args = parser.parse_args()

    stop = threading.Event()
    jobs: queue.Queue[int] = queue.Queue()
    threading.Thread(target=cruncher, args=(stop,), name="cruncher", daemon=True).start()
    threading.Thread(target=fetcher, args=(jobs, stop), name="fetcher", daemon=True).start()
    threading.Thread(target=uploader, args=(stop, args.linger), name="uploader",
                     daemon=False).start()
    spawn = multiprocessing.get_context("spawn")
    child_stop = spawn.Event()
    child = spawn.Process(target=renderer, args=(child_stop,), name="renderer", daemon=True)
    child.start()
    print("demo running: press Ctrl+C to stop", flush=True)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    frames = 0
    try:
        while deadline is None or time.monotonic() < deadline:
            mandelbrot()
            frames += 1
            if frames % 3 == 0:
                jobs.put(frames)
    except KeyboardInterrupt:
        print("\nstopping; the uploader thread holds the exit for a few seconds", flush=True)
    finally:
        stop.set()
        child_stop.set()
        child.join(5)


if __name__ == "__main__":
    main()
