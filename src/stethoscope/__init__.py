"""stethoscope: watch a running Python program live.

    import stethoscope
    mon = stethoscope.trace()      # prints the URL of the live page
    ...
    stethoscope.stop()

See README.md for the whole API.
"""

from __future__ import annotations

from . import files
from ._version import __version__
from .api import AlreadyRunningError, current, dump, stop, trace
from .config import ConfigError
from .model import Snapshot
from .monitor import Monitor
from .server import PortInUseError

__all__ = [
    "AlreadyRunningError",
    "ConfigError",
    "Monitor",
    "PortInUseError",
    "Snapshot",
    "__version__",
    "current",
    "dump",
    "files",
    "stop",
    "trace",
]
