"""The view's loop and its two entry points: ``top`` and ``run_program``.

The contract: ``show`` owns the terminal while it runs: each turn it takes the
poller's latest results (and the program's state) into a Screen, draws it, and
applies the keys that came within one poll interval; it returns how the view ended.
``top`` only reads (quitting leaves the program be); ``run_program`` starts the
program, shows it, then stops it if asked, prints its output and returns its exit
code. Both return 2 with one line on stderr when the view cannot run here (no rich,
no terminal) before anything else happens.
"""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.error

from .client import POLL_INTERVAL, Client, Endpoint, Poller, describe_error, parse_endpoint
from .keys import Terminated, apply_key, keys_mode, quit_signals, read_keys
from .panels import OUTPUT_STRIP, printable, render
from .program import Program, program_command
from .screen import Screen, ViewState

RICH_MISSING = "stethoscope: the terminal view needs rich: pip install 'stethoscope[tui]'"
URL_WAIT = 30.0  # how long run --tui waits for the program's monitor to start
OUTPUT_AFTER = 200  # lines of the program's output printed when the view closes


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
                screen = _screen(poller, state, target, program)
                live.update(render(screen, console.size.width, console.size.height),
                            refresh=True)
                keys = read_keys(fd, POLL_INTERVAL)
                pending, requests[:] = requests[:], []
                files = [f["id"] for f in (screen.snapshot or {}).get("files", [])]
                running = program is not None and program.exit_code() is None
                for key in [*pending, *keys]:
                    outcome = apply_key(state, key, files, running)
                    if outcome is not None:
                        return outcome
    except Terminated:
        return "terminated"
    finally:
        poller.stop()


def _screen(poller: Poller, state: ViewState, target: str, program: Program | None) -> Screen:
    snap, error, sources = poller.latest()
    screen = Screen(snap, error, sources, state, target, program)
    if program is not None:
        screen.exit_code = program.exit_code()
        screen.output = program.tail(OUTPUT_STRIP)
    return screen


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
        print(printable(f"stethoscope: error: {endpoint.base} answered "
                        f"{describe_error(exc)}; check the URL and token"), file=sys.stderr)
        return 2
    except Exception:  # gone or not there yet: the view says so and keeps trying
        pass
    show(Poller(client), endpoint.base, None)
    return 0


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
