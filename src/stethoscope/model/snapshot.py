"""Immutable, schema-versioned snapshots of everything the monitor knows.

A snapshot is what every client reads (page, terminal view, recordings, child
reports). ``to_dict``/``from_dict`` round-trip exactly; docs/http-api.md is the
written form of this schema. Bump SCHEMA_VERSION on any incompatible change.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from .heat import HEAT_KINDS, HEAT_KINDS_JSON, HeatKind

SCHEMA_VERSION = 3
MAX_NOTES = 20  # notes a snapshot holds at most

LINE_FIELDS: tuple[str, ...] = (
    "line",
    "hits_recent",  # exact executions (trace mode)
    "hits_total",
    "self_recent",  # samples with the line innermost (time spent on it)
    "self_total",
    "incl_recent",  # samples with the line anywhere on the stack
    "incl_total",
    "ran_recent",  # tick windows in which the line ran (lines mode)
    "ran_total",
    "ran_last_ms",  # when the last window it ran in ended: Unix time in ms; 0: never
)
# A row of LINE_FIELDS: (line, hits_recent, hits_total, self_recent, ...).
LineRow = tuple[int, ...]

State = Literal["running", "main-finished", "stopped"]
STATES: tuple[str, ...] = get_args(State)


# Checked reading: snapshots also arrive from child processes, so from_dict() takes
# nothing on trust. A wrong type is a ValueError naming the field.


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {value!r:.40}")
    return value


def _num(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r:.40}")
    return float(value)


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {value!r:.40}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r:.40}")
    return value


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list, not {value!r:.40}")
    return value


def _opt(check: Any, value: Any, name: str) -> Any:
    return None if value is None else check(value, name)


@dataclass(frozen=True, slots=True)
class Frame:
    file: str | None  # file id when the file is monitored, else None
    path: str
    line: int
    func: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "path": self.path, "line": self.line, "func": self.func}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Frame:
        return cls(_opt(_str, d["file"], "frame file"), _str(d["path"], "frame path"),
                   _int(d["line"], "frame line"), _str(d["func"], "frame func"))


@dataclass(frozen=True, slots=True)
class WaitStep:
    """One link of what a thread waits for, as far as Python can know it: e.g.
    'server_close() joins "Thread-3 (process_request_thread)"', then 'reading a
    request line from 127.0.0.1:53412'. A step that leads to another thread or
    process names it, so a page can link to it."""

    text: str
    thread: int | None = None  # ident of the thread (same process) this step leads to
    pid: int | None = None  # the process this step leads to

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "thread": self.thread, "pid": self.pid}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WaitStep:
        return cls(_str(d["text"], "wait text"), _opt(_int, d.get("thread"), "wait thread"),
                   _opt(_int, d.get("pid"), "wait pid"))


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    ident: int
    native_id: int | None
    name: str
    daemon: bool
    alive: bool
    main: bool
    stack: tuple[Frame, ...]  # innermost first; empty once ended
    state: str = ""  # e.g. "running Python code", "waiting in queue.get()"
    kind: str = ""  # machine-readable state: running, queue.get, join, sleep, ...
    cpu: float | None = None  # percent of one core over the last publication interval
    started: float | None = None  # wall-clock start, when the monitor saw it start
    ended: float | None = None  # wall-clock time it was seen gone
    created_by: str | None = None  # name of the thread that called start()
    created_by_ident: int | None = None
    created_at: tuple[Frame, ...] = ()  # stack at start(), innermost first
    daemon_inherited: bool = False  # non-daemon only because its creator was
    hints: tuple[str, ...] = ()  # what would stop it holding the exit
    pid: int | None = None  # the process it runs in; set in combined views
    # What it waits for, this thread's own wait first, then along the links (the
    # thread it joins, what that one waits for, ...); empty when it waits for nothing
    # Python can name.
    waits: tuple[WaitStep, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "ident": self.ident,
            "native_id": self.native_id,
            "name": self.name,
            "daemon": self.daemon,
            "alive": self.alive,
            "main": self.main,
            "stack": [frame.to_dict() for frame in self.stack],
            "state": self.state,
            "kind": self.kind,
            "cpu": self.cpu,
            "started": self.started,
            "ended": self.ended,
            "created_by": self.created_by,
            "created_by_ident": self.created_by_ident,
            "created_at": [frame.to_dict() for frame in self.created_at],
            "daemon_inherited": self.daemon_inherited,
            "hints": list(self.hints),
            "waits": [step.to_dict() for step in self.waits],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ThreadInfo:
        return cls(
            _int(d["ident"], "thread ident"), _opt(_int, d["native_id"], "native_id"),
            _str(d["name"], "thread name"), _bool(d["daemon"], "daemon"),
            _bool(d["alive"], "alive"), _bool(d["main"], "main"),
            tuple(Frame.from_dict(f) for f in _list(d["stack"], "stack")),
            _str(d["state"], "thread state"), _str(d["kind"], "thread kind"),
            _opt(_num, d["cpu"], "thread cpu"), _opt(_num, d["started"], "thread started"),
            _opt(_num, d["ended"], "thread ended"), _opt(_str, d["created_by"], "created_by"),
            _opt(_int, d["created_by_ident"], "created_by_ident"),
            tuple(Frame.from_dict(f) for f in _list(d["created_at"], "created_at")),
            _bool(d["daemon_inherited"], "daemon_inherited"),
            tuple(_str(h, "hint") for h in _list(d["hints"], "hints")),
            _opt(_int, d.get("pid"), "thread pid"),
            tuple(WaitStep.from_dict(w) for w in _list(d.get("waits", []), "waits")),
        )


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """The main thread has finished; these non-daemon threads still hold the process."""

    main_finished: float  # wall-clock time
    blocking: tuple[int, ...]  # idents of alive non-daemon threads other than main
    hang_report: float  # seconds after which the report is printed (0: never)
    reported: bool  # the report has been printed to stderr

    def to_dict(self) -> dict[str, Any]:
        return {"main_finished": self.main_finished, "blocking": list(self.blocking),
                "hang_report": self.hang_report, "reported": self.reported}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExitInfo:
        return cls(_num(d["main_finished"], "main_finished"),
                   tuple(_int(i, "blocking") for i in _list(d["blocking"], "blocking")),
                   _num(d["hang_report"], "hang_report"), _bool(d["reported"], "reported"))


@dataclass(frozen=True, slots=True)
class StuckInfo:
    """The main thread waits in a call for other work to end (a join, server_close(),
    an executor's or pool's shutdown, Future.result(), Pool.map(), ...), and that work
    makes no progress."""

    since: float  # wall-clock time the main thread was first seen in this wait
    call: str  # the call, as the program wrote it: "server_close()", "Pool.map()"
    site: Frame | None  # the program's line that made the call
    blocking: tuple[int, ...]  # idents of the threads it waits for (this process)
    processes: tuple[int, ...]  # pids of the processes it waits for
    hang_report: float  # seconds of no progress after which the report is printed
    reported: bool  # the report has been printed to stderr

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since, "call": self.call,
                "site": self.site.to_dict() if self.site is not None else None,
                "blocking": list(self.blocking), "processes": list(self.processes),
                "hang_report": self.hang_report, "reported": self.reported}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StuckInfo:
        return cls(_num(d["since"], "stuck since"), _str(d["call"], "stuck call"),
                   Frame.from_dict(d["site"]) if d.get("site") else None,
                   tuple(_int(i, "stuck blocking") for i in _list(d["blocking"], "blocking")),
                   tuple(_int(i, "stuck processes")
                         for i in _list(d["processes"], "processes")),
                   _num(d["hang_report"], "hang_report"), _bool(d["reported"], "reported"))


ENDINGS: tuple[str, ...] = ("return", "exit", "exception", "os._exit", "signal")


@dataclass(frozen=True, slots=True)
class EndInfo:
    """How this process ended (or is ending): the way out, in one line and in parts."""

    how: str  # one of ENDINGS: return (exit 0), exit (SystemExit), exception, os._exit, signal
    code: int | None  # the exit status; -N when killed by signal N
    text: str  # the one line said on stderr, e.g. "exited with status 3: SystemExit(3) ..."
    time: float  # wall-clock time
    thread: str = ""  # the thread that raised SystemExit, called os._exit or got the signal
    raised_at: Frame | None = None  # where SystemExit/the exception was raised, os._exit called
    reraised_at: Frame | None = None  # where it was raised again (future.result())
    signal: str = ""  # "SIGTERM", for how == "signal"
    abandoned: tuple[str, ...] = ()  # non-daemon threads still running (os._exit, signal)
    skipped_atexit: int | None = None  # atexit handlers os._exit skipped

    def to_dict(self) -> dict[str, Any]:
        return {"how": self.how, "code": self.code, "text": self.text, "time": self.time,
                "thread": self.thread,
                "raised_at": self.raised_at.to_dict() if self.raised_at else None,
                "reraised_at": self.reraised_at.to_dict() if self.reraised_at else None,
                "signal": self.signal, "abandoned": list(self.abandoned),
                "skipped_atexit": self.skipped_atexit}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EndInfo:
        how = _str(d["how"], "ending how")
        if how not in ENDINGS:
            raise ValueError(f"unknown ending {how!r:.40}")
        return cls(how, _opt(_int, d["code"], "ending code"), _str(d["text"], "ending text"),
                   _num(d["time"], "ending time"), _str(d["thread"], "ending thread"),
                   Frame.from_dict(d["raised_at"]) if d.get("raised_at") else None,
                   Frame.from_dict(d["reraised_at"]) if d.get("reraised_at") else None,
                   _str(d["signal"], "ending signal"),
                   tuple(_str(n, "abandoned") for n in _list(d["abandoned"], "abandoned")),
                   _opt(_int, d["skipped_atexit"], "skipped_atexit"))


@dataclass(frozen=True, slots=True)
class FileHeat:
    id: str
    path: str
    name: str
    lines: tuple[LineRow, ...]  # sorted by line number

    def sum(self, field: str) -> int:
        """The file's figure for a line field: the sum of its lines' (the latest, for
        a ``*_last_ms`` time)."""
        index = LINE_FIELDS.index(field)
        if field.endswith("_last_ms"):
            return max((row[index] for row in self.lines), default=0)
        return sum(row[index] for row in self.lines)

    def line(self, lineno: int) -> LineRow | None:
        for row in self.lines:
            if row[0] == lineno:
                return row
        return None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "path": self.path, "name": self.name}
        for field in LINE_FIELDS[1:]:
            d[field] = self.sum(field)
        d["lines"] = [list(row) for row in self.lines]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileHeat:
        rows = []
        for row in _list(d["lines"], "lines"):
            if len(_list(row, "line row")) != len(LINE_FIELDS):
                raise ValueError(f"a line row must have {len(LINE_FIELDS)} numbers")
            rows.append(tuple(_int(v, "line row") for v in row))
        return cls(_str(d["id"], "file id"), _str(d["path"], "file path"),
                   _str(d["name"], "file name"), tuple(rows))


def order_files(files: list[FileHeat], heat: HeatKind) -> list[FileHeat]:
    """Most active first: the chosen heat (recent, then total), then the other kind."""
    kind = HEAT_KINDS[heat]
    return sorted(
        files,
        key=lambda f: (f.sum(kind.recent), f.sum(kind.total), f.sum("incl_recent"),
                       f.sum("incl_total"), f.path),
        reverse=True,
    )


@dataclass(frozen=True, slots=True)
class NowLine:
    file: str
    line: int
    thread: int
    pid: int | None = None  # set in combined views

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "thread": self.thread, "pid": self.pid}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NowLine:
        return cls(_str(d["file"], "now file"), _int(d["line"], "now line"),
                   _int(d["thread"], "now thread"), _opt(_int, d.get("pid"), "now pid"))


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process of the monitored program: the main one or a child."""

    pid: int
    ppid: int
    argv: tuple[str, ...]  # the command line as the OS shows it
    name: str  # multiprocessing's process name (e.g. "ForkPoolWorker-3"), else ""
    method: str  # main, fork, spawn, forkserver, subprocess, os.fork
    started: float  # wall-clock time
    state: str  # running, exited, killed
    exit_code: int | None = None  # -N: ended by signal N
    exit_how: str = ""  # return, exit, os._exit, SIGTERM, vanished
    cpu: float | None = None  # percent of one core over the last second or so
    cpu_seconds: float = 0.0
    last_report: float | None = None  # wall-clock time of the last data from it
    # How it ended, in one line, as its parent saw it ("exited with status 3",
    # "killed by SIGKILL: the kernel's OOM killer ..."); "" while it runs.
    ended: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "ppid": self.ppid, "argv": list(self.argv), "name": self.name,
                "method": self.method, "started": self.started, "state": self.state,
                "exit_code": self.exit_code, "exit_how": self.exit_how, "cpu": self.cpu,
                "cpu_seconds": self.cpu_seconds, "last_report": self.last_report,
                "ended": self.ended}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProcessInfo:
        return cls(_int(d["pid"], "pid"), _int(d["ppid"], "ppid"),
                   tuple(_str(a, "argv") for a in _list(d["argv"], "argv")),
                   _str(d["name"], "process name"), _str(d["method"], "method"),
                   _num(d["started"], "process started"), _str(d["state"], "process state"),
                   _opt(_int, d["exit_code"], "exit_code"), _str(d["exit_how"], "exit_how"),
                   _opt(_num, d["cpu"], "process cpu"), _num(d["cpu_seconds"], "cpu_seconds"),
                   _opt(_num, d["last_report"], "last_report"),
                   _str(d.get("ended", ""), "process ended"))


