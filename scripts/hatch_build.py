"""Build hook: put stethoscope-children.pth at the top of site-packages.

Python runs the one line in it at start-up; it costs an environment lookup, and
only when a monitor that follows child processes has set STETHOSCOPE_CHILD does
it import stethoscope and start monitoring that process. Editable installs get
the file too, so children are followed in a development checkout as well.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PTH = "stethoscope-children.pth"


class ChildrenPthHook(BuildHookInterface):  # type: ignore[misc]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        key = "force_include_editable" if version == "editable" else "force_include"
        build_data.setdefault(key, {})[f"src/{PTH}"] = PTH
