#!/usr/bin/env python3
"""Load: event streams, snapshot requests and stalled clients against a monitored program.

    python3 bench/load.py [--seconds 60] [--streams 50] [--rate 200] [--stalled 10]
                          [--baseline 20] [--out FILE]
    python3 bench/load.py --report FILE...

A CPU workload (units of bench/workloads/cpu.py's four kinds of work, each unit
checked against the first) runs under ``stethoscope.trace(port=0, quiet=True)`` in
its own process and prints its URL. This process then opens

* ``--streams`` event streams (``GET /api/events?token=T``) that read continuously,
* ``--stalled`` event streams that never read (their socket receive buffers are
  small and fill; the server must drop them after its WRITE_TIMEOUT once its own
  send buffer is full too, without holding up anyone else),

tells the workload to start, and sends ``--rate`` snapshot requests per second
(``GET /api/snapshot``, one connection each, open loop: a slow answer does not
delay the next request) for ``--seconds``. Then the workload calls
``stethoscope.stop()`` with the streams still open, timing it.

Measured: snapshot latency (connect to last byte; and from the request's scheduled
time, which adds this process's own lag), events per stream per second and the
longest gap between events, when each stalled client was dropped (the server's
side of its connection leaves ESTABLISHED in /proc/net/tcp), the workload's RSS
(/proc/PID/status VmRSS) at the start and end of the load, stop()'s latency, and
the workload's own work rate (units per second, measured inside it) under load
against two runs of ``--baseline`` seconds in the same invocation: unmonitored,
and monitored without load. The workload's output must be its own: the checksum
of the unmonitored run, nothing on stderr, exit status 0.

Everything is bounded: every socket operation has a timeout, at most MAX_INFLIGHT
snapshot requests are open at once (a request that would exceed it is counted as
skipped), and the whole load ends at most --seconds + 90 s after it began. Only
127.0.0.1 is contacted. The load generator is one asyncio loop in this process
(plus a blocking socket per stalled client, never read).

Exit status 1 when a check of behaviour fails (``problems``: a failed or malformed
answer, a stream that fails or stops delivering, a stalled client never dropped,
wrong output) or one of speed (``slow``: a stream without events for
STREAM_GAP_LIMIT s, a stalled client still there WRITE_TIMEOUT + DROP_MARGIN after
it stopped taking data, stop() slower than STOP_LIMIT_MS). Other speed figures are
reported, not judged: requests left unanswered for IO_TIMEOUT (the server falling
behind the asked rate) are counted, not failures. How long the generator waits on
the server before it counts a failure is a ``Patience``; tests/test_load.py, which
judges behaviour only, passes a generous one and ignores ``slow``.
Raw results go to bench/results/<date>-load.json unless --out says otherwise.

``python bench/load.py --workload [--monitor] [--seconds S | --units N] [--handshake]``
is the monitored program itself (see ``workload_main``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import json
import os
import platform
import queue
import re
import resource
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = os.path.join(HERE, "workloads")
RESULTS = os.path.join(HERE, "results")

UNIT_DIVISOR = 60  # one unit of work is cpu.py's full run / this (~30 ms)
LINE_TIMEOUT = 120.0  # the workload waits at most this for a line on stdin
MAX_WORK_SECONDS = 900.0  # a workload never works longer than this
MAX_INFLIGHT = 200  # snapshot requests open at once
IO_TIMEOUT = 10.0  # every connect / read of the load generator
STREAM_GAP_LIMIT = 3.0  # seconds: a stream without an event for this long is a failure
STOP_LIMIT_MS = 1000.0
WRITE_TIMEOUT = 5.0  # the server's (stethoscope/server/httpd.py); only for the report
DROP_MARGIN = 4.0  # a stalled client must be gone WRITE_TIMEOUT + this after it stalls
STALLED_RCVBUF = 4096  # bytes: a stalled client's receive buffer


@dataclass(frozen=True)
class Patience:
    """How long the load generator waits on the server before it counts a failure."""

    io: float = IO_TIMEOUT  # every connect / read
    first_event: float = 20.0  # every stream's first event, before the load starts
    end: float = 5.0  # after stop(): each stream's end event and close
    drop: float = 0.0  # after the load: for stalled clients the server still holds


# --- the monitored program ------------------------------------------------------

def _read_line(timeout: float) -> str | None:
    """One line from stdin (fd 0), or None after ``timeout`` s or at EOF."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([0], [], [], left)
        if ready:
            chunk = os.read(0, 1024)
            if not chunk:
                return buf.decode(errors="replace").strip() or None
            buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace").strip()


