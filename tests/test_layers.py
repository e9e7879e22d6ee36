"""Data flows one way: the package's imports keep the architecture honest.

Every module of the package belongs to a layer (a top-level module or a
subpackage), and each layer may import only the layers listed for it (besides
itself and the standard library): collectors -> model -> server / clients, with
the monitor wiring them, children and the API composing monitors, and the entry
points on top. A new module or package must be given its place here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "stethoscope"

BASE = {"_version", "_compat", "_stderr", "_fds", "_hooks"}
# layer -> the layers it may import
ALLOWED: dict[str, set[str]] = {
    "_version": set(),
    "_compat": set(),
    "_stderr": set(),
    "_fds": set(),
    "_hooks": set(),
    "files": set(),
    "config": {"files"},
    "model": set(),
    "render": {"model"},
    "collectors": {"model", "files", "config", "_compat", "_fds", "_hooks"},
    "server": {"model", "config", "_compat", "_stderr", "_version", "_fds"},
    "recordings": {"model", "render", "_version", "_compat", "_fds"},
    "monitor": {"collectors", "model", "server", "render", "recordings", "config", "files",
                *BASE},
    "children": {"monitor", "collectors", "model", "config", "files", *BASE},
    "runner": {"files"},
    "api": {"monitor", "children", "collectors", "model", "render", "config", "files",
            *BASE},
    # Clients of the HTTP API: they read JSON, never the model's objects.
    "tui": {"config", "_version"},
    "demo": set(),
    "cli": {"api", "runner", "monitor", "recordings", "server", "tui", "demo", "config",
            "files", *BASE},
    "__main__": {"cli"},
    "__init__": {"api", "config", "files", "model", "monitor", "server", *BASE},
}


def _layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    """The layers a module imports (relative and absolute imports of the package)."""
    found = set()
    parts = path.relative_to(PACKAGE).with_suffix("").parts  # a/__init__.py: (a, __init__)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            # level 1 in a/b.py (or a/__init__.py) is a; level 2 the package root
            base = list(parts[: len(parts) - node.level])
            target = [*base, *(node.module.split(".") if node.module else [])]
            if target:
                found.add(target[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stethoscope"):
            module = node.module or ""
            if "." in module:
                found.add(module.split(".")[1])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("stethoscope."):
                    found.add(alias.name.split(".")[1])
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_a_layer() -> None:
    unplaced = sorted({_layer_of(p) for p in _modules()} - set(ALLOWED))
    assert not unplaced, f"give these a place in ALLOWED: {unplaced}"


def test_each_layer_imports_only_the_layers_below_it() -> None:
    problems = []
    for path in _modules():
        layer = _layer_of(path)
        for imported in _imports(path) - {layer} - ALLOWED.get(layer, set()):
            problems.append(f"{path.relative_to(PACKAGE)} imports {imported}")
    assert not problems, problems


def test_the_layers_have_no_cycle() -> None:
    seen: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(layer: str, path: list[str]) -> None:
        state = seen.get(layer)
        assert state != 1, f"import cycle: {' -> '.join([*path, layer])}"
        if state == 2:
            return
        seen[layer] = 1
        for below in sorted(ALLOWED[layer]):
            visit(below, [*path, layer])
        seen[layer] = 2

    for layer in ALLOWED:
        visit(layer, [])


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    # The monitor wires everything, so it must show up importing the server...
    assert "server" in _imports(PACKAGE / "monitor" / "outlet.py")
    # ...and a relative import two levels up from a subpackage names the layer.
    assert "model" in _imports(PACKAGE / "collectors" / "sampler.py")
    assert "monitor" in _imports(PACKAGE / "children" / "child.py")
