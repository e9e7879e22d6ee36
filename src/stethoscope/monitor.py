"""The Monitor: wires config -> collectors -> store -> server, and owns their lifetime.

``start()`` binds the server first, so a bad port fails before anything in the
program has been changed. ``stop()`` is idempotent, callable from any thread or
an atexit handler, and bounded in time: every join has a timeout. Nothing here
raises into the user's program once started; faults become notes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING, Any

from . import _compat
from .collectors import Collector, CollectorUnavailable
from .collectors.children import (
    ChildWatch,
    die_of_sigterm,
    process_started,
    release_sigterm,
    take_sigterm,
)
from .collectors.counting import ThreadCounters
from .collectors.cputime import ProcessCPU
from .collectors.exitwatch import MainFinishedHook
from .collectors.filters import Resolver
from .collectors.sampler import Sampler
from .collectors.threads import ThreadRegistry
from .config import (
    CHILD_ENV,
    DEFAULT_PORT,
    ChildLink,
    Config,
    ConfigError,
    check_mode,
    is_loopback,
    page_url,
    url_host,
)
from .model import ChildReport, ProcessInfo, ProcessTable, ReportError, Snapshot, Store, combine
from .model.activity import threads_at
from .model.snapshot import HeatKind, State
from .model.stacks import StackLog
from .render.source import read_source, render_source
from .render.threads import dump_report, hang_report

if TYPE_CHECKING:
    from .collectors.lines import LinesCollector
    from .recording import Recorder
    from .server.httpd import Server

SNAPSHOT_MAX_AGE = 0.1  # seconds a built snapshot is reused for other clients


def write_stderr(text: str) -> None:
    """Text to stderr with os.write: no buffer lock shared with the program, and
    safe from a daemon thread during interpreter shutdown."""
    data = text.encode(errors="replace")
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(2, data):]


def _say(message: str) -> None:
    write_stderr(f"stethoscope: {message}\n")


def warn_if_exposed(host: str) -> None:
    """One line on stderr when the server listens on a non-loopback address (trace(),
    stethoscope run/demo and stethoscope view say it with the same words)."""
    if not is_loopback(host):
        _say(f"warning: serving on {url_host(host)}, not a loopback address: the page and "
             f"API are reachable from the network, and the token is the only guard")


class Monitor:
    # What a child process needs to report to this program's monitor; set while
    # children are followed (api.py's after-fork hook hands it to a forked child).
    link: ChildLink | None = None

    def __init__(self, config: Config, *, on_stop: Callable[[Monitor], None] | None = None
                 ) -> None:
        self.config = config
        self._on_stop = on_stop
        self.store = Store(config.window)
        self._state: State = "running"
        self._started = time.time()
        self._stop_lock = threading.RLock()  # a SIGTERM handler may stop() inside stop()
        self._stopped = threading.Event()
        self._end_requested = threading.Event()  # stop(), Ctrl+C or SIGTERM while serving on
        self._snapshot_lock = threading.Lock()
        self._cached: dict[object, tuple[float, tuple[State, bool, str], bytes]] = {}  # by view
        self._sources: dict[str, bytes] = {}
        self.resolver = Resolver(config.files, self.store, on_error=self._note)
        self._counters = ThreadCounters(self.store, self.resolver)
        # What runs: "sample", "lines", "trace" or "sample+lines" (auto on 3.12+);
        # requested_mode is what was asked for (trace(mode=...) or set_mode()).
        self.mode: str = "sample"
        self.requested_mode: str = config.mode
        self._tracer: Collector | None = None
        self._lines: LinesCollector | None = None
        # Held while a fold, a lines tick or a mode switch runs: a switch never
        # races with the sampler thread's periodic fold.
        self._mode_lock = threading.RLock()
        self._collectors: list[Collector] = []
        self._main_finished_at: float | None = None
        self._hang_reported = False
        self._previous_dump_handler: Any = None
        self._process = ProcessInfo(os.getpid(), os.getppid(), _argv(), "", "main",
                                    process_started(), "running")
        self._cpu = ProcessCPU()
        self.children = ProcessTable(os.getpid(), activity=self.store.activity) \
            if config.processes else None
        self._activity_due = 0.0  # monotonic time the open activity point ends
        self._child_watch = ChildWatch(self.children) if self.children is not None else None
        self._env_set: str | None = None
        self.server: Server | None = None  # the program's monitor serves; a child's reports
        self.url = self._open_outlet()
        self.recorder: Recorder | None = None
        self._sigterm_handler: Callable[[int, FrameType | None], None] | None = None
        if config.record is not None:
            self._open_recording(config.record)

    def _open_recording(self, path: str) -> None:
        from . import __version__
        from .recording import Recorder, RecordingError

        header = {"stethoscope": __version__, "pid": os.getpid(), "argv": list(_argv()),
                  "python": _compat.PY_VERSION, "started": self._started,
                  "sample_hz": self.config.sample_hz, "mode": self.config.mode}
        try:
            self.recorder = Recorder(path, header, snapshot=lambda: self.snapshot("all"),
                                     source=self.source_text, stack_log=StackLog(),
                                     on_fault=self._note)
        except RecordingError as exc:
            if self.server is not None:
                self.server.stop()
            raise ConfigError(str(exc)) from None

    def _open_outlet(self) -> str:
        """Bind the server (so a bad port fails before anything is changed); the URL."""
        from .server.httpd import Server

        config = self.config
        port = DEFAULT_PORT if config.port is None else config.port
        self.server = Server(self, host=config.host, port=port, token=config.token,
                             fallback_port=config.port is None, loopback=config.loopback,
                             metrics_public=config.metrics_public)
        return page_url(config.host, self.server.port, config.token)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Monitor:
        config = self.config
        self._start_collectors()
        if config.dump_signal is not None:
            self._install_dump_signal(config.dump_signal)
        assert self.server is not None
        self.server.start()
        if self.children is not None:
            self.link = link = ChildLink.of(config, self.server.port)
            if link.files is None:
                self._note("child processes show files.user: a files filter of your own "
                           "cannot be sent to them (files.path_contains and "
                           "files.contains_regex can)")
            self._env_set = link.to_env()
            os.environ[CHILD_ENV] = self._env_set
        atexit.register(self._at_exit)
        if self.recorder is not None:
            self.recorder.start()
            self._take_sigterm_for_recording()
        if not config.quiet:
            _say(f"serving {self.url}")
        warn_if_exposed(config.host)  # even when quiet: it is about who can reach the data
        if config.port is None and self.server.port != DEFAULT_PORT:
            _say(f"port {DEFAULT_PORT} was busy; using port {self.server.port}")
        if config.browser:
            import webbrowser

            threading.Thread(target=webbrowser.open, args=(self.url,),
                             name="stethoscope-browser", daemon=True).start()
        return self

    def _start_collectors(self) -> None:
        self._start_mode(self.config.mode)
        registry = ThreadRegistry(self.resolver, on_fault=self._note)
        sampler = Sampler(self.store, self.resolver, self.config.sample_hz, on_fault=self._note,
                          registry=registry, periodic=self._periodic,
                          stack_log=self.recorder.stack_log if self.recorder else None)
        hook = MainFinishedHook(self._main_finished, on_fault=self._note)
        for collector in (registry, sampler, hook):
            collector.start()
            self._collectors.append(collector)

    def _start_tracer(self) -> None:
        if _compat.HAS_MONITORING:
            from .collectors.monitoring import MonitoringTracer as Tracer
        else:
            from .collectors.settrace import NOTE_RUNNING_THREADS
            from .collectors.settrace import SettraceTracer as Tracer  # type: ignore[assignment]
            if threading.active_count() > 1:  # e.g. not in a fresh child
                self.store.note(NOTE_RUNNING_THREADS)
        tracer = Tracer(self.resolver, self._counters, on_fault=self._tracer_fault)
        if self._try_start(tracer):
            self._tracer = tracer
            self.mode = "trace"

    def _try_start(self, collector: Collector) -> bool:
        """Start a collector that may be unavailable here (a note says why)."""
        try:
            collector.start()
        except CollectorUnavailable as exc:
            self._note(str(exc))
            return False
        except Exception as exc:  # a fault while starting: undo it, run without it
            with contextlib.suppress(Exception):
                collector.stop()
            self._note(f"{collector.name} mode could not start after an internal error: "
                       f"{type(exc).__name__}: {exc}; showing sampled time instead")
            return False
        self._collectors.append(collector)
        return True

    def _start_mode(self, mode: str) -> None:
        """Start what ``mode`` needs besides the sampler, which always runs (it feeds
        the thread panel); ``self.mode`` then says what runs."""
        self.requested_mode = mode
        self.mode = "sample"
        if mode == "trace":
            self._start_tracer()
            return
        if mode not in ("lines", "auto"):
            return
        if not _compat.HAS_MONITORING:
            if mode == "lines":
                self._note("lines mode needs Python 3.12+ (sys.monitoring); "
                           "showing sampled time")
            return
        from .collectors.lines import LinesCollector

        lines = LinesCollector(self.store, self.resolver, on_fault=self._lines_fault)
        if self._try_start(lines):
            self._lines = lines
            self.mode = "lines" if mode == "lines" else "sample+lines"

    def _stop_mode(self) -> None:
        """Stop the tracer or the lines collector; what they counted stays. The
        caller holds _mode_lock and sets self.mode."""
        tracer, self._tracer = self._tracer, None
        if tracer is not None:
            self._collectors.remove(tracer)
            tracer.stop()
            self._counters.fold()  # the last counts, then a fresh set for a new tracer
            self._counters = ThreadCounters(self.store, self.resolver)
        lines, self._lines = self._lines, None
        if lines is not None:
            self._collectors.remove(lines)
            lines.stop()  # hands over its last window

    def set_mode(self, mode: str) -> str:
        """Switch what is collected while the program runs; returns the mode that
        now runs (``Monitor.mode``). Counts, times and windows collected so far are
        kept, and new ones add to them. A mode that cannot run here falls back to
        sampling with a note, as at start. ConfigError for an unknown mode, and for
        "trace" on Python < 3.12 from a thread other than the main thread (settrace
        only reaches the calling thread and threads started later)."""
        check_mode(mode)
        if mode == "trace" and not _compat.HAS_MONITORING \
                and threading.current_thread() is not threading.main_thread():
            raise ConfigError("on Python < 3.12 trace mode can only be switched on from the "
                              "main thread (settrace reaches only the calling thread); "
                              "call monitor.set_mode('trace') there, or use Python 3.12+")
        with self._mode_lock:
            if not self.running:
                raise RuntimeError("the monitor has stopped; its mode can no longer change")
            self._stop_mode()
            self._start_mode(mode)  # sets self.mode
            return self.mode

    def stop(self) -> None:
        """Stop collecting and serving. Idempotent; safe from any thread and at exit."""
        self._end_requested.set()
        with self._stop_lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        try:
            atexit.unregister(self._at_exit)
            self._uninstall_dump_signal()
            if self._env_set is not None and os.environ.get(CHILD_ENV) == self._env_set:
                del os.environ[CHILD_ENV]
            self._stop_collectors()
            self._state = "stopped"
            self._close_recording()
            self._close_outlet()
        finally:
            if self._on_stop is not None:
                self._on_stop(self)

    def _stop_collectors(self) -> None:
        # The tracer and lines mode under the lock (no switch can start them again,
        # and their last counts are handed over); the sampler, whose periodic fold
        # takes that lock, outside it: stop() waits for the sampler thread to end.
        with self._mode_lock:
            try:
                self._stop_mode()  # self.mode stays: the final picture says what ran
            except Exception as exc:
                self._note(f"the {self.mode} collector did not stop cleanly: {exc}")
            collectors = list(reversed(self._collectors))
        for collector in collectors:
            try:
                collector.stop()
            except Exception as exc:
                self._note(f"{collector.name} did not stop cleanly: {exc}")

    def _take_sigterm_for_recording(self) -> None:
        """SIGTERM at its default would end the process without atexit: finish the
        recording first, then die of the signal as the sender meant."""
        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            self.stop()
            die_of_sigterm()

        if take_sigterm(on_sigterm):
            self._sigterm_handler = on_sigterm

    def _close_recording(self) -> None:
        if self._sigterm_handler is not None:
            release_sigterm(self._sigterm_handler)
            self._sigterm_handler = None
        if self.recorder is not None:
            try:
                self.recorder.close()
            except Exception as exc:
                self._note(f"the recording did not close cleanly: {exc}")
            if not self.config.quiet:
                _say(f"recorded to {self.recorder.path}; replay with: "
                     f"stethoscope view {self.recorder.path}")

    def _close_outlet(self) -> None:
        if self.server is not None:
            self.server.stop()

    def forget_after_fork(self) -> None:
        """In a forked child: drop hooks and sockets without touching the parent's."""
        self._stopped.set()
        atexit.unregister(self._at_exit)
        for collector in self._collectors:
            # Everything that patched the interpreter; the sampler thread does not
            # exist in the child. No lock of ours is taken: another thread may have
            # held it at fork time.
            if collector.name == "sampler":
                continue
            with contextlib.suppress(Exception):
                getattr(collector, "forget_after_fork", collector.stop)()
        if self.server is not None:
            self.server.forget()
        if self.recorder is not None:
            self.recorder.forget()

    @property
    def running(self) -> bool:
        return not self._stopped.is_set()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<stethoscope.Monitor {state} mode={self.mode} url={self.url}>"

    # -- exit paths ------------------------------------------------------------

    def _at_exit(self) -> None:
        self.stop()

    def _main_finished(self) -> None:
        """Runs in the main thread when __main__ has finished (see MainFinishedHook)."""
        self._main_finished_at = time.time()
        self.store.set_exit(self._main_finished_at, self.config.hang_report, False)
        self._state = "main-finished"
        if self.config.daemon or self._stopped.is_set():
            return
        _say(f"the main thread has finished; still serving the final picture at {self.url} "
             f"(daemon=False). Press Ctrl+C or send SIGTERM to end.")
        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            self._end_requested.set()  # SIGTERM means "end now", if the program left it alone

        take_sigterm(on_sigterm)
        try:
            while not self._end_requested.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            release_sigterm(on_sigterm)
        self.stop()

    def _periodic(self) -> None:
        """A few times a second, in the sampler thread: fold counts, watch the
        children and the exit."""
        self._fold()
        self._cpu.read()
        if time.monotonic() >= self._activity_due:
            self._activity_due = time.monotonic() + self.store.activity.interval
            self._close_activity_point()
        if self._child_watch is not None:
            self._child_watch.check()
        finished = self._main_finished_at
        delay = self.config.hang_report
        if finished is None or self._hang_reported or not delay or not self.config.daemon:
            return
        if time.time() - finished < delay:
            return
        self.store.set_exit(finished, delay, True)
        self._hang_reported = True  # after the store: it keys the snapshot cache
        report = hang_report(self.snapshot())
        if report is not None:
            write_stderr(report)

    def _close_activity_point(self) -> None:
        own = os.getpid()
        threads = list(threads_at(self.store.threads(), own))
        cpu: dict[int, float | None] = {own: self.process_info().cpu}
        if self.children is not None:
            for snap in self.children.snapshots():
                threads += threads_at(snap.threads, snap.pid)
            cpu.update((p.pid, p.cpu) for p in self.children.infos() if p.state == "running")
        self.store.activity.close(time.time(), threads, cpu)

    def accept_report(self, body: bytes) -> str | None:
        """A child's report, from the server; an error message if it is refused."""
        if self.children is None:
            return "this monitor does not follow child processes (processes=False)"
        try:
            self.children.accept(ChildReport.from_json(body), time.time())
        except ReportError as exc:
            return str(exc)
        return None

    def dump(self) -> str:
        """The report on every thread: creation site, state, stack."""
        return dump_report(self.snapshot())

    def _install_dump_signal(self, signum: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            self._note("dump_signal is ignored: signal handlers can only be set when trace() "
                       "is called from the main thread")
            return

        def on_signal(received: int, frame: FrameType | None) -> None:
            write_stderr(self.dump())

        self._dump_handler = on_signal
        self._previous_dump_handler = signal.signal(signum, on_signal)

    def _uninstall_dump_signal(self) -> None:
        signum = self.config.dump_signal
        if signum is None or self._previous_dump_handler is None:
            return
        try:
            if signal.getsignal(signum) is self._dump_handler:
                signal.signal(signum, self._previous_dump_handler)
        except ValueError:  # not the main thread: leave it; it only prints a report
            pass
        self._previous_dump_handler = None

    # -- data --------------------------------------------------------------------

    def _note(self, message: str) -> None:
        if self.store.note(message) and not self.config.quiet:
            _say(message)

    def _tracer_fault(self, message: str) -> None:
        self._note(message)
        self.mode = "sample"

    def _lines_fault(self, message: str) -> None:
        self._note(message)
        self.mode = "sample"

    def _fold(self) -> None:
        """Hand the exact counts, or the lines that ran, to the store. A fault here
        ends that mode, not the sampler thread this runs in."""
        with self._mode_lock:
            try:
                if self._tracer is not None:
                    self._counters.fold()
                if self._lines is not None:
                    self._lines.tick()
            except Exception as exc:
                what = "exact line counting" if self._tracer is not None else "lines mode"
                with contextlib.suppress(Exception):
                    self._stop_mode()
                self.mode = "sample"
                self._note(f"{what} stopped after an internal error: "
                           f"{type(exc).__name__}: {exc}")

    def process_info(self) -> ProcessInfo:
        cpu, seconds = self._cpu.value
        return replace(self._process, cpu=cpu, cpu_seconds=seconds)

    def snapshot(self, view: str | int | None = None) -> Snapshot:
        """This process's picture (``view`` None or its pid), a child's (its pid), or
        all processes combined ("all"). Every view lists all the processes."""
        heat = self.heat_kind()
        own = self.store.snapshot(
            state=self._state, mode=self.mode, requested_mode=self.requested_mode, heat=heat,
            started=self._started,
            sample_hz=self.config.sample_hz, argv=sys.argv, python=_compat.PY_VERSION,
        )
        processes = [self.process_info()]
        if self.children is None:
            return replace(own, processes=tuple(processes))
        processes += self.children.infos()
        if view == "all":
            return combine(own, self.children, processes)
        if view is not None and view != own.pid:
            child = self.children.snapshot_of(int(view))
            if child is None:
                raise LookupError(view)
            return replace(child, processes=tuple(processes))
        return replace(own, processes=tuple(processes))

    def snapshot_json(self, view: str | int | None = "all") -> bytes:
        """The snapshot as JSON, shared by clients for SNAPSHOT_MAX_AGE; LookupError
        for a pid that is not a process of this program."""
        with self._snapshot_lock:
            now = time.monotonic()
            # Keyed by what changes at exit too: a build that began before stop()
            # or before the hang report (or a mode switch) must not be served after it.
            key = (self._state, self._hang_reported, self.mode)
            cached = self._cached.get(view)
            if cached is not None and cached[1] == key and now - cached[0] < SNAPSHOT_MAX_AGE:
                return cached[2]
            data = self.snapshot(view).to_json()
            if len(self._cached) > 16:
                self._cached.clear()
            self._cached[view] = (now, key, data)
            return data

    def heat_kind(self) -> HeatKind:
        return "hits" if self.mode == "trace" else "ran" if self.mode == "lines" else "time"

    def activity_json(self, view: str | int | None = "all") -> bytes:
        """Activity over the last minutes (model/activity.py); LookupError for a pid
        that is not a process of this program."""
        import json

        pid: int | None = None
        if view not in (None, "all"):
            pid = int(view)
            known = {os.getpid()} | {p.pid for p in (self.children.infos()
                                                     if self.children is not None else [])}
            if pid not in known:
                raise LookupError(view)
        data = self.store.activity.to_dict(self.heat_kind(), pid)
        return json.dumps(data, separators=(",", ":")).encode()

    def recording_json(self) -> bytes | None:
        return None  # live: the page reads /api/events, not a timeline

    def snapshot_at_json(self, index: int, view: str | int | None = "all") -> bytes:
        raise IndexError("a live program has no recorded snapshots")

    def own_source(self, file_id: str) -> tuple[str, str] | None:
        """(path, text) of a file this process ran, read only from the very file that
        ran (never one put in its place since); None for an id this process has not
        seen. OSError, SyntaxError or UnicodeError when it cannot be read."""
        path = self.store.path(file_id)
        if path is None:
            return None
        identity = self.store.identity(file_id)
        if identity is None:  # no file there when it ran: nothing there is its source
            raise FileNotFoundError(f"{path} did not exist when it ran")
        return path, read_source(path, identity)

    def source_text(self, file_id: str) -> tuple[str, str] | None:
        """(path, text) of a file this process ran, or one a child ran and sent."""
        path = self.store.path(file_id)
        if path is None:
            return self.children.source(file_id) if self.children is not None else None
        try:
            return self.own_source(file_id)
        except (OSError, SyntaxError, UnicodeError):
            return path, ("# stethoscope: the source of this file could not be read (or it is "
                          "no longer the file that ran)\n")

    def source_json(self, file_id: str) -> bytes | None:
        """A monitored file's source, by id: one this process ran, or one a child
        ran and sent (the server never reads a path that a request names)."""
        import json

        cached = self._sources.get(file_id)
        if cached is not None:
            return cached
        found = self.source_text(file_id)
        if found is None:
            return None
        path, text = found
        cached = json.dumps(render_source(file_id, path, os.path.basename(path), text),
                            separators=(",", ":")).encode()
        self._sources[file_id] = cached
        return cached


def _argv() -> tuple[str, ...]:
    """The command line as the OS shows it (sys.argv is the script's own view)."""
    return tuple(getattr(sys, "orig_argv", sys.argv))
