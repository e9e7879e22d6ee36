"""The thread report, as text: for the hang report at exit and for dump()."""

from __future__ import annotations

import time
from collections.abc import Iterable

from ..model import Frame, Snapshot, ThreadInfo

MAX_FRAMES = 12


def _where(frame: Frame) -> str:
    return f"{frame.path}:{frame.line} in {frame.func}"


def creation_site(thread: ThreadInfo) -> Frame | None:
    """The most telling frame of where a thread was started: the innermost one in a
    monitored file, else the innermost one."""
    for frame in thread.created_at:
        if frame.file is not None:
            return frame
    return thread.created_at[0] if thread.created_at else None


def describe(thread: ThreadInfo, now: float, others: dict[int, ThreadInfo] | None = None
             ) -> list[str]:
    flags = "daemon" if thread.daemon else "non-daemon"
    if thread.daemon_inherited:
        flags += " (inherited from its creator)"
    head = f'Thread "{thread.name}" (ident {thread.ident}'
    head += f", native id {thread.native_id})" if thread.native_id else ")"
    head += f", {flags}"
    if thread.started is not None:
        head += f", alive {now - thread.started:.1f} s"
    if thread.cpu is not None:
        head += f", CPU {thread.cpu:.0f}%"
    lines = [head]
    site = creation_site(thread)
    if site is not None:
        creator = (others or {}).get(thread.created_by_ident or 0)
        creator_site = creation_site(creator) if creator is not None else None
        also = f", itself started at {_where(creator_site)}" if creator_site else ""
        lines.append(f"    created at {_where(site)}, by thread {thread.created_by}{also}")
    elif thread.main:
        lines.append("    the main thread")
    else:
        lines.append("    created before stethoscope started (creation site unknown)")
    lines.append(f"    state: {thread.state}")
    if thread.stack:
        lines.append("    stack (innermost first):")
        lines.extend(f"      {_where(frame)}" for frame in thread.stack[:MAX_FRAMES])
        if len(thread.stack) > MAX_FRAMES:
            lines.append(f"      ... {len(thread.stack) - MAX_FRAMES} more frames")
    lines.extend(f"    hint: {hint}" for hint in thread.hints)
    return lines


def threads_report(threads: Iterable[ThreadInfo], title: str, now: float | None = None,
                   everyone: Iterable[ThreadInfo] = ()) -> str:
    now = time.time() if now is None else now
    others = {t.ident: t for t in everyone if t.alive}
    out = [f"stethoscope: {title}"]
    for thread in threads:
        out.append("")
        out.extend(f"  {line}" for line in describe(thread, now, others))
    return "\n".join(out) + "\n"


def hang_report(snapshot: Snapshot) -> str | None:
    """The report for threads that hold the exit, or None if nothing holds it."""
    info = snapshot.exit
    if info is None or not info.blocking:
        return None
    blocking = [t for t in snapshot.threads if t.ident in info.blocking]
    count = len(blocking)
    title = (f"the main thread finished {snapshot.time - info.main_finished:.1f} s ago, but "
             f"{count} non-daemon thread{'s' if count != 1 else ''} keep{'s' if count == 1 else ''}"
             f" the process alive:")
    return threads_report(blocking, title, now=snapshot.time, everyone=snapshot.threads)


def dump_report(snapshot: Snapshot) -> str:
    alive = [t for t in snapshot.threads if t.alive]
    return threads_report(alive, f"{len(alive)} threads in process {snapshot.pid}:",
                          now=snapshot.time, everyone=snapshot.threads)
