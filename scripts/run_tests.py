#!/usr/bin/env python3
"""`make test`, `make lint`, `make typecheck`: the whole check, on every CPython found.

Runs under any python3 (3.6+); everything else runs in per-interpreter virtualenvs
.venv-test/py3.X with `pip install -e .[test,dev]`. An environment is reinstalled
only when pyproject.toml (or the interpreter) changes: a stamp file in the venv
holds a hash of both.

    run_tests.py test        chromium and speedscope, then ruff + mypy once, then pytest
                             per interpreter
    run_tests.py lint        ruff check src tests bench
    run_tests.py typecheck   mypy (configured in pyproject.toml)

Environment (the Makefile passes these through):
    PYTHONS="3.12 3.13"      which minor versions to test (default: 3.10 3.11 3.12 3.13)
    PYTEST_ARGS="-k foo -x"  extra pytest arguments (split like a shell would)
    PYTEST_JOBS=1            interpreters tested at once (default 2; logs are printed
                             whole as each run ends)
    TOOLS_PYTHON=3.12        which interpreter's env runs ruff and mypy (default 3.12,
                             else the newest available)

Every result is printed in a summary at the end; the exit status is non-zero if any
step failed, if no interpreter was found, or if pytest collected no tests (exit 5).
"""

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pythons

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVS = os.path.join(ROOT, ".venv-test")
EXTRAS = "test,dev"
STAMP = ".stethoscope-stamp"
PIP_TIMEOUT = int(os.environ.get("PIP_INSTALL_TIMEOUT") or "1200")
# A whole pytest run is bounded too: pytest-timeout's signal method cannot fire when
# the main thread is stuck (e.g. a deadlock inside a tracing callback), and CI must
# never hang. On expiry the run gets SIGABRT first, so pytest's faulthandler prints
# every thread's stack, then SIGKILL.
PYTEST_RUN_TIMEOUT = int(os.environ.get("PYTEST_RUN_TIMEOUT") or "1800")
MIN_VERSION = (3, 10)  # requires-python in pyproject.toml

