"""Lifecycle guarantees of trace()/stop()/Monitor, in this process."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest

import stethoscope

from conftest import HAS_MONITORING, wait_for


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _no_stethoscope_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("stethoscope")]


def _assert_fully_stopped(mon: stethoscope.Monitor) -> None:
    wait_for(_no_stethoscope_threads, timeout=30)
    assert _port_free(mon.port)
    assert stethoscope.current() is None
    assert not mon.running


def test_trace_returns_a_running_monitor_with_a_tokenised_loopback_url() -> None:
    mon = stethoscope.trace(port=0, quiet=True)
    try:
        assert isinstance(mon, stethoscope.Monitor)
        assert stethoscope.current() is mon and mon.running
        assert mon.url.startswith("http://127.0.0.1:")
        assert f"token={mon.config.token}" in mon.url and len(mon.config.token) >= 16
    finally:
        stethoscope.stop()
    _assert_fully_stopped(mon)


def test_each_monitor_gets_a_fresh_random_token() -> None:
    with stethoscope.trace(port=0, quiet=True) as a:
        pass
    with stethoscope.trace(port=0, quiet=True) as b:
        pass
    assert a.config.token != b.config.token


@pytest.mark.parametrize("mode", ["sample", "trace"])
def test_stop_from_the_main_thread_restores_everything_and_trace_can_start_again(
        mode: str) -> None:
    for _ in range(2):
        mon = stethoscope.trace(port=0, quiet=True, mode=mode)  # type: ignore[arg-type]
        sum(i for i in range(1000))
        mon.stop()
        _assert_fully_stopped(mon)
        assert sys.gettrace() is None


@pytest.mark.parametrize("mode", ["sample", "trace"])
def test_stop_from_another_thread(mode: str) -> None:
    mon = stethoscope.trace(port=0, quiet=True, mode=mode)  # type: ignore[arg-type]
    stopper = threading.Thread(target=stethoscope.stop, name="stopper", daemon=True)
    stopper.start()
    stopper.join(60)
    assert not stopper.is_alive()
    _assert_fully_stopped(mon)
    # On 3.10/3.11 this thread drops its tracer at its next call event.
    wait_for(lambda: sys.gettrace() is None, timeout=30)


def test_stop_twice_and_stop_without_a_monitor_are_harmless() -> None:
    mon = stethoscope.trace(port=0, quiet=True)
    mon.stop()
    mon.stop()
    stethoscope.stop()
    _assert_fully_stopped(mon)


def test_with_block_stops_at_the_end_and_when_the_block_raises() -> None:
    with stethoscope.trace(port=0, quiet=True) as mon:
        assert mon.running
    _assert_fully_stopped(mon)
    with pytest.raises(ZeroDivisionError), stethoscope.trace(port=0, quiet=True) as mon2:
        1 / 0  # noqa: B018
    _assert_fully_stopped(mon2)


def test_second_trace_is_a_clear_error_naming_the_running_url() -> None:
    with stethoscope.trace(port=0, quiet=True) as mon:
        with pytest.raises(stethoscope.AlreadyRunningError) as err:
            stethoscope.trace(port=0, quiet=True)
        assert mon.url in str(err.value) and "stop()" in str(err.value)
        assert stethoscope.current() is mon


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"files": "myapp"}, "files must be a callable"),
        ({"port": -1}, "port must be"),
        ({"port": 70000}, "port must be"),
        ({"port": "80"}, "port must be"),
        ({"mode": "fast"}, "mode must be one of auto, sample, lines, trace"),
        ({"token": "short"}, "token must be"),
        ({"token": "has spaces in it"}, "token must be"),
        ({"sample_hz": 0}, "sample_hz"),
        ({"window": 0}, "window"),
        ({"daemon": "yes"}, "daemon must be True or False"),
        ({"host": ""}, "host"),
    ],
)
def test_bad_arguments_are_clear_errors_and_start_nothing(kwargs: dict[str, object],
                                                           match: str) -> None:
    with pytest.raises(stethoscope.ConfigError, match=match):
        stethoscope.trace(quiet=True, **kwargs)  # type: ignore[arg-type]
    assert stethoscope.current() is None


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        stethoscope.trace(prot=0)  # type: ignore[call-arg]


def test_an_unresolvable_host_is_a_clear_error() -> None:
    with pytest.raises(OSError, match="cannot listen on"):
        stethoscope.trace(host="no-such-host.invalid", port=0, quiet=True)
    assert stethoscope.current() is None


def test_trace_prints_its_url_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with stethoscope.trace(port=0) as mon:
        pass
    err = capfd.readouterr().err
    assert f"stethoscope: serving {mon.url}\n" in err


def test_a_faulty_files_filter_never_reaches_the_user_and_is_reported_once() -> None:
    calls = []

    def bad_filter(path: str) -> bool:
        calls.append(path)
        raise RuntimeError("boom")

    with stethoscope.trace(bad_filter, port=0, quiet=True, mode="trace") as mon:
        total = sum(i * i for i in range(10_000))  # user code keeps running

        def noted() -> stethoscope.Snapshot | None:  # the note is published, not returned
            snap = mon.snapshot()
            return snap if any("files filter raised" in n for n in snap.notes) else None

        snap = wait_for(noted)
    assert total == 333283335000
    assert calls, "the filter was never consulted"
    assert any("files filter raised RuntimeError: boom" in note for note in snap.notes)
    assert snap.files == ()


def test_a_collector_fault_turns_that_collector_off_and_never_reaches_the_user(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stethoscope.collectors import sampler

    def broken_tick(self: object, *args: object) -> None:
        raise KeyError("injected")

    monkeypatch.setattr(sampler.Sampler, "_tick", broken_tick)
    with stethoscope.trace(port=0, quiet=True) as mon:
        wait_for(lambda: mon.snapshot().notes)
        assert sum(range(100)) == 4950
        sampler_threads = [t for t in threading.enumerate() if t.name == "stethoscope-sampler"]
        wait_for(lambda: not any(t.is_alive() for t in sampler_threads))
        snap = mon.snapshot()
    assert any("sampler stopped" in n and "injected" in n for n in snap.notes)


@pytest.mark.skipif(not HAS_MONITORING, reason="sys.monitoring tool ids exist on 3.12+ only")
def test_trace_mode_falls_back_to_sampling_when_every_tool_id_is_taken() -> None:
    taken = []
    for tool in range(6):
        if sys.monitoring.get_tool(tool) is None:
            sys.monitoring.use_tool_id(tool, f"other-tool-{tool}")
            taken.append(tool)
    try:
        with stethoscope.trace(port=0, quiet=True, mode="trace") as mon:
            snap = mon.snapshot()
        assert snap.mode == "sample" and snap.heat == "time"
        assert any("tool id" in n and "sampled time instead" in n for n in snap.notes)
        assert [sys.monitoring.get_tool(t) for t in taken] == [f"other-tool-{t}" for t in taken]
    finally:
        for tool in taken:
            sys.monitoring.free_tool_id(tool)


@pytest.mark.skipif(not HAS_MONITORING, reason="sys.monitoring tool ids exist on 3.12+ only")
def test_trace_mode_uses_another_id_when_its_first_ids_are_taken() -> None:
    taken = (3, 4)
    for tool in taken:
        sys.monitoring.use_tool_id(tool, "someone-else")
    try:
        with stethoscope.trace(port=0, quiet=True, mode="trace") as mon:
            assert mon.snapshot().mode == "trace"
            assert [sys.monitoring.get_tool(i) for i in taken] == ["someone-else"] * 2
            assert sys.monitoring.get_tool(sys.monitoring.OPTIMIZER_ID) == "stethoscope"
        assert [sys.monitoring.get_tool(i) for i in taken] == ["someone-else"] * 2
    finally:
        for tool in taken:
            sys.monitoring.free_tool_id(tool)


def test_snapshot_reports_mode_and_heat_kind() -> None:
    with stethoscope.trace(port=0, quiet=True, mode="sample") as mon:
        snap = mon.snapshot()
        assert (snap.mode, snap.heat, snap.state) == ("sample", "time", "running")
    with stethoscope.trace(port=0, quiet=True, mode="trace") as mon:
        snap = mon.snapshot()
        assert (snap.mode, snap.heat) == ("trace", "hits")
    with stethoscope.trace(port=0, quiet=True, mode="auto") as mon:
        snap = mon.snapshot()
        assert (snap.mode, snap.heat) == ("sample+lines" if HAS_MONITORING else "sample", "time")
    if HAS_MONITORING:
        with stethoscope.trace(port=0, quiet=True, mode="lines") as mon:
            snap = mon.snapshot()
            assert (snap.mode, snap.heat) == ("lines", "ran")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_monitors_threads_block_the_programs_signals() -> None:
    # The program's signals must reach the program's threads: a monitor thread that
    # took SIGTERM would leave a main thread blocked without timeout unaware of it.
    import signal
    import urllib.request

    with stethoscope.trace(port=0, quiet=True) as mon:
        urllib.request.urlopen(mon.url.replace("/?", "/api/snapshot?"), timeout=60).read()
        ours = [t for t in threading.enumerate() if t.name.startswith("stethoscope-")]
        assert {t.name for t in ours} >= {"stethoscope-sampler", "stethoscope-server"}
        checked = set()
        for thread in ours:
            try:
                status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue  # a request's handler thread that has just finished (ESRCH when
                # it ends between the open and the read)
            blocked = int(status.split("SigBlk:")[1].split()[0], 16)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGCHLD):
                assert blocked & (1 << (signum - 1)), (thread.name, signum)
            checked.add(thread.name)
        assert {"stethoscope-sampler", "stethoscope-server"} <= checked
        main = Path(f"/proc/self/task/{threading.main_thread().native_id}/status").read_text()
        assert not int(main.split("SigBlk:")[1].split()[0], 16) & (1 << (signal.SIGTERM - 1))
