"""Load, briefly: bench/load.py's loaded run for a few seconds, its behaviour checked.

A monitored CPU workload in its own process serves 20 event streams that read
continuously, 5 that never read (their buffers fill), and 100 snapshot requests a
second for ~8 s; then it calls stethoscope.stop() with the streams still open. The
checks are about behaviour, not speed (a loaded machine makes any bound on speed a
flaky test; `make bench` reports the figures): every request is answered, none
fails, every stream delivers while the load runs and after it, and gets the end
event; every stalled stream is dropped while the program runs, and none before
WRITE_TIMEOUT; stop() returns, and the program's output is its own (the checksum of
the same workload run unmonitored, nothing else on stdout or stderr, exit status 0).
The load generator waits on the server with a generous ``Patience``: only what
never happens fails. `python3 bench/load.py --seconds 60` is the full benchmark.
"""

from __future__ import annotations

from typing import Any

import pytest

from stethoscope.server.stream import WRITE_TIMEOUT

from conftest import bench_load, child_env

SECONDS = 8.0
STREAMS = 20
RATE = 100.0
STALLED = 5


load = bench_load()
PATIENCE = load.Patience(io=60.0, first_event=60.0, end=60.0, drop=60.0)


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return load.bench(SECONDS, STREAMS, RATE, STALLED, baseline=0, env=child_env(),
                      log=lambda line: None, patience=PATIENCE)


def test_snapshot_requests_are_all_answered(result: dict[str, Any]) -> None:
    req = result["requests"]
    # unanswered within PATIENCE.io (a minute) counts as not answered at all
    assert req["errors"] == 0 and req["timeouts"] == 0, req
    # skipped: not sent, more than MAX_INFLIGHT being open at once (the load
    # generator's bound, not a failure of the server); how many were sent, and how
    # fast they were answered, are bench/load.py's figures
    assert req["ok"] == req["sent"] > 0, req


def test_every_stream_delivers_throughout_and_gets_the_end_event(
        result: dict[str, Any]) -> None:
    st = result["streams"]
    assert st["error_count"] == 0 and st["bad_events"] == 0, st["errors"]
    # while the load ran (how often: bench/load.py's events per stream per s and
    # longest gap), and after it and after the stalled clients were dropped
    assert st["per_stream_per_s"]["min"] > 0, st
    assert st["delivered_after_load"] == STREAMS, st
    assert st["ended_with_end_event"] == STREAMS, st


def test_stalled_streams_are_dropped_and_not_before_write_timeout(
        result: dict[str, Any]) -> None:
    stalled = result["stalled"]
    if not stalled["watched"]:
        pytest.skip("no /proc/net/tcp: the server's side of a connection cannot be seen")
    # all of them, while the program ran (the generator gives them PATIENCE.drop after
    # the load); how soon after they stopped taking data is bench/load.py's figure
    assert stalled["judged"], stalled
    assert stalled["dropped"] == STALLED, stalled
    assert stalled["not_dropped_states"] == [], stalled
    # a stalled client takes nothing from its first event on, and the server drops it
    # WRITE_TIMEOUT after it last took data: never sooner than that after it connected
    assert stalled["dropped_after_s"]["min"] >= WRITE_TIMEOUT, stalled


def test_stop_returns_and_the_output_is_the_programs_own(result: dict[str, Any]) -> None:
    wl, ref = result["workload"], result["unmonitored"]
    assert ref["exit_code"] == 0 and ref["result"], ref
    assert wl["exit_code"] == 0, wl
    assert wl["result"] == ref["result"] and wl["mismatches"] == 0, wl
    assert wl["stderr"] == "", wl["stderr"][-3000:]
    assert wl["foreign_stdout"] == [], wl["foreign_stdout"]
    assert wl["stop_ms"] is not None, wl  # printed after stop() returned
    assert wl["units"] >= 2 and wl["elapsed"] >= SECONDS, wl


def test_nothing_else_failed(result: dict[str, Any]) -> None:
    assert result["problems"] == []  # behaviour; result["slow"] is the benchmark's
    rss = result["rss_mib"]
    assert rss["start"] and rss["end"] and rss["end"] < rss["start"] + 200, rss  # sanity
