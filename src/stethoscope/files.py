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
# A filter as plain data, so that child processes can rebuild it:
# ("user",), ("all",), ("contains", part, ...), ("regex", pattern).
FileSpec = tuple[str, ...]
_SPEC = "_stethoscope_spec"

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
    setattr(accept, _SPEC, ("contains", *parts))
    return accept


def contains_regex(pattern: str | re.Pattern[str]) -> FileFilter:
    """Files whose path matches ``pattern`` anywhere (``re.search``)."""
    compiled = re.compile(pattern)

    def accept(path: str) -> bool:
        return compiled.search(path) is not None

    accept.__qualname__ = f"contains_regex({compiled.pattern!r})"
    setattr(accept, _SPEC, ("regex", compiled.pattern))
    return accept


# heartrate spells "every file" files.all. This shadows the builtin in this module,
# which is why the code above says builtins.all.
all: FileFilter = _everything


def spec_of(accept: FileFilter) -> FileSpec | None:
    """The filter as plain data, or None for a filter of the user's own."""
    if accept is user:
        return ("user",)
    if accept is _everything:
        return ("all",)
    spec = getattr(accept, _SPEC, None)
    return spec if isinstance(spec, tuple) else None


def from_spec(spec: FileSpec) -> FileFilter:
    """The filter ``spec_of`` described; ValueError for anything else."""
    kind, *args = spec if spec else ("",)
    if kind == "user" and not args:
        return user
    if kind == "all" and not args:
        return _everything
    if kind == "contains" and args:
        return path_contains(*args)
    if kind == "regex" and len(args) == 1:
        try:
            return contains_regex(args[0])
        except re.error as exc:
            raise ValueError(f"bad regular expression {args[0]!r}: {exc}") from None
    raise ValueError(f"{spec!r} does not describe a files filter")


def parse(text: str) -> FileFilter:
    """The command line's form: user, all, contains:PART[,PART...], regex:PATTERN."""
    kind, sep, value = text.partition(":")
    if kind in ("user", "all") and not sep:
        return from_spec((kind,))
    if sep and value and kind == "contains":
        return from_spec(("contains", *value.split(",")))
    if sep and value and kind == "regex":
        return from_spec(("regex", value))
    raise ValueError(f"{text!r} is not a files filter: use user, all, contains:PART[,PART...] "
                     f"or regex:PATTERN")
