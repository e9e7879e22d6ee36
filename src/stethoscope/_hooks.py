"""Wrapping a function of the program's world without showing in its tracebacks.

``around(call, before=..., after=...)`` returns a callable that runs
``before(*args, **kwargs)``, then ``call(*args, **kwargs)`` (its result is the
wrapper's), then ``after(error, *args, **kwargs)`` with the exception ``call``
raised, or None. ``before`` and ``after`` are stethoscope's own: whatever they
raise is swallowed, so they can never change the outcome of ``call``, whose
exception propagates unchanged.

The accelerator (stethoscope._speedups.Around) does this in C: no Python frame of
stethoscope appears in a traceback that passes through the wrapper (the
interpreter's "Exception ignored in threading._shutdown" after Ctrl+C at exit, a
traceback printed by the program). Without it, a plain Python wrapper does the
same work, and its frame shows. ``method=True`` makes the wrapper bind like a
function when set as a class attribute (``Thread.join = around(...)``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable
from typing import Any

Before = Callable[..., object]
After = Callable[..., object]


def _load() -> Any:
    try:
        return importlib.import_module("stethoscope._speedups").Around
    except (ImportError, AttributeError):
        return None


_Around = _load()
NATIVE = _Around is not None  # tracebacks show no stethoscope frame


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


def around(call: Callable[..., Any], *, before: Before | None = None,
           after: After | None = None, method: bool = False) -> Callable[..., Any]:
    before = before or _ignore
    after = after or _ignore
    if _Around is not None:
        return _Around(call, before, after, method)  # type: ignore[no-any-return]
    return _python_around(call, before, after, method)


def _python_around(call: Callable[..., Any], before: Before, after: After,
                   method: bool) -> Callable[..., Any]:
    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(Exception):  # ours: never the program's business
            before(*args, **kwargs)
        try:
            result = call(*args, **kwargs)
        except BaseException as error:
            with contextlib.suppress(Exception):
                after(error, *args, **kwargs)
            raise
        with contextlib.suppress(Exception):
            after(None, *args, **kwargs)
        return result

    return wrapper  # a Python function binds as a method already, whatever ``method``
