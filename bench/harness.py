"""Run one benchmark workload under one monitor; used by bench/run.py.

    python bench/harness.py TOOL WORKLOAD.py

TOOL is one of ``stethoscope-sample``, ``stethoscope-lines``, ``stethoscope-trace``,
``heartrate``, ``bare-callback``, ``viztracer``, ``pyinstrument``. The workload runs
as ``__main__`` (runpy) and prints its own RESULT / ELAPSED / END lines; this
harness adds ``HARNESS ...`` lines that bench/run.py records:

    HARNESS STOP_MS <ms>      how long stethoscope.stop() took (stethoscope tools)
    HARNESS SAMPLE_HZ <hz>    the sampler's achieved rate (stethoscope tools)
    HARNESS URL <url>         the page, with BENCH_BROWSER_WAIT=1 (see below)
    HARNESS NOTE/VERSION/CHECK ...

Every monitor is limited to the files named in ``BENCH_FILTER`` (absolute
directory paths joined by os.pathsep; default: bench/workloads), as a user would
limit it to their own code (and, for the third-party row, the library it runs).

With ``BENCH_CHECK=1`` the stethoscope tools also check, after the workload, that
the monitor really ran in the requested mode and saw the workload's lines: a
benchmark of a monitor that silently fell back or saw nothing would be
nonsense. A failed check exits with status 98. A mode that this stethoscope does
not accept (``trace(mode="lines")`` before it exists, or on 3.11) exits with
status 96 and the reason on stderr: the column is shown as n/a, not failed.

With ``BENCH_BROWSER_WAIT=1`` a stethoscope tool prints the page's URL and waits for a
line on stdin (bench/run.py sends it once a browser shows the page) before it
runs the workload, so that stop() is timed with a browser connected.

Whatever the tool, the process must end: a daemon watchdog started after the
workload ends it with status 97 when it is still alive ``BENCH_HANG_LIMIT``
seconds (default 30) later, naming the threads that kept it alive.
"""

from __future__ import annotations

import inspect
import os
import runpy
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

EXIT_NOT_AVAILABLE = 96
EXIT_HUNG = 97
EXIT_CHECK_FAILED = 98
WORKLOADS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads")
SAMPLE_HZ = 100.0


def filter_dirs() -> list[str]:
    """The directories the monitors watch (BENCH_FILTER), each ending in a separator."""
    dirs = [d for d in os.environ.get("BENCH_FILTER", WORKLOADS).split(os.pathsep) if d]
    return [os.path.join(os.path.abspath(d), "") for d in dirs]


def say(line: str) -> None:
    print(f"HARNESS {line}", flush=True)


