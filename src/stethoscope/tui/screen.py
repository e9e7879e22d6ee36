"""What the view shows: the user's choices, the picture they make, and its hot lines.

The contract: plain data, no drawing and no terminal. ``ViewState`` is what the keys
change (keys.py), ``Screen`` is everything one picture is drawn from (panels.py draws
it; app.py fills it in each turn from the poller and the program), and
``heat_of``/``hot_lines`` read a snapshot the way every panel must agree on. The
kinds of heat are the snapshot's own (``heat_kinds``): the view never restates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .client import Snap, Source
from .program import Program

PANELS = ("lines", "threads", "processes")


@dataclass
class ViewState:
    """What the user chose with the keys."""

    panel: int = 0
    file_id: str | None = None  # None: all files
    picker: int | None = None  # the file picker's cursor while it is open
    picker_files: list[str] = field(default_factory=list)  # its rows, fixed when it opens
    help: bool = False
    confirm_quit: bool = False  # asking whether to kill or leave a running program


@dataclass
class Screen:
    """Everything one picture is drawn from."""

    snapshot: Snap | None
    error: str | None
    sources: dict[str, Source | None]
    state: ViewState
    target: str
    program: Program | None = None
    exit_code: int | None = None
    output: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Heat:
    """The snapshot's kind of heat as the view uses it: the fields of a line row (and
    of a file) that hold its recent and total figures, and a short word for its unit."""

    recent: str
    total: str
    short_unit: str


NO_HEAT = Heat("", "", "heat")


def heat_of(snap: Snap) -> Heat:
    """The kind of heat the snapshot is coloured by: ``heat_kinds[heat]``."""
    kinds = snap.get("heat_kinds")
    kind = kinds.get(str(snap.get("heat"))) if isinstance(kinds, dict) else None
    if isinstance(kind, dict) and all(isinstance(kind.get(key), str)
                                      for key in ("recent", "total", "short_unit")):
        return Heat(kind["recent"], kind["total"], kind["short_unit"])
    # Every snapshot carries the table; one without it (not a stethoscope monitor's)
    # gets no figures rather than a guess at which fields mean what.
    return NO_HEAT


@dataclass(frozen=True, slots=True)
class HotLine:
    file_id: str
    name: str
    line: int
    recent: int
    total: int
    now: bool


def hot_lines(snap: Snap, file_id: str | None, limit: int) -> list[HotLine]:
    """The hottest lines by the snapshot's kind of heat, over all files or one."""
    fields = list(snap.get("line_fields", []))
    heat = heat_of(snap)
    if heat.recent not in fields or heat.total not in fields or "line" not in fields:
        return []
    at_line, at_recent, at_total = (fields.index(k) for k in ("line", heat.recent, heat.total))
    now = {(n.get("file"), n.get("line")) for n in snap.get("now", [])}
    found = []
    for f in snap.get("files", []):
        if file_id is not None and f.get("id") != file_id:
            continue
        for row in f.get("lines", []):
            recent, total = int(row[at_recent]), int(row[at_total])
            if recent or total:
                line = int(row[at_line])
                found.append(HotLine(f["id"], str(f.get("name", "?")), line, recent, total,
                                     (f["id"], line) in now))
    found.sort(key=lambda h: (-h.recent, -h.total, h.name, h.line))
    return found[:limit]
