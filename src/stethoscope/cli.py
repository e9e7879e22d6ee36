"""The command line: ``stethoscope run``, ``stethoscope demo``.

Options mirror ``trace()``'s parameters. Everything after the script (or after
``-m module``) belongs to the target, untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__, files
from .api import stop, trace
from .config import MODES, Config, ConfigError, new_token, page_url
from .files import FileFilter
from .runner import TargetError, reraise_silently, run_module, run_script
from .server import PortInUseError

PROG = "stethoscope"


def _files_filter(spec: str) -> FileFilter:
    try:
        return files.parse(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _signal_number(name: str) -> int:
    import signal

    spec = name.upper()
    if spec.isdigit():
        return int(spec)
    try:
        return int(signal.Signals[spec if spec.startswith("SIG") else f"SIG{spec}"])
    except KeyError:
        raise argparse.ArgumentTypeError(f"{name!r} is not a signal name such as USR1") from None


def _monitor_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("monitor options (as in stethoscope.trace())")
    group.add_argument("--host", default="127.0.0.1",
                       help="address to serve on (default: 127.0.0.1, loopback only)")
    group.add_argument("--port", type=int, default=None,
                       help="port to serve on (default: 9999, or a free one if busy; 0 = any)")
    group.add_argument("--browser", action="store_true", help="open the page in a browser")
    group.add_argument("--mode", choices=MODES, default="auto",
                       help="sample: sampled time; lines (3.12+): every line that ran, "
                            "in windows of 0.2 s; trace: exact line counts; auto (default): "
                            "sample + lines on 3.12+, sample before")
    group.add_argument("--files", type=_files_filter, default=files.user, metavar="FILTER",
                       help="which files to show: user (default), all, contains:PART[,PART], "
                            "regex:PATTERN")
    group.add_argument("--keep-serving", action="store_true",
                       help="keep serving the final picture after the program ends, until "
                            "Ctrl+C (daemon=False)")
    group.add_argument("--token", default=None, help="access token (default: a random one)")
    group.add_argument("--sample-hz", type=float, default=100.0,
                       help="stack samples per second (default: 100)")
    group.add_argument("--window", type=int, default=10,
                       help="seconds of recent heat (default: 10)")
    group.add_argument("--quiet", action="store_true", help="do not print the URL")
    group.add_argument("--no-processes", dest="processes", action="store_false",
                       help="do not follow child processes (default: follow multiprocessing "
                            "and Python subprocess children)")
    group.add_argument("--hang-report", type=float, default=3.0, metavar="SECONDS",
                       help="when the main thread has finished but non-daemon threads keep the "
                            "process alive, report them on stderr after this long "
                            "(default: 3; 0: never)")
    group.add_argument("--dump-signal", type=_signal_number, default=None, metavar="SIGNAL",
                       help="print the thread report when this signal arrives, e.g. USR1")
    group.add_argument("--metrics-public", action="store_true",
                       help="serve /metrics (Prometheus) without the token; every other "
                            "path still needs it")
    group.add_argument("--record", default=None, metavar="FILE",
                       help="also write what the page shows, over the whole run, to FILE: "
                            "replay it with stethoscope view FILE, export it with "
                            "stethoscope export FILE")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Watch a running Python program live.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    run = commands.add_parser(
        "run", help="run a script or module under the monitor",
        usage=f"{PROG} run [options] (script.py | -m module) [args ...]")
    _monitor_options(run)
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a library module")
    run.add_argument("--tui", action="store_true",
                     help="watch it in a full-screen terminal view (needs stethoscope[tui]); "
                          "the program runs in a child process, its output goes to a log")
    run.add_argument("--url-file", default=None, help=argparse.SUPPRESS)
    top = commands.add_parser(
        "top", help="watch a running monitor in a full-screen terminal view "
                    "(needs stethoscope[tui])")
    top.add_argument("url", metavar="URL",
                     help="the URL the monitor printed: http://127.0.0.1:PORT/?token=T")
    top.add_argument("--token", default=None, help="the token, when the URL has none")
    demo = commands.add_parser("demo", help="run a bundled workload to see every panel at work")
    _monitor_options(demo)
    demo.add_argument("--duration", type=float, default=None,
                      help="seconds to run (default: until Ctrl+C)")
    view = commands.add_parser(
        "view", help="serve a recording (made with --record FILE) on the same page, "
                     "with a timeline to scrub and play it back")
    view.add_argument("file", metavar="FILE", help="the recording")
    view.add_argument("--host", default="127.0.0.1",
                      help="address to serve on (default: 127.0.0.1, loopback only)")
    view.add_argument("--port", type=int, default=None,
                      help="port to serve on (default: 9999, or a free one if busy; 0 = any)")
    view.add_argument("--token", default=None, help="access token (default: a random one)")
    view.add_argument("--browser", action="store_true", help="open the page in a browser")
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
    return parser


def _split_target(argv: list[str]) -> tuple[list[str], list[str]]:
    """Options for us, and the target's words: the script or ``-m module`` and its args."""
    takes_value = {"--host", "--port", "--mode", "--files", "--token", "--sample-hz",
                   "--window", "--duration", "--hang-report", "--dump-signal", "--record",
                   "--url-file"}
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
    parser = _parser()
    if argv and argv[0] == "run":
        ours, target = _split_target(argv[1:])
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
    if args.command == "run":
        return _run(parser, args)
    if args.command == "top":
        return _top(parser, args)
    if args.command == "view":
        return _view(parser, args)
    if args.command == "export":
        return _export(parser, args)
    return _demo(parser, args)


