"""The monitor: wiring (core.py), modes, the backend the server serves, the periodic
housekeeping, signals, the recording part and source reading, one module each."""

from .core import Monitor

__all__ = ["Monitor"]
