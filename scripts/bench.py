#!/usr/bin/env python3
"""`make bench`: run bench/run.py under each benchmark interpreter, print one table.

Runs under any python3 (3.6+). For each of BENCH_PYTHONS (default "3.11 3.12 3.13")
it keeps a virtualenv .venv-bench/py3.X with `pip install -e .` plus the tools the
benchmark compares against (heartrate; viztracer and pyinstrument when they
install), then runs bench/run.py in it, one interpreter after the other, and
finally prints the combined markdown table.

Environment: BENCH_PYTHONS, BENCH_RUNS (default 5), BENCH_COLUMNS, BENCH_TIMEOUT
(see bench/run.py). Raw results go to bench/results/<date>-py3.X.json.
"""

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import time

import pythons

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVS = os.path.join(ROOT, ".venv-bench")
RESULTS = os.path.join(ROOT, "bench", "results")
STAMP = ".stethoscope-stamp"
DEFAULT_PYTHONS = ["3.11", "3.12", "3.13"]
# heartrate is the reference the issue asks for; the other two are extra columns.
REQUIRED_TOOLS = ["heartrate"]
OPTIONAL_TOOLS = ["viztracer", "pyinstrument"]
PIP_TIMEOUT = int(os.environ.get("PIP_INSTALL_TIMEOUT") or "1200")


def say(text=""):
    print(text, flush=True)


def run(cmd, timeout=None):
    say("+ " + " ".join(shlex.quote(str(c)) for c in cmd))
    try:
        return subprocess.run(
            [str(c) for c in cmd], cwd=ROOT, stdin=subprocess.DEVNULL, timeout=timeout
        ).returncode
    except subprocess.TimeoutExpired:
        say("error: %s did not finish within %d s" % (cmd[0], timeout))
        return 124


def stamp_text(full_version):
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    tools = " ".join(REQUIRED_TOOLS + OPTIONAL_TOOLS)
    return "pyproject=%s\ntools=%s\npython=%s\n" % (digest, tools, full_version)


def prepare_env(minor, base_python, full_version):
    env = os.path.join(ENVS, "py" + minor)
    py = os.path.join(env, "bin", "python")
    stamp = os.path.join(env, STAMP)
    wanted = stamp_text(full_version)
    info = pythons.probe(py) if os.path.exists(py) else None
    if info is None or info[1] != full_version:
        if os.path.exists(env):
            shutil.rmtree(env)
        if run([base_python, "-m", "venv", env]) != 0:
            return None
    try:
        with open(stamp) as f:
            if f.read() == wanted:
                say("%s is up to date" % os.path.relpath(env, ROOT))
                return py
    except OSError:
        pass
    if os.path.exists(stamp):
        os.remove(stamp)
    pip = [py, "-m", "pip", "--disable-pip-version-check", "install", "--progress-bar", "off", "-q"]
    if run(pip + ["-e", "."] + REQUIRED_TOOLS, timeout=PIP_TIMEOUT) != 0:
        say("error: cannot install stethoscope and %s into %s" % (REQUIRED_TOOLS, env))
        return None
    for tool in OPTIONAL_TOOLS:
        if run(pip + [tool], timeout=PIP_TIMEOUT) != 0:
            say("note: %s does not install on CPython %s; its column is left out"
                % (tool, full_version))
    with open(stamp, "w") as f:
        f.write(wanted)
    return py


def main():
    minors = (os.environ.get("BENCH_PYTHONS") or "").replace(",", " ").split() or DEFAULT_PYTHONS
    stamp = time.strftime("%Y-%m-%dT%H%M%S")
    os.makedirs(RESULTS, exist_ok=True)
    outputs, failures, report_python = [], [], None
    found = []
    for minor in minors:
        hit = pythons.find(minor)
        if hit:
            say("found CPython %s: %s" % (hit[1], hit[0]))
            found.append((minor, hit[0], hit[1]))
        else:
            say("SKIPPED: CPython %s not found on this machine" % minor)
    if not found:
        say("error: none of the benchmark interpreters (%s) was found" % " ".join(minors))
        return 1

    for minor, base, full in found:
        say()
        say("======== CPython %s ========" % full)
        py = prepare_env(minor, base, full)
        if py is None:
            failures.append("CPython %s: environment" % full)
            continue
        out = os.path.join(RESULTS, "%s-py%s.json" % (stamp, minor))
        code = run([py, os.path.join("bench", "run.py"), "--out", out])
        if os.path.exists(out):
            outputs.append(out)
            report_python = py
        if code != 0:
            failures.append("CPython %s: bench/run.py exit %d" % (full, code))

    if outputs:
        say()
        say("======== results (raw data: %s) ========"
            % ", ".join(os.path.relpath(o, ROOT) for o in outputs))
        say()
        run([report_python, os.path.join("bench", "run.py"), "--report"] + outputs)
    for failure in failures:
        say("FAILED: " + failure)
    return 1 if failures or not outputs else 0


if __name__ == "__main__":
    sys.exit(main())
