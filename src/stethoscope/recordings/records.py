"""One record of a recording, parsed and checked: ``parse`` and the ``check_*`` per kind.

Every check raises ``Malformed`` (a ValueError) with what is wrong, in one line;
reader.py adds the file and the record's number. Whatever the bytes, nothing else
escapes: numbers are bounded while they are parsed (an integer of at most
MAX_DIGITS digits, a float finite and at most MAX_FLOAT, no NaN or Infinity),
nesting at most MAX_DEPTH, and
every field the reader uses has its type checked before it is used.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from ..model.snapshot import SCHEMA_VERSION, Snapshot
from .file import FORMAT_VERSION

MAX_DEPTH = 32  # nesting of a record's JSON (a snapshot's keyed form needs 7)
MAX_DIGITS = 18  # integers of at most this many digits (they fit 64 bits)
MAX_FLOAT = 1e15  # floats within ±MAX_FLOAT (a Unix time in seconds is ~1.7e9)
MAX_SAMPLE_HZ = 1e6
KINDS = ("header", "source", "snap", "stacks", "end")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONG_DIGITS = re.compile(rb"\d{%d}" % (MAX_DIGITS + 1))
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


class Malformed(ValueError):
    """A record that is not what the writer writes; the message says how."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:  # refused before Python converts it
        raise Malformed(f"the number {text[:20]}{'…' if len(text) > 20 else ''} is out "
                        f"of range")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_FLOAT:
        raise Malformed(f"the number {text[:40]} is out of range")
    return value


def _parse_constant(text: str) -> Any:
    raise Malformed(f"{text} is not a number a recording holds")


