"""Thread states, ended-thread retention and the registry's patching, without subprocesses."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest

import stethoscope
from stethoscope.collectors.cputime import ThreadCPU
from stethoscope.collectors.filters import Resolver
from stethoscope.collectors.states import classify, hints
from stethoscope.collectors.threads import ENDED_KEEP, ENDED_MAX, ThreadDescriber
from stethoscope.model import Frame, Store

import workloads
from conftest import wait_for

QUEUE = queue.__file__
THREADING = threading.__file__
USER = "/home/me/app.py"


def _f(path: str, func: str, line: int = 1) -> Frame:
    return Frame(None, path, line, func)


@pytest.mark.parametrize(
    ("stack", "line", "kind"),
    [
        ([_f(THREADING, "Condition.wait"), _f(QUEUE, "Queue.get"), _f(USER, "consume")], "",
         "queue.get"),
        ([_f(THREADING, "wait"), _f(QUEUE, "get"), _f(USER, "consume")], "", "queue.get"),
        ([_f(THREADING, "Condition.wait"), _f(THREADING, "Event.wait"), _f(USER, "f")], "",
         "event"),
        ([_f(THREADING, "wait"), _f(THREADING, "wait"), _f(USER, "f")], "", "event"),  # 3.10
        ([_f(THREADING, "Condition.wait"), _f(USER, "f")], "", "condition"),
        ([_f(THREADING, "Thread._wait_for_tstate_lock"), _f(THREADING, "Thread.join"),
          _f(USER, "f")], "", "join"),
        ([_f(USER, "f")], "    data = sock.recv(1024)\n", "socket.recv"),
        ([_f(USER, "f")], "    time.sleep(5)\n", "sleep"),
        ([_f(USER, "f")], "    with self.lock:\n", "lock"),
        ([_f(USER, "f")], "    compute()\n", "waiting"),
    ],
)
def test_states_name_the_call_the_program_made(stack: list[Frame], line: str, kind: str) -> None:
    assert classify(stack, busy=False, top_line=line)[0] == kind


def test_a_thread_using_cpu_is_running_whatever_its_stack_says() -> None:
    stack = [_f(THREADING, "Condition.wait"), _f(QUEUE, "Queue.get"), _f(USER, "f")]
    assert classify(stack, busy=True) == ("running", "running Python code")


def test_a_user_file_named_like_the_stdlib_is_not_mistaken_for_it() -> None:
    stack = [_f("/home/me/queue.py", "get"), _f(USER, "f")]
    assert classify(stack, busy=False)[0] == "waiting"


def test_hints_name_the_joined_thread_and_the_inherited_daemon_flag() -> None:
    found = hints("join", [], [], inherited_from="MainThread", join_target="worker")
    assert "join() for thread 'worker'" in found[0]
    assert any("started from MainThread" in h for h in found)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _describer(clock: Clock) -> ThreadDescriber:
    store = Store(window=10)
    return ThreadDescriber(Resolver(stethoscope.files.user, store), None, ThreadCPU(),
                           clock=clock)


def test_ended_threads_stay_listed_for_a_while_then_age_out() -> None:
    clock = Clock()
    describer = _describer(clock)
    release = threading.Event()
    worker = threading.Thread(target=release.wait, name="short", daemon=True)
    worker.start()

    def listing() -> dict[str, bool]:
        frames = dict(__import__("sys")._current_frames())
        meta = {t.ident: t for t in threading.enumerate() if t.ident is not None}
        return {t.name: t.alive for t in describer.describe(frames, meta, set())}

    assert listing()["short"] is True
    release.set()
    worker.join(30)
    clock.t += 1
    assert listing()["short"] is False  # ended, still listed
    clock.t += ENDED_KEEP + 1
    assert "short" not in listing()


def test_many_short_lived_threads_neither_leak_nor_crash() -> None:
    with stethoscope.trace(port=0, quiet=True) as mon:
        workloads.run_in_batches(time.sleep, (0.02,))  # 200 threads, each sleeping 20 ms

        def all_ended() -> stethoscope.Snapshot | None:
            """A publication of the thread list since the last of them ended."""
            snap = mon.snapshot()
            return None if [t for t in snap.threads if t.alive and "(sleep)" in t.name] \
                else snap

        snap = wait_for(all_ended)
        sampler = next(c for c in mon.collectors if c.name == "sampler")
        describer = sampler.describer  # type: ignore[attr-defined]
    alive = [t for t in snap.threads if t.alive]
    ended = [t for t in snap.threads if not t.alive]
    assert {t.name for t in alive} >= {"MainThread"}
    assert len(ended) <= ENDED_MAX
    assert not [n for n in snap.notes if "error" in n]
    assert len(describer._first_seen) <= len(alive)
    assert len(describer._last_cpu) <= len(alive) + ENDED_MAX


def test_thread_creation_sites_are_recorded_while_monitoring_and_unpatched_after() -> None:
    original_start = threading.Thread.start
    release = threading.Event()
    with stethoscope.trace(port=0, quiet=True) as mon:
        assert threading.Thread.start is not original_start
        worker = threading.Thread(target=release.wait, name="born-here")
        worker.start()  # birth line
        try:
            # published once it waits (the thread list goes out 5 times a second)
            info = wait_for(lambda: (i := mon.snapshot().thread("born-here")) is not None
                            and i.kind == "event" and i)
        finally:
            release.set()
            worker.join(30)
    assert threading.Thread.start is original_start
    assert info is not None and info.created_by == "MainThread"
    assert info.created_at[0].path == __file__
    birth_line = next(i for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
                      if text.endswith("# birth line"))
    assert info.created_at[0].line == birth_line
    assert info.daemon_inherited and info.kind == "event"


def test_dump_works_with_and_without_a_monitor() -> None:
    import io

    out = io.StringIO()
    report = stethoscope.dump(out)
    assert out.getvalue() == report
    assert 'Thread "MainThread"' in report and "creation site unknown" not in report.split(
        'Thread "MainThread"')[1].split("\n\n")[0]
    release = threading.Event()
    with stethoscope.trace(port=0, quiet=True):
        helper = threading.Thread(target=release.wait, name="dumped", daemon=True)
        helper.start()
        # a publication of the thread list with it waiting
        mon = stethoscope.current()
        assert mon is not None
        wait_for(lambda: (i := mon.snapshot().thread("dumped")) is not None and i.kind == "event")
        report = stethoscope.dump(io.StringIO())
        release.set()
        helper.join(30)
    block = report.split('Thread "dumped"')[1].split("\n\n")[0]
    assert f"created at {__file__}:" in block and "state: waiting in Event.wait()" in block
