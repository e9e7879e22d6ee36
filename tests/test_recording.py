"""Recordings: written by trace(record=) and --record, read back whole or cut off,
and served by ``stethoscope view`` through the same API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stethoscope
from stethoscope.model import SCHEMA_VERSION
from stethoscope.model.stacks import StackLog
from stethoscope.recordings import file as recording
from stethoscope.recordings.file import MAGIC, RecordingError, diff, patch
from stethoscope.recordings.reader import read

from conftest import read_url, record_figure, run_cli, start_python, wait_for

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

PROGRAM = textwrap.dedent('''\
    import os, sys, threading, time

    def hot(n):
        total = 0
        for i in range(n):
            total += i * i  # HOT
        return total

    def worker(stop):
        while not stop.is_set():
            hot(300000)  # longer than the GIL's switch interval: the sampler sees it
            time.sleep(0.005)

    def recorded_enough(seconds):
        """Its recording holds a record per RECORD_EVERY of the run, and the sampler has
        seen the hot line: what the tests read. A loaded machine gets there later."""
        import stethoscope
        from stethoscope.recordings.file import RECORD_EVERY
        from stethoscope.recordings.reader import read
        mon = stethoscope.current()
        if mon is None or mon.config.record is None:
            return True
        try:
            rec = read(mon.config.record)
        except Exception:  # no record yet
            return False
        hot_file = rec.snapshots[-1].file(__file__)
        row = hot_file.line(HOT) if hot_file is not None else None
        return (len(rec.snapshots) >= seconds / RECORD_EVERY and len(rec.samples.times) > 100
                and row is not None and row[4] >= 20)  # row[4]: self_total

    HOT = next(i for i, text in enumerate(open(__file__), 1) if text.rstrip().endswith("# HOT"))
    stop = threading.Event()
    threading.Thread(target=worker, args=(stop,), name="recorded-worker", daemon=True).start()
    seconds = float(sys.argv[1])
    end = time.time() + seconds
    print("started", flush=True)
    checked = time.time()
    while time.time() < end:
        hot(20000)
    while time.time() < end + 60:  # the bound for a broken recording only
        hot(20000)
        if time.time() > checked + 0.25:
            if recorded_enough(seconds):
                break
            checked = time.time()
    stop.set()
    print("finished", flush=True)
''')


def _program(tmp_path: Path) -> Path:
    path = tmp_path / "recorded.py"
    path.write_text(PROGRAM)
    return path


def _hot_line() -> int:
    return next(i for i, line in enumerate(PROGRAM.splitlines(), 1) if "# HOT" in line)


# -- the difference encoding ---------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                      st.lists(st.integers(), max_size=3))
keys = st.text(max_size=4).filter(lambda k: k != "$del")  # reserved: diff() refuses it
nested = st.recursive(json_leaf, lambda children: st.dictionaries(
    keys, children, max_size=5), max_leaves=20)
dicts = st.dictionaries(keys, nested, max_size=6)


@settings(max_examples=300, deadline=None)
@given(dicts, dicts)
def test_patch_of_diff_gives_the_new_dict_back(old: dict[str, Any], new: dict[str, Any]) -> None:
    before = json.dumps(old, sort_keys=True)
    assert patch(old, diff(old, new)) == new
    assert json.dumps(old, sort_keys=True) == before  # the old one is left alone


def test_the_reserved_key_is_refused() -> None:
    with pytest.raises(ValueError, match="reserved"):
        diff({}, {"$del": 1})


def test_a_difference_holds_only_what_moved() -> None:
    old = {"files": {"a": {"lines": {"1": [1, 5], "2": [2, 7]}}, "b": {"lines": {}}}, "t": 1}
    new = {"files": {"a": {"lines": {"1": [1, 6], "2": [2, 7]}}}, "t": 2}
    assert diff(old, new) == {"files": {"a": {"lines": {"1": [1, 6]}}, "$del": ["b"]}, "t": 2}


# -- recording a real program --------------------------------------------------


def _records(path: Path) -> int:
    """How many records a recording being written holds so far."""
    try:
        return len(read(str(path)).snapshots)
    except (RecordingError, OSError):  # not there yet, or no record yet
        return 0


def _record(tmp_path: Path, seconds: float = 1.5, extra: list[str] | None = None
            ) -> tuple[Path, Any]:
    out = tmp_path / "run.stetho"
    proc = run_cli(["run", "--port", "0", "--record", str(out), *(extra or []),
                    str(_program(tmp_path)), str(seconds)], timeout=100)
    assert proc.returncode == 0, proc.stderr
    assert f"recorded to {out}" in proc.stderr
    return out, proc


def test_a_recording_holds_the_run_the_sources_and_the_stacks(tmp_path: Path) -> None:
    out, _ = _record(tmp_path)
    assert out.read_bytes().startswith(MAGIC)
    rec = read(str(out))
    assert not rec.truncated
    assert rec.header["pid"] > 0 and rec.header["argv"][-2].endswith("recorded.py")
    assert len(rec.snapshots) >= 3
    assert rec.times == sorted(rec.times)
    assert [s.time for s in rec.snapshots] == rec.times
    first, last = rec.snapshots[0], rec.snapshots[-1]
    assert first.state == "running" and last.state == "stopped"
    hot = last.file("recorded.py")
    assert hot is not None
    row = hot.line(_hot_line())
    assert row is not None and row[4] > 0  # self_total: sampled time on the hot line
    assert rec.sources[hot.id] == (str(tmp_path / "recorded.py"), PROGRAM)
    # Totals only grow from one snapshot to the next.
    totals = [s.file("recorded.py").sum("self_total") for s in rec.snapshots  # type: ignore[union-attr]
              if s.file("recorded.py") is not None]
    assert totals == sorted(totals) and totals[-1] == hot.sum("self_total")
    samples = rec.samples
    assert samples.pid == rec.header["pid"]
    assert len(samples.times) == len(samples.threads) == len(samples.stack_ids) > 50
    assert list(samples.times) == sorted(samples.times)
    assert set(samples.thread_names.values()) >= {"MainThread", "recorded-worker"}
    innermost = [samples.frames[samples.stacks[s][-1]] for s in samples.stack_ids]
    assert (str(tmp_path / "recorded.py"), _hot_line(), "hot") in innermost
    worker = next(i for i, n in samples.thread_names.items() if n == "recorded-worker")
    worker_stacks = {samples.stacks[s] for s, t in zip(samples.stack_ids, samples.threads,
                                                        strict=True) if t == worker}
    names = {samples.frames[f][2] for stack in worker_stacks for f in stack}
    assert {"worker", "hot", "run"} <= names  # whole stacks, threading's frames too


def test_a_recording_is_compact(tmp_path: Path) -> None:
    out, _ = _record(tmp_path, seconds=3.0)
    rec = read(str(out))
    raw = sum(len(s.to_json()) for s in rec.snapshots)
    size = out.stat().st_size
    # Differences in one compressed stream: far smaller than the snapshots as JSON.
    assert size * 4 < raw, (size, raw)


def test_many_records_rebuild_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole snapshots every few records, differences between: every snapshot read
    back equals the one written, in order and out of order."""
    monkeypatch.setattr(recording, "FULL_EVERY", 3)
    monkeypatch.setattr(recording, "RECORD_EVERY", 0.05)
    out = tmp_path / "many.stetho"
    written: list[dict[str, Any]] = []
    mon = stethoscope.trace(port=0, quiet=True, record=str(out))
    assert mon.recording is not None
    original = mon.snapshot

    def keep(view: Any = None) -> Any:
        snap = original(view)
        if view == "all":
            written.append(snap.to_dict())
        return snap

    mon.snapshot = keep  # type: ignore[method-assign]
    stop = time.monotonic() + 60  # until a dozen records are written (a second, idle)
    while time.monotonic() < stop and len(written) < 12:
        sum(i * i for i in range(3000))
    stethoscope.stop()
    rec = read(str(out))
    assert not rec.truncated
    got = [s.to_dict() for s in rec.snapshots]
    by_time = {w["time"]: w for w in written}
    matched = [g for g in got if g["time"] in by_time]  # the first may predate `keep`
    assert len(got) >= 8 and len(matched) >= len(got) - 1
    assert all(by_time[g["time"]] == g for g in matched)
    assert rec.snapshots[2].to_dict() == got[2] and rec.snapshots[-1].to_dict() == got[-1]
    assert rec.snapshots[1].to_dict() == got[1]  # backwards: rebuilt from a whole one