def fail_check(message: str, status: int = EXIT_CHECK_FAILED) -> None:
    word = "N/A" if status == EXIT_NOT_AVAILABLE else "CHECK FAILED"
    sys.stderr.write(f"HARNESS {word}: {message}\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(status)


def run_workload(path: str) -> None:
    sys.argv = [path]
    runpy.run_path(path, run_name="__main__")


def start_watchdog() -> None:
    limit = float(os.environ.get("BENCH_HANG_LIMIT", "30"))

    def fire() -> None:
        alive = [
            f"{t.name} (daemon={t.daemon})"
            for t in threading.enumerate()
            if t is not threading.current_thread() and t.is_alive()
        ]
        sys.stderr.write(
            f"HARNESS HUNG: process still alive {limit:.0f} s after the workload ended; "
            f"threads: {', '.join(alive) or 'none'}\n"
        )
        sys.stderr.flush()
        os._exit(EXIT_HUNG)

    timer = threading.Timer(limit, fire)
    timer.daemon = True
    timer.name = "bench-watchdog"
    timer.start()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- the monitors ---------------------------------------------------------------


WANTED = {"trace": "hits_total", "lines": "ran_total", "sample": "self_total"}


def check_stethoscope(monitor: Any, mode: str) -> None:
    """Fail loudly unless the monitor ran in ``mode`` and saw the workload."""
    data = monitor.snapshot().to_dict()
    if data.get("mode") != mode:
        message = (f"asked for mode={mode!r}, the monitor ran in {data.get('mode')!r}; "
                   f"notes: {data.get('notes')}")
        # A mode that falls back by design (lines on 3.11) is "not available", not broken.
        fail_check(message, EXIT_NOT_AVAILABLE if mode == "lines" else EXIT_CHECK_FAILED)
    fields = data["line_fields"]
    # Sample mode: self samples need a thread seen using CPU between two ticks, which
    # a short run of GIL-sharing threads on a loaded machine may not give;
    # inclusive samples prove as well that the sampler saw the workload.
    cols = [fields.index(WANTED[mode])]
    if mode == "sample":
        cols.append(fields.index("incl_total"))
    seen: dict[str, int] = {}
    for d in filter_dirs():
        seen[d] = sum(row[c] for f in data["files"] if f["path"].startswith(d)
                      for row in f["lines"] for c in cols)
    if not any(seen.values()):
        fail_check(
            f"the monitor recorded no {' or '.join(fields[c] for c in cols)} in "
            f"{filter_dirs()}; files: "
            f"{[f['path'] for f in data['files']]}; notes: {data.get('notes')}"
        )
    lines = sum(len(f["lines"]) for f in data["files"])
    per_dir = " ".join(f"{os.path.basename(os.path.dirname(d))}={n}" for d, n in seen.items())
    say(f"CHECK mode={data.get('mode')} {'+'.join(fields[c] for c in cols)}: {per_dir} "
        f"lines={lines} "
        f"sample_hz_achieved={data.get('sample_hz', {}).get('achieved')}")


def wait_for_browser(monitor: Any) -> None:
    """Print the page's URL; go on once bench/run.py says a browser shows it."""
    say(f"URL {monitor.url}")
    if not sys.stdin.readline().strip():
        fail_check("the browser pass ended before the browser was ready")


def with_stethoscope(mode: str, path: str, check: bool) -> None:
    # No try/except around import or start: a traceback and a non-zero status are
    # the result (bench/run.py fails the column loudly). Only a mode that this
    # stethoscope rejects is "not available".
    import stethoscope

    try:
        monitor = stethoscope.trace(mode=mode, port=0, sample_hz=SAMPLE_HZ, quiet=True,
                                    files=stethoscope.files.path_contains(*filter_dirs()))
    except (ValueError, TypeError, NotImplementedError) as exc:
        if mode != "lines":
            raise
        fail_check(f"trace(mode='lines') is refused: {type(exc).__name__}: {exc}",
                   EXIT_NOT_AVAILABLE)
    say(f"VERSION stethoscope {getattr(stethoscope, '__version__', '?')}")
    if os.environ.get("BENCH_BROWSER_WAIT") == "1":
        wait_for_browser(monitor)
    try:
        run_workload(path)
    finally:
        started = time.perf_counter()
        stethoscope.stop()
        stopped = time.perf_counter() - started
    say(f"STOP_MS {stopped * 1000:.2f}")
    if check:  # after stop(): the sampler has folded its last ticks by then
        check_stethoscope(monitor, mode)
    # The value the snapshot's sample_hz_achieved is computed from; read here, after
    # stop(), without building a snapshot (that would add to the exit delay).
    say(f"SAMPLE_HZ {monitor.store.sample_rate()}")
    start_watchdog()


def with_heartrate(path: str, check: bool) -> None:
    import heartrate

    kwargs: dict[str, Any] = {
        "browser": False,
        "port": free_port(),
        "files": heartrate.files.path_contains(*filter_dirs()),
    }
    # heartrate 0.2.x has daemon=False by default: its Flask thread keeps the process
    # alive forever after the script ends. Ask for a daemon thread when the installed
    # version can; otherwise leave with os._exit() right after the workload.
    can_daemon = "daemon" in inspect.signature(heartrate.trace).parameters
    if can_daemon:
        kwargs["daemon"] = True
    say(f"VERSION heartrate {getattr(heartrate, '__version__', '?')}")
    if can_daemon:
        say("NOTE heartrate: trace(daemon=True), so that its server thread lets the process exit")
    else:
        say("NOTE heartrate: no daemon option, the harness calls os._exit(0) after the workload")
    heartrate.trace(**kwargs)
    run_workload(path)
    if not can_daemon:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    start_watchdog()


def with_viztracer(path: str, check: bool) -> None:
    import viztracer

    tracer = viztracer.VizTracer(verbose=0, register_global=False, include_files=filter_dirs())
    say(f"VERSION viztracer {getattr(viztracer, '__version__', '?')}")
    say("NOTE viztracer: records function entries and exits (not lines); trace not saved")
    tracer.start()
    try:
        run_workload(path)
    finally:
        tracer.stop()
    start_watchdog()


def with_pyinstrument(path: str, check: bool) -> None:
    import pyinstrument

    profiler = pyinstrument.Profiler(interval=0.001)
    say(f"VERSION pyinstrument {getattr(pyinstrument, '__version__', '?')}")
    say(
        "NOTE pyinstrument: statistical profiler, 1 ms interval, main thread only, "
        "every file (it has no files filter); no report rendered"
    )
    profiler.start()
    try:
        run_workload(path)
    finally:
        profiler.stop()
    start_watchdog()


def with_bare_callback(path: str, check: bool) -> None:
    """The floor for exact line counting: a callback that only increments a counter.

    sys.monitoring LINE events on 3.12+, sys.settrace on older versions: the same
    mechanisms stethoscope's trace mode uses.
    """
    counts: dict[tuple[str, int], int] = {}
    if sys.version_info >= (3, 12):
        mon = sys.monitoring
        tool = mon.PROFILER_ID

        def on_line(code: Any, line: int) -> None:
            key = (code.co_filename, line)
            counts[key] = counts.get(key, 0) + 1

        mon.use_tool_id(tool, "bench-bare")
        mon.register_callback(tool, mon.events.LINE, on_line)
        mon.set_events(tool, mon.events.LINE)
        say("NOTE bare callback on 3.12+: a sys.monitoring LINE callback that counts per line")
        try:
            run_workload(path)
        finally:
            mon.set_events(tool, 0)
            mon.register_callback(tool, mon.events.LINE, None)
            mon.free_tool_id(tool)
    else:

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                key = (frame.f_code.co_filename, frame.f_lineno)
                counts[key] = counts.get(key, 0) + 1
            return local

        def global_(frame: Any, event: str, arg: Any) -> Any:
            return local

        say("NOTE bare callback on 3.10/3.11: a sys.settrace callback that counts per line")
        sys.settrace(global_)
        try:
            run_workload(path)
        finally:
            sys.settrace(None)
    if check and not counts:
        fail_check("the bare callback counted nothing")
    start_watchdog()


TOOLS: dict[str, Callable[[str, bool], None]] = {
    "stethoscope-sample": lambda path, check: with_stethoscope("sample", path, check),
    "stethoscope-lines": lambda path, check: with_stethoscope("lines", path, check),
    "stethoscope-trace": lambda path, check: with_stethoscope("trace", path, check),
    "heartrate": with_heartrate,
    "bare-callback": with_bare_callback,
    "viztracer": with_viztracer,
    "pyinstrument": with_pyinstrument,
}


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in TOOLS:
        sys.exit(f"usage: harness.py {{{','.join(TOOLS)}}} WORKLOAD.py")
    tool, path = sys.argv[1], os.path.abspath(sys.argv[2])
    check = os.environ.get("BENCH_CHECK") == "1"
    # The workload's directory on sys.path, as when it runs as a script.
    sys.path[0] = os.path.dirname(path)
    TOOLS[tool](path, check)


if __name__ == "__main__":
    main()
