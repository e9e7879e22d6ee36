"""The compiled line counter (stethoscope._speedups) and its pure-Python fallback.

Our own test environments always build the accelerator: a test fails when it is
missing there, because a silent fallback would hide a broken build.
"""

from __future__ import annotations

import asyncio
import difflib
import fractions
import gc
import inspect
import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

import stethoscope
from stethoscope.collectors import counting

from conftest import HAS_MONITORING, ROOT, child_env

NO_SPEEDUPS = counting.NO_SPEEDUPS_ENV
FREE_THREADED = bool(__import__("sysconfig").get_config_var("Py_GIL_DISABLED"))
needs_speedups = pytest.mark.skipif(
    not counting.HAS_SPEEDUPS, reason=f"the accelerator is off ({NO_SPEEDUPS} or free-threaded)")
needs_monitoring = pytest.mark.skipif(not HAS_MONITORING, reason="sys.monitoring is 3.12+")


def _speedups() -> Any:
    import stethoscope._speedups as module  # type: ignore[import-not-found]

    return module


def code_of(fn: Callable[..., Any]) -> CodeType:
    return fn.__code__


def as_dict(taken: list[tuple[CodeType, dict[int, int]]]) -> dict[CodeType, dict[int, int]]:
    out: dict[CodeType, dict[int, int]] = defaultdict(dict)
    for code, lines in taken:
        for line, n in lines.items():
            out[code][line] = out[code].get(line, 0) + n
    return dict(out)


# -- the build ---------------------------------------------------------------------


@pytest.mark.skipif(bool(os.environ.get(NO_SPEEDUPS)) or FREE_THREADED,
                    reason="the accelerator is turned off here on purpose")
def test_the_accelerator_is_built_and_used_in_our_test_environments() -> None:
    module = _speedups()  # ImportError here: the build hook did not build it
    assert Path(module.__file__).name.startswith("_speedups.")
    assert counting.HAS_SPEEDUPS
    if HAS_MONITORING:
        from stethoscope.collectors import monitoring

        assert monitoring.ACCELERATED is True
    else:
        from stethoscope.collectors import settrace

        assert settrace.ACCELERATED is True


# -- counting exactly, like the Python callback ---------------------------------------


