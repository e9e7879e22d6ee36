"""Which source files the monitor shows: predicates over a code object's file name.

A filter is any ``callable(path: str) -> bool``. The ones here cover the common
cases and match heartrate's ``files`` module, so a heartrate user changes only the
import. ``user`` is the default: everything that is neither the standard library,
an installed package (site-packages), nor the monitor itself.
"""

from __future__ import annotations

import builtins
import os
import re
import site
import sys
import sysconfig
from collections.abc import Callable
from functools import lru_cache

FileFilter = Callable[[str], bool]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The demo workload ships inside the package but is meant to be watched.
_DEMO_DIR = os.path.join(_PACKAGE_DIR, "demo")


def _library_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    for getter in (site.getsitepackages, site.getusersitepackages):
        try:
            found = getter()
        except AttributeError:  # virtualenv's old site.py lacks these
            continue
        for path in [found] if isinstance(found, str) else found:
            roots.add(os.path.realpath(path))
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        roots.add(os.path.realpath(os.path.join(prefix, "lib")))
    return tuple(sorted(roots, key=len, reverse=True))


_ROOTS = _library_roots()


def is_internal(path: str) -> bool:
    """True for the monitor's own modules, which no filter ever shows."""
    return path.startswith(_PACKAGE_DIR + os.sep) and not path.startswith(_DEMO_DIR + os.sep)


@lru_cache(maxsize=4096)
def _is_user(path: str) -> bool:
    if not path or path.startswith("<"):
        return False  # <string>, <frozen importlib._bootstrap>, <stdin>, ...
    real = os.path.realpath(path)
    if "site-packages" in real.split(os.sep) or "dist-packages" in real.split(os.sep):
        return False
    return not any(real.startswith(root + os.sep) for root in _ROOTS)


def user(path: str) -> bool:
    """The user's own code: not the standard library, not site-packages."""
    return _is_user(path)


def _everything(path: str) -> bool:
    """Every file that has Python source, the standard library included."""
    return not path.startswith("<")


def path_contains(*parts: str) -> FileFilter:
    """Files whose path contains any of ``parts``."""
    if not parts or not builtins.all(isinstance(part, str) and part for part in parts):
        raise TypeError("files.path_contains() takes one or more non-empty strings")

    def accept(path: str) -> bool:
        return any(part in path for part in parts)

    accept.__qualname__ = f"path_contains{parts!r}"
    return accept


def contains_regex(pattern: str | re.Pattern[str]) -> FileFilter:
    """Files whose path matches ``pattern`` anywhere (``re.search``)."""
    compiled = re.compile(pattern)

    def accept(path: str) -> bool:
        return compiled.search(path) is not None

    accept.__qualname__ = f"contains_regex({compiled.pattern!r})"
    return accept


# heartrate spells "every file" files.all. This shadows the builtin in this module,
# which is why the code above says builtins.all.
all: FileFilter = _everything
