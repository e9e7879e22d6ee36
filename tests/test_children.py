"""Child processes are followed: every start method, every way out, nothing lost.

Each test runs a real monitored program that starts real children (multiprocessing
with fork, spawn and forkserver, Pool, ProcessPoolExecutor, subprocess) and prints
what the program's monitor holds once the children are gone.
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import child_env, record_figure, run_python, wait_for

METHODS = ["fork", "spawn", "forkserver"]
N = 20_000  # iterations of the hot loop per task

# The program under test: `python prog.py KIND` starts children of one kind, waits
# for their final reports, and prints one JSON line with what the monitor holds.
PROGRAM = '''
import concurrent.futures as cf
import json, multiprocessing as mp, os, subprocess, sys, time
import stethoscope

N = {n}
HOT = [i for i, text in enumerate(open(__file__), 1) if text.strip().endswith("# HOT")][0]

def hot(n):
    total = 0
    for i in range(n):
        total += i  # HOT
    return os.getpid()

def hot_then_os_exit(n):
    hot(n)
    os._exit(3)

def children(kind):
    """Start children of one kind; return their pids."""
    if kind.startswith("process-"):
        ctx = mp.get_context(kind[len("process-"):])
        procs = [ctx.Process(target=hot, args=(N,)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert [p.exitcode for p in procs] == [0, 0], [p.exitcode for p in procs]
        return [p.pid for p in procs]
    if kind.startswith("pool-"):
        with mp.get_context(kind[len("pool-"):]).Pool(2) as pool:
            return sorted(set(pool.map(hot, [N] * 4, chunksize=1)))
    if kind == "maxtasksperchild":
        with mp.get_context("spawn").Pool(2, maxtasksperchild=1) as pool:
            return sorted(set(pool.map(hot, [N] * 4, chunksize=1)))
    if kind == "executor":
        with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
            return sorted(set(ex.map(hot, [N] * 4)))
    if kind == "os-exit":
        p = mp.get_context("fork").Process(target=hot_then_os_exit, args=(N,))
        p.start(); p.join()
        assert p.exitcode == 3, p.exitcode
        return [p.pid]
    if kind == "os-fork":
        pid = os.fork()
        if pid == 0:
            hot(N)
            os._exit(0)
        os.waitpid(pid, 0)
        return [pid]
    if kind == "subprocess":
        procs = [subprocess.Popen([sys.executable, __file__, "child"]) for _ in range(2)]
        assert [p.wait() for p in procs] == [0, 0]
        return [p.pid for p in procs]
    if kind == "short":
        # lives about 50 ms: no periodic report ever leaves, only the final one
        p = subprocess.Popen([sys.executable, __file__, "short-child"])
        assert p.wait() == 0
        return [p.pid]
    raise SystemExit("unknown kind " + kind)

if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "child":
        hot(N)
        sys.exit(0)
    if kind == "short-child":
        hot(N // 10)
        time.sleep(0.05)
        sys.exit(0)
    import faulthandler, warnings
    # a hang (seen once, pool-fork on 3.11, not understood) shows every stack, not
    # only the test's timeout
    faulthandler.dump_traceback_later(90, exit=True)
    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads on 3.12+
    mon = stethoscope.trace(port=0, mode="{mode}", quiet=True)
    pids = children(kind)
    deadline = time.monotonic() + 60  # a wait, generous for a loaded machine
    while time.monotonic() < deadline:
        snap = mon.snapshot("all")
        states = {{p.pid: p for p in snap.processes}}
        # "exited" needs the final report; "killed" may still be corrected by
        # a final report that a busy monitor reads late
        if all(pid in states and states[pid].state == "exited"
               and states[pid].ppid in states for pid in pids):
            break
        time.sleep(0.05)
    snap = mon.snapshot("all")
    f = snap.file(os.path.abspath(__file__))
    row = f.line(HOT) if f else None
    own = mon.snapshot(os.getpid())
    own_file = own.file(os.path.abspath(__file__))
    print(json.dumps({{
        "main": os.getpid(),
        "pids": pids,
        "procs": {{p.pid: [p.state, p.exit_how, p.exit_code, p.method, p.ppid, p.name]
                  for p in snap.processes}},
        "hits": row[2] if row else 0,
        "own_hits": (own_file.line(HOT) or [0, 0, 0])[2] if own_file else 0,
        "per_child": {{pid: _hits(mon, pid, HOT) for pid in pids}},
    }}))
    stethoscope.stop()
'''

HELPER = '''
def _hits(mon, pid, line):
    try:
        snap = mon.snapshot(pid)
    except LookupError:
        return None
    f = snap.file(os.path.abspath(__file__))
    row = f.line(line) if f else None
    return row[2] if row else 0
'''


def _program(tmp_path: Path, mode: str = "trace") -> Path:
    path = tmp_path / "prog.py"
    text = PROGRAM.format(n=N, mode=mode)
    head, main = text.split('if __name__ == "__main__":')
    path.write_text(head + HELPER + 'if __name__ == "__main__":' + main)
    return path


def _run(tmp_path: Path, kind: str, mode: str = "trace") -> dict[str, Any]:
    path = _program(tmp_path, mode)
    result = run_python([str(path), kind], cwd=tmp_path, timeout=100)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    out["stderr"] = result.stderr  # shown when an assertion on `out` fails
    out["procs"] = {int(pid): v for pid, v in out["procs"].items()}
    out["per_child"] = {int(pid): v for pid, v in out["per_child"].items()}
    return out


def _known_bug_312() -> Any:
    return pytest.mark.xfail(
        sys.version_info[:3] < (3, 12, 3) and sys.version_info[:2] == (3, 12), strict=False,
        reason="known bug, not fixed: CPython 3.12.0-3.12.2 can crash in multiprocessing "
               "pickling under the sampler ('deallocated BytesIO object has exported buffers')")


@pytest.mark.parametrize("method", METHODS)
def test_process_children_of_every_start_method_report_exact_counts(
        tmp_path: Path, method: str) -> None:
    out = _run(tmp_path, f"process-{method}")
    assert len(out["pids"]) == 2
    for pid in out["pids"]:
        state, how, code, got_method, ppid, name = out["procs"][pid]
        assert (state, how, code) == ("exited", "return", 0), out["procs"][pid]
        assert got_method == method and name.endswith(("Process-1", "Process-2")), name
        if method == "forkserver":  # forked by multiprocessing's server process
            assert out["procs"][ppid][5] == "forkserver" and out["procs"][ppid][4] == out["main"]
        else:
            assert ppid == out["main"]
        assert out["per_child"][pid] == N  # each child ran the loop once, exactly
    assert out["own_hits"] == 0  # only the children ran the hot line
    assert out["hits"] == 2 * N  # the combined view sums them


@pytest.mark.parametrize("kind", ["pool-fork", "pool-spawn", "pool-forkserver",
                                  "maxtasksperchild", "executor"])
def test_pool_and_executor_workers_lose_no_counts(tmp_path: Path, kind: str) -> None:
    out = _run(tmp_path, kind)
    assert out["pids"], out
    for pid in out["pids"]:
        state, how, _, _, _, name = out["procs"][pid]
        # "with Pool()" terminates its workers: SIGTERM, flushed by our handler
        assert state == "exited" and how in ("return", "SIGTERM"), out
        assert "Worker" in name or kind == "executor", name
    assert out["hits"] == 4 * N  # every task's loop, whichever worker ran it
    assert sum(out["per_child"].values()) == 4 * N
    if kind == "maxtasksperchild":
        assert len(out["pids"]) == 4  # one worker per task, each retired after it


def test_subprocess_children_of_the_same_python_are_followed(tmp_path: Path) -> None:
    out = _run(tmp_path, "subprocess")
    for pid in out["pids"]:
        state, how, _, method, ppid, _ = out["procs"][pid]
        assert (state, how, method, ppid) == ("exited", "exit", "subprocess", out["main"])
        assert out["per_child"][pid] == N
    assert out["hits"] == 2 * N


def test_a_child_of_os_fork_is_followed(tmp_path: Path) -> None:
    out = _run(tmp_path, "os-fork")
    (pid,) = out["pids"]
    state, how, code, method, ppid, _ = out["procs"][pid]
    assert (state, how, code, method, ppid) == ("exited", "os._exit", 0, "os.fork", out["main"])
    assert out["per_child"][pid] == N


def test_a_child_leaving_through_os_exit_keeps_its_data(tmp_path: Path) -> None:
    out = _run(tmp_path, "os-exit")
    (pid,) = out["pids"]
    assert out["procs"][pid][:3] == ["exited", "os._exit", 3]
    assert out["per_child"][pid] == N


def test_a_child_that_lives_50_ms_keeps_its_data(tmp_path: Path) -> None:
    out = _run(tmp_path, "short")
    (pid,) = out["pids"]
    assert out["procs"][pid][0] == "exited"
    assert out["per_child"][pid] == N // 10


def test_sample_mode_follows_children_too(tmp_path: Path) -> None:
    out = _run(tmp_path, "process-spawn", mode="sample")
    for pid in out["pids"]:
        assert out["procs"][pid][:3] == ["exited", "return", 0]
        assert out["per_child"][pid] is not None  # its own view exists


ATEXIT = '''
import atexit, multiprocessing as mp, os, subprocess, sys

def note(tag):
    with open(os.path.join(sys.argv[2], tag), "w") as f:
        f.write(str(os.getpid()))

def child(tag):
    atexit.register(note, tag)  # a module global (note) must still exist at exit

if __name__ == "__main__":
    if sys.argv[1] == "sub":
        child("subprocess")
        sys.exit(0)
    if sys.argv[1] == "monitor":
        import stethoscope
        stethoscope.trace(port=0, quiet=True)
    atexit.register(note, "parent")
    for method in ("fork", "spawn", "forkserver"):
        p = mp.get_context(method).Process(target=child, args=(method,))
        p.start(); p.join()
    subprocess.run([sys.executable, __file__, "sub", sys.argv[2]], check=True)
'''


def test_atexit_handlers_in_children_run_exactly_as_without_the_monitor(
        tmp_path: Path) -> None:
    path = tmp_path / "atexit_prog.py"
    path.write_text(ATEXIT)
    written = {}
    for variant in ("plain", "monitor"):
        out = tmp_path / variant
        out.mkdir()
        result = run_python([str(path), variant, str(out)], cwd=tmp_path, timeout=100)
        assert result.returncode == 0, result.stderr
        assert "Error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
        written[variant] = sorted(p.name for p in out.iterdir())
    assert written["monitor"] == written["plain"]
    assert {"parent", "subprocess", "spawn"} <= set(written["plain"])  # the test can fail


KILLED = '''
import multiprocessing as mp, os, signal, sys, time, json
import stethoscope

def spin():
    t = time.monotonic()
    while time.monotonic() - t < 120:  # until it is killed
        sum(range(1000))  # SPIN

if __name__ == "__main__":
    mon = stethoscope.trace(port=0, mode="trace", quiet=True)
    p = mp.get_context("spawn").Process(target=spin)
    p.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the child has reported some work
        try:
            snap = mon.snapshot(p.pid)
        except LookupError:
            snap = None
        if snap is not None and snap.files:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = {x.pid: x for x in mon.snapshot("all").processes}[p.pid]
        if info.state != "running":
            break
        time.sleep(0.05)
    spun = mon.snapshot(p.pid).file(os.path.abspath(__file__))
    print(json.dumps([info.state, info.exit_how, info.exit_code, spun is not None
                      and sum(r[2] for r in spun.lines) > 0, mon.running]))
    stethoscope.stop()
'''


def test_a_sigkilled_child_is_marked_killed_and_keeps_what_it_sent(tmp_path: Path) -> None:
    path = tmp_path / "killed.py"
    path.write_text(KILLED)
    result = run_python([str(path)], cwd=tmp_path, timeout=100)
    assert result.returncode == 0, result.stderr
    state, how, code, kept, running = json.loads(result.stdout.strip().splitlines()[-1])
    assert (state, how, kept, running) == ("killed", "vanished", True, True)
    assert code in (-signal.SIGKILL, None)  # the status is known only until it is reaped


ORPHAN = '''
import os, subprocess, sys, time
import stethoscope

if __name__ == "__main__":
    if sys.argv[1] == "child":
        parent, deadline = int(sys.argv[3]), time.monotonic() + 60
        while os.getppid() == parent and time.monotonic() < deadline:
            sum(range(1000))  # at work while its parent leaves
        t = time.monotonic()
        while time.monotonic() - t < 1.0:  # and on, orphaned: its reports have nowhere to go
            sum(range(1000))
        with open(sys.argv[2], "w") as f:
            f.write("orphaned" if os.getppid() != parent else "its parent never left")
        sys.exit(0)
    mon = stethoscope.trace(port=0, quiet=True)
    child = subprocess.Popen([sys.executable, __file__, "child", sys.argv[2], str(os.getpid())],
                             stdout=subprocess.DEVNULL, stderr=open(sys.argv[3], "w"))
    print(child.pid, flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(  # it has started and reported
            p.pid == child.pid for p in mon.snapshot("all").processes):
        time.sleep(0.05)
    # now its parent goes, without waiting for it
'''


def _gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaps counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_parent_exiting_first_leaves_its_children_unblocked(tmp_path: Path) -> None:
    path = tmp_path / "orphan.py"
    path.write_text(ORPHAN)
    done, errors = tmp_path / "done", tmp_path / "child-stderr"
    result = run_python([str(path), "parent", str(done), str(errors)], cwd=tmp_path,
                        timeout=100)
    assert result.returncode == 0, result.stderr
    child = int(result.stdout.split()[0])
    wait_for(done.exists)
    wait_for(lambda: _gone(child))  # it writes, then exits: check its stderr after that
    assert done.read_text() == "orphaned"
    assert "Traceback" not in errors.read_text(), errors.read_text()


def test_processes_false_follows_no_children(tmp_path: Path) -> None:
    path = tmp_path / "off.py"
    path.write_text(textwrap.dedent('''
        import json, os, subprocess, sys, stethoscope
        mon = stethoscope.trace(port=0, quiet=True, processes=False)
        env_set = "STETHOSCOPE_CHILD" in os.environ
        code = "import os; print('STETHOSCOPE_CHILD' in os.environ)"
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        snap = mon.snapshot("all")
        print(json.dumps([env_set, child.stdout.strip(), [p.pid for p in snap.processes]]))
        stethoscope.stop()
    '''))
    result = run_python([str(path)], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    env_set, child_saw, pids = json.loads(result.stdout)
    assert (env_set, child_saw) == (False, "False")
    assert len(pids) == 1


def test_the_environment_is_cleaned_up_on_stop(tmp_path: Path) -> None:
    path = tmp_path / "env.py"
    path.write_text(textwrap.dedent('''
        import os, stethoscope
        before = "STETHOSCOPE_CHILD" in os.environ
        with stethoscope.trace(port=0, quiet=True):
            during = "STETHOSCOPE_CHILD" in os.environ
        print(before, during, "STETHOSCOPE_CHILD" in os.environ)
    '''))
    result = run_python([str(path)], cwd=tmp_path, timeout=60)
    assert result.stdout.split() == ["False", "True", "False"], result.stderr


def test_a_broken_link_in_the_environment_leaves_the_child_running(tmp_path: Path) -> None:
    result = run_python(["-c", "print('ran')"], cwd=tmp_path, timeout=30,
                        env=child_env(STETHOSCOPE_CHILD="{not json"))
    assert result.returncode == 0 and result.stdout.strip() == "ran"
    assert result.stderr.count("\n") == 1 and "is not monitored" in result.stderr


@pytest.mark.parametrize("gone", ["no socket", "nobody listens"])
def test_a_child_whose_monitor_is_gone_exits_at_once(tmp_path: Path, gone: str) -> None:
    # The link names a socket path where nothing is (ENOENT), or a socket nobody
    # listens on (ECONNREFUSED): the child must not wait for it.
    import socket

    path = tmp_path / "inbox"
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if gone == "nobody listens":
        bound.bind(str(path))  # bound, not listening: connections are refused
    link = json.dumps({"v": 2, "inbox": str(path), "mode": "sample", "files": ["user"],
                       "sample_hz": 100, "window": 10, "hang_report": 3.0})
    # Its monitor's first report is refused: the monitor gives up at once and stops
    # (so nothing waits at exit either). (Read through the Monitor, not current(): in
    # about one start in ten current() goes on returning the stopped monitor, a race
    # in api.start_child, reported separately.)
    program = textwrap.dedent("""
        import time, stethoscope
        mon = stethoscope.current()  # None if it has already given up
        deadline = time.monotonic() + 60
        while mon is not None and mon.running and time.monotonic() < deadline:
            time.sleep(0.02)
        print("ran", "unmonitored" if mon is None or not mon.running else "still monitored")
    """)
    began = time.monotonic()
    result = run_python(["-c", program], cwd=tmp_path, timeout=100,
                        env=child_env(STETHOSCOPE_CHILD=link))
    record_figure("a child whose monitor is gone: start to exit", time.monotonic() - began)
    bound.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran unmonitored", result.stderr
    assert result.stderr == ""


def test_pool_terminate_flushes_busy_workers(tmp_path: Path) -> None:
    path = tmp_path / "terminate.py"
    path.write_text(textwrap.dedent('''
        import json, multiprocessing as mp, os, time, stethoscope

        def busy(_):
            t = time.monotonic()
            while time.monotonic() - t < 120:  # until terminated
                sum(range(100))  # BUSY
            return 0

        def wait(condition):
            deadline = time.monotonic() + 60
            while not condition() and time.monotonic() < deadline:
                time.sleep(0.05)

        if __name__ == "__main__":
            def workers():
                return [p for p in mon.snapshot("all").processes if "Worker" in p.name]

            def at_work(p):  # it has reported lines of busy()
                try:
                    return p.state == "running" and bool(mon.snapshot(p.pid).files)
                except LookupError:
                    return False

            mon = stethoscope.trace(port=0, quiet=True)
            pool = mp.get_context("spawn").Pool(2)
            pool.map_async(busy, range(2))
            # Both at work and reporting it (a loaded machine may take seconds to
            # spawn them)
            wait(lambda: len(workers()) == 2 and all(at_work(p) for p in workers()))
            pool.terminate()  # SIGTERM to workers in the middle of their work
            pool.join()
            # their final reports ("killed", when a busy monitor notices a worker gone
            # before it reads the report, is corrected by the report)
            wait(lambda: all(p.state == "exited" for p in workers()))
            print(json.dumps([[p.state, p.exit_how, p.exit_code] for p in workers()]))
            stethoscope.stop()
    '''))
    result = run_python([str(path)], cwd=tmp_path, timeout=100)
    assert result.returncode == 0, result.stderr
    procs = json.loads(result.stdout)
    assert procs == [["exited", "SIGTERM", -signal.SIGTERM]] * 2


def test_grandchildren_report_to_the_programs_monitor(tmp_path: Path) -> None:
    path = tmp_path / "grand.py"
    path.write_text(textwrap.dedent('''
        import json, multiprocessing as mp, os, time, stethoscope

        def grandchild():
            sum(range(1000))

        def child():
            p = mp.get_context("spawn").Process(target=grandchild)
            p.start(); p.join()
            print(p.pid, flush=True)

        if __name__ == "__main__":
            mon = stethoscope.trace(port=0, quiet=True)
            p = mp.get_context("spawn").Process(target=child)
            p.start(); p.join()
            deadline = time.monotonic() + 60  # until the grandchild is listed
            while time.monotonic() < deadline and not any(
                    q.ppid == p.pid for q in mon.snapshot("all").processes):
                time.sleep(0.05)
            procs = {p.pid: p.ppid for p in mon.snapshot("all").processes}
            print(json.dumps({"child": p.pid, "procs": procs}))
            stethoscope.stop()
    '''))
    result = run_python([str(path)], cwd=tmp_path, timeout=100)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    grandchild = int(lines[0])
    out = json.loads(lines[-1])
    procs = {int(k): v for k, v in out["procs"].items()}
    assert out["child"] in procs
    assert procs[grandchild] == out["child"]  # the tree: grandchild under child


WAYS_OUT = '''
import json, os, signal, subprocess, sys, time
import stethoscope

def hot(n):
    total = 0
    for i in range(n):
        total += i  # HOT
    return total

ENDINGS = {
    "return": "pass",
    "sys.exit": "sys.exit(3)",
    "exception": "raise RuntimeError('boom')",
    "os._exit": "os._exit(4)",
    "sigterm": "os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)",  # it ends at the signal
}

if __name__ == "__main__":
    if sys.argv[1] == "child":
        hot(5000)
        exec(ENDINGS[sys.argv[2]])
        sys.exit(0)
    mon = stethoscope.trace(port=0, mode="trace", quiet=True)
    codes, pids = {}, {}
    for ending in ENDINGS:
        p = subprocess.run([sys.executable, __file__, "child", ending], stderr=subprocess.PIPE)
        codes[ending] = p.returncode
    deadline = time.monotonic() + 60  # until every child's final report is in
    while time.monotonic() < deadline and not (
            len(mon.snapshot("all").processes) == 1 + len(ENDINGS)
            and all(i.state == "exited" for i in mon.snapshot("all").processes[1:])):
        time.sleep(0.05)
    out = {}
    for info in mon.snapshot("all").processes[1:]:
        f = mon.snapshot(info.pid).file(os.path.abspath(__file__))
        out[info.argv[-1]] = [info.state, info.exit_how, info.exit_code,
                              sum(r[2] for r in f.lines) if f else 0]
    print(json.dumps([codes, out]))
    stethoscope.stop()
'''


def test_every_way_out_of_a_subprocess_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "ways.py"
    path.write_text(WAYS_OUT)
    result = run_python([str(path), "parent"], cwd=tmp_path, timeout=100)
    assert result.returncode == 0, result.stderr
    codes, out = json.loads(result.stdout)
    # the children end exactly as they would unmonitored
    assert codes == {"return": 0, "sys.exit": 3, "exception": 1, "os._exit": 4,
                     "sigterm": -signal.SIGTERM}
    assert out["return"][:2] == out["sys.exit"][:2] == out["exception"][:2] == ["exited", "exit"]
    assert out["os._exit"][:3] == ["exited", "os._exit", 4]
    assert out["sigterm"][:3] == ["exited", "SIGTERM", -signal.SIGTERM]
    for ending, (_, _, _, hits) in out.items():
        assert hits >= 5000, (ending, hits)  # the loop's lines, all of them counted


BUSY = '''
import multiprocessing as mp, os, sys, time
import stethoscope

def spin(release):
    t = time.monotonic()
    n = 0
    while not os.path.exists(release) and time.monotonic() - t < 120:  # busy until released
        for _ in range(10_000):
            n += 1  # SPIN
    return n

if __name__ == "__main__":
    stethoscope.trace(port=0)
    procs = [mp.get_context("spawn").Process(target=spin, args=(sys.argv[1],))
             for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print(" ".join(str(p.pid) for p in procs), flush=True)
'''


def test_eight_busy_children_keep_the_page_live(tmp_path: Path) -> None:
    import statistics
    import urllib.request

    from conftest import read_url, start_python

    path, release = tmp_path / "busy.py", tmp_path / "release"
    path.write_text(BUSY)
    proc = start_python([str(path), str(release)], cwd=tmp_path)
    try:
        url = read_url(proc).replace("/?", "/api/snapshot?pid=all&")
        latencies, seen_running = [], set()
        deadline = time.monotonic() + 120
        # The children stay busy until released: every request meanwhile must be
        # answered (the page stays live), until all eight have shown up running.
        while len(seen_running) < 8 and time.monotonic() < deadline:
            t = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=60) as answer:
                    snap = json.load(answer)
            except OSError as exc:
                proc.kill()
                raise AssertionError(f"the page stopped answering: {exc}; program stderr "
                                     f"{proc.communicate()[1][-2000:]!r}") from exc
            latencies.append(time.monotonic() - t)
            seen_running |= {p["pid"] for p in snap["processes"][1:]
                             if p["state"] == "running" and p["name"].startswith("Spawn")}
            time.sleep(0.1)  # a page's pace of requests, not a wait for anything
        release.write_text("")
        out, err = proc.communicate(timeout=100)
    finally:
        proc.kill()
        proc.wait()
    record_figure("snapshot latency, 8 busy children: median", statistics.median(latencies))
    record_figure("snapshot latency, 8 busy children: max", max(latencies))
    assert proc.returncode == 0, err
    pids = {int(pid) for pid in out.split()}
    assert len(pids) == 8
    assert seen_running == pids  # every child showed up while it ran


BLOCKED = '''
import json, multiprocessing as mp, time
import stethoscope

def wait_on(lock, ready):
    ready.set()
    lock.acquire()  # no timeout: only a signal ends this wait

if __name__ == "__main__":
    mon = stethoscope.trace(port=0, quiet=True)
    ctx = mp.get_context("spawn")
    lock, ready = ctx.Lock(), ctx.Event()
    lock.acquire()
    results = []
    for _ in range(5):
        p = ctx.Process(target=wait_on, args=(lock, ready))
        p.start()
        ready.wait(60)
        ready.clear()
        deadline = time.monotonic() + 60  # its monitor is up, sampling and reporting:
        while time.monotonic() < deadline and not (  # it reported a rate (its sampler has
                any(q.pid == p.pid and q.state == "running"  # run, and blocked signals)
                    for q in mon.snapshot("all").processes)
                and mon.snapshot(p.pid).sample_hz_achieved > 0):
            time.sleep(0.05)
        began = time.monotonic()
        p.terminate()
        p.join(60)  # SIGTERM ends it at once; a child the signal does not reach stays
        results.append([p.exitcode, round(time.monotonic() - began, 4)])
        if p.exitcode is None:
            p.kill()
            p.join()
    print(json.dumps(results))
'''


def test_sigterm_ends_a_child_whose_main_thread_blocks_without_timeout(tmp_path: Path) -> None:
    # The monitor's threads block every signal: else the kernel may hand SIGTERM to
    # one of them, and a main thread waiting on a lock never runs the handler.
    path = tmp_path / "blocked.py"
    path.write_text(BLOCKED)
    result = run_python([str(path)], cwd=tmp_path, timeout=100)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    # each ended of SIGTERM, not of the SIGKILL that follows a join that timed out;
    # how soon is the benchmark's figure
    assert [code for code, _ in results] == [-signal.SIGTERM] * 5, results
    record_figure("SIGTERM to exit, a child blocked without timeout: max",
                  max(seconds for _, seconds in results))


def test_a_custom_files_filter_says_what_children_show(tmp_path: Path) -> None:
    path = tmp_path / "custom.py"
    path.write_text(textwrap.dedent('''
        import json, stethoscope
        with stethoscope.trace(files=lambda path: True, port=0, quiet=True) as mon:
            custom = mon.snapshot().notes
        with stethoscope.trace(files=stethoscope.files.path_contains("x"), port=0,
                               quiet=True) as mon:
            known = mon.snapshot().notes
        print(json.dumps([custom, known]))
    '''))
    result = run_python([str(path)], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    custom, known = json.loads(result.stdout)
    assert any("child processes show files.user" in note for note in custom)
    assert not any("child processes" in note for note in known)


FOLLOW = '''
import json, multiprocessing as mp, os, sys, time
import stethoscope

N = 3000

def hot(n):
    total = 0
    for i in range(n):
        total += i  # HOT
    return total

def child(go):
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.02)
    hot(N)

if __name__ == "__main__":
    method = sys.argv[1]
    mon = stethoscope.trace(port=0, mode="sample", quiet=True)
    go = os.path.abspath("go")
    p = mp.get_context(method).Process(target=child, args=(go,))
    p.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            q.pid == p.pid for q in mon.snapshot("all").processes):
        time.sleep(0.05)
    mon.set_mode("trace")
    # The child learns the mode from the answer to its next report (every 0.5 s).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and mon.snapshot(p.pid).requested_mode != "trace":
        time.sleep(0.05)
    open(go, "w").close()
    p.join(60)
    deadline = time.monotonic() + 60  # until its final report is in
    while time.monotonic() < deadline and not any(
            q.pid == p.pid and q.state == "exited" for q in mon.snapshot("all").processes):
        time.sleep(0.05)
    snap = mon.snapshot(p.pid)
    f = snap.file(os.path.abspath(__file__))
    line = next(i for i, t in enumerate(open(__file__).read().splitlines(), 1)
                if t.endswith("# HOT"))
    row = f.line(line) if f else None
    print(json.dumps({"mode": snap.mode, "requested": snap.requested_mode,
                      "hits": row[2] if row else 0, "notes": list(snap.notes),
                      "exit": p.exitcode}))
    stethoscope.stop()
'''


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_children_follow_a_mode_switch(tmp_path: Path, method: str) -> None:
    path = tmp_path / "follow.py"
    path.write_text(FOLLOW)
    result = run_python([str(path), method], cwd=tmp_path, timeout=100)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["exit"] == 0, out
    if sys.version_info >= (3, 12):
        # Switched while running: every line it ran afterwards is counted, exactly.
        assert (out["mode"], out["requested"], out["hits"]) == ("trace", "trace", 3000), out
    else:
        # settrace cannot be switched on from the reporter thread: said, not hidden.
        assert out["mode"] == "sample" and out["hits"] == 0, out
        assert any("did not switch to mode 'trace'" in n for n in out["notes"]), out