PYTEST_EXIT = {
    0: "passed",
    1: "tests failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}


def say(text=""):
    print(text, flush=True)


def banner(text):
    say()
    say("=" * 8 + " " + text + " " + "=" * max(8, 70 - len(text)))


def run(cmd, timeout=None, **kwargs):
    """Run a command with inherited stdio, echoing it; return its exit status."""
    say("+ " + " ".join(shlex.quote(str(c)) for c in cmd))
    kwargs.setdefault("cwd", ROOT)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    try:
        return subprocess.run([str(c) for c in cmd], timeout=timeout, **kwargs).returncode
    except subprocess.TimeoutExpired:
        say("error: %s did not finish within %d s; stopped" % (cmd[0], timeout))
        return 124
    except OSError as exc:
        say("error: cannot run %s: %s" % (cmd[0], exc))
        return 127


def minor_key(minor):
    try:
        return tuple(int(x) for x in minor.split("."))
    except ValueError:
        return (0,)


def wanted_versions():
    raw = (os.environ.get("PYTHONS") or "").replace(",", " ").split()
    out = []
    for item in raw or pythons.SUPPORTED:
        item = item.strip()
        if item.startswith("py"):
            item = item[2:]
        if item and item not in out:
            out.append(item)
    return out


def stamp_text(interpreter_version):
    digest = pythons.build_digest()
    return "pyproject=%s\nextras=%s\npython=%s\n" % (digest, EXTRAS, interpreter_version)


def venv_python(env):
    return os.path.join(env, "bin", "python")


def activated(env):
    """The environment of a command run 'inside' a venv, as if it were activated."""
    out = dict(os.environ)
    out["VIRTUAL_ENV"] = env
    out["PATH"] = os.path.join(env, "bin") + os.pathsep + out.get("PATH", "")
    out.pop("PYTHONHOME", None)
    return out


def run_pytests(runs, pytest_args):
    """pytest under each (full version, env) in ``runs``, PYTEST_JOBS at a time (default
    2: the suite waits on child processes and browsers much of the time, so two
    interpreters side by side nearly halve the wall time on 2 CPUs). Each run writes
    to its own log, printed whole when it ends; each is bounded by PYTEST_RUN_TIMEOUT
    (then SIGABRT, so faulthandler prints the stacks, then SIGKILL)."""
    jobs = max(1, int(os.environ.get("PYTEST_JOBS") or "2"))
    pending, running, done = list(runs), [], {}
    try:
        _run_pytests(pending, running, done, jobs, pytest_args)
    except BaseException:
        for item in running:  # Ctrl+C: the runs got it too; do not leave them behind
            item[2].kill()
            item[2].wait()
        raise
    return [done[full] for full, _env in runs]


def _run_pytests(pending, running, done, jobs, pytest_args):
    while pending or running:
        while pending and len(running) < jobs:
            full, env = pending.pop(0)
            log_path = os.path.join(ENVS, "pytest-%s.log" % full)
            log = open(log_path, "w")
            cmd = [venv_python(env), "-m", "pytest"] + pytest_args
            say("started pytest on CPython %s: %s (log %s)"
                % (full, " ".join(shlex.quote(c) for c in cmd), os.path.relpath(log_path, ROOT)))
            proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=activated(env))
            running.append((full, env, proc, log, log_path, time.monotonic()))
        time.sleep(0.5)
        for item in list(running):
            full, env, proc, log, log_path, t0 = item
            code = proc.poll()
            if code is None and time.monotonic() - t0 > PYTEST_RUN_TIMEOUT:
                say("error: pytest on CPython %s did not finish within %d s "
                    "(PYTEST_RUN_TIMEOUT); dumping stacks and stopping it"
                    % (full, PYTEST_RUN_TIMEOUT))
                proc.send_signal(signal.SIGABRT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                code = 124
            if code is None:
                continue
            running.remove(item)
            log.close()
            banner("pytest on CPython %s (%s)" % (full, os.path.relpath(env, ROOT)))
            with open(log_path) as f:
                sys.stdout.write(f.read())
            reason = "timed out" if code == 124 else PYTEST_EXIT.get(code, "failed")
            done[full] = ("pytest CPython %s" % full, code == 0,
                          "%s, exit %d, %.0f s" % (reason, code, time.monotonic() - t0))


def prepare_env(minor, base_python, full_version):
    """Create/refresh .venv-test/py<minor>; return (env path, error or None)."""
    env = os.path.join(ENVS, "py" + minor)
    py = venv_python(env)
    stamp = os.path.join(env, STAMP)
    wanted = stamp_text(full_version)

    info = pythons.probe(py) if os.path.exists(py) else None
    if info is None or info[1] != full_version:
        if os.path.exists(env):
            say("recreating %s (interpreter missing or changed)" % os.path.relpath(env, ROOT))
            shutil.rmtree(env)
        if run([base_python, "-m", "venv", env]) != 0:
            return env, "cannot create the virtualenv"

    try:
        with open(stamp) as f:
            if f.read() == wanted:
                say("%s is up to date" % os.path.relpath(env, ROOT))
                return env, None
    except OSError:
        pass

    if os.path.exists(stamp):
        os.remove(stamp)
    pip = [py, "-m", "pip", "--disable-pip-version-check", "install", "--progress-bar", "off", "-q"]
    # pip's resolver can backtrack for a very long time when something cannot be
    # satisfied; a bound keeps CI from hanging on it.
    if run(pip + ["-e", ".[%s]" % EXTRAS], timeout=PIP_TIMEOUT) != 0:
        return env, "pip install -e .[%s] failed" % EXTRAS
    with open(stamp, "w") as f:
        f.write(wanted)
    return env, None


def ensure(what, script, *args):
    """Run one of the install scripts for a test dependency that pip does not bring."""
    banner(what)
    return run(["bash", os.path.join(ROOT, "scripts", script)] + list(args)) == 0


def find_versions(minors):
    """Return ([(minor, path, full version)], {minor: why skipped}), saying each."""
    found, skipped = [], {}
    for minor in minors:
        if minor_key(minor) < MIN_VERSION:
            skipped[minor] = "SKIPPED: CPython %s is not supported (requires-python >= %d.%d)" % (
                (minor,) + MIN_VERSION)
        else:
            hit = pythons.find(minor)
            if hit:
                say("found CPython %s: %s" % (hit[1], hit[0]))
                found.append((minor, hit[0], hit[1]))
                continue
            skipped[minor] = "SKIPPED: CPython %s not found on this machine" % minor
        say(skipped[minor])
    return found, skipped


def tools_minor(available):
    """The env that runs ruff and mypy: TOOLS_PYTHON, else 3.12, else the newest."""
    if not available:
        return None
    pref = os.environ.get("TOOLS_PYTHON") or "3.12"
    if pref in available:
        return pref
    return max(available, key=minor_key)


def lint(env):
    return run([os.path.join(env, "bin", "ruff"), "check", "src", "tests", "bench"],
               env=activated(env))


def typecheck(env):
    # mypy's `files` and strictness live in pyproject.toml.
    return run([os.path.join(env, "bin", "mypy")], env=activated(env))


def prepare_tools_env(minors):
    """Find and prepare one env for ruff/mypy; return its path or None."""
    found = {}
    for minor in minors:
        hit = pythons.find(minor)
        if hit:
            found[minor] = hit
    order = []
    first = tools_minor(list(found))
    if first:
        order.append(first)
    order += sorted((m for m in found if m != first), key=minor_key, reverse=True)
    for minor in order:
        env, err = prepare_env(minor, found[minor][0], found[minor][1])
        if err is None:
            return env
        say("error: %s: %s" % (os.path.relpath(env, ROOT), err))
    return None


def single_tool(name):
    env = prepare_tools_env(pythons.SUPPORTED)
    if env is None:
        say("error: no usable CPython 3.10+ environment for %s" % name)
        return 1
    banner("%s (%s)" % (name, os.path.relpath(env, ROOT)))
    return lint(env) if name == "ruff" else typecheck(env)


def test():
    started = time.monotonic()
    results = []  # (label, ok, detail)
    pytest_args = shlex.split(os.environ.get("PYTEST_ARGS") or "")

    results.append(("chromium", ensure("Debian chromium (browser tests)",
                                       "ensure-debian-package.sh", "chromium", "chromium"),
                     "/usr/bin/chromium"))
    results.append(("tmux", ensure("tmux (terminal view tests)", "ensure-debian-package.sh",
                                   "tmux", "tmux"), "/usr/bin/tmux"))
    results.append(("speedscope", ensure("speedscope npm package (export tests)",
                                         "ensure-speedscope.sh"), ".cache/speedscope"))

    banner("interpreters")
    found, skipped = find_versions(wanted_versions())
    for minor, why in skipped.items():
        results.append(("CPython %s" % minor, None, why))
    if not found:
        say("error: none of the requested CPython versions (%s) was found"
            % " ".join(wanted_versions()))
        results.append(("interpreters", False, "none found"))

    envs = {}
    for minor, base, full in found:
        banner("environment for CPython %s" % full)
        env, err = prepare_env(minor, base, full)
        if err:
            results.append(("CPython %s install" % full, False, err))
        else:
            envs[minor] = (env, full)

    tools = tools_minor(list(envs))
    if tools:
        env, full = envs[tools]
        banner("ruff (CPython %s)" % full)
        code = lint(env)
        results.append(("ruff check", code == 0, "exit %d" % code))
        banner("mypy (CPython %s)" % full)
        code = typecheck(env)
        results.append(("mypy", code == 0, "exit %d" % code))
    elif found:
        results.append(("ruff + mypy", False, "no environment installed"))

    runs = [(full, envs[minor][0]) for minor, _base, full in found if minor in envs]
    results.extend(run_pytests(runs, pytest_args))

    banner("summary")
    for label, ok, detail in results:
        status = "skip" if ok is None else "ok" if ok else "FAIL"
        say("%-4s  %-26s %s" % (status, label, detail))
    failed = [r for r in results if r[1] is False]
    say("%s in %.0f s" % ("FAILED" if failed else "all passed", time.monotonic() - started))
    return 1 if failed else 0


def main(argv):
    try:
        return dispatch(argv)
    except KeyboardInterrupt:
        say("\ninterrupted")
        return 130


def dispatch(argv):
    command = argv[0] if argv else "test"
    if command == "test":
        return test()
    if command == "lint":
        return single_tool("ruff")
    if command == "typecheck":
        return single_tool("mypy")
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
