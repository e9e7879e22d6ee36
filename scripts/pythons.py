#!/usr/bin/env python3
"""Find CPython interpreters on this machine, by minor version.

Used by the Makefile, scripts/run_tests.py and scripts/bench.py. Runs under any
python3 (3.6+), so it avoids newer syntax.

Where it looks, for "3.12":
  1. pyenv: the versions listed by `pyenv versions --bare` and the directories
     $PYENV_ROOT/versions/3.12.* (or ~/.pyenv), newest patch release first;
  2. `python3.12` on PATH (a pyenv shim that is not selected fails to run and is
     therefore rejected: every candidate is run and must report CPython 3.12).

Command line:
  pythons.py find 3.12        print "<path> <full version>", or exit 1
  pythons.py list 3.10 3.11   one line per version: "<minor> <path> <full version>"
                              or "<minor> - -" when not found
  pythons.py default          the interpreter for `make demo`: python3 itself when it
                              is CPython >= 3.10, else the newest CPython >= 3.10 found
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys

SUPPORTED = ["3.10", "3.11", "3.12", "3.13"]

_PROBE = (
    "import platform, sys; "
    "print(platform.python_implementation(), '%d.%d.%d' % sys.version_info[:3])"
)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What `pip install -e .` builds from: a venv whose stamp differs is reinstalled.
BUILD_INPUTS = ("pyproject.toml", "src/stethoscope/_speedups.c", "scripts/hatch_build.py")


def build_digest():
    """A digest of BUILD_INPUTS (the project file, the C accelerator, the build hook)."""
    digest = hashlib.sha256()
    for name in BUILD_INPUTS:
        with open(os.path.join(ROOT, *name.split("/")), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def probe(exe):
    """Return (implementation, "X.Y.Z") for an interpreter, or None if it does not run."""
    try:
        out = subprocess.run(
            [exe, "-c", _PROBE],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    parts = out.stdout.split()
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def _patch_key(version):
    return tuple(int(p) for p in version.split("."))


def _pyenv_root():
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    if shutil.which("pyenv"):
        try:
            out = subprocess.run(
                ["pyenv", "root"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                timeout=30,
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return os.path.expanduser("~/.pyenv")


def _pyenv_versions():
    names = set()
    if shutil.which("pyenv"):
        try:
            out = subprocess.run(
                ["pyenv", "versions", "--bare"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                timeout=30,
            )
            if out.returncode == 0:
                names.update(line.strip() for line in out.stdout.splitlines())
        except (OSError, subprocess.SubprocessError):
            pass
    root = _pyenv_root()
    versions_dir = os.path.join(root, "versions")
    if os.path.isdir(versions_dir):
        names.update(os.listdir(versions_dir))
    return root, names


def candidates(minor):
    """Interpreter paths that might be CPython `minor`, best first."""
    root, names = _pyenv_versions()
    # Only plain release builds "3.12.1" (not "3.13.0t" free-threaded, not "3.12-dev").
    pattern = re.compile(r"^" + re.escape(minor) + r"\.\d+$")
    found = sorted((n for n in names if pattern.match(n)), key=_patch_key, reverse=True)
    paths = []
    for name in found:
        for exe in ("python" + minor, "python3", "python"):
            path = os.path.join(root, "versions", name, "bin", exe)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                paths.append(path)
                break
    on_path = shutil.which("python" + minor)
    if on_path:
        paths.append(on_path)
    return paths


def find(minor):
    """Return (path, full_version) of a working CPython `minor`, or None."""
    for path in candidates(minor):
        info = probe(path)
        if info and info[0] == "CPython" and info[1].rsplit(".", 1)[0] == minor:
            return path, info[1]
    return None


def default():
    """The interpreter for the demo venv: python3 if new enough, else the newest found."""
    here = shutil.which("python3")
    if here:
        info = probe(here)
        if info and info[0] == "CPython" and _patch_key(info[1])[:2] >= (3, 10):
            return here, info[1]
    for minor in sorted(SUPPORTED, key=_patch_key, reverse=True):
        hit = find(minor)
        if hit:
            return hit
    # A newer CPython than the ones listed (3.14, ...) is still fine for the demo.
    for minor in ("3.16", "3.15", "3.14"):
        hit = find(minor)
        if hit:
            return hit
    return None


def main(argv):
    if len(argv) >= 2 and argv[0] == "find":
        hit = find(argv[1])
        if not hit:
            return 1
        print(hit[0], hit[1])
        return 0
    if argv and argv[0] == "list":
        for minor in argv[1:] or SUPPORTED:
            hit = find(minor)
            print(minor, *(hit or ("-", "-")))
        return 0
    if argv == ["default"]:
        hit = default()
        if not hit:
            sys.stderr.write(
                "error: stethoscope needs CPython >= 3.10; none found "
                "(python3 is older, and no pyenv or python3.1X interpreter was found)\n"
            )
            return 1
        print(hit[0])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
