#!/usr/bin/env python3
"""`make bench`: run bench/run.py under each benchmark interpreter, print one table.

Runs under any python3 (3.6+). For each of BENCH_PYTHONS (default "3.11 3.12 3.13")
it keeps a virtualenv .venv-bench/py3.X with `pip install -e .` plus the tools the
benchmark compares against (heartrate; viztracer and pyinstrument when they
install), then runs bench/run.py in it, one interpreter after the other, and
finally prints the combined markdown table.

Then, per interpreter, bench/bounded.py: memory, snapshot size and build time of
a long run (10,000 lines, 200 threads, hours of simulated time) must stay flat.
And bench/load.py: 50 event streams, 10 stalled ones and 200 snapshot requests/s
against a monitored CPU workload for 60 s; then, when the test environment
.venv-test/py3.X exists (`make test` makes it), the fuzz test tests/test_fuzz.py,
which writes its case count to bench/results/<date>-py3.X-fuzz-load.json.
And, with that test environment too, bench/figures.py: the timings the test suite
measures but does not bound (exit delays, drop times, latencies, sample rates), from
the tests that measure them.

    scripts/bench.py             all four (`make bench`)
    scripts/bench.py table       the side-by-side table only
    scripts/bench.py bounded     the bounded-cost scenario only (`make bench-bounded`)
    scripts/bench.py load        the load benchmark and the fuzz count (`make bench-load`)
    scripts/bench.py figures     the tests' figures only

Environment: BENCH_PYTHONS, BENCH_RUNS (default 5), BENCH_ROWS, BENCH_COLUMNS,
BENCH_SCALE, BENCH_TIMEOUT, BENCH_BROWSER (see bench/run.py); BOUNDED_SECONDS,
BOUNDED_HOURS (see bench/bounded.py); LOAD_SECONDS (default 60),
STETHOSCOPE_FUZZ_EXAMPLES (see tests/test_fuzz.py); FIGURES_RUNS (default 3). Raw
results go to bench/results/<date>-py3.X.json, <date>-bounded-py3.X.json,
<date>-py3.X-load.json and <date>-py3.X-figures.json.
"""

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
# heartrate is the reference the issue asks for, pygments the third-party workload
# (pinned: every interpreter highlights the same code with the same lexer); the
# rest are extra columns (py-spy) or the browser for the stop() pass (playwright,
# driving Debian's /usr/bin/chromium: `playwright install` cannot download here).
REQUIRED_TOOLS = ["heartrate", "pygments==2.21.0"]
OPTIONAL_TOOLS = ["viztracer", "pyinstrument", "py-spy", "playwright"]
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
    digest = pythons.build_digest()
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
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what not in ("all", "table", "bounded", "load", "figures"):
        say("usage: bench.py [all|table|bounded|load|figures]")
        return 2
    minors = (os.environ.get("BENCH_PYTHONS") or "").replace(",", " ").split() or DEFAULT_PYTHONS
    stamp = time.strftime("%Y-%m-%dT%H%M%S")
    os.makedirs(RESULTS, exist_ok=True)
    outputs, bounded, loads, failures, report_python = [], [], [], [], None
    figures, figures_python = [], None
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
        if what in ("all", "table"):
            out = os.path.join(RESULTS, "%s-py%s.json" % (stamp, minor))
            code = run([py, os.path.join("bench", "run.py"), "--out", out])
            if os.path.exists(out):
                outputs.append(out)
                report_python = py
            if code != 0:
                failures.append("CPython %s: bench/run.py exit %d" % (full, code))
        if what in ("all", "bounded"):
            out = os.path.join(RESULTS, "%s-bounded-py%s.json" % (stamp, minor))
            code = run([py, os.path.join("bench", "bounded.py"), "--out", out])
            if os.path.exists(out):
                bounded.append(out)
                report_python = report_python or py
            if code != 0:
                failures.append("CPython %s: bench/bounded.py exit %d" % (full, code))
        if what in ("all", "load"):
            out = os.path.join(RESULTS, "%s-py%s-load.json" % (stamp, minor))
            seconds = os.environ.get("LOAD_SECONDS") or "60"
            code = run([py, os.path.join("bench", "load.py"), "--seconds", seconds, "--out", out])
            if os.path.exists(out):
                loads.append(out)
                report_python = report_python or py
            if code != 0:
                failures.append("CPython %s: bench/load.py exit %d" % (full, code))
            test_py = os.path.join(ROOT, ".venv-test", "py" + minor, "bin", "python")
            if os.path.exists(test_py):
                os.environ["STETHOSCOPE_FUZZ_RESULTS"] = os.path.join(
                    RESULTS, "%s-py%s-fuzz-load.json" % (stamp, minor))
                code = run([test_py, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            os.path.join("tests", "test_fuzz.py")], timeout=PIP_TIMEOUT)
                del os.environ["STETHOSCOPE_FUZZ_RESULTS"]
                if code != 0:
                    failures.append("CPython %s: tests/test_fuzz.py exit %d" % (full, code))
            else:
                say("note: no %s (`make test` makes it): the fuzz test is left out"
                    % os.path.relpath(test_py, ROOT))
        if what in ("all", "figures"):
            test_py = os.path.join(ROOT, ".venv-test", "py" + minor, "bin", "python")
            if os.path.exists(test_py):
                out = os.path.join(RESULTS, "%s-py%s-figures.json" % (stamp, minor))
                code = run([test_py, os.path.join("bench", "figures.py"), "--out", out,
                            "--runs", os.environ.get("FIGURES_RUNS") or "3"])
                if os.path.exists(out):
                    figures.append(out)
                    figures_python = test_py
                if code != 0:
                    failures.append("CPython %s: bench/figures.py exit %d" % (full, code))
            else:
                say("note: no %s (`make test` makes it): the tests' figures are left out"
                    % os.path.relpath(test_py, ROOT))

    if outputs:
        say()
        say("======== results (raw data: %s) ========"
            % ", ".join(os.path.relpath(o, ROOT) for o in outputs))
        say()
        run([report_python, os.path.join("bench", "run.py"), "--report"] + outputs)
    if bounded:
        say()
        run([report_python, os.path.join("bench", "bounded.py"), "--report"] + bounded)
    if loads:
        say()
        run([report_python, os.path.join("bench", "load.py"), "--report"] + loads)
    if figures:
        say()
        run([figures_python, os.path.join("bench", "figures.py"), "--report"] + figures)
    for failure in failures:
        say("FAILED: " + failure)
    return 1 if failures or (what in ("all", "table") and not outputs) else 0


if __name__ == "__main__":
    sys.exit(main())
