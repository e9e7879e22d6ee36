"""Run one benchmark process and measure it from outside.

``run_once`` starts a fresh process, reaps it with ``os.wait4`` (so the kernel
hands over its resource usage: user+sys CPU time and peak RSS, the process's own
and that of children it waited for, e.g. py-spy's Python), and reads the lines
the workload and the harness print:

    RESULT <checksum>   ELAPSED <s>   END <unix time>      (the workload)
    HARNESS STOP_MS <ms> / SAMPLE_HZ <hz> / NOTE ... / CHECK ...  (the harness)

Exit delay is the time from ``END`` (the workload's last line) to the moment
``wait4`` returned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any

EXIT_NOT_AVAILABLE = 96
EXIT_CODES = {
    EXIT_NOT_AVAILABLE: "not available",
    97: "hung after the workload ended",
    98: "in-process check failed",
}


class RunFailed(Exception):
    pass


class NotAvailable(Exception):
    """The column cannot run here (a mode this stethoscope refuses, no ptrace, ...)."""


def tail(text: str | bytes | None, lines: int = 15) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(("    " + line) for line in (text or "").rstrip().splitlines()[-lines:])


def _reason(stderr: str) -> str:
    """The one line that says why: the harness's N/A line, else the last error line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("HARNESS N/A:"):
            return line[len("HARNESS N/A:"):].strip()
    errors = [line for line in lines if "rror" in line or "ermission" in line]
    return (errors or lines or ["no output"])[-1]


def parse(stdout: str) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    harness: list[str] = []
    for line in stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key in ("RESULT", "ELAPSED", "END"):
            values[key] = rest.strip()
        elif key == "HARNESS":
            harness.append(rest.strip())
    return values, harness


def harness_value(harness: list[str], key: str) -> float | None:
    for line in harness:
        name, _, value = line.partition(" ")
        if name == key:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def run_once(cmd: list[str], env: dict[str, str], timeout: float, cwd: str,
             na_ok: bool = False) -> dict[str, Any]:
    """Run one process; return its measurements or raise RunFailed / NotAvailable."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env, cwd=cwd, start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        exited = time.time()
        wall = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")

    if timed_out.is_set():
        raise RunFailed(f"timed out after {timeout:.0f} s (killed)\n{tail(stderr)}")
    values, harness = parse(stdout)
    if code == EXIT_NOT_AVAILABLE or (na_ok and code != 0):
        raise NotAvailable(_reason(stderr))
    if code != 0:
        why = EXIT_CODES.get(code, f"exit status {code}")
        raise RunFailed(f"{why}: {_reason(stderr)}\n{tail(stderr)}")
    missing = [k for k in ("RESULT", "ELAPSED", "END") if k not in values]
    if missing:
        raise RunFailed(f"the workload did not print {missing}\n{tail(stdout + stderr)}")
    return {
        "wall": wall,
        "elapsed": float(values["ELAPSED"]),
        "exit_after_end": exited - float(values["END"]),
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss_mib": usage.ru_maxrss / 1024,  # Linux: KiB
        "stop_ms": harness_value(harness, "STOP_MS"),
        "sample_hz": harness_value(harness, "SAMPLE_HZ"),
        "result": values["RESULT"],
        "harness": harness,
        "stderr_tail": tail(stderr, 3) if stderr.strip() else "",
    }
