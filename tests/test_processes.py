"""The process table and child reports: plain data, exact sums, bounded memory;
and the reporter's bounded final send."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from stethoscope.children import wire
from stethoscope.children.inbox import Inbox
from stethoscope.children.reporter import Reporter, exchange
from stethoscope.children.wire import RefusedError
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

from conftest import record_figure, wait_for

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


def test_sources_beyond_the_total_bound_are_dropped_and_counted() -> None:
    table = ProcessTable(own_pid=1, max_source_chars=10)
    table.accept(replace(report(5, {3: 1}), sources=(("f1", "/a.py", "123456"),
                                                     ("f2", "/b.py", "12345"))), NOW)
    table.accept(replace(report(6, {3: 1}), sources=(("f3", "/c.py", "1234"),)), NOW)
    assert [table.source(f) for f in ("f1", "f2", "f3")] == [
        ("/a.py", "123456"), None, ("/c.py", "1234")]  # what fits, first come
    assert (table.source_chars(), table.sources_dropped) == (10, 1)


# -- the reporter and the inbox ----------------------------------------------------


def _make(final: bool) -> tuple[bytes, object]:
    return b"{}", lambda: None


def test_the_final_report_reaches_a_monitor_that_answers_late(tmp_path: Path) -> None:
    # A listener that does not accept yet: the final report must not wait for it,
    # and must still be there to read once the monitor gets to it.
    path = str(tmp_path / "inbox")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        body = b'{"final": "report"}'
        reporter = Reporter(path, lambda final: (body, lambda: None), on_lost=lambda why: None)
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
    assert data == wire.frame(body)  # length-prefixed, nothing else


def test_a_late_final_report_corrects_a_child_marked_killed() -> None:
    table = ProcessTable(own_pid=1)
    table.accept(report(5, {3: 10}, seq=1), NOW)
    table.vanished(5, None)
    assert table.infos()[0].state == "killed"
    assert table.accept(report(5, {3: 12}, seq=2, final=True), NOW)
    assert table.infos()[0].state == "exited"
    assert table.snapshot_of(5).files[0].lines[0][2] == 12  # type: ignore[union-attr]


@pytest.mark.parametrize("gone", ["no socket", "nobody listens"])
def test_a_missing_or_refusing_socket_means_the_monitor_is_gone_at_once(
        tmp_path: Path, gone: str) -> None:
    path = str(tmp_path / "inbox")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        if gone == "nobody listens":
            s.bind(path)  # bound, not listening: connections are refused
        lost: list[str] = []
        reporter = Reporter(path, _make, on_lost=lost.append)  # type: ignore[arg-type]
        reporter.start()
        wait_for(lambda: bool(lost))
        reporter.stop()
        assert reporter.final() is False  # nothing more is tried
    assert len(lost) == 1 and "monitor is gone" in lost[0], lost


class _Inbox:
    """An Inbox with a recording take(); its answers name mode "trace"."""

    def __init__(self, verdict: Callable[[bytes, int], str | None] = lambda b, p: None) -> None:
        self.taken: list[tuple[bytes, int]] = []
        self.notes: list[str] = []

        def take(body: bytes, pid: int) -> str | None:
            self.taken.append((body, pid))
            return verdict(body, pid)

        self.inbox = Inbox(take, lambda: "trace", self.notes.append)

    def __enter__(self) -> Inbox:
        self.inbox.open()
        self.inbox.start()
        return self.inbox

    def __exit__(self, *exc: object) -> None:
        self.inbox.close()


def test_the_inbox_answers_with_the_mode_and_names_the_sender() -> None:
    box = _Inbox()
    with box as inbox:
        assert exchange(inbox.path, b'{"a": 1}', 60) == "trace"
    assert box.taken == [(b'{"a": 1}', os.getpid())]  # the kernel's word for the sender


def test_a_refusal_reaches_the_child_as_refused_error() -> None:
    with _Inbox(lambda body, pid: "not for me") as inbox, \
            pytest.raises(RefusedError, match=r"^not for me$"):
        exchange(inbox.path, b"{}", 60)


def test_a_refused_report_stops_the_reporter_with_one_note() -> None:
    with _Inbox(lambda body, pid: "no thanks") as inbox:
        lost: list[str] = []
        reporter = Reporter(inbox.path, _make, on_lost=lost.append)  # type: ignore[arg-type]
        reporter.start()
        wait_for(lambda: bool(lost))
        reporter.stop()
    assert lost == ["the program's monitor refused a report: no thanks"]


def test_a_report_beyond_the_size_bound_is_refused_unread() -> None:
    box = _Inbox()
    with box as inbox, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(inbox.path)
        s.sendall(wire.HEADER.pack(wire.MAX_REPORT + 1))  # and no body at all
        answer = s.recv(4096)
    assert b"at most" in answer and box.taken == []


def test_a_stalled_connection_is_dropped_at_its_deadline_and_blocks_no_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stethoscope.children import inbox as inbox_module

    monkeypatch.setattr(inbox_module, "READ_DEADLINE", 0.5)
    box = _Inbox()
    with box as inbox, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stalled:
        stalled.settimeout(60)
        stalled.connect(inbox.path)
        stalled.sendall(wire.HEADER.pack(100) + b"{")  # and never the rest
        assert exchange(inbox.path, b"{}", 60) == "trace"  # others are served meanwhile
        answer = stalled.recv(4096)  # the deadline's refusal, then the end
    assert b"did not arrive within" in answer and box.taken == [(b"{}", os.getpid())]


def test_reports_arriving_from_many_threads_at_once_are_all_taken() -> None:
    # More at once than the inbox reads at once (MAX_OPEN): the rest wait their turn.
    box = _Inbox()
    with box as inbox:
        answers: list[str | None] = []

        def send(i: int) -> None:
            answers.append(exchange(inbox.path, json.dumps(i).encode(), 60))

        threads = [threading.Thread(target=send, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert answers == ["trace"] * 100
    assert sorted(int(body) for body, _ in box.taken) == list(range(100))


def test_a_socket_of_another_user_is_never_sent_to(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root, to listen as another user")
    # Another user listens at the path (its directory open to all): the reporter
    # sees who listens before sending, and stops for good with one note.
    import tempfile

    shared = Path(tempfile.mkdtemp())  # not under tmp_path: its parents are 0700
    shared.chmod(0o777)
    path, got = shared / "inbox", shared / "got"
    listener = subprocess.Popen([sys.executable, "-c", AS_NOBODY + LISTENER, str(path),
                                 str(got)], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline() == "listening\n"
        lost: list[str] = []
        reporter = Reporter(str(path), lambda final: (b"secret", lambda: None),
                            on_lost=lost.append)
        reporter.start()
        wait_for(lambda: bool(lost))
        reporter.stop()
        assert reporter.final() is False
    finally:
        listener.kill()
        listener.wait()
    assert len(lost) == 1 and "belongs to another user (uid 65534" in lost[0], lost
    sent = got.read_bytes() if got.exists() else b""
    for p in shared.iterdir():
        p.unlink()
    shared.rmdir()
    assert b"secret" not in sent


# run as root, then as nobody (who may not run the test's interpreter)
# (its modules imported first: nobody may not read the standard library either)
AS_NOBODY = ("import os, socket, sys; os.setgroups([]); os.setgid(65534); "
             "os.setuid(65534)\n")
LISTENER = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(8)
print("listening", flush=True)
with open(sys.argv[2], "ab") as out:
    while True:
        conn, _ = s.accept()
        conn.settimeout(1)
        try:
            while chunk := conn.recv(65536):
                out.write(chunk); out.flush()
        except OSError:
            pass
        conn.close()
"""


