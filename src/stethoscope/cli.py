"""The command line: ``stethoscope run``, ``demo``, ``view``, ``export``, ``top``.

The monitor's options are config.OPTIONS (trace()'s keywords) as flags. Everything
after the script (or after ``-m module``) belongs to the target, untouched. Misuse
is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import files
from ._stderr import printable, printable_lines
from ._version import __version__
from .config import OPTIONS, Config, ConfigError
from .files import FileFilter
from .runner import TargetError, reraise_silently, run_module, run_script
from .server import PortInUseError

PROG = "stethoscope"
# The options `stethoscope view` takes: it serves a recording, so only how it serves.
VIEW_OPTIONS = ("host", "port", "token", "browser")


def add_options(parser: argparse.ArgumentParser, names: Sequence[str] = tuple(OPTIONS)
                ) -> set[str]:
    """Options of Config as flags: ``--name`` (underscores as dashes), ``--no-name``
    for a switch that is on by default. The flags that take a value are returned."""
    group = parser.add_argument_group("monitor options (as in stethoscope.trace())")
    takes_value: set[str] = set()
    for name in names:
        option = OPTIONS[name]
        spelled = name.replace("_", "-")
        default = Config.__dataclass_fields__[name].default
        if isinstance(default, bool):
            flags = [f"--no-{spelled}" if default else f"--{spelled}", *option.aliases]
            group.add_argument(*flags, dest=name, default=default, help=option.help,
                               action="store_false" if default else "store_true")
            continue
        flags = [f"--{spelled}", *option.aliases]
        takes_value.update(flags)
        # None: not given (files.user, a random token: what trace() does with None)
        given = None if name in ("files", "token") else default
        group.add_argument(*flags, dest=name, default=given, type=option.parse or str,
                           choices=option.choices, metavar=option.metavar, help=option.help)
    return takes_value


def _parser() -> tuple[argparse.ArgumentParser, set[str]]:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Watch a running Python program live.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    run = commands.add_parser(
        "run", help="run a script or module under the monitor",
        usage=f"{PROG} run [options] (script.py | -m module) [args ...]")
    run_values = add_options(run)
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a library module")
    run.add_argument("--tui", action="store_true",
                     help="watch it in a full-screen terminal view (needs stethoscope[tui]); "
                          "the program runs in a child process, its output goes to a log")
    run.add_argument("--url-file", default=None, help=argparse.SUPPRESS)
    run_values.add("--url-file")
    top = commands.add_parser(
        "top", help="watch a running monitor in a full-screen terminal view "
                    "(needs stethoscope[tui])")
    top.add_argument("url", metavar="URL",
                     help="the URL the monitor printed: http://127.0.0.1:PORT/?token=T")
    top.add_argument("--token", default=None, help="the token, when the URL has none")
    demo = commands.add_parser("demo", help="run a bundled workload to see every panel at work")
    add_options(demo)
    demo.add_argument("--duration", type=float, default=None,
                      help="seconds to run (default: until Ctrl+C)")
    view = commands.add_parser(
        "view", help="serve a recording (made with --record FILE) on the same page, "
                     "with a timeline to scrub and play it back")
    view.add_argument("file", metavar="FILE", help="the recording")
    add_options(view, VIEW_OPTIONS)
    export = commands.add_parser(
        "export", help="convert a recording (made with --record FILE) for other tools: "
                       "speedscope, Chrome trace, or a text/JSON summary for CI logs")
    export.add_argument("file", metavar="FILE", help="the recording")
    export.add_argument("--format", required=True, metavar="{speedscope,chrome,text,json}",
                        help="speedscope: flame charts per thread (speedscope.app); chrome: "
                             "Trace Event Format (Perfetto, chrome://tracing); text or "
                             "json: a summary (hot lines, threads, processes, exit)")
    export.add_argument("-o", "--output", default=None, metavar="OUT",
                        help="where to write ('-': stdout); default: stdout for text and "
                             "json, FILE with .speedscope.json / .trace.json for the others")
    return parser, run_values


def _split_target(argv: list[str], takes_value: set[str]) -> tuple[list[str], list[str]]:
    """Options for us, and the target's words: the script or ``-m module`` and its args."""
    for i, word in enumerate(argv):
        if word == "-m":
            return argv[:i + 2], argv[i + 2:]
        if word == "--":
            return argv[:i], argv[i + 1:]
        if not word.startswith("-") and (i == 0 or argv[i - 1] not in takes_value):
            return argv[:i], argv[i:]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, run_values = _parser()
    if argv and argv[0] == "run":
        ours, target = _split_target(argv[1:], run_values)
        args = parser.parse_args(["run", *ours])
        if args.module is None:
            if not target:
                parser.error("run needs a script (stethoscope run script.py) or -m module")
            args.script, args.args = target[0], target[1:]
        else:
            args.script, args.args = None, target
        if args.tui:
            return _run_tui(args, ours, target)
    else:
        args = parser.parse_args(argv)
    commands: dict[str, Callable[[argparse.ArgumentParser, argparse.Namespace], int]] = {
        "run": _run, "top": _top, "view": _view, "export": _export, "demo": _demo}
    return commands[args.command](parser, args)


def _fail(parser: argparse.ArgumentParser, message: object) -> NoReturn:
    parser.exit(2, f"{PROG}: error: {printable(str(message))}\n")


def _settings(args: argparse.Namespace, names: Sequence[str] = tuple(OPTIONS)
              ) -> dict[str, Any]:
    """trace()'s keywords, from the command line."""
    return {name: getattr(args, name) for name in names}