def _stdin_ready() -> bool:
    return bool(select.select([0], [], [], 0)[0])


def workload_main(argv: list[str]) -> int:
    """The monitored program: units of CPU work, each checked against the first.

    Prints ``URL <url>`` (monitored), then, after working: ``RESULT <checksum of
    one unit>``, ``UNITS``, ``MISMATCHES``, ``ELAPSED``, ``RATE`` (units/s),
    ``STOP_MS`` (monitored: how long stethoscope.stop() took) and ``END``.
    It works for ``--seconds``, or ``--units``, or else until a line arrives on
    stdin. ``--handshake``: wait for ``go`` before working, print ``WORK_DONE``
    after, and wait for ``stop`` before calling stop().
    """
    parser = argparse.ArgumentParser(prog="load.py --workload")
    parser.add_argument("--monitor", action="store_true")
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--units", type=int, default=0)
    parser.add_argument("--handshake", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, WORKLOADS)
    import cpu  # type: ignore[import-not-found]

    stethoscope: Any = None
    if args.monitor:
        import stethoscope

        monitor = stethoscope.trace(port=0, quiet=True)
        print(f"URL {monitor.url}", flush=True)
    if args.handshake and _read_line(LINE_TIMEOUT) != "go":
        print("NO GO", flush=True)
        return 3

    def unit() -> int:
        evaluated = cpu.interpret(cpu.INTERPRET // UNIT_DIVISOR)
        size = cpu.records(cpu.RECORDS // UNIT_DIVISOR)
        bodies = cpu.make_bodies()
        cpu.advance(bodies, 0.01, cpu.NBODY // UNIT_DIVISOR)
        e = cpu.energy(bodies)
        report = cpu.render_report(cpu.count_words(cpu.WORDS // UNIT_DIVISOR))
        return int(((evaluated * 31 + size) * 31 + round(e * 1e9)) * 31 + len(report))

    began = time.perf_counter()
    first = unit()
    units, mismatches = 1, 0
    while True:
        elapsed = time.perf_counter() - began
        if args.units and units >= args.units:
            break
        if args.seconds and elapsed >= args.seconds:
            break
        if not args.units and not args.seconds and _stdin_ready():
            break
        if elapsed > MAX_WORK_SECONDS:
            break
        mismatches += unit() != first
        units += 1
    elapsed = time.perf_counter() - began
    print(f"RESULT {first}")
    print(f"UNITS {units}")
    print(f"MISMATCHES {mismatches}")
    print(f"ELAPSED {elapsed:.6f}")
    print(f"RATE {units / elapsed:.4f}", flush=True)
    if args.monitor:
        if args.handshake:
            print("WORK_DONE", flush=True)
            _read_line(LINE_TIMEOUT)
        t = time.perf_counter()
        stethoscope.stop()
        print(f"STOP_MS {(time.perf_counter() - t) * 1000:.2f}")
    print("END", flush=True)
    return 0


OUTPUT_LINE = re.compile(r"(URL http://127\.0\.0\.1:\d+/\?token=\S+|RESULT -?\d+|UNITS \d+|"
                         r"MISMATCHES \d+|ELAPSED [\d.]+|RATE [\d.]+|WORK_DONE|STOP_MS [\d.]+|"
                         r"END)")


def child_env() -> dict[str, str]:
    """This environment; with this checkout's src/ on the path when we cannot import
    stethoscope ourselves (a bare python3 run from the repository)."""
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if importlib.util.find_spec("stethoscope") is None:
        src = os.path.join(ROOT, "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


class Workload:
    """The workload process: its output lines, collected by two daemon threads."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--workload", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env or child_env(), cwd=ROOT)
        self.pid = self.proc.pid
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, True),
                             name="load-stdout", daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, False),
                             name="load-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str], announce: bool) -> None:
        for line in stream:
            into.append(line)
            if announce:
                self._lines.put(line.rstrip("\n"))
        if announce:
            self._lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        """The next stdout line that starts with ``prefix``; AssertionError if none."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"the workload printed no {prefix!r} line; "
                                     f"stdout {''.join(self.stdout)[-500:]!r}, "
                                     f"stderr {''.join(self.stderr)[-2000:]!r}")
            if line.startswith(prefix):
                return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def finish(self, timeout: float) -> dict[str, Any]:
        """Wait for the exit; the figures it printed, its exit status and its output."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        for reader in self._readers:
            reader.join(5)
        values: dict[str, Any] = {}
        for line in self.stdout:
            key, _, value = line.strip().partition(" ")
            values[key] = value
        return {
            "exit_code": code,
            "result": values.get("RESULT"),
            "units": int(values.get("UNITS") or 0),
            "mismatches": int(values.get("MISMATCHES") or 0),
            "elapsed": float(values.get("ELAPSED") or 0),
            "rate": float(values.get("RATE") or 0),
            "stop_ms": float(values["STOP_MS"]) if "STOP_MS" in values else None,
            "stdout": "".join(self.stdout),
            "stderr": "".join(self.stderr),
            "foreign_stdout": [line.rstrip("\n") for line in self.stdout
                               if not OUTPUT_LINE.fullmatch(line.rstrip("\n"))],
        }

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)


def run_workload(*args: str, env: dict[str, str] | None = None,
                 timeout: float = 300) -> dict[str, Any]:
    """Run the workload to its end (no handshake) and return its figures."""
    workload = Workload(*args, env=env)
    try:
        workload.proc.stdin.close()  # type: ignore[union-attr]
        return workload.finish(timeout)
    finally:
        workload.kill()


# --- measuring from outside -----------------------------------------------------

def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_side_states(port: int) -> dict[int, tuple[str, int]] | None:
    """The server's side of each connection to 127.0.0.1:port, by the client's port:
    (TCP state in hex, bytes in its send queue). None without /proc/net/tcp."""
    try:
        with open("/proc/net/tcp") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return None
    out = {}
    for line in lines:
        fields = line.split()
        local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
        if local == f"0100007F:{port:04X}":
            out[int(remote.split(":")[1], 16)] = (state, int(queues.split(":")[0], 16))
    return out


ESTABLISHED = "01"


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1],
            "n": len(ordered)}


@dataclass
class Stream:
    times: list[float] = field(default_factory=list)  # arrival of each snapshot event
    end: float | None = None  # the `end` event
    eof: float | None = None
    error: str | None = None
    bad_events: int = 0
    bytes: int = 0


@dataclass
class Stalled:
    sock: socket.socket
    port: int
    opened: float
    dropped: float | None = None
    last_state: str | None = None
    max_queue: int = 0
    stuck: float | None = None  # when the server first held data the client had not taken


@dataclass
class Requests:
    latency: list[float] = field(default_factory=list)  # connect to last byte
    from_schedule: list[float] = field(default_factory=list)  # scheduled time to last byte
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    timeouts: int = 0  # no complete answer within Patience.io
    skipped: int = 0
    sent: int = 0


def _event_stream_request(port: int, token: str) -> bytes:
    return (f"GET /api/events?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Accept: text/event-stream\r\n\r\n").encode()


async def _stream_client(port: int, token: str, stats: Stream, done: asyncio.Event,
                         io_timeout: float) -> None:
    writer = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), io_timeout)
        writer.write(_event_stream_request(port, token))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), io_timeout)
        if not head.startswith(b"HTTP/1.0 200 "):
            stats.error = head.split(b"\r\n", 1)[0].decode(errors="replace")
            return
        buf, scanned = b"", 0
        while True:
            # A live stream sends every STREAM_INTERVAL: io_timeout without data is a
            # failure, except once the load is over (`done`), when only the end counts.
            chunk = await asyncio.wait_for(reader.read(1 << 17), io_timeout)
            now = time.monotonic()
            if not chunk:
                stats.eof = now
                return
            stats.bytes += len(chunk)
            buf += chunk
            while (k := buf.find(b"\n\n", scanned)) >= 0:
                block, buf, scanned = buf[:k], buf[k + 2:], 0
                if block.startswith(b"event: snapshot\ndata: {"):
                    stats.times.append(now)
                    if len(stats.times) % 40 == 1:  # parse some of them, not all: our CPU
                        data = json.loads(block.split(b"data: ", 1)[1])
                        stats.bad_events += "schema" not in data or "files" not in data
                elif block.startswith(b"event: end\ndata: {"):
                    stats.end = now
                elif not block.startswith(b"retry: "):
                    stats.bad_events += 1
            scanned = max(0, len(buf) - 1)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        if not (done.is_set() and stats.end is not None):
            stats.error = f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()


async def _one_request(port: int, token: str, due: float, stats: Requests,
                       check_json: bool, io_timeout: float) -> None:
    start = time.monotonic()
    writer = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), io_timeout)
        writer.write(f"GET /api/snapshot?token={token} HTTP/1.1\r\n"
                     f"Host: 127.0.0.1:{port}\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(-1), io_timeout)
        end = time.monotonic()
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        length = re.search(rb"\r\nContent-Length: (\d+)", head)
        if not status.startswith(b"HTTP/1.0 200 ") or length is None \
                or int(length.group(1)) != len(body):
            stats.errors.append(f"{status.decode(errors='replace')!r}, {len(body)} bytes")
            return
        if check_json and "files" not in json.loads(body):
            stats.errors.append("a snapshot without files")
            return
        stats.ok += 1
        stats.latency.append(end - start)
        stats.from_schedule.append(end - due)
    except (asyncio.TimeoutError, TimeoutError):
        stats.timeouts += 1
    except (OSError, ValueError) as exc:
        stats.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if writer is not None:
            writer.close()


async def _requests(port: int, token: str, rate: float, stop: asyncio.Event,
                    stats: Requests, io_timeout: float) -> None:
    """Open loop: request k is due at start + k / rate, however the others fare."""
    t0 = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    k = 0
    while not stop.is_set():
        due = t0 + k / rate
        k += 1
        delay = due - time.monotonic()
        if delay > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
        if len(tasks) >= MAX_INFLIGHT:
            stats.skipped += 1
            continue
        stats.sent += 1
        task = asyncio.ensure_future(_one_request(port, token, due, stats, k % 50 == 0,
                                                  io_timeout))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=io_timeout + 5)


def _open_stalled(port: int, token: str, io_timeout: float) -> Stalled:
    opened = time.monotonic()  # before connecting: the server's clock for it starts later
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
    sock.settimeout(io_timeout)
    sock.connect(("127.0.0.1", port))
    sock.sendall(_event_stream_request(port, token))
    return Stalled(sock, sock.getsockname()[1], opened)


async def _watch(pid: int, port: int, stalled: list[Stalled], rss: list[tuple[float, float]],
                 loads: list[float], stop: asyncio.Event) -> None:
    """Every 0.25 s: the server's side of each stalled connection; every 1 s: RSS, load."""
    tick = 0
    while not stop.is_set():
        states = server_side_states(port)
        now = time.monotonic()
        for s in stalled:
            if s.dropped is not None or states is None:
                continue
            state, queued = states.get(s.port, ("gone", 0))
            s.last_state = state
            if state != ESTABLISHED:
                s.dropped = now
                continue
            s.max_queue = max(s.max_queue, queued)
            if queued > 0 and s.stuck is None:
                s.stuck = now  # its receive buffer is full: it takes nothing from now on
        if tick % 4 == 0:
            value = rss_mib(pid)
            if value is not None:
                rss.append((now, value))
            loads.append(os.getloadavg()[0])
        tick += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _drive(workload: Workload, port: int, token: str, seconds: float, n_streams: int,
                 rate: float, n_stalled: int, log: Callable[[str], None],
                 patience: Patience) -> dict[str, Any]:
    done = asyncio.Event()  # the load is over: streams may end
    stop_watch = asyncio.Event()
    stop_requests = asyncio.Event()
    problems: list[str] = []  # behaviour
    slow: list[str] = []  # speed

    stalled = [_open_stalled(port, token, patience.io) for _ in range(n_stalled)]
    streams = [Stream() for _ in range(n_streams)]
    stream_tasks = [asyncio.ensure_future(_stream_client(port, token, s, done, patience.io))
                    for s in streams]
    rss: list[tuple[float, float]] = []
    loads: list[float] = []
    watcher = asyncio.ensure_future(_watch(workload.pid, port, stalled, rss, loads, stop_watch))
    requests = Requests()
    try:
        if not await _wait_until(lambda: all(s.times or s.error for s in streams),
                                 patience.first_event):
            problems.append(f"not every stream had its first event within "
                            f"{patience.first_event:g} s")
        rss_start = rss_mib(workload.pid)
        cpu_start, own_start = cpu_seconds(workload.pid), own_cpu_seconds()
        workload.send("go")
        t_go = time.monotonic()
        log(f"load on: {n_streams} streams, {n_stalled} stalled, {rate:g} snapshot requests/s "
            f"for {seconds:g} s")
        sender = asyncio.ensure_future(_requests(port, token, rate, stop_requests, requests,
                                                 patience.io))
        finished = await _wait_until(lambda: any(line.startswith("WORK_DONE")
                                                 for line in workload.stdout), seconds + 60)
        t_work_done = time.monotonic()
        cpu_end, own_end = cpu_seconds(workload.pid), own_cpu_seconds()
        stop_requests.set()
        await asyncio.wait([sender], timeout=patience.io + 10)
        if not finished:
            problems.append("the workload did not finish its work in time")
        rss_end = rss_mib(workload.pid)
        # The program is still monitored (it waits for "stop"): stalled clients the
        # server still holds get patience.drop more to be dropped; then every stream
        # must deliver once more, after the load and after those drops.
        await _wait_until(lambda: all(s.dropped is not None for s in stalled)
                          or server_side_states(port) is None, patience.drop)
        t_after = max([time.monotonic(), *(s.dropped for s in stalled if s.dropped)])
        await _wait_until(lambda: all(s.error or (s.times and s.times[-1] > t_after)
                                      for s in streams), patience.io)
        t_stop = time.monotonic()
        done.set()
        workload.send("stop")
        if stream_tasks:
            await asyncio.wait(stream_tasks, timeout=patience.io + patience.end)
    finally:
        done.set()
        stop_requests.set()
        stop_watch.set()
        for task in stream_tasks:
            task.cancel()
        await asyncio.wait([watcher, *stream_tasks], timeout=5)
        for s in stalled:
            s.sock.close()

    # --- figures
    window = t_work_done - t_go
    rates, gaps, ends, closes = [], [], 0, []
    for s in streams:
        inside = [t for t in s.times if t_go <= t <= t_work_done]
        rates.append(len(inside) / window if window > 0 else 0.0)
        edges = [t_go, *inside, t_work_done]
        gaps.append(max(b - a for a, b in itertools.pairwise(edges)) if inside else window)
        ends += s.end is not None and s.eof is not None and s.eof - t_stop < patience.end
        if s.eof is not None:
            closes.append(s.eof - t_stop)
    delivered_after = sum(bool(s.times) and s.times[-1] > t_after for s in streams)
    stream_errors = [s.error for s in streams if s.error]
    drop_after = [s.dropped - s.opened for s in stalled if s.dropped is not None]
    stuck_to_drop = [s.dropped - s.stuck for s in stalled
                     if s.dropped is not None and s.stuck is not None]
    not_dropped = [s for s in stalled if s.dropped is None or s.dropped > t_stop]
    snap_events = sum(len(s.times) for s in streams)
    result: dict[str, Any] = {
        "window_s": window,
        "requests": {
            "rate": rate, "sent": requests.sent, "ok": requests.ok,
            "errors": len(requests.errors), "error_samples": requests.errors[:10],
            "timeouts": requests.timeouts, "skipped": requests.skipped,
            "achieved_rate": requests.ok / window if window > 0 else 0.0,
            "latency_ms": {k: (v * 1000 if isinstance(v, float) else v)
                           for k, v in percentiles(requests.latency).items()},
            "from_schedule_ms": {k: (v * 1000 if isinstance(v, float) else v)
                                 for k, v in percentiles(requests.from_schedule).items()},
        },
        "streams": {
            "count": n_streams, "events": snap_events,
            "bytes": sum(s.bytes for s in streams),
            "per_stream_per_s": {"min": min(rates, default=0.0),
                                 "median": statistics.median(rates) if rates else 0.0,
                                 "max": max(rates, default=0.0)},
            "longest_gap_s": max(gaps, default=0.0),
            "errors": stream_errors[:10], "error_count": len(stream_errors),
            "bad_events": sum(s.bad_events for s in streams),
            "delivered_after_load": delivered_after,
            "ended_with_end_event": ends,
            "closed_after_stop_s": max(closes, default=None),
        },
        "stalled": {
            "count": n_stalled,
            "watched": server_side_states(port) is not None or bool(drop_after),
            "dropped": len(drop_after),
            "dropped_after_s": {"min": min(drop_after, default=None),
                                "max": max(drop_after, default=None)},
            "stuck_to_drop_s": {"min": min(stuck_to_drop, default=None),
                                "max": max(stuck_to_drop, default=None)},
            "server_queue_bytes_max": max((s.max_queue for s in stalled), default=0),
            "not_dropped_states": [s.last_state for s in not_dropped],
        },
        "rss_mib": {"start": rss_start, "end": rss_end,
                    "max": max((v for _, v in rss), default=None)},
        "loadavg_max": max(loads, default=None),
        # CPU time over the load, in % of one core: the monitored program (its work and
        # the monitor's), and this load generator
        "cpu_percent": {
            "monitored": (None if cpu_start is None or cpu_end is None or window <= 0
                          else 100 * (cpu_end - cpu_start) / window),
            "generator": 100 * (own_end - own_start) / window if window > 0 else None,
        },
    }
    if requests.errors:
        problems.append(f"{len(requests.errors)} snapshot requests failed, e.g. "
                        f"{requests.errors[0]}")
    if requests.ok == 0:
        problems.append("no snapshot request succeeded")
    if stream_errors:
        problems.append(f"{len(stream_errors)} event streams failed, e.g. {stream_errors[0]}")
    if result["streams"]["bad_events"]:
        problems.append(f"{result['streams']['bad_events']} malformed events")
    if min(rates, default=0.0) == 0.0:
        problems.append("a stream delivered no event while the load ran")
    if delivered_after < n_streams:
        problems.append(f"only {delivered_after} of {n_streams} streams delivered an event "
                        f"after the load (and after the stalled clients were dropped)")
    if result["streams"]["longest_gap_s"] > STREAM_GAP_LIMIT:
        slow.append(f"a stream went {result['streams']['longest_gap_s']:.1f} s without "
                    f"an event (limit {STREAM_GAP_LIMIT} s)")
    if ends < n_streams:
        problems.append(f"only {ends} of {n_streams} streams got the end event and closed "
                        f"within {patience.end:g} s of stop")
    # else they cannot be gone yet
    long_enough = window + patience.drop >= WRITE_TIMEOUT + DROP_MARGIN + 2
    result["stalled"]["judged"] = result["stalled"]["watched"] and long_enough
    if result["stalled"]["judged"]:
        if not_dropped:
            problems.append(f"{len(not_dropped)} of {n_stalled} stalled clients were not "
                            f"dropped while the program ran")
        late = [d for d in stuck_to_drop if d > WRITE_TIMEOUT + DROP_MARGIN]
        if late:
            slow.append(f"a stalled client was dropped {max(late):.1f} s after it "
                        f"stopped taking data (WRITE_TIMEOUT {WRITE_TIMEOUT:g} s)")
        early = [d for d in drop_after if d < WRITE_TIMEOUT]
        if early:
            problems.append(f"a stalled client was dropped {min(early):.1f} s after it "
                            f"connected, before WRITE_TIMEOUT {WRITE_TIMEOUT:g} s")
    result["problems"] = problems
    result["slow"] = slow
    return result


def parse_url(url: str) -> tuple[int, str]:
    m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", url)
    if m is None:
        raise AssertionError(f"unexpected URL {url!r}")
    return int(m.group(1)), m.group(2)


def run_load(seconds: float, streams: int, rate: float, stalled: int, *,
             env: dict[str, str] | None = None, log: Callable[[str], None] = print,
             patience: Patience = Patience()) -> dict[str, Any]:
    """The loaded run: start the monitored workload, drive the load, check the output."""
    workload = Workload("--monitor", "--handshake", "--seconds", str(seconds), env=env)
    try:
        url = workload.expect("URL ", max(30, patience.io))[len("URL "):]
        port, token = parse_url(url)
        figures = asyncio.run(_drive(workload, port, token, seconds, streams, rate, stalled,
                                     log, patience))
        out = workload.finish(max(30, patience.io))
    finally:
        workload.kill()
    figures["workload"] = out
    return figures


def check_output(name: str, out: dict[str, Any], reference: str | None) -> list[str]:
    problems = []
    if out["exit_code"] != 0:
        problems.append(f"{name}: exit status {out['exit_code']}")
    if reference is not None and out["result"] != reference:
        problems.append(f"{name}: checksum {out['result']} != unmonitored {reference}")
    if out["mismatches"]:
        problems.append(f"{name}: {out['mismatches']} units computed a different checksum")
    if out["stderr"]:
        problems.append(f"{name}: wrote to stderr: {out['stderr'][:300]!r}")
    if out["foreign_stdout"]:
        problems.append(f"{name}: stdout lines not its own: {out['foreign_stdout'][:3]!r}")
    if name != "unmonitored" and out["stop_ms"] is None:
        problems.append(f"{name}: stop() did not return (no STOP_MS line)")
    return problems


def check_speed(name: str, out: dict[str, Any]) -> list[str]:
    if out["stop_ms"] is not None and out["stop_ms"] > STOP_LIMIT_MS:
        return [f"{name}: stop() took {out['stop_ms']:.0f} ms"]
    return []


def bench(seconds: float, streams: int, rate: float, stalled: int, baseline: float, *,
          env: dict[str, str] | None = None, log: Callable[[str], None] = print,
          patience: Patience = Patience()) -> dict[str, Any]:
    """Baselines (unmonitored; monitored without load), then the loaded run.
    ``problems`` lists what failed in behaviour, ``slow`` what was slower than the
    benchmark's limits."""
    load_start = os.getloadavg()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(), "executable": sys.executable,
        "nproc": os.cpu_count(), "uname": " ".join(platform.uname()),
        "settings": {"seconds": seconds, "streams": streams, "rate": rate,
                     "stalled": stalled, "baseline": baseline, "patience": asdict(patience)},
        "loadavg_start": load_start,
    }
    if baseline > 0:
        log(f"baseline: unmonitored, {baseline:g} s")
        unmonitored = run_workload("--seconds", str(baseline), env=env)
        log(f"baseline: monitored, no load, {baseline:g} s")
        idle = run_workload("--monitor", "--seconds", str(baseline), env=env)
    else:
        unmonitored = run_workload("--units", "1", env=env)
        idle = None
    loaded = run_load(seconds, streams, rate, stalled, env=env, log=log, patience=patience)
    result["loadavg_end"] = os.getloadavg()
    reference = unmonitored["result"]
    problems = check_output("unmonitored", unmonitored, None)
    slow = []
    if idle is not None:
        problems += check_output("monitored without load", idle, reference)
        slow += check_speed("monitored without load", idle)
    problems += check_output("under load", loaded["workload"], reference)
    slow += check_speed("under load", loaded["workload"])
    problems += loaded.pop("problems")
    slow += loaded.pop("slow")
    result.update(loaded)
    result["unmonitored"] = {k: v for k, v in unmonitored.items() if k != "stdout"}
    result["monitored_idle"] = ({k: v for k, v in idle.items() if k != "stdout"}
                                if idle is not None else None)
    result["workload"] = {k: v for k, v in result["workload"].items() if k != "stdout"}
    result["problems"] = problems
    result["slow"] = slow
    return result


# --- report ---------------------------------------------------------------------

def _ms(d: dict[str, Any]) -> str:
    if not d.get("n"):
        return "n/a"
    return " / ".join(f"{d[k]:.1f}" for k in ("p50", "p90", "p99", "max"))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _range(d: dict[str, Any], unit: str = " s") -> str:
    if d.get("min") is None:
        return "n/a"
    return f"{d['min']:.1f}-{d['max']:.1f}{unit}"


def report(result: dict[str, Any]) -> str:
    s = result["settings"]
    req, st, stl, wl = (result["requests"], result["streams"], result["stalled"],
                        result["workload"])
    unmon, idle = result["unmonitored"], result.get("monitored_idle")
    base = unmon["rate"] if result["settings"]["baseline"] > 0 else None

    def rate(r: float) -> str:
        return f"{r:.1f} units/s" + (f" ({r / base:.2f}x unmonitored)" if base else "")

    lines = [
        f"Load, CPython {result['python']}: {s['streams']} event streams + {s['rate']:g} "
        f"snapshot requests/s for {s['seconds']:g} s, {s['stalled']} stalled streams; "
        f"{result['nproc']} CPUs, load average {result['loadavg_start'][0]:.2f} at start, "
        f"{result['loadavg_end'][0]:.2f} at end, up to "
        f"{result['loadavg_max'] or 0:.2f} during the load",
        "",
        "| figure | value |",
        "|---|---|",
        f"| snapshot requests | {req['sent']} sent, {req['ok']} ok "
        f"({req['achieved_rate']:.1f}/s), {req['errors']} failed, "
        f"{req.get('timeouts', 0)} unanswered within "
        f"{s.get('patience', {}).get('io', IO_TIMEOUT):g} s, {req['skipped']} not "
        f"sent ({MAX_INFLIGHT} already open) |",
        f"| snapshot latency ms, p50 / p90 / p99 / max | {_ms(req['latency_ms'])} |",
        f"| ... from the scheduled time (adds the generator's lag) | "
        f"{_ms(req['from_schedule_ms'])} |",
        f"| events per stream per s, min / median / max | "
        f"{st['per_stream_per_s']['min']:.2f} / {st['per_stream_per_s']['median']:.2f} / "
        f"{st['per_stream_per_s']['max']:.2f} |",
        f"| longest gap between a stream's events | {st['longest_gap_s']:.2f} s |",
        f"| streams failed / got the end event at stop | {st['error_count']} / "
        f"{st['ended_with_end_event']} of {st['count']}"
        + (f", the last closed {st['closed_after_stop_s']:.2f} s after stop"
           if st.get("closed_after_stop_s") is not None else "") + " |",
        f"| stalled streams dropped | {stl['dropped']} of {stl['count']}, "
        f"{_range(stl['dropped_after_s'])} after connecting, "
        f"{_range(stl['stuck_to_drop_s'])} after they stopped taking data (the server "
        f"held up to {stl['server_queue_bytes_max'] // 1024} KiB for one; WRITE_TIMEOUT "
        f"{WRITE_TIMEOUT:g} s) |",
        f"| work rate unmonitored | {rate(unmon['rate'])} |",
    ]
    if idle is not None:
        lines.append(f"| work rate monitored, no load | {rate(idle['rate'])} |")
    lines += [
        f"| work rate monitored, under load | {rate(wl['rate'])}"
        + (f", {wl['rate'] / idle['rate']:.2f}x monitored without load" if idle else "")
        + " |",
        f"| CPU, % of one core: monitored process / this load generator | "
        f"{_pct(result.get('cpu_percent', {}).get('monitored'))} / "
        f"{_pct(result.get('cpu_percent', {}).get('generator'))} |",
        f"| RSS of the monitored process, MiB | {result['rss_mib']['start'] or 0:.1f} at start, "
        f"{result['rss_mib']['end'] or 0:.1f} at end, {result['rss_mib']['max'] or 0:.1f} max |",
        f"| stop() ms | {wl['stop_ms'] if wl['stop_ms'] is not None else float('nan'):.1f} "
        f"under load (streams open)"
        + (f", {idle['stop_ms']:.1f} without load" if idle and idle["stop_ms"] is not None
           else "") + " |",
        f"| output | checksum {wl['result']} "
        f"{'= unmonitored' if wl['result'] == unmon['result'] else '!= ' + str(unmon['result'])}"
        f", {wl['units']} units, stderr {'empty' if not wl['stderr'] else 'NOT EMPTY'}, "
        f"exit {wl['exit_code']} |",
    ]
    for problem in result["problems"]:
        lines.append(f"\nFAILED: {problem}")
    for problem in result.get("slow", []):
        lines.append(f"\nTOO SLOW: {problem}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--workload"]:
        return workload_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--stalled", type=int, default=10)
    parser.add_argument("--baseline", type=float, default=None,
                        help="seconds of each baseline run (default: a third of --seconds, "
                             "at least 5; 0: none)")
    parser.add_argument("--out", help="raw results (JSON); default "
                                      "bench/results/<date>-load.json")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="print the tables of saved results and exit")
    args = parser.parse_args(argv)
    if args.report:
        for path in args.report:
            with open(path) as f:
                print(report(json.load(f)) + "\n")
        return 0
    if args.seconds <= 0 or args.seconds > 3600 or args.streams > 500 or args.stalled > 200 \
            or not 0 < args.rate <= 2000:
        parser.error("bounds: 0 < seconds <= 3600, streams <= 500, stalled <= 200, "
                     "0 < rate <= 2000")
    baseline = args.baseline if args.baseline is not None else max(5.0, args.seconds / 3)
    result = bench(args.seconds, args.streams, args.rate, args.stalled, baseline)
    out = args.out or os.path.join(RESULTS, time.strftime("%Y-%m-%dT%H%M%S") + "-load.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print()
    print(report(result))
    print(f"\n(raw results: {os.path.relpath(out, ROOT)})")
    return 1 if result["problems"] or result["slow"] else 0


if __name__ == "__main__":
    sys.exit(main())
