"""The process table and child reports: plain data, exact sums, bounded memory;
and the reporter's bounded final send."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace

import pytest

from stethoscope.children.reporter import Reporter, post
from stethoscope.model import (
    ChildReport,
    FileHeat,
    NowLine,
    ProcessInfo,
    ProcessTable,
    ReportError,
    Snapshot,
    ThreadInfo,
    combine,
)

from conftest import record_figure

NOW = 1_000_000.0


def snap(pid: int, rows: dict[int, int], *, when: float = NOW, thread: str = "MainThread",
         notes: tuple[str, ...] = ()) -> Snapshot:
    lines = tuple((line, n, n, 0, 0, 0, 0, 0, 0, 0) for line, n in sorted(rows.items()))
    return Snapshot(
        pid=pid, argv=("prog.py",), python="3.12.1", started=NOW - 5, time=when,
        state="running", mode="trace", heat="hits", window=10, sample_hz_requested=100.0,
        sample_hz_achieved=99.0, files=(FileHeat("f1", "/app/prog.py", "prog.py", lines),),
        now=(), threads=(ThreadInfo(7, 70, thread, False, True, True, ()),), notes=notes)


def info(pid: int, state: str = "running", started: float = NOW) -> ProcessInfo:
    return ProcessInfo(pid, 1, ("python", "prog.py"), "", "spawn", started, state)


def report(pid: int, rows: dict[int, int], seq: int = 1, final: bool = False,
           instance: str = "a", **kw: object) -> ChildReport:
    state = "exited" if final else "running"
    return ChildReport(instance, seq, final, info(pid, state), snap(pid, rows, **kw))  # type: ignore[arg-type]


def test_a_report_round_trips_through_json() -> None:
    r = replace(report(5, {3: 10}), sources=(("f1", "/app/prog.py", "x = 1\n"),))
    assert ChildReport.from_json(r.to_json()) == r


@pytest.mark.parametrize("body, message", [
    (b"not json", "not JSON"),
    (b"[]", "version None"),
    (b'{"report": 99}', "version 99"),
    (b'{"report": 1}', "malformed"),
    (b'{"report": 1, "instance": "a", "seq": "x", "final": false, "process": {}, '
     b'"snapshot": {}, "sources": []}', "malformed"),
])
def test_a_bad_report_is_refused_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        ChildReport.from_json(body)


def test_a_report_whose_pids_disagree_is_refused() -> None:
    r = report(5, {3: 1})
    bad = json.loads(r.to_json())
    bad["snapshot"]["pid"] = 6
    with pytest.raises(ReportError, match="pids differ"):
        ChildReport.from_json(json.dumps(bad).encode())


def test_stale_and_after_final_reports_are_ignored_but_a_new_instance_is_taken() -> None:
    table = ProcessTable(own_pid=1)
    assert table.accept(report(5, {3: 10}, seq=2), NOW)
    assert not table.accept(report(5, {3: 5}, seq=1), NOW)  # older, arrived late
    assert table.accept(report(5, {3: 20}, seq=3, final=True), NOW)
    assert not table.accept(report(5, {3: 30}, seq=4), NOW)  # after the final one
    assert table.snapshot_of(5).files[0].lines[0][2] == 20  # type: ignore[union-attr]
    assert table.accept(report(5, {3: 1}, seq=1, instance="b"), NOW)  # exec'd, same pid
    with pytest.raises(ReportError):
        table.accept(report(1, {3: 1}), NOW)  # the monitored process itself


def test_combine_sums_heat_and_keeps_every_thread_with_its_pid() -> None:
    table = ProcessTable(own_pid=1)
    table.accept(report(5, {3: 10, 4: 1}, thread="w5", notes=("slow disk",)), NOW)
    table.accept(report(6, {3: 7}, thread="w6", notes=("slow disk",)), NOW)
    own = snap(1, {2: 1}, notes=("own note",))
    combined = combine(own, table, [info(1), *table.infos()])
    rows = {row[0]: row for row in combined.files[0].lines}
    assert (rows[2][2], rows[3][2], rows[4][2]) == (1, 17, 1)
    assert (rows[3][1], rows[3][2]) == (17, 17)  # recent too: both reports are fresh
    assert sorted((t.pid, t.name) for t in combined.threads) == [
        (1, "MainThread"), (5, "w5"), (6, "w6")]
    assert combined.view == "combined" and [p.pid for p in combined.processes] == [1, 5, 6]
    assert combined.notes == ("own note", "slow disk (processes 5, 6)")


def test_a_stale_childs_recent_heat_fades_but_its_total_stays() -> None:
    table = ProcessTable(own_pid=1)
    table.accept(report(5, {3: 10}, when=NOW - 60), NOW - 60)
    combined = combine(snap(1, {}), table, [])
    (row,) = combined.files[0].lines
    assert (row[1], row[2]) == (0, 10)


def test_ended_children_beyond_the_limit_are_retired_into_the_totals() -> None:
    table = ProcessTable(own_pid=1, max_ended=3)
    for pid in range(10, 20):
        table.accept(report(pid, {3: pid}, final=True), NOW + pid)
    table.accept(report(99, {3: 1000}), NOW)  # a running one is never retired
    assert sorted(i.pid for i in table.infos()) == [17, 18, 19, 99]
    assert table.retired_count == 7
    combined = combine(snap(1, {}), table, table.infos())
    (row,) = combined.files[0].lines
    assert row[2] == sum(range(10, 20)) + 1000  # nothing lost from the totals


def test_a_vanished_child_is_marked_killed_and_keeps_its_data() -> None:
    table = ProcessTable(own_pid=1)
    table.accept(report(5, {3: 10}), NOW)
    assert table.watch_list() == [5]
    table.vanished(5, -9)
    (child,) = table.infos()
    assert (child.state, child.exit_how, child.exit_code) == ("killed", "vanished", -9)
    assert table.watch_list() == []
    assert table.snapshot_of(5).files[0].lines[0][2] == 10  # type: ignore[union-attr]


def test_sources_are_kept_by_file_id_first_come() -> None:
    table = ProcessTable(own_pid=1)
    table.accept(replace(report(5, {3: 1}), sources=(("f1", "/app/prog.py", "one"),)), NOW)
    table.accept(replace(report(6, {3: 1}), sources=(("f1", "/app/prog.py", "two"),)), NOW)
    assert table.source("f1") == ("/app/prog.py", "one")
    assert table.source("nope") is None


# -- the reporter ------------------------------------------------------------------


def _make(final: bool) -> tuple[bytes, object]:
    return b"{}", lambda: None


def test_the_final_report_reaches_a_monitor_that_answers_late() -> None:
    # A listener that does not accept yet: the final report must not wait for it,
    # and must still be there to read once the monitor gets to it.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        body = b'{"final": "report"}'
        reporter = Reporter("127.0.0.1", port, "t" * 16, lambda final: (body, lambda: None),
                            on_lost=lambda why: None)
        # True: handed to the kernel within FINAL_TIMEOUT (its own deadline: past it,
        # final() gives up and says False), before this listener accepted anything
        # (nothing answers it here: a final() that waited for the answer would give
        # up). How long it took is the benchmark's figure.
        began = time.monotonic()
        assert reporter.final() is True
        record_figure("final report handed over, to a monitor that accepts late",
                      time.monotonic() - began)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(60)
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
    assert data.startswith(b"POST /api/report?token=") and data.endswith(body)


def test_a_late_final_report_corrects_a_child_marked_killed() -> None:
    table = ProcessTable(own_pid=1)
    table.accept(report(5, {3: 10}, seq=1), NOW)
    table.vanished(5, None)
    assert table.infos()[0].state == "killed"
    assert table.accept(report(5, {3: 12}, seq=2, final=True), NOW)
    assert table.infos()[0].state == "exited"
    assert table.snapshot_of(5).files[0].lines[0][2] == 12  # type: ignore[union-attr]


def test_a_refused_connection_means_the_monitor_is_gone() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        lost: list[str] = []
        reporter = Reporter("127.0.0.1", port, "t" * 16, _make, on_lost=lost.append)  # type: ignore[arg-type]
        reporter.start()
        deadline = time.monotonic() + 60
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
        reporter.stop()
    assert lost and "unreachable" in lost[0]


def test_post_reads_the_status_of_a_real_server() -> None:
    import stethoscope

    with stethoscope.trace(port=0, quiet=True) as mon:
        port = mon.port  # type: ignore[union-attr]
        token = mon.config.token
        body = report(424242, {1: 1}).to_json()
        assert post("127.0.0.1", port, f"/api/report?token={token}", body, 60)[0] == 204
        assert post("127.0.0.1", port, "/api/report?token=wrong", body, 60)[0] == 403
        assert post("127.0.0.1", port, f"/api/report?token={token}", b"{", 60)[0] == 400
        assert post("127.0.0.1", port, f"/api/snapshot?token={token}", body, 60)[0] == 405
        pids = [p.pid for p in mon.snapshot("all").processes]
        assert 424242 in pids


def test_reports_arriving_from_many_threads_at_once_are_all_taken() -> None:
    import stethoscope

    with stethoscope.trace(port=0, quiet=True) as mon:
        port, token = mon.port, mon.config.token  # type: ignore[union-attr]
        statuses: list[int] = []

        def send(pid: int) -> None:
            statuses.append(post("127.0.0.1", port, f"/api/report?token={token}",
                                 report(pid, {1: pid}).to_json(), 60)[0])

        threads = [threading.Thread(target=send, args=(500000 + i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert statuses == [204] * 20
        combined = mon.snapshot("all")
        assert len(combined.processes) == 21
        assert combined.file("f1").lines[0][2] == sum(500000 + i for i in range(20))  # type: ignore[union-attr]


def test_the_final_report_wins_over_a_later_numbered_periodic_one() -> None:
    # The reporter thread numbered its report after the exiting thread numbered the
    # final one, and its report arrived first.
    table = ProcessTable(own_pid=1)
    assert table.accept(report(5, {3: 10}, seq=6), NOW)
    assert table.accept(report(5, {3: 11}, seq=5, final=True), NOW)
    assert table.infos()[0].state == "exited"
    assert not table.accept(report(5, {3: 12}, seq=7), NOW)


def test_an_ended_process_shows_its_threads_ended_and_nothing_running() -> None:
    table = ProcessTable(own_pid=1)
    child = report(5, {3: 10}, final=True)
    child = replace(child, snapshot=replace(child.snapshot, now=(NowLine("f1", 3, 7),)))
    table.accept(child, NOW)
    combined = combine(snap(1, {}), table, [info(1), *table.infos()])
    (thread,) = [t for t in combined.threads if t.pid == 5]
    assert (thread.alive, thread.kind, thread.stack) == (False, "ended", ())
    assert [n.pid for n in combined.now] == []
    assert combined.file("f1").lines[0][2] == 10  # type: ignore[union-attr]  # heat stays