def test_another_users_connection_to_the_inbox_is_refused_unread(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root, to connect as another user")
    box = _Inbox()
    with box as inbox:
        os.chmod(inbox.directory, 0o755)  # what the directory's mode prevents, opened up
        os.chmod(inbox.path, 0o777)
        code = ("import socket, sys; s = socket.socket(socket.AF_UNIX); s.settimeout(60); "
                "s.connect(sys.argv[1]); print(s.recv(4096).decode('latin-1'))")
        result = subprocess.run([sys.executable, "-c", AS_NOBODY + code, inbox.path],
                                capture_output=True, text=True, timeout=60)
    assert "is another user's" in result.stdout, result.stderr
    assert box.taken == []


def test_a_listening_socket_the_program_replaced_stops_the_inbox_with_one_note(
        tmp_path: Path) -> None:
    box = _Inbox()
    with box as inbox:
        listener = inbox._listener
        assert listener is not None
        fd = listener.fd
        os.close(fd)  # as a program closing every descriptor it did not open does
        with open(tmp_path / "mine", "w") as own:  # and reusing the number
            if own.fileno() != fd:
                pytest.skip("the number was not reused")
            wait_for(lambda: bool(box.notes))
            own.write("still mine")
        assert box.notes[0].startswith("the children's report socket (descriptor")
        assert len(box.notes) == 1
    assert (tmp_path / "mine").read_text() == "still mine"


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
