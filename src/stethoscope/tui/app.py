"""The terminal view: ``stethoscope top URL`` and ``stethoscope run --tui``.

A pure client of the monitor's HTTP API (docs/http-api.md), like the web page: it
polls ``/api/snapshot`` a few times a second and fetches each file's source once.
It never needs the monitored process to cooperate, so quitting the view cannot
hurt the program, and a monitor that goes away only freezes the picture.

rich is an optional dependency (``stethoscope[tui]``): it is imported inside the
functions that draw, so ``import stethoscope`` never imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..config import new_token

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

RICH_MISSING = "stethoscope: the terminal view needs rich: pip install 'stethoscope[tui]'"
POLL_INTERVAL = 0.25  # seconds between snapshots, and the longest a key waits
HTTP_TIMEOUT = 2.0
SOURCES_PER_POLL = 5  # new files' sources fetched per poll, so polls stay regular
URL_WAIT = 30.0  # how long run --tui waits for the program's monitor to start
KILL_GRACE = 3.0  # SIGTERM, then SIGKILL after this long
OUTPUT_STRIP = 4  # lines of the program's output shown under the panels
OUTPUT_AFTER = 200  # lines of it printed when the view closes
BAR_WIDTH = 16
PANELS = ("lines", "threads", "processes")

Snap = dict[str, Any]

# what each kind of heat reads from a line row, and what its unit is called
HEAT_FIELDS = {
    "time": ("self_recent", "self_total", "samples"),
    "hits": ("hits_recent", "hits_total", "hits"),
    "ran": ("ran_recent", "ran_total", "windows"),
}
TOKEN_STYLES = {"kw": "bold magenta", "str": "green", "com": "dim", "num": "cyan",
                "def": "bold", "builtin": "cyan", "op": "", "deco": "yellow"}
ESCAPES = {"\x1b[A": "up", "\x1b[B": "down", "\x1bOA": "up", "\x1bOB": "down",
           "\x1b[C": "right", "\x1b[D": "left", "\x1bOC": "right", "\x1bOD": "left"}
PLAIN_KEYS = {"\r": "enter", "\n": "enter", "\t": "tab", "\x03": "ctrl-c"}


# --- talking to the monitor ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a monitor serves and the token it wants."""

    base: str  # http://host:port
    token: str

    def url(self, path: str, **query: str) -> str:
        return f"{self.base}{path}?{urllib.parse.urlencode({**query, 'token': self.token})}"


def parse_endpoint(url: str, token: str | None = None) -> Endpoint:
    """The monitor named by a URL as the monitor prints it; ValueError says what is wrong."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ValueError(f"{url!r} is not an http:// URL such as http://127.0.0.1:9999/?token=T")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has a bad port") from None
    if not parts.hostname or port is None:
        raise ValueError(f"{url!r} has no host:port; pass the URL the monitor printed")
    found = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
    chosen = token or found
    if not chosen:
        raise ValueError(f"{url!r} has no token: pass the URL as printed (…/?token=T) "
                         "or --token T")
    return Endpoint(f"http://{parts.netloc.rpartition('@')[2]}", chosen)


def describe_error(exc: BaseException) -> str:
    """A short human reason for a failed request (the status line has one line)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"no answer within {HTTP_TIMEOUT:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    if isinstance(exc, json.JSONDecodeError):
        return "the answer is not JSON"
    return str(reason) or type(reason).__name__


class Client:
    """GETs JSON from one monitor, never through a proxy and never without a timeout."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _get(self, path: str, **query: str) -> Any:
        with self._opener.open(self.endpoint.url(path, **query), timeout=HTTP_TIMEOUT) as resp:
            return json.loads(resp.read())

    def snapshot(self) -> Snap:
        answer = self._get("/api/snapshot", pid="all")
        if not isinstance(answer, dict):
            raise ValueError("the snapshot is not a JSON object")
        return answer

    def source(self, file_id: str) -> Source:
        answer = self._get(f"/api/source/{urllib.parse.quote(file_id, safe='')}")
        return Source.from_json(answer)


@dataclass(frozen=True, slots=True)
class Source:
    """One file's text and its colouring spans by line, as /api/source gives them."""

    lines: list[str]
    tokens: dict[int, list[tuple[int, int, str]]]

    @classmethod
    def from_json(cls, answer: Any) -> Source:
        lines = [str(line) for line in answer.get("lines", [])]
        tokens: dict[int, list[tuple[int, int, str]]] = {}
        for line, start, end, kind in answer.get("tokens", []):
            tokens.setdefault(int(line), []).append((int(start), int(end), str(kind)))
        return cls(lines, tokens)


