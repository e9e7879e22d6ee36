from __future__ import annotations

import json
import sys
import tracemalloc

import pytest

from stethoscope.model import LINE_FIELDS, SCHEMA_VERSION, HeatRing, Snapshot, Store
from stethoscope.model.snapshot import EndInfo, Frame, StuckInfo, ThreadInfo, WaitStep


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_heat_ring_recent_covers_only_the_window_and_total_everything() -> None:
    ring: HeatRing[str] = HeatRing(window=3)
    ring.add({"a": 5}, second=10)
    ring.add({"a": 1, "b": 2}, second=11)
    assert (ring.recent("a"), ring.total("a")) == (6, 6)
    ring.add({"b": 1}, second=13)  # second 10 falls out of a 3-second window ending at 13
    assert (ring.recent("a"), ring.total("a")) == (1, 6)
    assert (ring.recent("b"), ring.total("b")) == (3, 3)
    ring.expire(100)
    assert (ring.recent("a"), ring.recent("b")) == (0, 0)
    assert (ring.total("a"), ring.total("b")) == (6, 3)


def test_heat_ring_memory_is_bounded_by_keys_not_run_time() -> None:
    ring: HeatRing[tuple[str, int]] = HeatRing(window=10)
    keys = [("f", line) for line in range(200)]
    for second in range(50):  # warm up
        ring.add({k: 1 for k in keys}, second)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for second in range(50, 2050):  # a long run, same lines
        ring.add({k: 1 for k in keys}, second)
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert ring.total(("f", 7)) == 2050
    assert ring.recent(("f", 7)) == 10
    assert grown < 200_000, f"memory grew by {grown} bytes over 2000 s of buckets"


def _store_with_data(clock: FakeClock) -> Store:
    store = Store(window=10, clock=clock)
    hot = store.register_file("/app/hot.py")
    cold = store.register_file("/app/cold.py")
    store.add_samples({(hot, 3): 40, (cold, 1): 2}, {(hot, 3): 40, (hot, 1): 40, (cold, 1): 2},
                      ticks=42)
    store.add_hits({(cold, 1): 7})
    frame = Frame(hot, "/app/hot.py", 3, "spin")
    store.set_threads([ThreadInfo(1, 11, "MainThread", False, True, True, (frame,))], [])
    return store


def _snap(store: Store, heat: str = "time") -> Snapshot:
    return store.snapshot(state="running", mode="sample", heat=heat,  # type: ignore[arg-type]
                          started=1.0, sample_hz=100.0, argv=["app.py"], python="3.x")


def test_snapshot_orders_files_by_the_heat_shown() -> None:
    store = _store_with_data(FakeClock())
    assert [f.name for f in _snap(store, "time").files] == ["hot.py", "cold.py"]
    assert [f.name for f in _snap(store, "hits").files] == ["cold.py", "hot.py"]


def test_snapshot_rows_follow_line_fields() -> None:
    snap = _snap(_store_with_data(FakeClock()))
    hot = snap.file("hot.py")
    assert hot is not None
    row = dict(zip(LINE_FIELDS, hot.line(3) or (), strict=True))
    assert row == {"line": 3, "hits_recent": 0, "hits_total": 0, "self_recent": 40,
                   "self_total": 40, "incl_recent": 40, "incl_total": 40,
                   "ran_recent": 0, "ran_total": 0, "ran_last_ms": 0}
    assert hot.line(1) == (1, 0, 0, 0, 0, 40, 40, 0, 0, 0)
    assert hot.line(2) is None


def test_recent_heat_fades_while_totals_stay() -> None:
    clock = FakeClock()
    store = _store_with_data(clock)
    clock.t += 11
    hot = _snap(store).file("hot.py")
    assert hot is not None and hot.line(3) == (3, 0, 0, 0, 40, 0, 40, 0, 0, 0)


def test_snapshot_round_trips_through_json() -> None:
    snap = _snap(_store_with_data(FakeClock()))
    data = json.loads(snap.to_json())
    assert data["schema"] == SCHEMA_VERSION
    assert data["line_fields"] == list(LINE_FIELDS)
    assert data["files"][0]["self_total"] == 40
    assert Snapshot.from_json(snap.to_json()) == snap


def test_waits_stuck_and_ended_round_trip_and_are_checked() -> None:
    store = _store_with_data(FakeClock())
    site = Frame(None, "/app/main.py", 30, "main")
    thread = ThreadInfo(7, 70, "MainThread", False, True, True, (site,),
                        waits=(WaitStep('server_close() joins "Thread-3"', thread=8),
                               WaitStep("reading from 127.0.0.1:5341")))
    store.set_threads([thread], [])
    before = store.generation
    store.set_stuck(StuckInfo(999.0, "server_close()", site, (8,), (), 1.0, True))
    store.set_ended(EndInfo("exit", 3, "exited with status 3", 1001.0, "MainThread", site))
    store.set_ended(EndInfo("signal", -15, "killed by SIGTERM", 1002.0))  # the first word stays
    assert store.generation == before + 2
    snap = _snap(store)
    assert snap.ended is not None and snap.ended.code == 3
    assert Snapshot.from_json(snap.to_json()) == snap
    data = snap.to_dict()
    data["ended"]["how"] = "vanished into thin air"
    with pytest.raises(ValueError, match="ending"):
        Snapshot.from_dict(data)
    data = snap.to_dict()
    data["threads"][0]["waits"][0]["thread"] = "8"
    with pytest.raises(ValueError, match="wait thread"):
        Snapshot.from_dict(data)
    older = snap.to_dict()  # a schema-3 snapshot written before these fields existed
    for key in ("stuck", "ended"):
        del older[key]
    del older["threads"][0]["waits"]
    assert Snapshot.from_dict(older).threads[0].waits == ()


def test_snapshot_from_another_schema_is_a_clear_error() -> None:
    data = _snap(_store_with_data(FakeClock())).to_dict()
    data["schema"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="schema"):
        Snapshot.from_dict(data)


def test_snapshots_are_immutable() -> None:
    snap = _snap(_store_with_data(FakeClock()))
    with pytest.raises(AttributeError):
        snap.state = "stopped"  # type: ignore[misc]


def test_notes_are_kept_once_and_bounded() -> None:
    store = Store(window=10)
    assert store.note("one") is True
    assert store.note("one") is False
    for i in range(100):
        store.note(f"note {i}")
    assert len(_snap(store).notes) <= 20


def test_file_ids_are_stable_and_opaque() -> None:
    a, b = Store(window=1), Store(window=1)
    fid = a.register_file("/x/y.py")
    assert fid == b.register_file("/x/y.py")
    assert "/" not in fid and "y.py" not in fid and fid.isalnum()
    assert a.path(fid) == "/x/y.py" and a.path("0" * 12) is None


def test_sample_rate_is_measured_not_requested() -> None:
    clock = FakeClock()
    store = Store(window=10, clock=clock)
    for _ in range(11):
        store.add_samples({}, {}, ticks=5)
        clock.t += 0.1
    assert store.sample_rate() == pytest.approx(54 / 1.0, rel=0.01)
    assert sys.getsizeof(store) > 0
