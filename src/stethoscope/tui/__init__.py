"""The terminal view: ``stethoscope top URL`` and ``stethoscope run --tui``."""

from .app import parse_endpoint, run_program, top

__all__ = ["parse_endpoint", "run_program", "top"]
