"""The HTTP server: serves what the monitor holds, to clients that hold the token."""

from .httpd import Backend, PortInUseError, Server

__all__ = ["Backend", "PortInUseError", "Server"]
