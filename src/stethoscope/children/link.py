"""The link from a followed child process to the program's monitor.

While a monitor follows child processes, ``CHILD_ENV`` in the environment holds
the link as JSON: where to report (a numeric address, the port, the token) and
the options a child shares with the program (those of Config marked
``child=True``, by their Config names). A Python child with stethoscope installed
reads it at start-up (stethoscope-children.pth); a forked child gets the parent's
link object directly (api.py's after-fork hook).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from .. import files as _files
from ..config import OPTIONS, Config, ConfigError

CHILD_ENV = "STETHOSCOPE_CHILD"
LINK_VERSION = 1
# The options a followed child takes from the program's monitor.
SHARED = tuple(name for name, option in OPTIONS.items() if option.child)


@dataclass(frozen=True, slots=True)
class ChildLink:
    host: str  # numeric: a child connects without name lookups
    port: int
    token: str
    config: Config  # the child's own settings: the program's shared options, quiet
    # False when the program's files filter is a callable of the user's own, which
    # cannot be sent: the child then shows files.user
    files_shared: bool = True

    @classmethod
    def of(cls, config: Config, port: int) -> ChildLink:
        host = _numeric(config.host)
        spec = _files.spec_of(config.files)
        shared: dict[str, Any] = {name: getattr(config, name) for name in SHARED}
        if spec is None:
            shared["files"] = _files.user
        return cls(host, port, config.token, _child_config(host, port, config.token, shared),
                   files_shared=spec is not None)

    def to_env(self) -> str:
        d: dict[str, Any] = {"v": LINK_VERSION, "host": self.host, "port": self.port,
                             "token": self.token}
        for name in SHARED:
            value = getattr(self.config, name)
            d[name] = _files.spec_of(value) if name == "files" else value
        return json.dumps(d)

    @classmethod
    def from_env(cls, text: str) -> ChildLink:
        """ValueError when the text is not a link this version understands."""
        try:
            d = json.loads(text)
            if d.get("v") != LINK_VERSION:
                raise ValueError(f"version {d.get('v')!r}")
            host, port, token = str(d["host"]), int(d["port"]), str(d["token"])
            shared = {name: d[name] for name in SHARED}
            spec = shared.get("files")
            shared["files"] = _files.from_spec(tuple(str(part) for part in spec)) \
                if spec is not None else _files.user
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{CHILD_ENV} is not understood: {exc}") from None
        return cls(host, port, token, _child_config(host, port, token, shared))


def _child_config(host: str, port: int, token: str, shared: dict[str, Any]) -> Config:
    """The child's own settings: the program's shared ones, quiet, never holding the exit."""
    try:
        return dataclasses.replace(Config(host=host, port=port, token=token, quiet=True,
                                          daemon=True), **shared)
    except (ConfigError, TypeError) as exc:
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