class Poller:
    """Fetches snapshots (and new files' sources) in a daemon thread, so a slow or
    vanished monitor never freezes the keys; the view reads the latest results."""

    def __init__(self, client: Client, interval: float = POLL_INTERVAL) -> None:
        self._client = client
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tui-poller", daemon=True)
        self.snapshot: Snap | None = None
        self.error: str | None = None
        self.sources: dict[str, Source | None] = {}  # None: the monitor has no such file

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HTTP_TIMEOUT + 1)

    def latest(self) -> tuple[Snap | None, str | None, dict[str, Source | None]]:
        with self._lock:
            return self.snapshot, self.error, dict(self.sources)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self._interval)

    def poll_once(self) -> None:
        try:
            snap = self._client.snapshot()
        except Exception as exc:  # any failure only changes the status line
            with self._lock:
                self.error = describe_error(exc)
            return
        with self._lock:
            self.snapshot, self.error = snap, None
        self._fetch_sources(snap)

    def _fetch_sources(self, snap: Snap) -> None:
        wanted = [f["id"] for f in snap.get("files", []) if f.get("id") not in self.sources]
        for file_id in wanted[:SOURCES_PER_POLL]:
            try:
                source: Source | None = self._client.source(file_id)
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    return
                source = None
            except Exception:  # the monitor went away: try again at the next poll
                return
            with self._lock:
                self.sources[file_id] = source


# --- the program of run --tui -------------------------------------------------------


class Program:
    """The monitored program of ``run --tui``: a child process in its own session
    (so the terminal's keys and signals stay with the view) whose output goes to a
    log file that the view shows and prints at the end."""

    def __init__(self, command: list[str], workdir: str) -> None:
        self.log_path = os.path.join(workdir, "output.log")
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")  # output shows up live, as on a terminal
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self.pid = self.proc.pid

    def exit_code(self) -> int | None:
        """The program's code as a shell reports it (128 + signal when killed)."""
        code = self.proc.poll()
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def wait_for_file(self, path: str, timeout: float) -> str | None:
        """The contents of ``path`` once the program writes it; None if it exits first."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(FileNotFoundError), open(path) as f:
                return f.read().strip()
            if self.exit_code() is not None or time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def tail(self, count: int) -> list[str]:
        """The last ``count`` lines of the output; reads only the end of the log."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 200 * count))
                data = f.read()
        except OSError:
            return []
        return data.decode("utf-8", "replace").splitlines()[-count:]

    def kill(self) -> None:
        """SIGTERM the program's process group (its own children too), SIGKILL it if
        still there after a grace."""
        for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 5.0)):
            if self.exit_code() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait)


# --- what the view shows ------------------------------------------------------------


@dataclass
class ViewState:
    """What the user chose with the keys."""

    panel: int = 0
    file_id: str | None = None  # None: all files
    picker: int | None = None  # the file picker's cursor while it is open
    picker_files: list[str] = field(default_factory=list)  # its rows, fixed when it opens
    help: bool = False
    confirm_quit: bool = False  # asking whether to kill or leave a running program


@dataclass
class Frame:
    """Everything one picture is drawn from."""

    snapshot: Snap | None
    error: str | None
    sources: dict[str, Source | None]
    state: ViewState
    target: str
    program: Program | None = None
    exit_code: int | None = None
    output: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class HotLine:
    file_id: str
    name: str
    line: int
    recent: int
    total: int
    now: bool


def heat_fields(snap: Snap) -> tuple[str, str, str]:
    return HEAT_FIELDS.get(str(snap.get("heat")), HEAT_FIELDS["time"])