EXPORT_FORMATS = ("speedscope", "chrome", "text", "json")
EXPORT_SUFFIXES = {"speedscope": ".speedscope.json", "chrome": ".trace.json"}


def _export(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``stethoscope export FILE --format F [-o OUT]``: every failure is one line, exit 2."""
    import json

    from . import export
    from .recording import RecordingError, read

    if args.format not in EXPORT_FORMATS:
        parser.exit(2, f"{PROG}: error: unknown format {args.format!r}; choose one of "
                       f"{', '.join(EXPORT_FORMATS)}\n")
    try:
        rec = read(args.file)
    except RecordingError as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")
    if args.format == "text":
        text = export.to_text(rec)
    elif args.format == "json":
        text = json.dumps(export.to_summary(rec), indent=2) + "\n"
    elif args.format == "speedscope":
        text = json.dumps(export.to_speedscope(rec), separators=(",", ":"))
    else:
        text = json.dumps(export.to_chrome(rec), separators=(",", ":"))
    out = args.output
    if out is None and args.format in EXPORT_SUFFIXES:
        out = os.path.splitext(args.file)[0] + EXPORT_SUFFIXES[args.format]
    if out is None or out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            with open(out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            parser.exit(2, f"{PROG}: error: cannot write {out!r}: {exc.strerror}\n")
        sys.stderr.write(f"{PROG}: wrote {args.format} export to {out}\n")
    if rec.truncated:
        sys.stderr.write(f"{PROG}: note: {args.file} was cut off (the program was killed); "
                         f"its last moments are missing\n")
    return 0


def _settings(args: argparse.Namespace, file_filter: FileFilter) -> dict[str, Any]:
    return {"files": file_filter, "host": args.host, "port": args.port,
            "browser": args.browser, "daemon": not args.keep_serving, "mode": args.mode,
            "token": args.token, "sample_hz": args.sample_hz, "window": args.window,
            "quiet": args.quiet, "hang_report": args.hang_report,
            "dump_signal": args.dump_signal, "processes": args.processes,
            "metrics_public": args.metrics_public, "record": args.record}


def _start(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    try:
        trace(**settings)
    except (ConfigError, PortInUseError, OSError) as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    settings = _settings(args, args.files)
    try:  # bad options first, as python would complain about them before the file
        Config(**{**settings, "token": settings["token"] or new_token()})
    except ConfigError as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")
    if args.script is not None and not os.path.exists(args.script):
        parser.exit(2, f"{PROG}: error: can't open file "
                       f"{os.path.abspath(args.script)!r}: no such file\n")
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
        parser.exit(2, f"{PROG}: error: {exc}\n")
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
    chosen = args.files
    # The demo lives inside the package (site-packages, once installed): show it.
    # A filter of the files module also reaches the demo's child process.
    show_demo = files.path_contains(demo_dir + os.sep)
    demo_filter = show_demo
    if chosen is not files.user:

        def demo_or_chosen(path: str) -> bool:
            return show_demo(path) or chosen(path)

        demo_filter = demo_or_chosen

    _start(parser, _settings(args, demo_filter))
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
    import signal
    import threading

    from .config import DEFAULT_PORT
    from .monitor import warn_if_exposed
    from .recording import RecordingError, read
    from .replay import ReplayBackend
    from .server.httpd import Server

    try:
        config = Config(host=args.host, port=args.port, token=args.token or new_token())
        recording = read(args.file)
        server = Server(ReplayBackend(recording), host=config.host,
                        port=DEFAULT_PORT if config.port is None else config.port,
                        token=config.token, fallback_port=config.port is None,
                        loopback=config.loopback)
    except (ConfigError, RecordingError, PortInUseError, OSError) as exc:
        parser.exit(2, f"{PROG}: error: {exc}\n")
    url = page_url(config.host, server.port, config.token)
    span = recording.times[-1] - recording.times[0]
    cut = " (cut off: the recorded process did not finish it)" if recording.truncated else ""
    sys.stderr.write(f"{PROG}: serving {url}\n{PROG}: replaying {args.file}: "
                     f"{len(recording.snapshots)} snapshots over {span:.1f} s{cut}; "
                     f"Ctrl+C to stop\n")
    sys.stderr.flush()
    warn_if_exposed(config.host)
    ended = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: ended.set())
    server.start()
    if args.browser:
        import webbrowser

        webbrowser.open(url)
    try:
        while not ended.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
    return 0
