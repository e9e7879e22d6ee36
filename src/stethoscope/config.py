"""The monitor's settings: one frozen, validated record built by ``trace()``."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
from dataclasses import dataclass, field
from typing import Literal, get_args

from . import files as _files
from .files import FileFilter, FileSpec

Mode = Literal["auto", "sample", "lines", "trace"]
MODES: tuple[str, ...] = get_args(Mode)
DEFAULT_PORT = 9999
# Set in the environment while a monitor follows child processes: a Python child
# that has stethoscope installed reads it at start-up (stethoscope-children.pth)
# and reports to the monitor it names.
CHILD_ENV = "STETHOSCOPE_CHILD"


class ConfigError(ValueError):
    """A bad argument to ``trace()`` or the CLI; the message says what to pass instead."""


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


@dataclass(frozen=True, slots=True)
class Config:
    files: FileFilter = _files.user
    host: str = "127.0.0.1"
    # None: DEFAULT_PORT, or a free port when that one is busy. An explicit port
    # that is busy is an error; 0 asks the OS for a free port.
    port: int | None = None
    browser: bool = False
    daemon: bool = True
    mode: Mode = "auto"
    processes: bool = True
    token: str = field(default_factory=new_token)
    sample_hz: float = 100.0
    window: int = 10
    quiet: bool = False
    # Seconds after the main thread finished before the report on the threads
    # that hold the exit is printed; 0 turns it off.
    hang_report: float = 3.0
    dump_signal: int | None = None  # e.g. signal.SIGUSR1: print the thread report
    # Serve GET /metrics (Prometheus) without the token; every other path still needs it.
    metrics_public: bool = False
    # Write the snapshot stream and sampled stacks to this file (recording.py).
    record: str | None = None

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

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


@dataclass(frozen=True, slots=True)
class ChildLink:
    """What a child process needs to monitor itself and report to the program's monitor."""

    host: str
    port: int
    token: str
    mode: Mode
    files: FileSpec | None  # None: the parent's filter is the user's own callable
    sample_hz: float
    window: int
    hang_report: float

    @classmethod
    def of(cls, config: Config, port: int) -> ChildLink:
        return cls(_numeric(config.host), port, config.token, config.mode,
                   _files.spec_of(config.files), config.sample_hz, config.window,
                   config.hang_report)

    def to_env(self) -> str:
        return json.dumps({"v": 1, "host": self.host, "port": self.port, "token": self.token,
                           "mode": self.mode, "files": self.files, "sample_hz": self.sample_hz,
                           "window": self.window, "hang_report": self.hang_report})

    @classmethod
    def from_env(cls, text: str) -> ChildLink:
        """ValueError when the text is not a link this version understands."""
        try:
            d = json.loads(text)
            if d.get("v") != 1:
                raise ValueError(f"version {d.get('v')!r}")
            files = tuple(str(part) for part in d["files"]) if d["files"] is not None else None
            link = cls(str(d["host"]), int(d["port"]), str(d["token"]), d["mode"], files,
                       float(d["sample_hz"]), int(d["window"]), float(d["hang_report"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{CHILD_ENV} is not understood: {exc}") from None
        link.config()  # validates
        return link

    def config(self) -> Config:
        """The child's own settings: the parent's, quiet, never holding the exit."""
        try:
            files = _files.from_spec(self.files) if self.files is not None else _files.user
            return Config(files=files, host=self.host, port=self.port, mode=self.mode,
                          token=self.token, sample_hz=self.sample_hz, window=self.window,
                          hang_report=self.hang_report, quiet=True, daemon=True)
        except ConfigError as exc:
            raise ValueError(f"{CHILD_ENV} is not understood: {exc}") from None


def _numeric(host: str) -> str:
    """A numeric address for ``host``: children connect without name lookups."""
    if host in ("", "0.0.0.0", "localhost"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        import socket

        try:
            return str(socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)[0][4][0])
        except OSError:
            return host
