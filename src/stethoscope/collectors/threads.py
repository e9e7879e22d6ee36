"""The thread registry: where and by whom each thread was started.

While monitoring is on, ``threading.Thread.__init__`` and ``Thread.start`` are
wrapped to record, for each thread, the creating thread, the stack at
``start()`` and whether ``daemon=`` was given or inherited from the creator.
``stop()`` puts the originals back (or, if someone wrapped them after us,
turns our wrappers into pass-throughs). Threads started before monitoring
have no record: their creation site is unknown.
"""

from __future__ import annotations

import linecache
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

from ..files import is_internal
from ..model import Frame, ThreadInfo
from .cputime import ThreadCPU
from .filters import Resolver

MAX_BIRTH_STACK = 24
MAX_STACK = 64  # innermost frames kept per thread for display


@dataclass(frozen=True, slots=True)
class Birth:
    creator_ident: int | None
    creator_name: str
    creator_daemon: bool
    daemon_given: bool  # daemon= passed to Thread(), or set to a value unlike the creator's
    stack: tuple[Frame, ...]  # where start() was called, innermost first
    started: float  # time.time()


def frame_func(frame: FrameType) -> str:
    code = frame.f_code
    return getattr(code, "co_qualname", code.co_name)


def describe_stack(top: FrameType | None, resolve: Resolver, limit: int) -> tuple[Frame, ...]:
    """Frames innermost first, without the monitor's own (e.g. the CLI runner's)."""
    stack: list[Frame] = []
    frame = top
    while frame is not None and len(stack) < limit:
        code = frame.f_code
        if not is_internal(code.co_filename):
            stack.append(Frame(resolve(code.co_filename), code.co_filename,
                               frame.f_lineno or 0, frame_func(frame)))
        frame = frame.f_back
    return tuple(stack)


def _current_call(top: FrameType, thread: threading.Thread | None) -> str:
    """Text that names the call the innermost frame is making: its source line, or
    for a thread whose target is a C function (Thread(target=time.sleep)), that
    function's name. Never reads another thread's frame locals (f_locals on a
    running frame of another thread is not safe on every version)."""
    code = top.f_code
    if code.co_name == "run" and code.co_filename == threading.__file__:
        name = getattr(getattr(thread, "_target", None), "__name__", None)
        if isinstance(name, str):
            return f"{name}("
    return linecache.getline(code.co_filename, top.f_lineno or 0)


class ThreadRegistry:
    name = "threads"

    def __init__(self, resolver: Resolver, on_fault: Callable[[str], None]) -> None:
        self._resolver = resolver
        self._on_fault = on_fault
        self._births: weakref.WeakKeyDictionary[threading.Thread, Birth] = \
            weakref.WeakKeyDictionary()
        self._daemon_given: weakref.WeakKeyDictionary[threading.Thread, bool] = \
            weakref.WeakKeyDictionary()
        self._active = False
        self._original_init: Callable[..., None] | None = None
        self._original_start: Callable[..., None] | None = None
        self._init_wrapper: Callable[..., None] | None = None
        self._start_wrapper: Callable[..., None] | None = None
        self._original_join: Callable[..., None] | None = None
        self._join_wrapper: Callable[..., None] | None = None
        self._joining: dict[int, str] = {}  # ident -> name of the thread it joins

    def joining(self, ident: int) -> str | None:
        """The name of the thread that thread ``ident`` waits for in join(), if any."""
        return self._joining.get(ident)

    def birth(self, thread: threading.Thread | None) -> Birth | None:
        if thread is None:
            return None
        try:
            return self._births.get(thread)
        except TypeError:
            return None

    def start(self) -> None:
        cls = threading.Thread
        self._original_init = original_init = cls.__init__
        self._original_start = original_start = cls.start
        registry = self

        def __init__(thread: threading.Thread, *args: Any, **kwargs: Any) -> None:
            original_init(thread, *args, **kwargs)
            if registry._active:
                registry._daemon_given[thread] = kwargs.get("daemon") is not None

        def start(thread: threading.Thread) -> None:
            if registry._active:
                registry._record(thread, sys._getframe(1))
            original_start(thread)

        self._original_join = original_join = cls.join
        joining = self._joining

        def join(thread: threading.Thread, timeout: float | None = None) -> None:
            ident = threading.get_ident()
            joining[ident] = thread.name
            try:
                original_join(thread, timeout)
            finally:
                joining.pop(ident, None)

        self._init_wrapper, self._start_wrapper, self._join_wrapper = __init__, start, join
        self._active = True
        cls.__init__ = __init__  # type: ignore[method-assign,assignment]
        cls.start = start  # type: ignore[method-assign,assignment]
        cls.join = join  # type: ignore[method-assign,assignment]

    def _record(self, thread: threading.Thread, caller: FrameType) -> None:
        try:
            creator = threading._active.get(threading.get_ident())  # type: ignore[attr-defined]
            creator_daemon = bool(creator.daemon) if creator is not None else False
            given = self._daemon_given.get(thread, True)
            if not given and thread.daemon != creator_daemon:
                given = True  # set explicitly after construction
            self._births[thread] = Birth(
                creator_ident=threading.get_ident(),
                creator_name=creator.name if creator is not None else "?",
                creator_daemon=creator_daemon,
                daemon_given=given,
                stack=describe_stack(caller, self._resolver, MAX_BIRTH_STACK),
                started=time.time(),
            )
        except Exception as exc:  # never break the user's thread start
            self._on_fault(f"thread creation sites are off after an internal error: "
                           f"{type(exc).__name__}: {exc}")
            self._active = False

    def stop(self) -> None:
        self._active = False  # also after a fault turned it off: the wrappers go all the same
        cls = threading.Thread
        if cls.__init__ is self._init_wrapper and self._original_init is not None:
            cls.__init__ = self._original_init  # type: ignore[method-assign]
        if cls.start is self._start_wrapper and self._original_start is not None:
            cls.start = self._original_start  # type: ignore[method-assign]
        if cls.join is self._join_wrapper and self._original_join is not None:
            cls.join = self._original_join  # type: ignore[method-assign]


