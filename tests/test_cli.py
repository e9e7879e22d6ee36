"""The CLI runs a target exactly as python would, and says clearly what is wrong."""

from __future__ import annotations

import re
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli, run_python

PROBE = textwrap.dedent("""
    import os, sys
    print("name", __name__)
    print("argv", sys.argv)
    print("path0", sys.path[0])
    print("cwd", os.getcwd())
    print("main-file", getattr(sys.modules["__main__"], "__file__", None))
    sys.exit(3)
""")

RAISES = textwrap.dedent("""
    def inner():
        raise ValueError("bad value")

    def outer():
        inner()

    outer()
""")


def _strip_monitor_lines(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if not line.startswith("stethoscope: "))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "probe.py").write_text(PROBE)
    (tmp_path / "scripts" / "raises.py").write_text(RAISES)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "__main__.py").write_text(PROBE)
    (tmp_path / "pkg" / "tool.py").write_text(PROBE)
    return tmp_path


def test_run_script_sees_what_python_shows_it(project: Path) -> None:
    args = ["scripts/probe.py", "a", "--port", "7"]
    plain = run_python(args, cwd=project)
    monitored = run_cli(["run", "--port", "0", *args], cwd=project)
    assert plain.returncode == monitored.returncode == 3
    assert monitored.stdout == plain.stdout
    assert "argv ['scripts/probe.py', 'a', '--port', '7']" in plain.stdout
    assert "name __main__" in plain.stdout


@pytest.mark.parametrize("target", [["-m", "pkg.tool", "x", "-m"], ["-m", "pkg", "--flag"]])
def test_run_module_sees_what_python_m_shows_it(project: Path, target: list[str]) -> None:
    plain = run_python(target, cwd=project)
    monitored = run_cli(["run", "--port=0", *target], cwd=project)
    assert plain.returncode == monitored.returncode == 3
    assert monitored.stdout == plain.stdout


def test_an_uncaught_exception_prints_the_same_traceback_and_exit_code(project: Path) -> None:
    plain = run_python(["scripts/raises.py"], cwd=project)
    monitored = run_cli(["run", "--port", "0", "scripts/raises.py"], cwd=project)
    assert plain.returncode == monitored.returncode == 1
    assert _strip_monitor_lines(monitored.stderr) == plain.stderr
    assert "ValueError: bad value" in plain.stderr


def test_an_uncaught_exception_in_a_module_prints_the_same_traceback(project: Path) -> None:
    (project / "pkg" / "boom.py").write_text(RAISES)
    plain = run_python(["-m", "pkg.boom"], cwd=project)
    monitored = run_cli(["run", "--port", "0", "-m", "pkg.boom"], cwd=project)
    assert plain.returncode == monitored.returncode == 1
    assert _strip_monitor_lines(monitored.stderr) == plain.stderr


def test_a_syntax_error_in_the_script_is_reported_like_python(project: Path) -> None:
    (project / "bad.py").write_text("def broken(:\n    pass\n")
    plain = run_python(["bad.py"], cwd=project)
    monitored = run_cli(["run", "--port", "0", "bad.py"], cwd=project)
    assert plain.returncode == monitored.returncode == 1
    assert "SyntaxError" in _strip_monitor_lines(monitored.stderr)


def test_keyboard_interrupt_ends_the_process_as_python_does(project: Path) -> None:
    (project / "ctrlc.py").write_text("raise KeyboardInterrupt\n")
    plain = run_python(["ctrlc.py"], cwd=project)
    monitored = run_cli(["run", "--port", "0", "ctrlc.py"], cwd=project)
    assert plain.returncode == monitored.returncode
    assert _strip_monitor_lines(monitored.stderr) == plain.stderr


def test_multiprocessing_spawn_finds_the_main_module(project: Path) -> None:
    (project / "pool.py").write_text(textwrap.dedent("""
        import multiprocessing as mp

        def square(x):
            return x * x

        if __name__ == "__main__":
            with mp.get_context("spawn").Pool(2) as pool:
                print(sum(pool.map(square, range(10))))
    """))
    monitored = run_cli(["run", "--port", "0", "pool.py"], cwd=project, timeout=60)
    assert monitored.returncode == 0, monitored.stderr
    assert monitored.stdout.strip() == "285"