def test_a_killed_process_leaves_a_readable_recording(tmp_path: Path) -> None:
    out = tmp_path / "killed.stetho"
    proc = start_python(["-m", "stethoscope", "run", "--port", "0", "--record", str(out),
                         str(_program(tmp_path)), "60"])
    try:
        read_url(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
        # Records reach the file while the program runs (nothing is held back for the
        # end): two more of them after `seen`, the second one begun after it.
        seen = time.time()
        now = _records(out)
        wait_for(lambda: _records(out) >= now + 2)
        proc.kill()
        proc.wait(60)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    rec = read(str(out))
    assert rec.truncated
    assert len(rec.snapshots) >= 2 and rec.snapshots[-1].state == "running"
    assert rec.times[-1] >= seen  # what was written before the kill is all there
    assert len(rec.samples.times) > 0
    # how much a kill loses (about a record's worth) is the benchmark's figure
    record_figure("recording: last record before a kill, to the file's last write",
                  out.stat().st_mtime - rec.times[-1])


@pytest.mark.parametrize(("signum", "exit_code", "printed"), [
    (signal.SIGTERM, -signal.SIGTERM, ""),  # handled: finish the file, then die of it
    (signal.SIGINT, -signal.SIGINT, "KeyboardInterrupt"),  # atexit finishes it; Python then
    # ends by SIGINT, as it does for an uncaught KeyboardInterrupt
])
def test_a_signal_finishes_the_recording(tmp_path: Path, signum: int, exit_code: int,
                                         printed: str) -> None:
    out = tmp_path / "signalled.stetho"
    proc = start_python(["-m", "stethoscope", "run", "--port", "0", "--record", str(out),
                         str(_program(tmp_path)), "60"])
    try:
        read_url(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
        wait_for(lambda: _records(out) >= 1)  # the recording is under way
        proc.send_signal(signum)
        try:
            code: int | None = proc.wait(60)
        except subprocess.TimeoutExpired:  # still running (seen once): its stderr below
            code = None
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    assert code == exit_code, err[-3000:]
    assert printed in err
    rec = read(str(out))
    assert not rec.truncated
    assert rec.snapshots[-1].state == "stopped"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_leaves_the_recording_alone(tmp_path: Path) -> None:
    out = tmp_path / "fork.stetho"
    script = tmp_path / "forks.py"
    script.write_text(textwrap.dedent('''\
        import os, sys, time
        import stethoscope
        from stethoscope.recordings.reader import read

        RECORDING = stethoscope.current().config.record  # the parent's (a child has its own)

        def records():
            try:
                return len(read(RECORDING).snapshots)
            except Exception:  # none yet
                return 0

        def more(than):  # until the parent has recorded more than that
            deadline = time.monotonic() + 60
            while records() <= than and time.monotonic() < deadline:
                time.sleep(0.05)

        more(0)
        for how in ("exit", "_exit"):
            n = records()
            pid = os.fork()
            if pid == 0:
                more(n)  # the parent records meanwhile
                if how == "exit":
                    sys.exit(0)  # atexit handlers run in the child
                os._exit(0)
            os.waitpid(pid, 0)
        more(records())
    '''))
    proc = run_cli(["run", "--port", "0", "--record", str(out), str(script)], timeout=100)
    assert proc.returncode == 0, proc.stderr
    rec = read(str(out))
    assert not rec.truncated
    assert rec.header["pid"] == rec.snapshots[-1].pid
    assert rec.snapshots[-1].state == "stopped"
    assert len(rec.snapshots) >= 4


def test_recording_to_a_path_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "run.stetho"
    proc = run_cli(["run", "--port", "0", "--record", str(target),
                    str(_program(tmp_path)), "0.1"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"stethoscope: error: cannot write the recording {str(target)!r}: "
        f"No such file or directory"]
    assert "started" not in proc.stdout  # the program did not run
    with pytest.raises(stethoscope.ConfigError, match="cannot write the recording"):
        stethoscope.trace(port=0, quiet=True, record=str(target))
    assert stethoscope.current() is None or not stethoscope.current().running  # type: ignore[union-attr]
    with pytest.raises(stethoscope.ConfigError, match="record must be a file path"):
        stethoscope.trace(port=0, quiet=True, record="")


# -- damaged files -----------------------------------------------------------


def test_files_that_are_not_recordings_are_refused_in_one_line(tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("hello\n")
    with pytest.raises(RecordingError, match="is not a stethoscope recording"):
        read(str(other))
    with pytest.raises(RecordingError, match="cannot read"):
        read(str(tmp_path / "missing.stetho"))
    empty = tmp_path / "empty.stetho"
    empty.write_bytes(MAGIC)
    with pytest.raises(RecordingError, match="ends before its header"):
        read(str(empty))
    proc = run_cli(["view", str(other), "--port", "0"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"stethoscope: error: {other} is not a stethoscope recording "
        f"(made by stethoscope run --record FILE)"]


def test_a_file_cut_anywhere_still_opens_up_to_the_cut(tmp_path: Path) -> None:
    out, _ = _record(tmp_path)
    data = out.read_bytes()
    whole = read(str(out))
    cut_file = tmp_path / "cut.stetho"
    opened = 0
    for fraction in (0.5, 0.7, 0.9, 0.99):
        cut_file.write_bytes(data[: int(len(data) * fraction)])
        try:
            rec = read(str(cut_file))
        except RecordingError as exc:
            assert "holds no snapshot yet" in str(exc)  # cut before the first one
            continue
        opened += 1
        assert rec.truncated
        assert len(rec.snapshots) <= len(whole.snapshots)
        n = len(rec.snapshots) - 1
        assert rec.snapshots[n].to_dict() == whole.snapshots[n].to_dict()
    assert opened >= 2


def test_a_compressed_stream_broken_in_the_middle_keeps_what_came_before(
        tmp_path: Path) -> None:
    """Damage that breaks the stream cuts the recording there (a record that does not
    read in an intact stream is refused instead: tests/test_recording_untrusted.py)."""
    out, _ = _record(tmp_path, seconds=2.0)
    whole = read(str(out))
    text = zlib.decompressobj().decompress(out.read_bytes()[len(MAGIC):])
    records = text.splitlines(keepends=True)
    snaps = [i for i, line in enumerate(records) if line.startswith(b'{"k":"snap"')]
    keep = snaps[len(snaps) // 2]  # the records up to this snapshot are whole
    zip_ = zlib.compressobj(6)
    data = MAGIC + zip_.compress(b"".join(records[:keep + 1])) + zip_.flush(zlib.Z_SYNC_FLUSH)
    rest = zip_.compress(b"".join(records[keep + 1:])) + zip_.flush(zlib.Z_SYNC_FLUSH)
    out.write_bytes(data + b"\xff" * 64 + rest)  # 0xff: a block type that does not exist
    rec = read(str(out))
    assert rec.truncated and rec.cut_reason == "its compressed data is damaged"
    assert len(rec.snapshots) == len(snaps) // 2 + 1 < len(whole.snapshots)
    n = len(rec.snapshots) - 1
    assert rec.snapshots[n].to_dict() == whole.snapshots[n].to_dict()


def test_damage_anywhere_reads_as_a_cut_or_a_one_line_error(tmp_path: Path) -> None:
    # A damaged deflate stream can inflate to well-formed JSON with wrong content
    # before zlib notices: whatever survives must read, or be refused in one line.
    import random

    out, _ = _record(tmp_path, seconds=2.0)
    original = out.read_bytes()
    chance = random.Random(1234)
    damaged = tmp_path / "damaged.stetho"
    read_ok = refused = 0
    for start in range(len(MAGIC), len(original), max(1, len(original) // 60)):
        for junk in (b"\xff" * 64, bytes(chance.randrange(256) for _ in range(16))):
            data = bytearray(original)
            data[start:start + len(junk)] = junk
            damaged.write_bytes(bytes(data))
            try:
                rec = read(str(damaged))
            except RecordingError as exc:
                assert "\n" not in str(exc)
                refused += 1
                continue
            read_ok += 1
            assert rec.snapshots and len(rec.times) == len(rec.snapshots)
            for snap in rec.snapshots:  # every one it kept rebuilds
                assert snap.schema == SCHEMA_VERSION
            assert all(0 <= i < len(rec.samples.stacks) for i in rec.samples.stack_ids)
    assert read_ok > 0 and read_ok + refused >= 60


def test_the_stack_log_starts_over_when_it_grows_too_big(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from stethoscope.model import stacks

    monkeypatch.setattr(stacks, "MAX_ENTRIES", 15)
    log = StackLog()
    for i in range(8):
        log.add(1.0, 1, [("a.py", i, "f")])
    first = log.take()
    assert not first.reset and len(first.frames) == 8 and len(first.samples) == 8
    log.add(2.0, 1, [("a.py", 99, "g")])  # 8 frames + 8 stacks > 15: start over
    second = log.take()
    assert second.reset and second.frames == [("a.py", 99, "g")] and second.stacks == [(0,)]
    assert second.samples == [(2.0, 1, 0)]


# -- stethoscope view ------------------------------------------------------------


def _get(url: str) -> tuple[int, bytes]:
    try:
        with NO_PROXY.open(url, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_view_serves_the_recording_through_the_api(tmp_path: Path) -> None:
    out, _ = _record(tmp_path)
    rec = read(str(out))
    proc = start_python(["-m", "stethoscope", "view", str(out), "--port", "0"])
    try:
        url = read_url(proc)
        base, token = url.split("/?token=")

        def api(path: str, sep: str = "?") -> tuple[int, bytes]:
            return _get(f"{base}{path}{sep}token={token}")

        status, body = api("/api/recording")
        timeline = json.loads(body)
        assert status == 200 and timeline["count"] == len(rec.snapshots)
        assert timeline["times"] == rec.times and timeline["truncated"] is False
        status, body = api("/api/snapshot?at=1", "&")
        assert status == 200 and json.loads(body) == rec.snapshots[1].to_dict()
        status, body = api("/api/snapshot")
        assert json.loads(body)["state"] == "stopped"
        for bad in ("at=-1", f"at={len(rec.snapshots)}", "at=x", "at=99999999999"):
            status, body = api(f"/api/snapshot?{bad}", "&")
            assert status == 400 and b"at must be the index" in body, bad
        hot = rec.snapshots[-1].file("recorded.py")
        assert hot is not None
        status, body = api(f"/api/source/{hot.id}")
        assert status == 200 and "total += i * i" in body.decode()
        status, _ = api("/api/source/0123456789ab")
        assert status == 404
        status, body = api("/api/activity")
        activity = json.loads(body)
        assert status == 200 and len(activity["times"]) == len(rec.snapshots)
        assert activity["files"][0]["name"] == "recorded.py"
        assert sum(activity["total"]) == hot.sum("self_total")
        status, body = api("/api/events")
        assert status == 404 and b"no live events" in body
        status, body = api("/metrics")
        assert status == 404 and b"no live metrics" in body
        assert _get(f"{base}/api/recording")[0] == 403  # the token is needed here too
        request = urllib.request.Request(f"{base}/api/mode?mode=trace&token={token}",
                                         method="POST")
        try:
            NO_PROXY.open(request, timeout=60)
            raise AssertionError("a recording switched modes")
        except urllib.error.HTTPError as err:
            assert err.code == 400 and b"cannot switch modes" in err.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        proc.communicate(timeout=60)


def test_live_activity_shows_the_hot_file_and_busy_threads() -> None:
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            sum(i * i for i in range(2000))

    mon = stethoscope.trace(port=0, quiet=True)
    thread = threading.Thread(target=busy, name="busy-one", daemon=True)
    thread.start()
    try:
        base, token = mon.url.split("/?token=")

        def activity(pid: str = "all") -> dict[str, Any]:
            status, body = _get(f"{base}/api/activity?pid={pid}&token={token}")
            assert status == 200
            return json.loads(body)  # type: ignore[no-any-return]

        def busy_shown(a: dict[str, Any]) -> bool:
            """The busy thread, and the process, at more than 5 % of a core in some
            second (on a loaded machine, perhaps not in the first ones)."""
            busy_one = [t for t in a["threads"] if t["name"] == "busy-one"]
            return bool(busy_one) and max(v or 0 for v in busy_one[0]["values"]) > 5 \
                and any(v is not None and v > 5 for v in a["cpu"])

        data = wait_for(lambda: (a := activity()) and len(a["times"]) >= 3 and busy_shown(a)
                        and a)
        assert data["interval"] == 1.0 and data["heat"] in ("time", "ran", "hits")
        mine = [f for f in data["files"] if f["path"] == os.path.abspath(__file__)]
        assert mine and max(mine[0]["values"]) > 0
        only_me = activity(str(os.getpid()))
        assert {t["pid"] for t in only_me["threads"]} == {os.getpid()}
        status, body = _get(f"{base}/api/activity?pid=1&token={token}")
        assert status == 404
        status, body = _get(f"{base}/api/recording?token={token}")
        assert status == 200 and json.loads(body) is None  # live: the page opens the stream
    finally:
        stop.set()
        thread.join(30)
        stethoscope.stop()


def test_the_stack_samples_cost_nothing_without_a_recording() -> None:
    mon = stethoscope.trace(port=0, quiet=True)
    try:
        assert mon.recording is None
        sampler = next(c for c in mon.collectors if c.name == "sampler")
        assert sampler._stack_log is None  # type: ignore[attr-defined]
    finally:
        stethoscope.stop()