def _corpus() -> None:
    """Real code of many shapes: stdlib modules, generators, exceptions, threads."""
    data = {"a": [1, 2.5, None, True, "x" * 30], "b": {"c": list(range(40))}}
    for _ in range(3):
        assert json.loads(json.dumps(data, indent=2, sort_keys=True)) == data
    text = "stethoscope counts every line that runs, in every thread, exactly. " * 20
    textwrap.fill(text, width=37)
    textwrap.dedent(textwrap.indent(text, "    "))
    old = [f"line {i}\n" for i in range(60)]
    new = [line.replace("1", "one") for line in old]
    list(difflib.unified_diff(old, new))
    difflib.SequenceMatcher(None, text[:200], text[5:205]).ratio()
    total = sum(fractions.Fraction(1, n) for n in range(1, 40))
    assert total > 4
    statistics.median([3, 1, 4, 1, 5, 9, 2, 6])
    statistics.stdev([2.5, 3.5, 1.25, 8.0, 9.5])

    def squares(n: int) -> Iterator[int]:
        for i in range(n):
            if i % 7 == 3:
                continue
            yield i * i

    assert sum(squares(500)) > 0
    for i in range(200):
        try:
            if i % 3 == 0:
                raise ValueError(i)
            int("x" if i % 5 == 0 else "1")
        except ValueError:
            pass
        finally:
            i += 1

    async def tick(n: int) -> int:
        for _ in range(n):
            await asyncio.sleep(0)
        return n

    async def gather() -> list[int]:
        return list(await asyncio.gather(*(tick(k) for k in range(5))))

    asyncio.run(gather())

    def worker(k: int) -> None:
        for _ in range(2_000):
            k = (k * 31 + 7) % 1_000_003
        json.dumps([k] * 10)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class _ReferenceCounter:
    """The pure-Python way, with a lock so that no increment is lost."""

    def __init__(self) -> None:
        self.counts: dict[CodeType, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._lock = threading.Lock()

    def __call__(self, code: CodeType, line: int) -> None:
        with self._lock:
            self.counts[code][line] += 1


@needs_monitoring
@needs_speedups
def test_compiled_counts_equal_the_python_callback_line_for_line() -> None:
    mon = sys.monitoring
    compiled = _speedups().LineCounter()
    reference = _ReferenceCounter()
    free = [i for i in (3, 4, mon.OPTIMIZER_ID) if mon.get_tool(i) is None][:2]
    assert len(free) == 2, "two free sys.monitoring tool ids are needed"
    for tool, callback in zip(free, (compiled, reference), strict=True):
        mon.use_tool_id(tool, "stethoscope-test")
        mon.register_callback(tool, mon.events.LINE, callback)
    try:
        for tool in free:
            mon.set_events(tool, mon.events.LINE)
        _corpus()
    finally:
        for tool in free:
            mon.set_events(tool, mon.events.NO_EVENTS)
            mon.register_callback(tool, mon.events.LINE, None)
            mon.free_tool_id(tool)
    # Lines of this very function ran while only one tool had events on.
    here = sys._getframe().f_code
    got = {c: lines for c, lines in as_dict(compiled.take()).items() if c is not here}
    want = {c: dict(lines) for c, lines in reference.counts.items() if c is not here}
    assert code_of(_corpus) in got
    assert sum(len(lines) for lines in got.values()) > 500  # the corpus is not trivial
    assert got == want


def _count_to(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


@needs_speedups
def test_trace_mode_counts_the_same_with_and_without_the_accelerator(tmp_path: Path) -> None:
    """The whole path (tracer, fold, store) in child processes: identical hits."""
    script = tmp_path / "work_speedups.py"
    script.write_text(textwrap.dedent("""
        import json, sys, threading, textwrap
        import stethoscope
        from stethoscope.collectors import monitoring

        def work(n):
            out = []
            for i in range(n):
                if i % 3:
                    out.append(textwrap.shorten("a b c d e " * (i % 7 + 1), width=12))
            return len(out)

        mon = stethoscope.trace(mode="trace", port=0, quiet=True,
                                files=stethoscope.files.path_contains("work_speedups"))
        accelerated = (monitoring.ACCELERATED if sys.version_info >= (3, 12)
                       else type(sys.gettrace()).__name__ == "Tracer")  # the C tracer
        threads = [threading.Thread(target=work, args=(3000,)) for _ in range(4)]
        for t in threads: t.start()
        work(2000)
        for t in threads: t.join()
        mon.stop()
        hits = sorted((row[0], row[2]) for f in mon.snapshot().files for row in f.lines
                      if row[2])
        print(json.dumps({"accelerated": accelerated, "mode": mon.mode,
                          "hits": hits}))
    """))
    results = {}
    for off in ("", "1"):
        done = subprocess.run([sys.executable, "-X", "dev", str(script)], capture_output=True,
                              text=True, timeout=120, env=child_env(**{NO_SPEEDUPS: off}),
                              cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stderr
        results[off] = json.loads(done.stdout.splitlines()[-1])
    assert results[""]["accelerated"] is True
    assert results["1"]["accelerated"] is False
    assert results[""]["mode"] == results["1"]["mode"] == "trace"
    assert results[""]["hits"] == results["1"]["hits"]
    assert sum(n for _, n in results[""]["hits"]) > 4 * 3000


# -- take() --------------------------------------------------------------------------


@needs_speedups
def test_take_returns_the_counts_since_the_last_take_and_starts_afresh() -> None:
    counter = _speedups().LineCounter()
    a, b = code_of(_count_to), code_of(_corpus)
    assert counter.take() == []
    for _ in range(3):
        counter(a, 10)
    counter(a, 12)
    counter(b, 500)
    assert as_dict(counter.take()) == {a: {10: 3, 12: 1}, b: {500: 1}}
    assert counter.take() == []
    counter(a, 10)
    assert as_dict(counter.take()) == {a: {10: 1}}


@needs_speedups
def test_any_int_line_is_counted_and_other_lines_are_a_type_error() -> None:
    counter = _speedups().LineCounter()
    code = code_of(_count_to)
    odd = [0, -5, 2**31 + 1, 2**40, -(2**40), 2**62, 2**62 + 1, -(2**62) - 1, 2**63 - 1,
           2**63, -(2**63), 2**70, -(2**70), 7]
    for line in odd:
        counter(code, line)
        counter(code, line)
    assert as_dict(counter.take()) == {code: dict.fromkeys(odd, 2)}
    for bad in ("3", 3.0, None):
        with pytest.raises(TypeError):
            counter(code, bad)
    with pytest.raises(TypeError):
        counter(code)
    with pytest.raises(TypeError):
        counter(code, 1, 2)
    with pytest.raises(TypeError):
        counter(code=code, line=1)
    assert counter.take() == []


@needs_speedups
def test_lines_far_apart_in_one_code_object_are_all_counted() -> None:
    counter = _speedups().LineCounter()
    code = code_of(_count_to)
    lines = [1, 5_000, 3, 2_000_000, 1_000_000, 40, 999_999_999, 2]
    for line in lines * 3:
        counter(code, line)
    assert as_dict(counter.take()) == {code: dict.fromkeys(lines, 3)}


@needs_speedups
def test_the_counter_holds_each_code_object_until_take() -> None:
    counter = _speedups().LineCounter()
    code = compile("x = 1\ny = 2\n", "<held>", "exec")
    before = sys.getrefcount(code)
    for line in (1, 2, 1, 2_000_000):
        counter(code, line)
    assert sys.getrefcount(code) > before
    taken = counter.take()
    assert taken and all(c is code for c, _ in taken)
    del taken
    assert sys.getrefcount(code) == before


@needs_speedups
def test_many_code_objects_and_threads_lose_no_increment() -> None:
    counter = _speedups().LineCounter()
    codes = [compile(f"x = {i}", f"<c{i}>", "exec") for i in range(300)]

    def run() -> None:
        for _ in range(20):
            for code in codes:
                counter(code, 1)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    taken: list[tuple[CodeType, dict[int, int]]] = []
    while any(t.is_alive() for t in threads):
        taken += counter.take()  # concurrent takes split the counts, never lose them
    for thread in threads:
        thread.join()
    taken += counter.take()
    assert as_dict(taken) == {code: {1: 8 * 20} for code in codes}


# -- threads of the monitor, faults, garbage ------------------------------------------


@needs_speedups
def test_the_monitors_own_threads_are_not_counted_even_when_idents_are_reused() -> None:
    counter = _speedups().LineCounter(exclude=counting.current_thread_is_own)
    code = code_of(_count_to)

    def count(line: int) -> None:
        for _ in range(100):
            counter(code, line)

    for name, line in [("stethoscope-test", 1), ("worker", 2), ("stethoscope-test", 3),
                       ("worker", 4)]:
        thread = threading.Thread(target=count, args=(line,), name=name)
        thread.start()
        thread.join()  # the next thread often gets the same ident
    count(5)
    assert as_dict(counter.take()) == {code: {2: 100, 4: 100, 5: 100}}


@needs_speedups
def test_an_exclude_that_fails_counts_the_thread() -> None:
    def broken() -> bool:
        raise RuntimeError("no")

    counter = _speedups().LineCounter(exclude=broken)
    counter(code_of(_count_to), 1)
    assert as_dict(counter.take()) == {code_of(_count_to): {1: 1}}


class _Unhashable:
    def __hash__(self) -> int:
        raise RuntimeError("cannot hash")


@needs_speedups
def test_an_internal_error_goes_to_on_fault_and_never_to_the_caller() -> None:
    faults: list[BaseException] = []
    counter = _speedups().LineCounter(on_fault=faults.append)
    code = code_of(_count_to)
    counter(code, 1)
    # A line beyond int64 is kept in a dict keyed by (code, line): hashing fails.
    assert counter(_Unhashable(), 2**80) is None
    assert counter.faulted
    assert len(faults) == 1 and isinstance(faults[0], RuntimeError)
    counter(code, 1)  # stopped: no longer counts
    assert as_dict(counter.take()) == {code: {1: 1}}


@needs_speedups
def test_an_on_fault_that_fails_is_swallowed_too() -> None:
    def broken(exc: BaseException) -> None:
        raise RuntimeError("worse")

    counter = _speedups().LineCounter(on_fault=broken)
    assert counter(_Unhashable(), 2**80) is None
    assert counter.faulted


@needs_speedups
def test_a_counter_in_a_reference_cycle_is_collected() -> None:
    class Holder:
        def fault(self, exc: BaseException) -> None:
            pass

        def exclude(self) -> bool:
            return False

    holder = Holder()
    holder.counter = _speedups().LineCounter(  # type: ignore[attr-defined]
        exclude=holder.exclude, on_fault=holder.fault)
    holder.counter(code_of(_count_to), 3)  # type: ignore[attr-defined]
    ref = weakref.ref(holder)
    del holder
    gc.collect()
    assert ref() is None


@needs_monitoring
@needs_speedups
def test_a_fault_in_trace_mode_becomes_a_note_and_sampling() -> None:
    mon = sys.monitoring
    with stethoscope.trace(mode="trace", port=0, quiet=True,
                           files=stethoscope.files.path_contains("test_speedups")) as monitor:
        _count_to(100)
        tool = next(i for i in range(6) if mon.get_tool(i) == "stethoscope")
        callback = mon.register_callback(tool, mon.events.LINE, None)
        mon.register_callback(tool, mon.events.LINE, callback)
        assert callback is not None and type(callback).__name__ == "LineCounter"
        callback(_Unhashable(), 2**80)  # as if an increment had run out of memory
        assert monitor.mode == "sample"
        assert mon.get_tool(tool) is None  # the tracer stopped and freed its id
        _count_to(100)
        notes = monitor.snapshot().notes
    assert any("exact line counting stopped after an internal error" in n for n in notes)


# -- the fallback ---------------------------------------------------------------------


def test_the_env_var_turns_the_accelerator_off_and_trace_mode_still_counts(
        tmp_path: Path) -> None:
    script = tmp_path / "spin_fallback.py"
    script.write_text(textwrap.dedent("""
        import stethoscope
        from stethoscope.collectors import counting

        def spin():
            total = 0
            for i in range(5000):
                total += i
            return total

        mon = stethoscope.trace(mode="trace", port=0, quiet=True,
                                files=stethoscope.files.path_contains("spin_fallback"))
        spin()
        mon.stop()
        hits = {row[0]: row[2] for f in mon.snapshot().files for row in f.lines if row[2]}
        print(counting.HAS_SPEEDUPS, mon.mode, sorted(hits.values())[-2:])
    """))
    done = subprocess.run([sys.executable, "-X", "dev", str(script)], capture_output=True,
                          text=True, timeout=120, env=child_env(**{NO_SPEEDUPS: "1"}), cwd=ROOT,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "trace", "[5000,", "5001]"]


# -- the C trace function of 3.10/3.11 (settrace) --------------------------------------

HAS_TRACER = counting.HAS_SPEEDUPS and hasattr(counting.compiled_module(), "Tracer")
needs_tracer = pytest.mark.skipif(
    HAS_MONITORING or not HAS_TRACER,
    reason="the C settrace tracer is for 3.10/3.11, with the accelerator on")
# The corpus's files: this module and the stdlib modules it runs (not asyncio, whose
# internal lines depend on timing).
CORPUS_FILES = ("test_speedups.py", f"json{os.sep}", "textwrap.py", "difflib.py",
                "fractions.py", "statistics.py")


def _noop_tracer(frame: Any, event: str, arg: Any) -> None:
    return None


def _hits_under_trace_mode(*, python_tracer: bool) -> tuple[bool, dict[tuple[str, int], int]]:
    """Run the corpus under trace mode: (whether the C tracer ran, hits by (path, line)).

    Another tool's trace function present at start makes stethoscope use the Python
    tracer (which restores it correctly); otherwise the C one runs."""
    from stethoscope.model import LINE_FIELDS

    hits_index = LINE_FIELDS.index("hits_total")
    if python_tracer:
        sys.settrace(_noop_tracer)
    try:
        with stethoscope.trace(stethoscope.files.path_contains(*CORPUS_FILES), port=0,
                               quiet=True, mode="trace") as monitor:
            compiled = type(sys.gettrace()).__name__ == "Tracer"
            _corpus()
            monitor.stop()
            assert monitor.mode == "trace"
            snapshot = monitor.snapshot()
        assert sys.gettrace() is (_noop_tracer if python_tracer else None)
    finally:
        sys.settrace(None)
    hits = {(f.path, row[0]): row[hits_index] for f in snapshot.files for row in f.lines
            if row[hits_index]}
    return compiled, hits


@needs_tracer
def test_the_c_tracer_counts_like_the_python_tracer_line_for_line() -> None:
    _corpus()  # warm: first-call paths (caches of re, json, ...) run once, untraced
    compiled_py, by_python = _hits_under_trace_mode(python_tracer=True)
    compiled_c, by_c = _hits_under_trace_mode(python_tracer=False)
    assert (compiled_py, compiled_c) == (False, True)
    assert {os.path.basename(path) for path, _ in by_c} >= {
        "test_speedups.py", "decoder.py", "textwrap.py", "difflib.py", "fractions.py",
        "statistics.py"}
    assert sum(by_c.values()) > 20_000  # the corpus is not trivial
    # The lines of this test that ran between start and the first corpus line
    # differ (the tracers are set up differently); everything the corpus ran does not.
    here = __file__
    source, first = inspect.getsourcelines(_corpus)
    corpus_lines = range(first, first + len(source))

    def relevant(hits: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        return {k: n for k, n in hits.items() if k[0] != here or k[1] in corpus_lines}

    assert relevant(by_c) == relevant(by_python)


def _tracer_for(*paths: str, on_fault: Callable[[BaseException], object] | None = None,
                resolve: Callable[[str], object] | None = None) -> tuple[Any, Any]:
    counter = _speedups().LineCounter(exclude=counting.current_thread_is_own)

    def monitored(filename: str) -> object:
        return filename if filename in paths else None

    tracer = _speedups().Tracer(counter, resolve or monitored,
                                exclude=counting.current_thread_is_own, on_fault=on_fault)
    return counter, tracer


def _lines_of(counter: Any, fn: Callable[..., Any]) -> dict[int, int]:
    first = code_of(fn).co_firstlineno
    return {line - first: n for line, n in as_dict(counter.take()).get(code_of(fn), {}).items()}


def _already_running(tracer: Any) -> int:
    total = 0
    tracer.start_thread()
    try:
        for i in range(100):
            total += i
    finally:
        tracer.stop()
        sys.settrace(None)
    return total


@needs_tracer
def test_the_c_tracer_counts_a_running_frame_from_its_next_line() -> None:
    counter, tracer = _tracer_for(__file__)
    _already_running(tracer)
    # Relative to `def`, from the line after start_thread(): `try`, the for line
    # (101 times), its body (100) and tracer.stop(); the line after stop() is not.
    assert _lines_of(counter, _already_running) == {3: 1, 4: 101, 5: 100, 7: 1}
    assert sys.gettrace() is None


def _spin_until(event: threading.Event, seen: list[int]) -> None:
    n = 0
    while not event.is_set():
        n += 1
    seen.append(n)


@needs_tracer
def test_the_c_tracer_counts_new_threads_but_never_the_monitors_own() -> None:
    counter, tracer = _tracer_for(__file__)
    threading.settrace(tracer)
    try:
        for name in ("worker", "stethoscope-test"):
            thread = threading.Thread(target=_count_to, args=(1000,), name=name)
            thread.start()
            thread.join()
    finally:
        tracer.stop()
        threading.settrace(None)
    # Once: the worker's lines; the monitor's own thread ran untraced.
    assert _lines_of(counter, _count_to) == {1: 1, 2: 1001, 3: 1000, 4: 1}


@needs_tracer
def test_after_stop_no_thread_counts_and_each_drops_the_tracer() -> None:
    counter, tracer = _tracer_for(__file__)
    done = threading.Event()
    seen: list[int] = []
    threading.settrace(tracer)
    thread = threading.Thread(target=_spin_until, args=(done, seen))
    try:
        thread.start()
        tracer.start_thread()
        while not _lines_of(counter, _spin_until):
            pass  # both threads count
    finally:
        tracer.stop()
        sys.settrace(None)
        threading.settrace(None)
    assert tracer.stopped
    counter.take()
    for _ in range(100_000):
        pass
    done.set()
    thread.join()
    assert counter.take() == []  # the worker looped on after stop(), uncounted
    assert sys.gettrace() is None


@needs_tracer
def test_an_error_in_the_c_tracer_goes_to_on_fault_and_stops_it() -> None:
    faults: list[BaseException] = []

    def broken(filename: str) -> object:
        raise RuntimeError("resolver broke")

    counter, tracer = _tracer_for(on_fault=faults.append, resolve=broken)
    tracer.start_thread()
    try:
        assert _count_to(10) == 45  # the program goes on, unharmed
        assert sys.gettrace() is None  # the tracer took itself off
    finally:
        tracer.stop()
        sys.settrace(None)
    assert len(faults) == 1 and isinstance(faults[0], RuntimeError)
    assert tracer.stopped
    assert counter.take() == []


def _recurse(n: int) -> int:
    return 0 if n == 0 else 1 + _recurse(n - 1)


@needs_tracer
def test_the_c_tracer_survives_the_recursion_limit_and_settrace_of_gettrace() -> None:
    counter, tracer = _tracer_for(__file__)
    tracer.start_thread()
    try:
        with pytest.raises(RecursionError):
            _recurse(10**6)
        sys.settrace(sys.gettrace())  # a program saving and restoring "the" tracer
        assert _count_to(10) == 45
        assert type(sys.gettrace()).__name__ == "Tracer"  # the C function is back
    finally:
        tracer.stop()
        sys.settrace(None)
    assert not counter.faulted
    assert _lines_of(counter, _count_to) == {1: 1, 2: 11, 3: 10, 4: 1}


@needs_tracer
def test_trace_mode_uses_the_c_tracer_only_when_no_other_tracer_is_set() -> None:
    from stethoscope.collectors import settrace

    assert settrace.ACCELERATED is True
    with stethoscope.trace(stethoscope.files.path_contains("test_speedups"), port=0,
                           quiet=True, mode="trace"):
        assert type(sys.gettrace()).__name__ == "Tracer"
        assert threading.gettrace() is sys.gettrace()
    assert sys.gettrace() is None and threading.gettrace() is None
    sys.settrace(_noop_tracer)
    try:
        with stethoscope.trace(stethoscope.files.path_contains("test_speedups"), port=0,
                               quiet=True, mode="trace"):
            assert type(sys.gettrace()).__name__ == "function"  # the Python tracer
        assert sys.gettrace() is _noop_tracer
    finally:
        sys.settrace(None)


@needs_tracer
def test_the_c_tracer_leaves_line_events_on_for_frames_it_did_not_monitor() -> None:
    counter, tracer = _tracer_for()  # nothing monitored
    tracer.start_thread()
    _count_to(3)  # decided while running: f_trace_lines went off for that frame...
    frame = sys._getframe()
    off_inside = frame.f_trace_lines
    tracer.stop()
    sys.settrace(None)
    assert off_inside is False
    frame.f_trace_lines = True  # ...which trace mode's stop() puts back (see below)
    with stethoscope.trace(stethoscope.files.path_contains("no-such-file"), port=0,
                           quiet=True, mode="trace"):
        _count_to(3)
        assert sys._getframe().f_trace_lines is False
    assert sys._getframe().f_trace_lines is True
    assert counter.take() == []


@needs_tracer
def test_a_counter_fault_takes_the_c_tracer_off_at_the_next_event() -> None:
    faults: list[BaseException] = []
    counter = _speedups().LineCounter(on_fault=faults.append)
    tracer = _speedups().Tracer(counter, lambda filename: filename)  # everything
    tracer.start_thread()
    try:
        counter(_Unhashable(), 2**80)  # as if an increment had run out of memory
        assert _count_to(10) == 45
        installed = sys.gettrace()
    finally:
        tracer.stop()
        sys.settrace(None)
    assert installed is None and tracer.stopped
    assert len(faults) == 1
