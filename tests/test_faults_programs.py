"""Faults (issue #7, part 6): programs that are hard on a monitor behave exactly as
without it: hundreds of threads ending mid-sample, recursion at the limit,
generators and asyncio tasks, and a program that patches ``threading``. Each runs
unmonitored and under test_faults.py's harness in every mode.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from test_faults import (
    MODES,
    assert_same_program,
    assert_server_answered,
    baseline,
    run_monitored,
    run_parallel,
    workdir,
    write_program,
)

from conftest import record_figure

__all__ = ["workdir"]  # the fixture, shared with test_faults.py

CHURN = textwrap.dedent('''
    import threading
    import time


    def job(i, out):
        time.sleep(0.0005 * (i % 3))
        out[i] = sum(range(i % 97))


    def main():
        out, live, started = {}, [], 0
        while started < 1500:  # short-lived threads, started and ending all along
            for _ in range(10):
                t = threading.Thread(target=job, args=(started, out), daemon=started % 2 == 0)
                t.start()
                live.append(t)
                started += 1
            while len(live) > 40:
                live.pop(0).join()
        for t in live:
            t.join()
        print(len(out), sum(out.values()))


    if __name__ == "__main__":
        main()
''')


def test_hundreds_of_threads_ending_mid_sample_at_1000_hz(workdir: Path) -> None:
    program = write_program(workdir, "churn.py", CHURN)
    plain = baseline(workdir, program)
    for run in run_monitored(workdir, program, [{"mode": m, "hz": 1000} for m in MODES]):
        assert_same_program(run, plain)
        assert run.monitor_lines() == [line for line in run.monitor_lines()
                                       if line.startswith("stethoscope: serving ")]
        assert run.report["notes"] == [], run.report["notes"]
        assert run.report["sampler_alive"]
        # it kept sampling (the harness waited for its periodic runs after the program);
        # how fast, on this machine, is the benchmark's figure
        assert run.report["rate"] > 0, run.report["rate"]
        record_figure(f"sample rate asked 1000 Hz, 1500 short-lived threads ({run.spec['mode']})",
                      run.report["rate"], "Hz")
        assert_server_answered(run)


RECURSION = textwrap.dedent('''
    import sys


    def down(n):
        return 0 if n == 0 else 1 + down(n - 1)


    def forever(n):
        return forever(n + 1)


    def deepest(n):
        try:
            return deepest(n + 1)
        except RecursionError:
            return n


    def main():
        limit = sys.getrecursionlimit()
        for _ in range(40):  # time near the limit, for samples and trace events
            assert down(limit - 50) == limit - 50
            try:
                forever(0)
            except RecursionError as exc:
                caught = type(exc).__name__
            assert deepest(0) > limit - 60
        print("down", limit - 50, "caught", caught)
        print("recursion limit unchanged:", sys.getrecursionlimit() == limit)


    if __name__ == "__main__":
        main()
''')


def test_recursion_near_the_limit_runs_as_unmonitored(workdir: Path) -> None:
    program = write_program(workdir, "recursion.py", RECURSION)
    plain = baseline(workdir, program)
    assert plain.returncode == 0 and "caught RecursionError" in plain.stdout, plain
    specs = [{"mode": m} for m in MODES]
    specs.append({"mode": "trace", "env": {"STETHOSCOPE_NO_SPEEDUPS": "1"}})  # Python tracers
    for run in run_monitored(workdir, program, specs):
        assert_same_program(run, plain)
        assert run.monitor_lines() == [line for line in run.monitor_lines()
                                       if line.startswith("stethoscope: serving ")]
        assert run.report["notes"] == [], run.report["notes"]  # nothing turned itself off
        assert run.report["mode"] == run.report["start_mode"]
        assert str(program) in run.report["rows"]


GENERATORS = textwrap.dedent('''
    import asyncio


    def numbers(n):
        for i in range(n):
            yield i * i + sum(range(i % 40))  # MARK gen


    def pipeline(n):
        evens = (x for x in numbers(n) if x % 2 == 0)
        yield from evens  # MARK yield-from


    def accumulate():
        total = 0
        while True:
            try:
                x = yield total
            except ValueError:
                total = -total  # MARK throw
                continue
            total += x  # MARK send


    async def countdown(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i  # MARK agen


    async def crunch(k):
        s = 0
        for i in range(30000):
            s += i * k  # MARK crunch
        await asyncio.sleep(0)
        return s


    async def consumer(queue, out):
        while (item := await queue.get()) is not None:
            out.append(item * 2)  # MARK queue


    async def amain():
        results = await asyncio.gather(*(asyncio.create_task(crunch(k)) for k in range(40)))
        got = [i async for i in countdown(50)]
        queue, out = asyncio.Queue(), []
        task = asyncio.create_task(consumer(queue, out))
        for i in range(100):
            await queue.put(i)
        await queue.put(None)
        await task
        late = await asyncio.wait_for(crunch(7), timeout=60)
        return sum(results), sum(got), sum(out), late


    def main():
        for _ in range(4):
            print(sum(pipeline(40000)))
        acc = accumulate()
        next(acc)
        for i in range(100):
            acc.send(i)
        print(acc.throw(ValueError), acc.send(1))
        acc.close()
        print(asyncio.run(amain()))


    if __name__ == "__main__":
        main()
''')


def _line_of(text: str, mark: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if f"# MARK {mark}" in line)


def test_generators_and_asyncio_tasks_give_the_same_results_and_show_their_lines(
        workdir: Path) -> None:
    program = write_program(workdir, "generators.py", GENERATORS)
    plain = baseline(workdir, program)
    every = ("gen", "yield-from", "throw", "send", "agen", "crunch", "queue")
    for run in run_monitored(workdir, program, [{"mode": m} for m in MODES]):
        assert_same_program(run, plain)
        assert run.report["notes"] == [], run.report["notes"]
        rows = set(run.report["rows"].get(str(program), ()))
        # Sampling sees where the time goes; the other modes see every line that ran.
        marks = ("gen", "crunch") if run.report["mode"] == "sample" else every
        missing = [m for m in marks if _line_of(GENERATORS, m) not in rows]
        assert not missing, (run.spec, missing, sorted(rows))


THREADING_PATCHES = textwrap.dedent('''
    import concurrent.futures
    import os
    import threading

    MODE = os.environ.get("FAULTS_MODE")
    calls = {"start": 0, "run": 0, "start2": 0}
    orig_start, orig_run = threading.Thread.start, threading.Thread.run
    orig_thread, orig_hook = threading.Thread, threading.excepthook


    def mine(thread):  # the monitor's own threads are Threads too: count the program's
        return not thread.name.startswith("stethoscope")


    def start(self, *args, **kwargs):
        calls["start"] += mine(self)
        return orig_start(self, *args, **kwargs)


    def run(*args, **kwargs):  # no parameter named self
        calls["run"] += mine(args[0])
        return orig_run(*args, **kwargs)


    seen = []


    def hook(args):
        seen.append(f"{args.thread.name}: {args.exc_type.__name__}: {args.exc_value}")


    class Named(orig_thread):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.tag = "named"

        def join(self, timeout=None):
            super().join(timeout)
            return "joined"


    def boom():
        raise ValueError("boom")


    def phase(tag):
        out = []
        ts = [threading.Thread(target=out.append, args=(i,), name=f"{tag}-{i}") for i in range(5)]
        ts.append(threading.Thread(target=boom, name=f"{tag}-bad"))
        if threading.Thread is orig_thread:  # Timer.__init__ calls threading.Thread's
            ts.append(threading.Timer(0.01, out.append, args=(99,)))
        for t in ts:
            t.start()
        joined = [t.join() for t in ts]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            squares = list(pool.map(lambda x: x * x, range(20)))
        print(tag, sorted(out), sum(squares), sorted(seen), set(map(repr, joined)),
              sorted({type(t).__name__ for t in ts}))
        seen.clear()


    threading.Thread.start, threading.Thread.run, threading.excepthook = start, run, hook
    phase("patched before")
    if MODE:
        import stethoscope
        stethoscope.trace(mode=MODE, port=0, quiet=True)
    phase("traced")
    threading.Thread = Named  # a subclass in its place, and start wrapped again
    start_before = orig_thread.start


    def start2(self, *args, **kwargs):
        calls["start2"] += mine(self)
        return start_before(self, *args, **kwargs)


    orig_thread.start = start2
    threading.excepthook = lambda args: seen.append(f"hook2 {args.exc_value}")
    phase("subclassed")
    if MODE:
        stethoscope.stop()
    phase("stopped")
    print("patches kept:", orig_thread.start is start2, orig_thread.run is run,
          threading.Thread is Named, threading.excepthook is not hook)
    print(calls)
''')


def test_a_program_that_patches_threading_before_and_after_trace(workdir: Path) -> None:
    program = write_program(workdir, "patches.py", THREADING_PATCHES)
    plain = baseline(workdir, program)
    assert plain.returncode == 0 and "hook2 boom" in plain.stdout, plain
    runs = run_parallel([([str(program)], {"FAULTS_MODE": m}) for m in MODES], workdir)
    for mode, run in zip(MODES, runs, strict=True):
        assert (run.returncode, run.stdout, run.stderr) == \
            (plain.returncode, plain.stdout, plain.stderr), mode