def _start(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    from .api import trace

    try:
        trace(**settings)
    except (ConfigError, PortInUseError, OSError) as exc:
        _fail(parser, exc)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .api import stop

    settings = _settings(args)
    try:  # bad options first, as python would complain about them before the file
        Config.of(settings)
    except ConfigError as exc:
        _fail(parser, exc)
    if args.script is not None and not os.path.exists(args.script):
        _fail(parser, f"can't open file {os.path.abspath(args.script)!r}: no such file")
    _start(parser, settings)
    if args.url_file is not None:
        _write_url_file(args.url_file)
    try:
        if args.module is not None:
            run_module(args.module, args.args)
        else:
            run_script(args.script, args.args)
    except TargetError as exc:
        stop()
        _fail(parser, exc)
    except SystemExit:
        raise
    except BaseException as exc:
        reraise_silently(exc)
    return 0


def _write_url_file(path: str) -> None:
    """Tell the view of ``run --tui`` where this monitor serves; atomic (written aside,
    then renamed), so the view never reads half a URL."""
    from .api import current

    monitor = current()
    if monitor is None:  # _start() exits when the monitor cannot start
        return
    part = f"{path}.{os.getpid()}.part"
    with open(part, "w") as f:
        f.write(monitor.url + "\n")
    os.replace(part, path)


def _top(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``top URL``: the terminal view of a monitor that already runs."""
    from . import tui

    try:
        endpoint = tui.parse_endpoint(args.url, args.token)
    except ValueError as exc:
        parser.exit(2, f"{PROG} top: error: {exc}\n")
    return tui.top(endpoint)


def _run_tui(args: argparse.Namespace, ours: list[str], target: list[str]) -> int:
    """``run --tui``: the view in front, the program in a child ``stethoscope run`` with
    the same options (its monitor tells the view its URL through --url-file)."""
    from . import tui

    words = [w for w in ours if not (w.startswith("--tu") and "--tui".startswith(w))]
    if args.module is None:
        words.append("--")  # the script's name may look like an option
    return tui.run_program(words, target)


def _demo(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .demo import workload

    demo_dir = os.path.dirname(os.path.abspath(workload.__file__))
    chosen: FileFilter | None = args.files
    # The demo lives inside the package (site-packages, once installed): show it.
    # A filter of the files module also reaches the demo's child process.
    show_demo = files.path_contains(demo_dir + os.sep)
    demo_filter = show_demo
    if chosen is not None and chosen is not files.user:

        def demo_or_chosen(path: str) -> bool:
            return show_demo(path) or chosen(path)

        demo_filter = demo_or_chosen

    _start(parser, {**_settings(args), "files": demo_filter})
    script_args = [] if args.duration is None else ["--duration", str(args.duration)]
    try:
        run_script(workload.__file__, script_args)
    except SystemExit:
        raise
    except BaseException as exc:
        reraise_silently(exc)
    return 0


def _view(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Serve a recording until Ctrl+C or SIGTERM."""
    import threading

    from .config import DEFAULT_PORT, page_url
    from .monitor.signals import wait_for_end
    from .recordings.file import RecordingError
    from .recordings.reader import read
    from .recordings.replay import ReplayBackend
    from .server.httpd import Server, warn_if_exposed

    try:
        config = Config.of(_settings(args, VIEW_OPTIONS))
        recording = read(args.file)
        server = Server(host=config.host, port=DEFAULT_PORT if config.port is None
                        else config.port, token=config.token,
                        fallback_port=config.port is None, loopback=config.loopback)
    except (ConfigError, RecordingError, PortInUseError, OSError) as exc:
        _fail(parser, printable(str(exc)))  # it may quote the file's name
    url = page_url(config.host, server.port, config.token)
    span = recording.times[-1] - recording.times[0]
    cut = f" (cut off: {recording.cut_reason})" if recording.truncated else ""
    sys.stderr.write(f"{PROG}: serving {url}\n{PROG}: replaying {printable(args.file)}: "
                     f"{len(recording.snapshots)} snapshots over {span:.1f} s{cut}; "
                     f"Ctrl+C to stop\n")
    sys.stderr.flush()
    warn_if_exposed(config.host)
    server.start(ReplayBackend(recording))
    if config.browser:
        import webbrowser

        webbrowser.open(url)
    try:
        wait_for_end(threading.Event(), poll=0.5)
    finally:
        server.stop()
    return 0


def _export(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``stethoscope export FILE --format F [-o OUT]``: every failure is one line, exit 2."""
    from .recordings.export import FORMATS, SUFFIXES, render
    from .recordings.file import RecordingError
    from .recordings.inflate import KILLED
    from .recordings.reader import read

    if args.format not in FORMATS:
        _fail(parser, f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    try:
        rec = read(args.file)
    except RecordingError as exc:
        _fail(parser, printable(str(exc)))  # it may quote the file's name
    text = render(rec, args.format)
    if args.format == "text":  # it quotes argv, file names, sources, notes: the program's
        text = printable_lines(text)
    out = args.output
    if out is None and args.format in SUFFIXES:
        out = os.path.splitext(args.file)[0] + SUFFIXES[args.format]
    if out is None or out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            with open(out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            _fail(parser, printable(f"cannot write {out!r}: {exc.strerror}"))
        sys.stderr.write(printable(f"{PROG}: wrote {args.format} export to {out}") + "\n")
    if rec.truncated:
        missing = "its last moments are missing" if rec.cut_reason == KILLED else \
            "the rest is not read"
        sys.stderr.write(printable(f"{PROG}: note: {args.file} was cut off "
                                   f"({rec.cut_reason}); {missing}") + "\n")
    return 0