def hot_lines(snap: Snap, file_id: str | None, limit: int) -> list[HotLine]:
    """The hottest lines by the snapshot's kind of heat, over all files or one."""
    fields = list(snap.get("line_fields", []))
    recent_key, total_key, _ = heat_fields(snap)
    if recent_key not in fields or total_key not in fields or "line" not in fields:
        return []
    at_line, at_recent, at_total = (fields.index(k) for k in ("line", recent_key, total_key))
    now = {(n.get("file"), n.get("line")) for n in snap.get("now", [])}
    found = []
    for f in snap.get("files", []):
        if file_id is not None and f.get("id") != file_id:
            continue
        for row in f.get("lines", []):
            recent, total = int(row[at_recent]), int(row[at_total])
            if recent or total:
                line = int(row[at_line])
                found.append(HotLine(f["id"], str(f.get("name", "?")), line, recent, total,
                                     (f["id"], line) in now))
    found.sort(key=lambda h: (-h.recent, -h.total, h.name, h.line))
    return found[:limit]


def bar(value: float, top: float, width: int = BAR_WIDTH) -> str:
    """A bar of eighth-blocks: fine enough to tell close values apart in 16 cells."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(width * 8 * min(value, top) / top))
    full, part = divmod(eighths, 8)
    return "█" * full + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[part]


def printable(text: str) -> str:
    """Text safe to draw: tabs as spaces, control characters (escapes) dropped."""
    return "".join(ch for ch in text.replace("\t", "    ") if ch.isprintable())


def _line(text: str = "", style: str = "") -> Text:
    from rich.text import Text

    return Text(printable(text), style=style, no_wrap=True, overflow="ellipsis")


def _age(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def source_text(source: Source | None, line: int) -> Text:
    """Line ``line`` of a file, without its indentation, coloured by its tokens."""
    from rich.text import Text

    if source is None or not 0 < line <= len(source.lines):
        return _line("…" if source is None else "", "dim")
    raw = source.lines[line - 1].replace("\t", " ")
    indent = len(raw) - len(raw.lstrip())
    text = Text(printable(raw[indent:]), no_wrap=True, overflow="ellipsis")
    for start, end, kind in source.tokens.get(line, []):
        style = TOKEN_STYLES.get(kind, "")
        if style and end > indent:
            text.stylize(style, max(0, start - indent), end - indent)
    return text


def header_lines(frame: Frame) -> list[Text]:
    snap = frame.snapshot
    if snap is None:
        return [_line(f"stethoscope  {frame.target}", "bold"), _line()]
    argv = shlex.join(str(a) for a in snap.get("argv", []))
    hz = snap.get("sample_hz") or {}
    state = str(snap.get("state", "?"))
    if frame.exit_code is not None:
        state = f"exited ({frame.exit_code})"
    count = len(snap.get("processes", []))
    details = [f"pid {snap.get('pid')}", f"Python {snap.get('python')}", state,
               f"mode {snap.get('mode')}", f"{hz.get('achieved', 0):.0f} Hz",
               f"{count} process{'es' if count != 1 else ''}", f"heat: {snap.get('heat')}"]
    return [_line(f"stethoscope  {argv}", "bold"), _line(" · ".join(details))]


def banner_lines(snap: Snap | None, width: int) -> list[Text]:
    """The hang banner: the non-daemon threads that keep the finished program alive."""
    exit_info = (snap or {}).get("exit")
    if not snap or not exit_info:
        return []
    ago = float(snap.get("time", 0)) - float(exit_info.get("main_finished", 0))
    blocking = set(exit_info.get("blocking", []))
    threads = [t for t in snap.get("threads", [])
               if t.get("ident") in blocking and t.get("pid", snap.get("pid")) == snap.get("pid")]
    if not threads:
        return [_line(f"The main thread finished {_age(ago)} ago; the monitor keeps serving "
                      "the final picture.", "bold yellow")]
    count = f"{len(threads)} non-daemon thread{'s' if len(threads) > 1 else ''}"
    out = [_line(f"The main thread finished {_age(ago)} ago, but {count} keep"
                 f"{'s' if len(threads) == 1 else ''} the process alive:", "bold white on red")]
    for thread in threads[:3]:
        out.append(_line(f"  {thread.get('name')}: {thread.get('state', '')}", "bold red"))
        for hint in thread.get("hints", [])[:2]:
            for part in textwrap.wrap(f"hint: {hint}", max(20, width - 6))[:3]:
                out.append(_line(f"    {part}", "red"))
    if len(threads) > 3:
        out.append(_line(f"  … and {len(threads) - 3} more", "red"))
    return out


def status_line(frame: Frame) -> Text:
    if frame.state.confirm_quit:
        return _line("The program still runs:  k kill it and quit · d detach (leave it running)"
                     " · other keys: stay", "bold black on yellow")
    if frame.exit_code is not None:
        return _line(f"program exited with code {frame.exit_code}; showing the final picture"
                     " (q quits)", "bold black on cyan")
    if frame.error is not None:
        what = "monitor gone" if frame.snapshot is not None else "no monitor yet"
        return _line(f"{what}: {frame.error} ({frame.target}); retrying", "bold white on red")
    if frame.snapshot is None:
        return _line(f"connecting to {frame.target} …", "yellow")
    return _line(f"connected to {frame.target}", "dim")


def _file_name(snap: Snap | None, file_id: str | None) -> str:
    for f in (snap or {}).get("files", []):
        if f.get("id") == file_id:
            return str(f.get("name", "?"))
    return "all files" if file_id is None else "(file without data)"


def tabs_line(frame: Frame) -> Text:
    from rich.text import Text

    text = Text(no_wrap=True, overflow="ellipsis")
    for index, name in enumerate(PANELS):
        style = "reverse bold" if index == frame.state.panel else ""
        text.append(f" {index + 1} {name} ", style=style)
        text.append(" ")
    text.append(f"  file: {_file_name(frame.snapshot, frame.state.file_id)} (f picks)")
    if frame.snapshot is not None:
        unit = heat_fields(frame.snapshot)[2]
        text.append(f"  ·  {unit}, recent = last {frame.snapshot.get('window')} s", "dim")
    return text


def _table(*columns: tuple[str, dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(box=None, expand=True, header_style="bold", padding=(0, 1), pad_edge=False)
    for title, options in columns:
        table.add_column(title, no_wrap=True, overflow="ellipsis", **options)
    return table


def lines_panel(frame: Frame, rows: int) -> RenderableType:
    snap = frame.snapshot or {}
    found = hot_lines(snap, frame.state.file_id, rows)
    if not found:
        return _line("no heat yet" if frame.snapshot else "waiting for the first snapshot …",
                     "dim")
    by_recent = any(h.recent for h in found)
    top = max(h.recent if by_recent else h.total for h in found)
    table = _table(("", {"width": 1}), ("line", {"width": 22}),
                   ("recent", {"justify": "right", "width": 7}),
                   ("total", {"justify": "right", "width": 8}),
                   ("heat (recent)" if by_recent else "heat (total)", {"width": BAR_WIDTH}),
                   ("source", {"ratio": 1}))
    for hot in found:
        table.add_row(_line("▶" if hot.now else "", "bold green"),
                      _line(f"{hot.name}:{hot.line}"), _line(str(hot.recent)),
                      _line(str(hot.total)),
                      _line(bar(hot.recent if by_recent else hot.total, top), "red"),
                      source_text(frame.sources.get(hot.file_id), hot.line))
    return table


def _innermost(thread: dict[str, Any]) -> str:
    stack = thread.get("stack") or []
    if not stack:
        return ""
    where = [stack[0]]
    if stack[0].get("file") is None:  # also the innermost line of the program's own code
        where += [frame for frame in stack if frame.get("file") is not None][:1]
    return " ← ".join(f"{os.path.basename(str(frame.get('path')))}:{frame.get('line')} "
                      f"{frame.get('func')}" for frame in where)


def _percent(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}%"


def threads_panel(frame: Frame, rows: int) -> RenderableType:
    snap = frame.snapshot or {}
    threads = snap.get("threads", [])
    if not threads:
        return _line("no threads yet", "dim")
    blocking = set((snap.get("exit") or {}).get("blocking", []))
    table = _table(("name", {"width": 14}), ("pid", {"width": 7, "justify": "right"}),
                   ("state", {"ratio": 4}), ("daemon", {"width": 6}), ("alive", {"width": 5}),
                   ("cpu", {"width": 4, "justify": "right"}), ("innermost frame", {"ratio": 5}))
    for thread in threads[:rows]:
        style = "bold red" if thread.get("ident") in blocking else ""
        table.add_row(_line(str(thread.get("name")), style),
                      _line(str(thread.get("pid", snap.get("pid")))),
                      _line(str(thread.get("state", ""))),
                      _line("yes" if thread.get("daemon") else "no"),
                      _line("yes" if thread.get("alive") else "ended"),
                      _line(_percent(thread.get("cpu"))), _line(_innermost(thread), "dim"))
    return table


def _command(argv: list[Any]) -> str:
    """A command line, the interpreter's path cut to its name (the rest matters more)."""
    words = [str(word) for word in argv]
    if words and os.path.isabs(words[0]):
        words[0] = os.path.basename(words[0])
    return shlex.join(words)


