"""Drawing: one full-screen picture of a Screen, made of rich renderables.

The contract: every function here only reads the Screen it is given (no I/O, no
clock, no state of its own) and returns what to draw, so a picture is a function of
the snapshot, the sources and the user's choices. Text from the monitor and from the
program is made printable before it is drawn (``printable``): a stray escape in a
thread's name or in the program's output cannot move the cursor.

rich is an optional dependency (``stethoscope[tui]``): it is imported inside the
functions that draw, so ``import stethoscope`` never imports it.
"""

from __future__ import annotations

import os
import re
import shlex
import textwrap
from typing import TYPE_CHECKING, Any

from .client import Snap, Source
from .screen import PANELS, Screen, heat_of, hot_lines

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

OUTPUT_STRIP = 4  # lines of the program's output shown under the panels
BAR_WIDTH = 16
TOKEN_STYLES = {"kw": "bold magenta", "str": "green", "com": "dim", "num": "cyan",
                "def": "bold", "builtin": "cyan", "op": "", "deco": "yellow"}


def bar(value: float, top: float, width: int = BAR_WIDTH) -> str:
    """A bar of eighth-blocks: fine enough to tell close values apart in 16 cells."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(width * 8 * min(value, top) / top))
    full, part = divmod(eighths, 8)
    return "█" * full + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[part]


# What a terminal may act on rather than show (the same set as _stderr.printable's,
# which this layer may not import): C0 and C1 controls, DEL, lone surrogates, line
# and paragraph separators, bidirectional overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Text safe to draw on one line: tabs as spaces, every control character
    (escapes, newlines) shown as its escape (ESC as the four characters ``\\x1b``)."""
    text = text.replace("\t", "    ")
    return text if _UNSAFE.search(text) is None else _UNSAFE.sub(_escape, text)


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


def header_lines(screen: Screen) -> list[Text]:
    snap = screen.snapshot
    if snap is None:
        return [_line(f"stethoscope  {screen.target}", "bold"), _line()]
    argv = shlex.join(str(a) for a in snap.get("argv", []))
    hz = snap.get("sample_hz") or {}
    state = str(snap.get("state", "?"))
    if screen.exit_code is not None:
        state = f"exited ({screen.exit_code})"
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


def status_line(screen: Screen) -> Text:
    if screen.state.confirm_quit:
        return _line("The program still runs:  k kill it and quit · d detach (leave it running)"
                     " · other keys: stay", "bold black on yellow")
    if screen.exit_code is not None:
        return _line(f"program exited with code {screen.exit_code}; showing the final picture"
                     " (q quits)", "bold black on cyan")
    if screen.error is not None:
        what = "monitor gone" if screen.snapshot is not None else "no monitor yet"
        return _line(f"{what}: {screen.error} ({screen.target}); retrying", "bold white on red")
    if screen.snapshot is None:
        return _line(f"connecting to {screen.target} …", "yellow")
    return _line(f"connected to {screen.target}", "dim")


def _file_name(snap: Snap | None, file_id: str | None) -> str:
    for f in (snap or {}).get("files", []):
        if f.get("id") == file_id:
            return str(f.get("name", "?"))
    return "all files" if file_id is None else "(file without data)"


def tabs_line(screen: Screen) -> Text:
    from rich.text import Text

    text = Text(no_wrap=True, overflow="ellipsis")
    for index, name in enumerate(PANELS):
        style = "reverse bold" if index == screen.state.panel else ""
        text.append(f" {index + 1} {name} ", style=style)
        text.append(" ")
    # Text.append keeps escapes (rich strips only a few control codes), and the file's
    # name and the unit come from the monitor: printable() them as _line would
    text.append(printable(f"  file: {_file_name(screen.snapshot, screen.state.file_id)}"
                          " (f picks)"))
    if screen.snapshot is not None:
        unit = heat_of(screen.snapshot).short_unit
        text.append(printable(f"  ·  {unit}, recent = last {screen.snapshot.get('window')} s"),
                    "dim")
    return text


def _table(*columns: tuple[str, dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(box=None, expand=True, header_style="bold", padding=(0, 1), pad_edge=False)
    for title, options in columns:
        table.add_column(title, no_wrap=True, overflow="ellipsis", **options)
    return table


def lines_panel(screen: Screen, rows: int) -> RenderableType:
    snap = screen.snapshot or {}
    found = hot_lines(snap, screen.state.file_id, rows)
    if not found:
        return _line("no heat yet" if screen.snapshot else "waiting for the first snapshot …",
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
                      source_text(screen.sources.get(hot.file_id), hot.line))
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


def threads_panel(screen: Screen, rows: int) -> RenderableType:
    snap = screen.snapshot or {}
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


def processes_panel(screen: Screen, rows: int) -> RenderableType:
    processes = (screen.snapshot or {}).get("processes", [])
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


def picker_panel(screen: Screen, rows: int) -> RenderableType:
    from rich.console import Group

    known = {f.get("id"): f for f in (screen.snapshot or {}).get("files", [])}
    files = screen.state.picker_files
    cursor = screen.state.picker or 0
    out = [_line("Pick a file: ↑/↓ or j/k move, Enter picks, a = all files, Esc cancels",
                 "bold")]
    first = max(0, min(cursor - rows // 2, len(files) - (rows - 1)))
    kind = heat_of(screen.snapshot or {})
    for index, file_id in enumerate(files[first:first + rows - 1], start=first):
        f = known.get(file_id, {"name": file_id})
        mark = "▸ " if index == cursor else "  "
        heat = f"{f.get(kind.recent, 0)}/{f.get(kind.total, 0)}"
        out.append(_line(f"{mark}{f.get('name')}  {heat:>12}  {f.get('path', '')}",
                         "reverse" if index == cursor else ""))
    if not files:
        out.append(_line("  (no files yet)", "dim"))
    return Group(*out)


def output_lines(screen: Screen) -> list[Text]:
    if screen.program is None:
        return []
    shown = screen.output[-OUTPUT_STRIP:]
    title = _line(f"─ output (pid {screen.program.pid}, all of it in {screen.program.log_path}) ",
                  "bold dim")
    return [title, *(_line(text) for text in shown),
            *(_line() for _ in range(OUTPUT_STRIP - len(shown)))]


def footer_line(screen: Screen) -> Text:
    if screen.state.help:
        return _line("1 2 3 Tab: panels · f: file picker (↑↓ jk Enter, a all, Esc) · q Ctrl+C:"
                     " quit (never kills unasked) · ?: hide", "black on white")
    return _line("q quit · 1 lines · 2 threads · 3 processes · Tab next · f file · a all files"
                 " · ? help", "dim")


PANEL_RENDERERS = (lines_panel, threads_panel, processes_panel)


def render(screen: Screen, width: int, height: int) -> RenderableType:
    """One full-screen picture; the panel gets whatever height the rest leaves, so
    the output strip and the footer stay at the bottom."""
    from rich.console import Group
    from rich.layout import Layout

    top = [*header_lines(screen), *banner_lines(screen.snapshot, width), status_line(screen),
           tabs_line(screen)]
    bottom = [*output_lines(screen), footer_line(screen)]
    rows = max(3, height - len(top) - len(bottom))
    draw = picker_panel if screen.state.picker is not None else PANEL_RENDERERS[screen.state.panel]
    layout = Layout()
    layout.split_column(Layout(Group(*top), size=len(top)),
                        Layout(draw(screen, rows - 1)),  # one row for the table's header
                        Layout(Group(*bottom), size=len(bottom)))
    return layout
