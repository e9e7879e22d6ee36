"""``GET /metrics``: a combined snapshot in the Prometheus text exposition format 0.0.4.

Written by hand, not with ``prometheus_client``: the package has no runtime
dependencies, and the format is a few lines of text per family. Every figure comes
from one combined snapshot (``/api/snapshot?pid=all``), so a scrape costs what one
page update costs. Series are bounded: labels are pids (the running processes and
the newest 100 ended ones, as the snapshot lists them), thread state kinds, start
methods and a few flags; never files or lines, whose number has no bound.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .._version import __version__

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


def _escape_label(value: str) -> str:
    """A label value as the format wants it: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    """HELP text: only backslash and line feed are escaped there."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    """A sample value: integers without a fraction, the format's spellings of NaN and Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class _Exposition:
    """The text being built: one family after another, each HELP, TYPE, then samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Labels, float]]) -> None:
        self._lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                inner = ",".join(f'{key}="{_escape_label(val)}"' for key, val in labels)
                self._lines.append(f"{name}{{{inner}}} {_number(value)}")
            else:
                self._lines.append(f"{name} {_number(value)}")

    def single(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text, [((), value)])

    def to_bytes(self) -> bytes:
        return ("\n".join(self._lines) + "\n").encode("utf-8")


def _flag(value: object) -> str:
    return "true" if value else "false"


def _file_sum(snapshot: Mapping[str, Any], field: str) -> int:
    return sum(int(f.get(field, 0)) for f in snapshot.get("files", ()))


def render(snapshot: Mapping[str, Any]) -> bytes:
    """The exposition of a combined snapshot dict (as ``/api/snapshot?pid=all`` answers)."""
    out = _Exposition()
    pid = str(snapshot["pid"])
    out.single("stethoscope_up", "gauge",
               "1: the monitor answered this scrape.", 1)
    out.family("stethoscope_info", "gauge",
               "Always 1; the labels describe the monitor and the process it runs in "
               "(mode: what runs now; requested_mode: what was asked for).",
               [((("version", __version__), ("python", str(snapshot.get("python", ""))),
                  ("mode", str(snapshot.get("mode", ""))),
                  ("requested_mode", str(snapshot.get("requested_mode", ""))),
                  ("pid", pid)), 1)])
    out.single("stethoscope_uptime_seconds", "gauge",
               "Seconds since the monitor started, at the time of the snapshot.",
               max(0.0, float(snapshot["time"]) - float(snapshot["started"])))

    threads: Counter[Labels] = Counter(
        (("pid", str(t["pid"])),
         ("daemon", _flag(t["daemon"])), ("kind", str(t["kind"])),
         ("alive", _flag(t["alive"])))
        for t in snapshot.get("threads", ()))
    out.family("stethoscope_threads", "gauge",
               "Threads of the program by process, daemon flag, state kind (running, "
               "queue.get, sleep, lock, ..., ended) and liveness; ended threads stay listed "
               "for 30 s. The monitor's own threads are not counted.",
               sorted(threads.items()))

    out.single("stethoscope_lines_executed_total", "counter",
               "Executions of lines in monitored files, all processes summed. Exact only "
               "while trace mode runs (mode=\"trace\"); the other modes do not count "
               "executions and add nothing here.",
               _file_sum(snapshot, "hits_total"))
    out.single("stethoscope_line_samples_total", "counter",
               "Stack samples in which a line of a monitored file was a thread's innermost "
               "monitored line while the thread used CPU (sampled self time), all processes "
               "summed. Not the number of samples taken: samples of idle threads or of "
               "unmonitored code are not counted.",
               _file_sum(snapshot, "self_total"))
    hz = snapshot.get("sample_hz") or {}
    out.single("stethoscope_sampler_achieved_hz", "gauge",
               "Stack samples per second the monitored process's sampler achieved recently.",
               float(hz.get("achieved", 0.0)))
    out.single("stethoscope_sampler_requested_hz", "gauge",
               "Stack samples per second asked for (trace(sample_hz=...)).",
               float(hz.get("requested", 0.0)))

    processes = list(snapshot.get("processes", ()))
    children: Counter[Labels] = Counter(
        (("state", str(p["state"])), ("method", str(p["method"])))
        for p in processes if p["method"] != "main")
    out.family("stethoscope_child_processes", "gauge",
               "Followed child processes by state (running, exited, killed) and start "
               "method (fork, spawn, forkserver, subprocess, os.fork); of the ended ones, "
               "only the newest 100 are listed.",
               sorted(children.items()))
    out.family("stethoscope_process_cpu_percent", "gauge",
               "CPU use of each process in percent of one core over about the last second "
               "(absent when not measured, e.g. for ended processes).",
               [((("pid", str(p["pid"])),), float(p["cpu"]))
                for p in processes if p.get("cpu") is not None])
    out.family("stethoscope_process_cpu_seconds_total", "counter",
               "CPU seconds each process has used so far.",
               [((("pid", str(p["pid"])),), float(p["cpu_seconds"])) for p in processes])

    exit_info = snapshot.get("exit")
    blocking = set(exit_info.get("blocking", ())) if exit_info else set()
    out.single("stethoscope_main_finished", "gauge",
               "1 once the main thread of the monitored process has finished.",
               1 if exit_info else 0)
    out.single("stethoscope_exit_blocked", "gauge",
               "1 when the main thread has finished but non-daemon threads keep the "
               "process from exiting (see /api/snapshot exit.blocking).",
               1 if blocking else 0)
    out.single("stethoscope_exit_blocking_threads", "gauge",
               "Alive non-daemon threads that keep the process from exiting after its "
               "main thread finished.",
               len(blocking))
    # Only the threads that hold the exit get a series of their own: few, and the
    # names an alert wants to show.
    out.family("stethoscope_exit_blocking_thread", "gauge",
               "1 for each thread that keeps the process from exiting: its ident, name "
               "and state kind.",
               [((("pid", pid), ("ident", str(t["ident"])), ("name", str(t["name"])),
                  ("kind", str(t["kind"]))), 1)
                for t in snapshot.get("threads", ())
                if t["ident"] in blocking and str(t["pid"]) == pid])
    return out.to_bytes()
