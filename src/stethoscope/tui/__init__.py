"""The terminal view: ``stethoscope top URL`` and ``stethoscope run --tui``.

A pure client of the monitor's HTTP API (docs/http-api.md), like the web page: it
polls ``/api/snapshot`` a few times a second and fetches each file's source once.
It never needs the monitored process to cooperate, so quitting the view cannot
hurt the program, and a monitor that goes away only freezes the picture. Being a
client, it may import nothing of the package but ``config`` and ``_version``, never
the model (tests/test_layers.py checks).

rich is an optional dependency (``stethoscope[tui]``): it is imported inside the
functions that draw, so ``import stethoscope`` never imports it.

The modules, each importing only those above it:

- ``client``: the monitor's address, GETs of its JSON, the poller thread
- ``program``: the child ``stethoscope run`` of ``run --tui``, its log and exit
- ``screen``: the user's choices (ViewState), one picture's data (Screen), hot lines
- ``panels``: drawing a Screen with rich
- ``keys``: key names, what each changes, the terminal's mode and signals
- ``app``: the loop that ties them together, and the entry points below
"""

from .app import run_program, top
from .client import parse_endpoint

__all__ = ["parse_endpoint", "run_program", "top"]
