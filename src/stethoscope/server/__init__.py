"""The HTTP server: serves what the monitor holds, to clients that hold the token.

Only the error type is imported here: the server itself (``server.httpd``, which
brings in ``http.server``) is imported by the monitor that serves, never by a
child process's monitor, which only reports.
"""

from .errors import PortInUseError

__all__ = ["PortInUseError"]
