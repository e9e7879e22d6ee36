"""Text that goes to a terminal is printable: what the program chose (its argv, its
file's name, its threads' names, its source lines, its notes) reaches the text
export, the reports on stderr and the terminal view escaped (ESC as the four
characters ``\\x1b``), never as a sequence the terminal would act on."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from stethoscope._stderr import printable, printable_lines

from conftest import run_cli

EVIL = "\x1b]0;pwned\x07"  # retitles the window
CLEAR = "\x1b[2J"  # clears the screen
C1_CSI = "\x9b31m"  # CSI as one 8-bit control
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # anything a terminal acts on but \t \n

PROGRAM = textwrap.dedent('''\
    import json, sys, threading, time, urllib.request
    import stethoscope

    def hot(n):
        total = 0
        for i in range(n):
            total += i  # HOT @@RAW@@
        return total

    mon = stethoscope.current()
    mon.note("a note @@EVIL@@")
    api = mon.url.replace("/?", "/api/snapshot?")
    HOT = next(i for i, text in enumerate(open(__file__), 1) if "# HOT" in text)

    def snapshot():
        return json.load(urllib.request.urlopen(api, timeout=60))

    def heat_seen(snap):  # the sampler has seen the hot line (its source is then recorded)
        for f in snap["files"]:
            for row in f["lines"]:
                if row[0] == HOT and row[4] >= 5:  # row[4]: self_total
                    return True
        return False

    deadline = time.monotonic() + 60  # a bound for a broken monitor only
    while time.monotonic() < deadline and not heat_seen(snapshot()):
        hot(1_000_000)  # longer than the GIL switch interval: the sampler sees it

    never = threading.Event()

    def holder():  # holds the exit until the hang report is out
        never.wait(60)

    def watcher():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            exit_info = snapshot()["exit"]
            if exit_info and exit_info["reported"]:
                break
            time.sleep(0.05)
        never.set()

    threading.Thread(target=holder, name="holder @@EVIL@@").start()
    threading.Thread(target=watcher, name="watcher", daemon=True).start()
    print("args:", len(sys.argv))
''')


def _no_raw_controls(text: str, what: str) -> None:
    found = RAW.search(text)
    assert found is None, (what, text[max(0, found.start() - 80):found.end() + 80])


def test_export_and_reports_escape_what_the_program_chose(tmp_path: Path) -> None:
    script = tmp_path / f"evil{EVIL}.py"
    source = PROGRAM.replace("@@RAW@@", EVIL + CLEAR).replace("@@EVIL@@", "\\x1b]0;pwned\\x07")
    script.write_text(source)
    out = tmp_path / "evil.stetho"
    run = run_cli(["run", "--port", "0", "--hang-report", "1", "--record", str(out),
                   str(script), EVIL, CLEAR, C1_CSI], timeout=100)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout == "args: 4\n"
    _no_raw_controls(run.stderr, "stderr of the run")
    assert "keeps the process alive" in run.stderr  # the hang report came
    assert "holder \\x1b]0;pwned\\x07" in run.stderr  # its thread's name, escaped
    assert "a note \\x1b]0;pwned\\x07" in run.stderr  # the note as said

    export = run_cli(["export", str(out), "--format", "text"], timeout=100)
    assert export.returncode == 0, export.stderr
    _no_raw_controls(export.stdout, "text export")
    _no_raw_controls(export.stderr, "stderr of the export")
    text = export.stdout
    shown = "evil\\x1b]0;pwned\\x07.py"
    assert f"{shown} \\x1b]0;pwned\\x07 \\x1b[2J \\x9b31m" in text  # argv
    assert f"{shown}:" in text  # the hot line's file
    assert "total += i  # HOT \\x1b]0;pwned\\x07\\x1b[2J" in text  # its source
    assert "'holder \\x1b]0;pwned\\x07'" in text  # a thread's name (repr'd, then escaped)
    assert "a note \\x1b]0;pwned\\x07" in text  # the note


def test_a_bad_file_name_is_escaped_in_the_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / f"x{EVIL}{CLEAR}.stetho"
    bad.write_text("hello\n")
    for args in (["export", str(bad), "--format", "text"], ["view", str(bad), "--port", "0"]):
        result = run_cli(args, timeout=100)
        assert result.returncode == 2
        _no_raw_controls(result.stderr, "error")
        assert result.stderr.splitlines() == [
            f"stethoscope: error: {tmp_path}/x\\x1b]0;pwned\\x07\\x1b[2J.stetho is not a "
            f"stethoscope recording (made by stethoscope run --record FILE)"]


def test_printable_escapes_controls_and_keeps_unicode() -> None:
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("tab\there") == "tab here"
    assert printable("one\ntwo\r") == "one\\x0atwo\\x0d"
    assert printable("\x9b\x7f\x00") == "\\x9b\\x7f\\x00"
    assert printable("bidi\u202eevil") == "bidi\\u202eevil"
    assert printable("lone \udcff") == "lone \\udcff"
    assert printable("café ☕ 🙂 ZWJ 👩\u200d💻") == "café ☕ 🙂 ZWJ 👩\u200d💻"
    assert printable_lines("a\x1b\nb\x07\n") == "a\\x1b\nb\\x07\n"


def test_the_terminal_views_tab_line_escapes_the_file_name() -> None:
    from stethoscope.tui.panels import printable as view_printable
    from stethoscope.tui.panels import tabs_line
    from stethoscope.tui.screen import Screen, ViewState

    snap = {"files": [{"id": "f1", "name": f"evil{EVIL}{C1_CSI}.py"}], "heat": "time",
            "window": 10, "heat_kinds": {"time": {"recent": "self_recent",
                                                  "total": "self_total", "short_unit": "s"}}}
    screen = Screen(snapshot=snap, error=None, sources={}, state=ViewState(file_id="f1"),
                    target="x")
    line = tabs_line(screen).plain
    _no_raw_controls(line, "tab line")
    assert "file: evil\\x1b]0;pwned\\x07\\x9b31m.py (f picks)" in line
    assert view_printable(f"a{EVIL}\tb") == "a\\x1b]0;pwned\\x07    b"