def test_the_monitor_serves_while_the_script_runs(project: Path) -> None:
    (project / "serve.py").write_text(textwrap.dedent("""
        import json, urllib.request, stethoscope
        mon = stethoscope.current()
        data = json.load(urllib.request.urlopen(mon.url.replace("/?", "/api/snapshot?")))
        print(data["schema"], data["mode"], data["argv"])
    """))
    monitored = run_cli(["run", "--port", "0", "--mode", "trace", "serve.py", "x"], cwd=project)
    assert monitored.returncode == 0, monitored.stderr
    assert monitored.stdout.strip() == "3 trace ['serve.py', 'x']"
    assert re.search(r"^stethoscope: serving http://127\.0\.0\.1:\d+/\?token=\S+$",
                     monitored.stderr, re.M)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "run needs a script"),
        (["run", "--port", "0", "missing.py"], "can't open file"),
        (["run", "--mode", "fast", "x.py"], "invalid choice: 'fast'"),
        (["run", "--files", "nonsense", "x.py"], "is not a files filter"),
        (["run", "--port", "-5", "x.py"], "port must be an int from 0 to 65535"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_command_lines_are_one_clear_error(project: Path, args: list[str],
                                               message: str) -> None:
    result = run_cli(args, cwd=project)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_module_fails_as_python_m_does(project: Path) -> None:
    plain = run_python(["-m", "no_such_module_xyz"], cwd=project)
    monitored = run_cli(["run", "--port", "0", "-m", "no_such_module_xyz"], cwd=project)
    assert plain.returncode == monitored.returncode == 1
    assert _strip_monitor_lines(monitored.stderr) == plain.stderr
    assert "No module named no_such_module_xyz" in plain.stderr


def test_a_busy_port_is_a_clear_error(project: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(["run", "--port", str(port), "scripts/probe.py"], cwd=project)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert "name __main__" not in result.stdout  # the target did not run


def test_version_and_help() -> None:
    assert run_cli(["--version"]).stdout.startswith("stethoscope ")
    help_text = run_cli(["run", "--help"]).stdout
    for flag in ("--port", "--host", "--browser", "--mode", "--files", "--keep-serving"):
        assert flag in help_text


def test_demo_runs_and_ends(tmp_path: Path) -> None:
    result = run_cli(["demo", "--port", "0", "--duration", "1.5"], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "stethoscope: serving http://127.0.0.1:" in result.stderr
    assert "demo running" in result.stdout


def test_python_dash_m_and_the_console_script_agree() -> None:
    scripts = Path(sys.executable).parent
    console = scripts / "stethoscope"
    if not console.exists():
        pytest.fail(f"the console script is not installed at {console}; run make test")
    import subprocess

    out = subprocess.run([str(console), "--version"], capture_output=True, text=True, timeout=30)
    assert out.stdout == run_cli(["--version"]).stdout


def test_random_tokens_never_look_like_an_option() -> None:
    """A token starting with "-" would make `--token T` read as an option; one in 64
    of token_urlsafe's would."""
    from stethoscope.config import new_token

    tokens = [new_token() for _ in range(3000)]
    assert not [t for t in tokens if t.startswith("-")]
    assert len(set(tokens)) == len(tokens) and all(len(t) == 24 for t in tokens)


def test_run_m_of_a_module_stethoscope_imports_itself_runs_as_python_m_does() -> None:
    """stethoscope's server imports http.server; `run -m http.server` must not make
    runpy warn that it was found in sys.modules (`python -m http.server` does not)."""
    plain = run_python(["-m", "http.server", "--help"])
    run = run_cli(["run", "--port", "0", "--quiet", "-m", "http.server", "--help"])
    assert (run.returncode, run.stdout) == (plain.returncode, plain.stdout)
    assert plain.returncode == 0 and "usage:" in plain.stdout
    assert run.stderr == plain.stderr == "", run.stderr
