"""Build hook: the children .pth file, and the optional C accelerator.

1. stethoscope-children.pth goes to the top of site-packages. Python runs the one
   line in it at start-up; it costs an environment lookup, and only when a monitor
   that follows child processes has set STETHOSCOPE_CHILD does it import
   stethoscope and start monitoring that process. Editable installs get the file
   too, so children are followed in a development checkout as well.

2. src/stethoscope/_speedups.c is compiled for the interpreter running the build
   (its include directory and EXT_SUFFIX from sysconfig; the compiler from $CC,
   else sysconfig's CC, else ``cc``). A wheel gets the module and a platform tag;
   an editable install gets it next to src/stethoscope/__init__.py, named with the
   interpreter's suffix so that builds for several Pythons sit side by side (they
   are in .gitignore). No compiler, a failed compile, a free-threaded interpreter
   or STETHOSCOPE_NO_SPEEDUPS=1: one warning line, and the install goes on as pure
   Python (stethoscope then counts with its Python callback).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PTH = "stethoscope-children.pth"
SOURCE = "src/stethoscope/_speedups.c"
MODULE = "stethoscope/_speedups"
NO_SPEEDUPS_ENV = "STETHOSCOPE_NO_SPEEDUPS"
COMPILE_TIMEOUT = 300  # seconds


class StethoscopeBuildHook(BuildHookInterface):  # type: ignore[misc]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        editable = version == "editable"
        key = "force_include_editable" if editable else "force_include"
        build_data.setdefault(key, {})[f"src/{PTH}"] = PTH
        self._tmp: str | None = None
        built = self._build_speedups(editable)
        if built is None:
            return
        if not editable:
            # The editable wheel finds the module in src/ through its .pth file.
            build_data["force_include"][built] = MODULE + ext_suffix()
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _build_speedups(self, editable: bool) -> str | None:
        """The path of the compiled module, or None (after one warning line)."""
        # Where an editable install finds it. Replaced, never overwritten in place
        # (a running process may have it mapped); removed when this build has none,
        # so that an older build cannot linger.
        target = os.path.join(self.root, "src", MODULE + ext_suffix())

        def without(what: str) -> None:
            self._warn(f"the C accelerator {what}; stethoscope counts lines in pure Python")
            if editable:
                remove(target)

        why = skip_reason()
        if why is not None:
            without(f"is not built ({why})")
            return None
        self._tmp = tempfile.mkdtemp(prefix="stethoscope-build-")
        output = os.path.join(self._tmp, "_speedups" + ext_suffix())
        error = compile_module(os.path.join(self.root, SOURCE), output)
        if error is not None:
            without(f"could not be built ({error})")
            return None
        if not editable:
            return output
        staged = target + ".tmp"
        shutil.copyfile(output, staged)
        os.replace(staged, target)
        return target

    def _warn(self, message: str) -> None:
        self.app.display_warning(f"stethoscope: {message}")


def remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def ext_suffix() -> str:
    return str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def skip_reason() -> str | None:
    if os.environ.get(NO_SPEEDUPS_ENV, "") not in ("", "0"):
        return f"{NO_SPEEDUPS_ENV} is set"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "it relies on the GIL, and this Python is free-threaded"
    if sys.implementation.name != "cpython":
        return f"it is for CPython, not {sys.implementation.name}"
    if sys.platform == "win32":
        return "no Windows build yet"
    return None


def compiler() -> list[str] | None:
    """The C compiler command: $CC, else sysconfig's CC, else cc (if it exists)."""
    candidates = [os.environ.get("CC") or sysconfig.get_config_var("CC") or "", "cc"]
    if os.environ.get("CC"):
        candidates = candidates[:1]  # asked for: no silent substitute
    for candidate in candidates:
        words = shlex.split(candidate)
        if words and shutil.which(words[0]):
            return words
    return None


def compile_module(source: str, output: str) -> str | None:
    """Compile and link source into the extension module output; None on success,
    else a one-line reason."""
    cc = compiler()
    if cc is None:
        return "no C compiler found (set CC)"
    include = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(include, "Python.h")):
        return f"Python.h is missing from {include} (install the Python headers)"
    link = ["-bundle", "-undefined", "dynamic_lookup"] if sys.platform == "darwin" \
        else ["-shared"]
    command = [*cc, "-O2", "-fPIC", "-I", include, *link, source, "-o", output]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{cc[0]}: {exc}"
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if "error" in line]
        return f"{cc[0]} exited with {done.returncode}" + (f": {lines[0].strip()}" if lines
                                                            else "")
    return None
