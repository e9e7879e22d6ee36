"""Shared fixtures: the no-leak guard every test runs under, and process helpers."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stethoscope

ROOT = Path(__file__).resolve().parents[1]
HAS_MONITORING = sys.version_info >= (3, 12)
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright drives it (make test installs it)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _tool_ids() -> list[str | None]:
    if not HAS_MONITORING:
        return []
    return [sys.monitoring.get_tool(i) for i in range(6)]


def _patched_state() -> dict[str, object]:
    """Everything a monitor may patch or set; all of it must be as before afterwards."""
    import multiprocessing.process
    import signal

    return {
        "sys.gettrace": sys.gettrace(),
        "threading.gettrace": threading.gettrace(),
        "tool ids": _tool_ids(),
        "threading._shutdown": threading._shutdown,  # type: ignore[attr-defined]
        "Thread.__init__": threading.Thread.__init__,
        "Thread.start": threading.Thread.start,
        "Thread.join": threading.Thread.join,
        "BaseProcess._bootstrap": multiprocessing.process.BaseProcess._bootstrap,  # type: ignore[attr-defined]
        "os._exit": os._exit,
        "SIGTERM handler": signal.getsignal(signal.SIGTERM),
        "STETHOSCOPE_CHILD": os.environ.get("STETHOSCOPE_CHILD"),
    }


def _own_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stethoscope")]


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail any test that leaves a monitor, a tracer, a tool id, a hook or a thread behind."""
    before = _patched_state()
    yield
    problems = []
    if stethoscope.current() is not None:
        problems.append(f"a monitor is still running: {stethoscope.current()!r}")
        stethoscope.stop()
    # stop() has returned: its threads are on their way out, but on a loaded machine
    # the last of them may take a while to be scheduled and end (a wait, not a bound)
    deadline = time.monotonic() + 30.0
    while _own_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    if _own_threads():
        problems.append(f"stethoscope threads still alive: {_own_threads()}")
    after = _patched_state()
    for key, value in before.items():
        if after[key] != value:
            problems.append(f"{key} leaked: {value!r} -> {after[key]!r}")
    if sys.gettrace() is not before["sys.gettrace"]:
        sys.settrace(before["sys.gettrace"])  # type: ignore[arg-type]
    if problems:
        pytest.fail("; ".join(problems))


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    env["PYTHONPATH"] = str(ROOT / "src")
    env.update(extra)
    return env


def run_python(args: list[str], *, cwd: Path | str | None = None, timeout: float = 60,
               env: dict[str, str] | None = None, input: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    """Run ``python args...`` with this interpreter and the package importable."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env or child_env(),
                          capture_output=True, text=True, timeout=timeout, input=input)


def run_cli(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``stethoscope args...`` (as ``python -m stethoscope``) in a subprocess."""
    return run_python(["-m", "stethoscope", *args], **kwargs)


def start_python(args: list[str], *, cwd: Path | str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env or child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_url(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The URL a child prints on stderr as 'stethoscope: serving URL'."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if line.startswith("stethoscope: serving "):
            return line.split("serving ", 1)[1].strip()
    raise AssertionError(f"no URL printed; stderr so far: {''.join(seen)!r}")


def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.05) -> Any:
    """``predicate()``'s first true value. The deadline is generous on purpose: what
    takes milliseconds on an idle machine can take seconds on a loaded one running two
    interpreters' suites side by side; a wait that times out is a failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


FIGURES_ENV = "STETHOSCOPE_FIGURES"  # set by bench/figures.py (`make bench`)


def record_figure(name: str, value: float, unit: str = "s") -> None:
    """A duration or a rate a test measures but must not bound: on a loaded machine
    any bound on it makes a flaky test. bench/figures.py (`make bench`) runs the tests
    that measure one with STETHOSCOPE_FIGURES naming a file, and reports the figures;
    otherwise this does nothing."""
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"figure": name, "value": value, "unit": unit}) + "\n")


@contextlib.contextmanager
def holding_default_port() -> Iterator[socket.socket]:
    """Hold port 9999 (the monitor's default) ourselves. Another test, perhaps in the
    other interpreter's run beside this one, may hold it for a while: wait for it,
    rather than count on its still holding it when the monitor starts."""
    deadline = time.monotonic() + 90
    while True:
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            holder.bind(("127.0.0.1", 9999))
            holder.listen()
            break
        except OSError:
            holder.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, launched through Playwright once per test module."""
    from playwright.sync_api import sync_playwright  # only the browser tests need it

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
                    "Run `make test`, which installs it (apt-get install -y chromium).")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def bench_load() -> Any:
    """bench/load.py as the module ``bench_load`` (the fuzz and load tests use it)."""
    import importlib.util

    if "bench_load" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_load"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_load"]
