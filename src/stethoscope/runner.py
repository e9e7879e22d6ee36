"""Runs a script or module as ``__main__`` exactly as ``python`` would.

Same ``__name__``, ``sys.argv``, ``sys.path[0]`` and cwd; the same exit code;
an uncaught exception printed through ``sys.excepthook`` with the runner's own
frames removed, so the traceback reads as under plain ``python``; functions
defined in the script pickle as ``__main__`` members and multiprocessing's
spawn children find the script (``__main__.__file__``) as ``__mp_main__``.
"""

from __future__ import annotations

import os
import runpy
import sys
import types
from types import TracebackType

from .files import is_internal


class TargetError(Exception):
    """The script or module cannot be run; the message says why."""


def run_script(path: str, args: list[str]) -> None:
    """Run ``path`` as ``python path *args`` would. May raise SystemExit."""
    if not os.path.exists(path):
        raise TargetError(f"can't open file {os.path.abspath(path)!r}: no such file")
    if os.path.isdir(path):
        raise TargetError(f"{path!r} is a directory; pass a script, or -m for a package")
    with open(path, "rb") as f:
        source = f.read()
    filename = os.path.abspath(path)  # python makes __main__.__file__ absolute (3.9+)
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError:
        _print_trimmed(*sys.exc_info())
        raise SystemExit(1) from None
    sys.argv = [path, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    module = types.ModuleType("__main__")
    module.__dict__.update({
        "__file__": filename,
        "__builtins__": __builtins__,
        "__cached__": None,
        "__spec__": None,
        "__loader__": None,
        "__package__": None,
    })
    previous_main = sys.modules["__main__"]
    sys.modules["__main__"] = module
    # multiprocessing's fork children look the main module up under this name.
    sys.modules["__mp_main__"] = module
    try:
        _call_trimmed(lambda: exec(code, module.__dict__))
    finally:
        # Keep the CLI's own __main__ alive; the script's module stays installed
        # so atexit handlers that use its globals still find them.
        _keep.append(previous_main)


_keep: list[object] = []


def run_module(name: str, args: list[str]) -> None:
    """Run module ``name`` as ``python -m name *args`` would. May raise SystemExit."""
    sys.argv = [name, *args]  # runpy replaces argv[0] with the module's file
    sys.path[0] = os.getcwd()
    # A module stethoscope itself imported (http.server, by its server) would make
    # runpy warn that it "found it in sys.modules": `python -m` alone has not
    # imported it, so __main__ is its only copy there too; a later import makes another.
    # (runpy warns for a plain module only; a package runs its __main__)
    loaded = sys.modules.get(name)
    if loaded is not None and not hasattr(loaded, "__path__") \
            and name.partition(".")[0] != __package__:
        del sys.modules[name]
    try:
        _call_trimmed(lambda: runpy._run_module_as_main(name, alter_argv=True))  # type: ignore[attr-defined]
    except ImportError as exc:
        raise TargetError(str(exc)) from None


def _call_trimmed(call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except SystemExit:
        raise
    except BaseException:
        exc_type, exc, tb = sys.exc_info()
        _print_trimmed(exc_type, exc, tb)
        assert exc is not None
        raise _Reported(exc) from None


class _Reported(BaseException):
    """An uncaught exception of the target that has been printed already."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(original)
        self.original = original


def _print_trimmed(exc_type: type[BaseException] | None, exc: BaseException | None,
                   tb: TracebackType | None) -> None:
    while tb is not None and is_internal(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    # runpy's own frames stay for -m, as python -m shows them.
    if exc is not None and exc_type is not None:
        exc.__traceback__ = tb
        sys.excepthook(exc_type, exc, tb)


def reraise_silently(reported: BaseException) -> None:
    """Let the interpreter end as it would on this exception, without printing it again.

    Re-raised into the interpreter, a KeyboardInterrupt still ends the process
    the way python does (killed by SIGINT, after atexit handlers), any other
    exception with exit status 1.
    """
    original = reported.original if isinstance(reported, _Reported) else reported
    sys.excepthook = lambda *args: None
    raise original.with_traceback(None)


__all__ = ["TargetError", "reraise_silently", "run_module", "run_script"]