ENDED_KEEP = 30.0  # seconds an ended thread stays listed
ENDED_MAX = 50  # ended threads listed at most
BUSY_CPU = 5.0  # percent of a core over the interval that makes a thread "running"


class ThreadDescriber:
    """Turns live frames into ThreadInfo records: state, CPU, creation site, hints.

    Keeps ended threads listed for ENDED_KEEP seconds. Called from one thread
    (the sampler, or dump()); not thread-safe.
    """

    def __init__(self, resolver: Resolver, registry: ThreadRegistry | None,
                 cpu: ThreadCPU | None, *, clock: Callable[[], float] = time.time) -> None:
        self._resolver = resolver
        self._registry = registry
        self._cpu = cpu
        self._clock = clock
        self._last_cpu: dict[int, tuple[float, int]] = {}  # native id -> (time, ns)
        self._previous: dict[int, ThreadInfo] = {}
        self._ended: dict[int, ThreadInfo] = {}
        self._first_seen: dict[int, float] = {}

    def describe(self, frames: dict[int, FrameType], meta: dict[int, threading.Thread],
                 skip: set[int]) -> list[ThreadInfo]:
        now = self._clock()
        main_ident = threading.main_thread().ident
        current: dict[int, ThreadInfo] = {}
        for ident, top in frames.items():
            if ident in skip:
                continue
            current[ident] = self._one(ident, top, meta.get(ident), main_ident, now)
        for ident, info in self._previous.items():
            if ident not in current and ident not in skip:
                self._ended[ident] = replace(info, alive=False, ended=now, stack=(), cpu=None,
                                             state="ended", kind="ended", hints=())
        for ident in list(self._ended):
            if ident in current or now - (self._ended[ident].ended or now) > ENDED_KEEP:
                del self._ended[ident]
        while len(self._ended) > ENDED_MAX:
            del self._ended[next(iter(self._ended))]
        for ident in [i for i in self._first_seen if i not in current]:
            del self._first_seen[ident]
        self._previous = current
        return [*current.values(), *self._ended.values()]

    def _cpu_percent(self, native_id: int | None, now: float) -> float | None:
        if self._cpu is None or native_id is None:
            return None
        used = self._cpu.read(native_id)
        if used is None:
            return None
        before = self._last_cpu.get(native_id)
        self._last_cpu[native_id] = (now, used)
        if before is None or now <= before[0]:
            return None
        return round(100.0 * (used - before[1]) / 1e9 / (now - before[0]), 1)

    def _one(self, ident: int, top: FrameType, thread: threading.Thread | None,
             main_ident: int | None, now: float) -> ThreadInfo:
        from .states import classify, hints

        stack = describe_stack(top, self._resolver, MAX_STACK)
        native_id = thread.native_id if thread is not None else None
        cpu = self._cpu_percent(native_id, now)
        busy = None if cpu is None else cpu >= BUSY_CPU
        if cpu is None and self._cpu is not None and self._cpu.available and native_id:
            busy = None  # first sight: no interval yet
        kind, state = classify(stack, busy, _current_call(top, thread))
        birth = self.registry_birth(thread)
        daemon = thread.daemon if thread is not None else False
        main = ident == main_ident
        inherited_from = None
        if birth is not None and not daemon and not main and not birth.daemon_given \
                and not birth.creator_daemon:
            inherited_from = birth.creator_name
        join_target = self._registry.joining(ident) if kind == "join" and self._registry \
            else None
        first_seen = self._first_seen.setdefault(ident, now)
        return ThreadInfo(
            ident=ident,
            native_id=native_id,
            name=thread.name if thread is not None else f"<thread {ident}>",
            daemon=daemon,
            alive=True,
            main=main,
            stack=stack,
            state=state,
            kind=kind,
            cpu=cpu,
            started=birth.started if birth is not None else (None if main else first_seen),
            created_by=birth.creator_name if birth is not None else None,
            created_by_ident=birth.creator_ident if birth is not None else None,
            created_at=birth.stack if birth is not None else (),
            daemon_inherited=inherited_from is not None,
            hints=() if daemon or main else hints(kind, stack, birth.stack if birth else (),
                                                  inherited_from, join_target),
        )

    def registry_birth(self, thread: threading.Thread | None) -> Birth | None:
        return self._registry.birth(thread) if self._registry is not None else None
