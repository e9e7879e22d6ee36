"""The link from a followed child process to the program's monitor.

While a monitor follows child processes, ``CHILD_ENV`` in the environment holds
the link as JSON (version 2)::

    {"v": 2, "inbox": "/tmp/stethoscope-XXXX/inbox", "files": ["user"],
     "mode": "auto", "sample_hz": 100.0, "window": 10, "hang_report": 3.0}

``inbox`` is the path of the program monitor's Unix socket, in a directory only
its user can enter (children/inbox.py); the rest are the options a child shares
with the program (those of Config marked ``child=True``, by their Config names).
No token and no port: a child reports only to its own parent's socket, never to
whatever listens on a TCP port. A Python child with stethoscope installed reads
the link at start-up (stethoscope-children.pth); a forked child gets the parent's
link object directly (api.py's after-fork hook).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from .. import files as _files
from ..config import OPTIONS, Config, ConfigError

CHILD_ENV = "STETHOSCOPE_CHILD"
LINK_VERSION = 2
# The options a followed child takes from the program's monitor.
SHARED = tuple(name for name, option in OPTIONS.items() if option.child)
# A child serves nothing: its Config's token is never used, and a fixed one spares
# it making a random one (secrets costs import time in every child).
_UNUSED_TOKEN = "child-serves-nothing"


@dataclass(frozen=True, slots=True)
class ChildLink:
    inbox: str  # the path of the program monitor's report socket
    config: Config  # the child's own settings: the program's shared options, quiet
    # False when the program's files filter is a callable of the user's own, which
    # cannot be sent: the child then shows files.user
    files_shared: bool = True

    @classmethod
    def of(cls, config: Config, inbox: str) -> ChildLink:
        spec = _files.spec_of(config.files)
        shared: dict[str, Any] = {name: getattr(config, name) for name in SHARED}
        if spec is None:
            shared["files"] = _files.user
        return cls(inbox, _child_config(shared), files_shared=spec is not None)

    def to_env(self) -> str:
        d: dict[str, Any] = {"v": LINK_VERSION, "inbox": self.inbox}
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
                raise ValueError(f"version {d.get('v')!r} (this stethoscope reads "
                                 f"version {LINK_VERSION})")
            inbox = d["inbox"]
            if not isinstance(inbox, str) or not inbox.startswith("/") or "\0" in inbox:
                raise ValueError(f"inbox {inbox!r} is not an absolute path")
            shared = {name: d[name] for name in SHARED}
            spec = shared.get("files")
            shared["files"] = _files.from_spec(tuple(str(part) for part in spec)) \
                if spec is not None else _files.user
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{CHILD_ENV} is not understood: {exc}") from None
        return cls(inbox, _child_config(shared))


def _child_config(shared: dict[str, Any]) -> Config:
    """The child's own settings: the program's shared ones, quiet, never holding the exit."""
    try:
        return dataclasses.replace(Config(token=_UNUSED_TOKEN, quiet=True, daemon=True),
                                   **shared)
    except (ConfigError, TypeError) as exc:
        raise ValueError(f"{CHILD_ENV} is not understood: {exc}") from None
