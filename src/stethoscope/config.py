"""The monitor's settings: one frozen, validated record, and the one list of options.

Every option is a field of ``Config``, declared once with what the other places
need to know of it: its help text, how the command line spells and parses it,
and whether a followed child process shares it. ``trace()``'s keywords, the CLI's
flags (``cli.add_options``) and the child link (``children/link.py``) are all
derived from these fields, so an option is added in one place (and in
``trace()``'s signature, which a test keeps identical to the fields).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from . import files as _files
from .files import FileFilter

Mode = Literal["auto", "sample", "lines", "trace"]
MODES: tuple[str, ...] = get_args(Mode)
DEFAULT_PORT = 9999


class ConfigError(ValueError):
    """A bad argument to ``trace()`` or the CLI; the message says what to pass instead."""


@dataclass(frozen=True, slots=True)
class Option:
    """How an option of Config appears outside Python: on the command line, and
    in the settings a followed child process takes from the program's monitor."""

    help: str
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # the CLI's reading of the value
    choices: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()  # more spellings of the flag
    child: bool = False  # a followed child runs with the program's value


def _how(**how: Any) -> dict[str, Option]:
    """A field's metadata: how the option appears outside Python."""
    return {"option": Option(**how)}


def check_mode(mode: object) -> None:
    """ConfigError unless ``mode`` is one of MODES (trace() and Monitor.set_mode())."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")


def new_token() -> str:
    import secrets  # here, not at the top: a child process never makes a token

    while True:  # never one that starts with "-": `--token -x...` reads as an option
        token = secrets.token_urlsafe(18)
        if not token.startswith("-"):
            return token


def url_host(host: str) -> str:
    """The host as it appears in a URL or a Host header: IPv6 in brackets."""
    return f"[{host}]" if ":" in host else host


def page_url(host: str, port: int, token: str) -> str:
    return f"http://{url_host(host)}:{port}/?token={token}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_files(text: str) -> FileFilter:
    """The command line's files filter (files.parse), as argparse wants its errors."""
    import argparse

    try:
        return _files.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_signal(name: str) -> int:
    """A signal by name (USR1, SIGUSR1) or number, as argparse wants its errors."""
    import argparse

    spec = name.upper()
    if spec.isdigit():
        return int(spec)
    try:
        return int(signal.Signals[spec if spec.startswith("SIG") else f"SIG{spec}"])
    except KeyError:
        raise argparse.ArgumentTypeError(f"{name!r} is not a signal name such as USR1") from None