def processes_panel(frame: Frame, rows: int) -> RenderableType:
    processes = (frame.snapshot or {}).get("processes", [])
    if not processes:
        return _line("no processes yet", "dim")
    table = _table(("pid", {"width": 7, "justify": "right"}),
                   ("ppid", {"width": 7, "justify": "right"}), ("method", {"width": 10}),
                   ("state", {"width": 16}), ("code", {"width": 5, "justify": "right"}),
                   ("cpu", {"width": 5, "justify": "right"}), ("argv", {"ratio": 1}))
    for proc in processes[:rows]:
        how = proc.get("exit_how") or ""
        code = proc.get("exit_code")
        table.add_row(_line(str(proc.get("pid"))), _line(str(proc.get("ppid"))),
                      _line(str(proc.get("name") or proc.get("method"))),
                      _line(f"{proc.get('state')} {how}".strip()),
                      _line("" if code is None else str(code)), _line(_percent(proc.get("cpu"))),
                      _line(_command(proc.get("argv", []))))
    return table


def picker_panel(frame: Frame, rows: int) -> RenderableType:
    from rich.console import Group

    known = {f.get("id"): f for f in (frame.snapshot or {}).get("files", [])}
    files = frame.state.picker_files
    cursor = frame.state.picker or 0
    out = [_line("Pick a file: ↑/↓ or j/k move, Enter picks, a = all files, Esc cancels",
                 "bold")]
    first = max(0, min(cursor - rows // 2, len(files) - (rows - 1)))
    recent_key, total_key, _ = heat_fields(frame.snapshot or {})
    for index, file_id in enumerate(files[first:first + rows - 1], start=first):
        f = known.get(file_id, {"name": file_id})
        mark = "▸ " if index == cursor else "  "
        heat = f"{f.get(recent_key, 0)}/{f.get(total_key, 0)}"
        out.append(_line(f"{mark}{f.get('name')}  {heat:>12}  {f.get('path', '')}",
                         "reverse" if index == cursor else ""))
    if not files:
        out.append(_line("  (no files yet)", "dim"))
    return Group(*out)


def output_lines(frame: Frame) -> list[Text]:
    if frame.program is None:
        return []
    shown = frame.output[-OUTPUT_STRIP:]
    title = _line(f"─ output (pid {frame.program.pid}, all of it in {frame.program.log_path}) ",
                  "bold dim")
    return [title, *(_line(text) for text in shown),
            *(_line() for _ in range(OUTPUT_STRIP - len(shown)))]


def footer_line(frame: Frame) -> Text:
    if frame.state.help:
        return _line("1 2 3 Tab: panels · f: file picker (↑↓ jk Enter, a all, Esc) · q Ctrl+C:"
                     " quit (never kills unasked) · ?: hide", "black on white")
    return _line("q quit · 1 lines · 2 threads · 3 processes · Tab next · f file · a all files"
                 " · ? help", "dim")


PANEL_RENDERERS = (lines_panel, threads_panel, processes_panel)


def render(frame: Frame, width: int, height: int) -> RenderableType:
    """One full-screen picture; the panel gets whatever height the rest leaves, so
    the output strip and the footer stay at the bottom."""
    from rich.console import Group
    from rich.layout import Layout

    top = [*header_lines(frame), *banner_lines(frame.snapshot, width), status_line(frame),
           tabs_line(frame)]
    bottom = [*output_lines(frame), footer_line(frame)]
    rows = max(3, height - len(top) - len(bottom))
    draw = picker_panel if frame.state.picker is not None else PANEL_RENDERERS[frame.state.panel]
    layout = Layout()
    layout.split_column(Layout(Group(*top), size=len(top)),
                        Layout(draw(frame, rows - 1)),  # one row for the table's header
                        Layout(Group(*bottom), size=len(bottom)))
    return layout


# --- keys ---------------------------------------------------------------------------


def parse_keys(data: str) -> list[str]:
    """Key names from what the terminal sent: arrows, esc, enter, tab, ctrl-c or a char."""
    keys = []
    i = 0
    while i < len(data):
        if data[i] != "\x1b":
            keys.append(PLAIN_KEYS.get(data[i], data[i]))
            i += 1
        elif data[i:i + 3] in ESCAPES:
            keys.append(ESCAPES[data[i:i + 3]])
            i += 3
        elif data[i + 1:i + 2] in ("[", "O"):  # another sequence: skip to its final byte
            j = i + 2
            while j < len(data) and not (data[j].isalpha() or data[j] == "~"):
                j += 1
            i = j + 1
        else:
            keys.append("esc")
            i += 1
    return keys


def apply_key(state: ViewState, key: str, files: list[str], program_running: bool) -> str | None:
    """Change the view for one key; return "quit", "kill" or "detach" when the view ends."""
    if state.confirm_quit:
        state.confirm_quit = False
        return {"k": "kill", "d": "detach"}.get(key)
    if key in ("q", "ctrl-c"):
        if program_running:
            state.confirm_quit = True
            return None
        return "quit"
    if state.picker is not None:
        _picker_key(state, key)
    elif key in ("1", "2", "3"):
        state.panel = int(key) - 1
    elif key == "tab":
        state.panel = (state.panel + 1) % len(PANELS)
    elif key == "f":  # the rows stay put while it is open, however the heat moves
        state.picker_files = list(files)
        state.picker = files.index(state.file_id) if state.file_id in files else 0
    elif key == "a":
        state.file_id = None
    elif key == "?":
        state.help = not state.help
    return None


def _picker_key(state: ViewState, key: str) -> None:
    files, cursor = state.picker_files, state.picker or 0
    if key in ("up", "k"):
        state.picker = max(0, cursor - 1)
    elif key in ("down", "j"):
        state.picker = min(max(0, len(files) - 1), cursor + 1)
    elif key == "enter":
        state.file_id = files[cursor] if cursor < len(files) else None
        state.picker = None
    elif key == "a":
        state.file_id, state.picker = None, None
    elif key == "esc":
        state.picker = None


# --- the terminal -------------------------------------------------------------------


class Terminated(Exception):
    """SIGTERM or SIGHUP reached the view: unwind so the terminal is restored."""


@contextlib.contextmanager
def keys_mode(fd: int) -> Iterator[None]:
    """cbreak without signal keys (Ctrl+C arrives as a key, so it can ask like q does);
    the previous mode comes back on every way out."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        mode = termios.tcgetattr(fd)
        mode[3] &= ~termios.ISIG  # lflag
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def quit_signals(requests: list[str]) -> Iterator[None]:
    """SIGINT (from kill; the keyboard's comes as a key) asks to quit like q does;
    SIGTERM and SIGHUP end the view through Terminated. Handlers are restored after."""

    def ask(signum: int, frame: FrameType | None) -> None:
        requests.append("ctrl-c")

    def end(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signal.Signals(signum).name)

    wanted = {signal.SIGINT: ask, signal.SIGTERM: end, signal.SIGHUP: end}
    saved = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def read_keys(fd: int, timeout: float) -> list[str]:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return []
    data = os.read(fd, 256)
    if not data:  # the terminal is gone
        raise Terminated("end of input")
    return parse_keys(data.decode("utf-8", "replace"))


def show(poller: Poller, target: str, program: Program | None) -> str:
    """Run the full-screen view until the user quits; return how it ended:
    "quit", "kill", "detach" or "terminated"."""
    from rich.console import Console
    from rich.live import Live

    console = Console(highlight=False)
    state = ViewState()
    requests: list[str] = []
    fd = sys.stdin.fileno()
    poller.start()
    try:
        with quit_signals(requests), keys_mode(fd), Live(
                console=console, screen=True, auto_refresh=False, redirect_stdout=False,
                redirect_stderr=False) as live:
            while True:
                frame = _frame(poller, state, target, program)
                live.update(render(frame, console.size.width, console.size.height),
                            refresh=True)
                keys = read_keys(fd, POLL_INTERVAL)
                pending, requests[:] = requests[:], []
                files = [f["id"] for f in (frame.snapshot or {}).get("files", [])]
                running = program is not None and program.exit_code() is None
                for key in [*pending, *keys]:
                    outcome = apply_key(state, key, files, running)
                    if outcome is not None:
                        return outcome
    except Terminated:
        return "terminated"
    finally:
        poller.stop()


def _frame(poller: Poller, state: ViewState, target: str, program: Program | None) -> Frame:
    snap, error, sources = poller.latest()
    frame = Frame(snap, error, sources, state, target, program)
    if program is not None:
        frame.exit_code = program.exit_code()
        frame.output = program.tail(OUTPUT_STRIP)
    return frame


# --- entry points (the CLI's top and run --tui) --------------------------------------


def cannot_show() -> str | None:
    """Why the view cannot run here, or None."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return RICH_MISSING
    if not (os.isatty(0) and os.isatty(1)):
        return "stethoscope: the terminal view needs a terminal (stdin and stdout)"
    return None


def top(endpoint: Endpoint) -> int:
    """``stethoscope top URL``: watch a running monitor; quitting leaves the program be."""
    problem = cannot_show()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    client = Client(endpoint)
    try:
        client.snapshot()
    except urllib.error.HTTPError as exc:  # a wrong token or URL will not mend itself
        print(f"stethoscope: error: {endpoint.base} answered {describe_error(exc)}; "
              "check the URL and token", file=sys.stderr)
        return 2
    except Exception:  # gone or not there yet: the view says so and keeps trying
        pass
    show(Poller(client), endpoint.base, None)
    return 0


def program_command(monitor_words: list[str], target: list[str], url_file: str) -> list[str]:
    """The child that runs the program: ``stethoscope run`` with the user's options
    after ours, so a --port or --token the user gave wins (``--opt=value``: a random
    token may start with a dash)."""
    return [sys.executable, "-m", "stethoscope", "run", "--quiet", "--port=0",
            f"--token={new_token()}", f"--url-file={url_file}", *monitor_words, *target]


def run_program(monitor_words: list[str], target: list[str]) -> int:
    """``stethoscope run --tui``: the view in front, the program in a child process;
    afterwards its output is printed and its exit code is ours (0 when detached)."""
    problem = cannot_show()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="stethoscope-tui-")
    url_file = os.path.join(workdir, "url")
    program = Program(program_command(monitor_words, target, url_file), workdir)
    url, outcome = None, "quit"
    try:
        url = program.wait_for_file(url_file, URL_WAIT)
        if url is not None:
            os.unlink(url_file)  # it holds the token
            endpoint = parse_endpoint(url)
            outcome = show(Poller(Client(endpoint)), endpoint.base, program)
        elif program.exit_code() is None:
            print(f"stethoscope: error: the program's monitor did not start within "
                  f"{URL_WAIT:g} s; stopping it", file=sys.stderr)
            outcome = "kill"
    except KeyboardInterrupt:  # Ctrl+C before the view took the keys
        outcome = "kill"
    except BaseException:
        program.kill()
        raise
    return _finish(program, outcome, url)


def _finish(program: Program, outcome: str, url: str | None) -> int:
    """After the view: stop the program if asked, print its output, pick the exit code."""
    if outcome in ("kill", "terminated") and program.exit_code() is None:
        print(f"stethoscope: stopping the program (pid {program.pid}) …", file=sys.stderr)
        program.kill()
    lines = program.tail(OUTPUT_AFTER + 1)
    if len(lines) > OUTPUT_AFTER:
        print(f"[… earlier output in {program.log_path}]")
    sys.stdout.write("".join(f"{line}\n" for line in lines[-OUTPUT_AFTER:]))
    sys.stdout.flush()
    print(f"stethoscope: the program's output is in {program.log_path}", file=sys.stderr)
    if outcome == "detach":
        print(f"stethoscope: left the program running: pid {program.pid}; watch it again "
              f"with: stethoscope top '{url}'", file=sys.stderr)
        return 0
    code = program.exit_code()
    return 0 if code is None else code
