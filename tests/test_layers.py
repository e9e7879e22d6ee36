"""Data flows one way: the package's imports keep the architecture honest."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "stethoscope"

# layer -> the sibling layers it may import (besides itself and the stdlib)
ALLOWED = {
    "model": set(),
    "files": set(),
    "_compat": set(),
    "config": {"files"},
    "collectors": {"model", "files", "config", "_compat"},
    "server": {"model", "_compat"},
    "render": {"model"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = path.relative_to(PACKAGE).with_suffix("").parts
            base = list(parts[: len(parts) - node.level])
            target = [*base, *(node.module.split(".") if node.module else [])]
            if target:
                found.add(target[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stethoscope"):
            found.add((node.module or "").split(".")[1] if "." in (node.module or "") else "")
    return found


def test_each_layer_imports_only_the_layers_below_it() -> None:
    problems = []
    for layer, allowed in ALLOWED.items():
        paths = list((PACKAGE / layer).rglob("*.py")) if (PACKAGE / layer).is_dir() \
            else [PACKAGE / f"{layer}.py"]
        assert paths, layer
        for path in paths:
            for imported in _imports(path) - {layer} - allowed:
                problems.append(f"{path.relative_to(PACKAGE)} imports {imported}")
    assert not problems, problems


def test_the_check_sees_a_violation() -> None:
    # The monitor wires everything, so it must show up importing the server.
    assert "server" in _imports(PACKAGE / "monitor.py")
