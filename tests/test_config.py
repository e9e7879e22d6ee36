"""One vocabulary: every option is a Config field, and trace(), the CLI and the child
link all speak it under the same name."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import signal

import pytest

import stethoscope
from stethoscope import files
from stethoscope.children.link import CHILD_ENV, SHARED, ChildLink
from stethoscope.cli import _parser, _settings, _split_target
from stethoscope.config import OPTIONS, Config, ConfigError

FIELDS = dataclasses.fields(Config)

# A value unlike the default for every option, as Python sees it and as the CLI spells it.
NON_DEFAULT: dict[str, tuple[object, list[str]]] = {
    "files": (None, ["--files", "contains:myapp"]),  # checked by its spec below
    "host": ("::1", ["--host", "::1"]),
    "port": (4321, ["--port", "4321"]),
    "browser": (True, ["--browser"]),
    "daemon": (False, ["--no-daemon"]),
    "mode": ("trace", ["--mode", "trace"]),
    "processes": (False, ["--no-processes"]),
    "token": ("a-token-of-mine", ["--token", "a-token-of-mine"]),
    "sample_hz": (250.0, ["--sample-hz", "250"]),
    "window": (30, ["--window", "30"]),
    "quiet": (True, ["--quiet"]),
    "hang_report": (0.5, ["--hang-report", "0.5"]),
    "dump_signal": (int(signal.SIGUSR2), ["--dump-signal", "USR2"]),
    "metrics_public": (True, ["--metrics-public"]),
    "record": ("run.stetho", ["--record", "run.stetho"]),
}


def test_trace_takes_exactly_the_options_of_config_with_the_same_defaults() -> None:
    params = inspect.signature(stethoscope.trace).parameters
    assert list(params) == [f.name for f in FIELDS] == list(OPTIONS)
    for f in FIELDS:
        default = params[f.name].default
        if f.name in ("files", "token"):
            assert default is None  # None: files.user, a random token
        else:
            assert default == f.default, f.name
    assert all(p.kind is p.KEYWORD_ONLY for name, p in params.items() if name != "files")


def test_every_option_has_a_test_value_here() -> None:
    assert set(NON_DEFAULT) == set(OPTIONS)  # a new option must be added above


def parse(command: str, words: list[str]) -> argparse.Namespace:
    """The command line as main() reads it: for run, the script's words apart."""
    parser, takes_value = _parser()
    if command == "run":
        ours, target = _split_target(words, takes_value)
        assert target == ["script.py", "--port", "1"]  # the script's own words stay its own
        words = ours
    return parser.parse_args([command, *words])


@pytest.mark.parametrize("command", ["run", "demo"])
def test_every_option_is_a_flag_of_the_same_name(command: str) -> None:
    words = [word for _, spelled in NON_DEFAULT.values() for word in spelled]
    tail = ["script.py", "--port", "1"] if command == "run" else []
    args = parse(command, [*words, *tail])
    config = Config.of(_settings(args))
    for name, (value, _) in NON_DEFAULT.items():
        if name == "files":
            assert files.spec_of(config.files) == ("contains", "myapp")
        else:
            assert getattr(config, name) == value, name


def test_flags_left_out_are_the_defaults_of_trace() -> None:
    config = Config.of(_settings(parse("run", ["script.py", "--port", "1"])))
    for f in FIELDS:
        if f.name != "token":
            assert getattr(config, f.name) == f.default, f.name
    assert config.token and config.token != Config().token  # a fresh random one


def test_keep_serving_is_another_spelling_of_no_daemon() -> None:
    assert parse("run", ["--keep-serving", "script.py", "--port", "1"]).daemon is False
    assert parse("run", ["script.py", "--port", "1"]).daemon is True


def test_an_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown option 'prot'; the options are files, host"):
        Config.of({"prot": 1})


def test_the_child_link_carries_the_shared_options_by_their_names() -> None:
    assert set(SHARED) == {"files", "mode", "sample_hz", "window", "hang_report"}
    config = Config(files=files.path_contains("myapp"), host="localhost", mode="trace",
                    sample_hz=250.0, window=30, hang_report=0.5, quiet=False, daemon=False,
                    browser=True, record="x.stetho", dump_signal=int(signal.SIGUSR1))
    text = ChildLink.of(config, "/tmp/s/inbox").to_env()
    data = json.loads(text)
    assert set(data) == {"v", "inbox", *SHARED}  # no token, no port: see children/inbox.py
    assert data["files"] == ["contains", "myapp"] and data["mode"] == "trace"
    link = ChildLink.from_env(text)
    assert link.inbox == "/tmp/s/inbox"
    child = link.config
    for name in SHARED:
        if name != "files":
            assert getattr(child, name) == getattr(config, name), name
    assert files.spec_of(child.files) == ("contains", "myapp")
    # what a child never takes from its program: it is quiet, never holds the exit,
    # records nothing, opens no browser and sets no signal handler of its own
    assert (child.quiet, child.daemon, child.browser, child.record, child.dump_signal) == \
        (True, True, False, None, None)


def test_a_files_filter_of_the_users_own_reaches_children_as_files_user() -> None:
    link = ChildLink.of(Config(files=lambda path: "x" in path), "/tmp/s/inbox")
    assert not link.files_shared
    assert ChildLink.from_env(link.to_env()).config.files is files.user


@pytest.mark.parametrize("text", [
    "", "{", "[]", '{"v": 2}', '{"v": 1, "host": "127.0.0.1"}',
    '{"v": 1, "host": "127.0.0.1", "port": 1, "token": "t0123456789", "files": ["user"], '
    '"mode": "nope", "sample_hz": 100, "window": 10, "hang_report": 3}',
])
def test_a_link_this_version_cannot_read_is_a_one_line_error(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{CHILD_ENV} is not understood: ") as caught:
        ChildLink.from_env(text)
    assert "\n" not in str(caught.value)
