"""The server's errors, importable without the server (a child process never serves)."""

from __future__ import annotations


class PortInUseError(OSError):
    """The port asked for is taken; the message says how to pick another."""
