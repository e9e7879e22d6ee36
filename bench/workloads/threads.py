"""Threaded benchmark workload: 4 threads, two CPU-bound, two waiting on I/O.

- ``crunch-words`` and ``crunch-primes``: pure-Python CPU work (string building and
  dict counting; trial division), competing for the GIL;
- ``io-server``: answers requests on a socketpair; per request it appends a line
  to a temporary file, reads it back, and replies;
- ``io-client``: sends the requests, waits for each reply, and sleeps 2 ms
  between requests.

The total work is fixed (it does not depend on how the threads interleave), and so
is the result. Unmonitored, the CPU threads and the I/O pair take about as long,
so both the GIL contention and the waiting show in the wall time.

Prints the same protocol as every workload: ``RESULT``, ``ELAPSED``, ``END``.
``BENCH_SCALE`` (default 1.0) scales the amount of work.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
import time

WORDS = 110_000
PRIMES_LIMIT = 140_000
REQUESTS = 250
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "qu"]


def crunch_words(n: int, out: dict[str, int]) -> None:
    counts: dict[str, int] = {}
    for i in range(n):
        seed = i * 2654435761 % 1000003
        parts = []
        for _ in range(1 + seed % 3):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            parts.append(SYLLABLES[seed % len(SYLLABLES)])
        w = "".join(parts)
        counts[w] = counts.get(w, 0) + 1
    out["words"] = sum(len(w) * c for w, c in counts.items())


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def crunch_primes(limit: int, out: dict[str, int]) -> None:
    out["primes"] = sum(1 for n in range(limit) if is_prime(n))


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def io_server(sock: socket.socket, path: str, out: dict[str, int]) -> None:
    total = 0
    with open(path, "a+") as f:
        while True:
            (value,) = struct.unpack("!q", recv_exact(sock, 8))
            if value < 0:
                break
            f.write(f"request {value}\n")
            f.flush()
            f.seek(0)
            lines = f.read().count("\n")
            total += lines
            sock.sendall(struct.pack("!q", value * 2 + lines))
    out["server"] = total


def io_client(sock: socket.socket, n: int, out: dict[str, int]) -> None:
    total = 0
    for i in range(n):
        sock.sendall(struct.pack("!q", i))
        (reply,) = struct.unpack("!q", recv_exact(sock, 8))
        total += reply
        time.sleep(0.002)
    sock.sendall(struct.pack("!q", -1))
    out["client"] = total


def main() -> None:
    scale = float(os.environ.get("BENCH_SCALE", "1.0"))
    started = time.perf_counter()
    out: dict[str, int] = {}
    left, right = socket.socketpair()
    with tempfile.TemporaryDirectory() as tmp, left, right:
        threads = [
            threading.Thread(target=crunch_words, args=(int(WORDS * scale), out),
                             name="crunch-words"),
            threading.Thread(target=crunch_primes, args=(int(PRIMES_LIMIT * scale), out),
                             name="crunch-primes"),
            threading.Thread(target=io_server, args=(left, os.path.join(tmp, "log"), out),
                             name="io-server"),
            threading.Thread(target=io_client, args=(right, max(1, int(REQUESTS * scale)), out),
                             name="io-client"),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    checksum = ((out["words"] * 31 + out["primes"]) * 31 + out["server"]) * 31 + out["client"]
    elapsed = time.perf_counter() - started
    print(f"RESULT {checksum}")
    print(f"ELAPSED {elapsed:.6f}")
    print(f"END {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