@dataclass(frozen=True, slots=True)
class Snapshot:
    pid: int
    argv: tuple[str, ...]
    python: str
    started: float
    time: float
    state: State
    mode: str
    heat: HeatKind
    window: int
    sample_hz_requested: float
    sample_hz_achieved: float
    files: tuple[FileHeat, ...]  # most active first
    now: tuple[NowLine, ...]
    threads: tuple[ThreadInfo, ...]
    notes: tuple[str, ...]
    exit: ExitInfo | None = None
    # Every process of the program, this one first; children only when followed.
    processes: tuple[ProcessInfo, ...] = ()
    requested_mode: str = ""  # what trace(mode=...) or the last switch asked for
    # Lines mode: the tick windows this process had (recent, total), the
    # denominator of ran_recent / ran_total.
    ran_windows: tuple[int, int] = (0, 0)
    # "process": this process's data; "combined": heat summed over all processes,
    # threads of all of them (each with its pid).
    view: str = "process"
    # The main thread waits for work that makes no progress (None: it does not).
    stuck: StuckInfo | None = None
    # How this process ended, once it has (None while it runs).
    ended: EndInfo | None = None
    schema: int = SCHEMA_VERSION

    def thread(self, name: str) -> ThreadInfo | None:
        """The first thread with this name, alive ones first."""
        ordered = sorted(self.threads, key=lambda t: not t.alive)
        return next((t for t in ordered if t.name == name), None)

    def file(self, name_or_id: str) -> FileHeat | None:
        """The file with this id, path or base name (the first one, for a base name)."""
        for f in self.files:
            if name_or_id in (f.id, f.path, f.name):
                return f
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "pid": self.pid,
            "argv": list(self.argv),
            "python": self.python,
            "started": self.started,
            "time": self.time,
            "state": self.state,
            "mode": self.mode,
            "requested_mode": self.requested_mode,
            "heat": self.heat,
            "heat_kinds": HEAT_KINDS_JSON,
            "window": self.window,
            "sample_hz": {
                "requested": self.sample_hz_requested,
                "achieved": self.sample_hz_achieved,
            },
            "line_fields": list(LINE_FIELDS),
            "ran_windows": {"recent": self.ran_windows[0], "total": self.ran_windows[1]},
            "files": [f.to_dict() for f in self.files],
            "now": [n.to_dict() for n in self.now],
            "threads": [t.to_dict() for t in self.threads],
            "notes": list(self.notes),
            "exit": self.exit.to_dict() if self.exit is not None else None,
            "processes": [p.to_dict() for p in self.processes],
            "view": self.view,
            "stuck": self.stuck.to_dict() if self.stuck is not None else None,
            "ended": self.ended.to_dict() if self.ended is not None else None,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Snapshot:
        if d.get("schema") != SCHEMA_VERSION:
            raise ValueError(
                f"snapshot schema {d.get('schema')!r} is not supported "
                f"(this stethoscope reads schema {SCHEMA_VERSION})"
            )
        if tuple(d["line_fields"]) != LINE_FIELDS:
            raise ValueError(f"unexpected line_fields {d['line_fields']!r}")
        if d["state"] not in STATES:
            raise ValueError(f"unknown state {d['state']!r:.40}")
        if d["heat"] not in HEAT_KINDS:
            raise ValueError(f"unknown heat {d['heat']!r:.40}")
        hz, windows = d["sample_hz"], d["ran_windows"]
        return cls(
            pid=_int(d["pid"], "pid"),
            argv=tuple(_str(a, "argv") for a in _list(d["argv"], "argv")),
            python=_str(d["python"], "python"),
            started=_num(d["started"], "started"),
            time=_num(d["time"], "time"),
            state=d["state"],
            mode=_str(d["mode"], "mode"),
            heat=d["heat"],
            window=_int(d["window"], "window"),
            sample_hz_requested=_num(hz["requested"], "sample_hz"),
            sample_hz_achieved=_num(hz["achieved"], "sample_hz"),
            files=tuple(FileHeat.from_dict(f) for f in _list(d["files"], "files")),
            now=tuple(NowLine.from_dict(n) for n in _list(d["now"], "now")),
            threads=tuple(ThreadInfo.from_dict(t) for t in _list(d["threads"], "threads")),
            notes=tuple(_str(n, "note") for n in _list(d["notes"], "notes")),
            exit=ExitInfo.from_dict(d["exit"]) if d.get("exit") else None,
            processes=tuple(ProcessInfo.from_dict(p)
                            for p in _list(d["processes"], "processes")),
            view=_str(d["view"], "view"),
            requested_mode=_str(d["requested_mode"], "requested_mode"),
            ran_windows=(_int(windows["recent"], "ran_windows"),
                         _int(windows["total"], "ran_windows")),
            stuck=StuckInfo.from_dict(d["stuck"]) if d.get("stuck") else None,
            ended=EndInfo.from_dict(d["ended"]) if d.get("ended") else None,
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Snapshot:
        return cls.from_dict(json.loads(data))
