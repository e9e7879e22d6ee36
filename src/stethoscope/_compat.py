"""The only place that switches on the Python version."""

from __future__ import annotations

import sys

HAS_MONITORING = sys.version_info >= (3, 12)
PY_VERSION = ".".join(str(part) for part in sys.version_info[:3])