def parse(line: bytes) -> dict[str, Any]:
    """A record's JSON object, bounded and checked, with a known kind ``k``."""
    _check_depth(line)
    # Integers parse in C unless a long run of digits is there (in a string, perhaps):
    # a hook for each of them would cost more than the rest of the reading.
    ints = _parse_int if _LONG_DIGITS.search(line) else None
    try:
        value = json.loads(line, parse_int=ints, parse_float=_parse_float,
                           parse_constant=_parse_constant)
    except Malformed:
        raise
    except RecursionError:
        raise Malformed(f"it is nested more than {MAX_DEPTH} deep") from None
    except UnicodeDecodeError:
        raise Malformed("it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise Malformed(f"it is not JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise Malformed(f"it is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise Malformed("it is not a JSON object")
    kind = value.get("k")
    if kind not in KINDS:
        raise Malformed(f"its kind {kind!r:.40} is none of {', '.join(KINDS)}")
    return value


def _check_depth(line: bytes) -> None:
    """At most MAX_DEPTH brackets open at once, outside strings (checked on the text,
    before parsing: cheaper than walking what it parses to)."""
    if line.count(b"[") + line.count(b"{") <= MAX_DEPTH:
        return
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub(b'""', line)):
        depth += 1 if bracket in (b"[", b"{") else -1
        if depth > MAX_DEPTH:
            raise Malformed(f"it is nested more than {MAX_DEPTH} deep")


def field(rec: dict[str, Any], name: str, check: Callable[[Any], bool], what: str,
          default: Any = ...) -> Any:
    """``rec[name]`` when ``check`` accepts it (or ``default`` when it is missing or
    null and a default is given); else Malformed naming the field and what it must be."""
    if rec.get(name) is None and default is not ...:
        return default
    value = rec.get(name)
    if not check(value):
        raise Malformed(f"its {name!r} must be {what}, not {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:40] + "…"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_strs(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class VersionError(Malformed):
    """A header of another format or schema: said as such, not as damage."""


def check_header(rec: dict[str, Any]) -> dict[str, Any]:
    """The header's fields (all but ``k``); the ones the reader uses are checked."""
    version = rec.get("format")
    if version != FORMAT_VERSION or not is_int(version):
        raise VersionError(f"is in recording format {_shown(version)}; this stethoscope "
                           f"reads format {FORMAT_VERSION}")
    if rec.get("schema") != SCHEMA_VERSION or not is_int(rec.get("schema")):
        raise VersionError(f"holds snapshot schema {_shown(rec.get('schema'))}; this "
                           f"stethoscope reads schema {SCHEMA_VERSION}")
    field(rec, "pid", is_int, "a process id")
    field(rec, "argv", is_strs, "a list of strings", None)
    for name in ("python", "mode", "stethoscope"):
        field(rec, name, is_str, "a string", None)
    for name in ("started", "interval"):
        field(rec, name, is_num, "a number", None)
    field(rec, "sample_hz", lambda v: is_num(v) and 0 < v <= MAX_SAMPLE_HZ,
          f"a rate above 0 and at most {MAX_SAMPLE_HZ:g} per second", None)
    return {k: v for k, v in rec.items() if k != "k"}


def check_source(rec: dict[str, Any]) -> tuple[str, str, str]:
    """(file id, path, text); the text as the writer reads files (undecodable bytes
    replaced), so without lone surrogates (the tokenizer cannot take them)."""
    return (field(rec, "id", is_str, "a string"), field(rec, "path", is_str, "a string"),
            field(rec, "text", lambda v: is_str(v) and _SURROGATE.search(v) is None,
                  "text without lone surrogates"))


def check_snap(rec: dict[str, Any]) -> tuple[bool, float, dict[str, Any]]:
    """(whole?, time, the keyed snapshot or its difference from the one before)"""
    time = float(field(rec, "t", is_num, "a number"))
    whole = "full" in rec
    if whole == ("diff" in rec):
        raise Malformed("a snap record holds one of 'full' and 'diff'")
    change = field(rec, "full" if whole else "diff", lambda v: isinstance(v, dict),
                   "an object")
    return whole, time, change


def check_snapshot(snap: Snapshot) -> None:
    """What Snapshot.from_dict leaves to its users: its times within ±MAX_FLOAT
    (calendars and clocks take no more), no count negative."""
    if max(abs(snap.time), abs(snap.started)) > MAX_FLOAT:
        raise Malformed("its time is out of range")
    for f in snap.files:
        for row in f.lines:
            if min(row) < 0:
                raise Malformed(f"line {row[0]} of {f.name!r:.40} has a negative count")
    if snap.sample_hz_requested < 0 or snap.sample_hz_achieved < 0:
        raise Malformed("its sample rate is negative")


def _is_frame(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and is_str(value[0]) \
        and is_int(value[1]) and is_str(value[2])


def _is_stack(value: Any) -> bool:
    return isinstance(value, list) and all(is_int(i) and i >= 0 for i in value)


def _is_sample(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and is_num(value[0]) \
        and is_int(value[1]) and is_int(value[2]) and value[2] >= 0


def _is_names(value: Any) -> bool:
    return isinstance(value, dict) and all(
        is_str(k) and k.lstrip("-").isdigit() and len(k) <= 20 and is_str(v)
        for k, v in value.items())


def _all(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(check(v) for v in value)


def check_stacks(rec: dict[str, Any]) -> dict[str, Any]:
    """A ``stacks`` record with every field of the right type (numbering is reader.py's
    to check: it depends on the records before)."""
    field(rec, "reset", lambda v: isinstance(v, bool), "true or false")
    field(rec, "base", is_num, "a number")
    field(rec, "frames", _all(_is_frame), "a list of [path, line, function]")
    field(rec, "stacks", _all(_is_stack), "a list of lists of frame numbers")
    field(rec, "samples", _all(_is_sample), "a list of [time, thread, stack number]")
    names = field(rec, "names", _is_names, "an object of thread names by ident", {})
    dropped = field(rec, "dropped", lambda v: is_int(v) and v >= 0, "a count", 0)
    return {**rec, "names": names, "dropped": dropped}