@dataclass(frozen=True, slots=True)
class Config:
    files: FileFilter = field(default=_files.user, metadata=_how(
        metavar="FILTER", parse=parse_files, child=True,
        help="which files to show: user (default), all, contains:PART[,PART], regex:PATTERN"))
    host: str = field(default="127.0.0.1", metadata=_how(
        help="address to serve on (default: 127.0.0.1, loopback only)"))
    # None: DEFAULT_PORT, or a free port when that one is busy. An explicit port
    # that is busy is an error; 0 asks the OS for a free port.
    port: int | None = field(default=None, metadata=_how(
        parse=int, help="port to serve on (default: 9999, or a free one if busy; 0 = any)"))
    browser: bool = field(default=False, metadata=_how(help="open the page in a browser"))
    daemon: bool = field(default=True, metadata=_how(
        aliases=("--keep-serving",),
        help="keep serving the final picture after the program ends, until Ctrl+C "
             "(daemon=False)"))
    mode: Mode = field(default="auto", metadata=_how(
        choices=MODES, child=True,
        help="sample: sampled time; lines (3.12+): every line that ran, in windows of "
             "0.2 s; trace: exact line counts; auto (default): sample + lines on 3.12+, "
             "sample before"))
    processes: bool = field(default=True, metadata=_how(
        help="do not follow child processes (default: follow multiprocessing and Python "
             "subprocess children)"))
    token: str = field(default_factory=new_token, metadata=_how(
        help="access token (default: a random one)"))
    sample_hz: float = field(default=100.0, metadata=_how(
        parse=float, child=True, help="stack samples per second (default: 100)"))
    window: int = field(default=10, metadata=_how(
        parse=int, child=True, help="seconds of recent heat (default: 10)"))
    quiet: bool = field(default=False, metadata=_how(help="do not print the URL"))
    # Seconds after the main thread finished before the report on the threads
    # that hold the exit is printed; 0 turns it off.
    hang_report: float = field(default=3.0, metadata=_how(
        parse=float, metavar="SECONDS", child=True,
        help="when the main thread has finished but non-daemon threads keep the process "
             "alive, report them on stderr after this long (default: 3; 0: never)"))
    dump_signal: int | None = field(default=None, metadata=_how(  # e.g. signal.SIGUSR1
        parse=parse_signal, metavar="SIGNAL",
        help="print the thread report when this signal arrives, e.g. USR1"))
    # Serve GET /metrics (Prometheus) without the token; every other path still needs it.
    metrics_public: bool = field(default=False, metadata=_how(
        help="serve /metrics (Prometheus) without the token; every other path still "
             "needs it"))
    # Write the snapshot stream and sampled stacks to this file (recordings/file.py).
    record: str | None = field(default=None, metadata=_how(
        metavar="FILE",
        help="also write what the page shows, over the whole run, to FILE: replay it "
             "with stethoscope view FILE, export it with stethoscope export FILE"))

    def __post_init__(self) -> None:
        if not callable(self.files):
            raise ConfigError(
                f"files must be a callable(path) -> bool such as stethoscope.files.user, "
                f"not {self.files!r}"
            )
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host must be a host name or IP address string, not {self.host!r}")
        if self.port is not None and (
            isinstance(self.port, bool) or not isinstance(self.port, int)
            or not 0 <= self.port <= 65535
        ):
            raise ConfigError(f"port must be an int from 0 to 65535 (0 = any free port), "
                              f"not {self.port!r}")
        check_mode(self.mode)
        if not isinstance(self.token, str) or len(self.token) < 8 or not self.token.isascii() \
                or not all(c.isalnum() or c in "-_." for c in self.token):
            raise ConfigError("token must be at least 8 characters of letters, digits, '-', "
                              "'_' or '.'; leave it out for a random one")
        if isinstance(self.sample_hz, bool) or not isinstance(self.sample_hz, (int, float)) \
                or not 1 <= self.sample_hz <= 1000:
            raise ConfigError(f"sample_hz must be a number from 1 to 1000, not {self.sample_hz!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) \
                or not 1 <= self.window <= 3600:
            raise ConfigError(f"window must be a whole number of seconds from 1 to 3600, "
                              f"not {self.window!r}")
        if isinstance(self.hang_report, bool) or not isinstance(self.hang_report, (int, float)) \
                or not 0 <= self.hang_report <= 86400:
            raise ConfigError(f"hang_report must be a number of seconds from 0 (off) to 86400, "
                              f"not {self.hang_report!r}")
        if self.dump_signal is not None:
            valid: set[int] = set(signal.valid_signals())
            if isinstance(self.dump_signal, bool) or self.dump_signal not in valid \
                    or self.dump_signal in (signal.SIGKILL, signal.SIGSTOP):
                raise ConfigError(f"dump_signal must be a signal number such as "
                                  f"signal.SIGUSR1, not {self.dump_signal!r}")
        if self.record is not None and (not isinstance(self.record, (str, os.PathLike))
                                        or not os.fspath(self.record)):
            raise ConfigError(f"record must be a file path such as 'run.stetho', "
                              f"not {self.record!r}")
        for name in ("browser", "daemon", "processes", "quiet", "metrics_public"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, not {getattr(self, name)!r}")

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> Config:
        """A Config from trace()'s keywords or the CLI's: a None ``files`` or ``token``
        means the default (files.user, a random token)."""
        given = {k: v for k, v in options.items()
                 if not (k in ("files", "token") and v is None)}
        unknown = sorted(set(given) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown option {unknown[0]!r}; the options are "
                              f"{', '.join(OPTIONS)}")
        return cls(**given)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


# The options, in declaration order: name -> how it appears outside Python.
OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for f in dataclasses.fields(Config)}
