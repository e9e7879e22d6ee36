"""The report a followed child sends the program's monitor, and its reading.

A followed child monitors itself and sends the program's monitor a ``ChildReport``
a couple of times a second and once more, marked final, as it exits. Reports are
JSON in a versioned format (never pickle: the parent must not run what a report
says), and every field is type-checked on reading: a malformed report is a
ReportError with a one-line reason, whatever it holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .snapshot import ProcessInfo, Snapshot

REPORT_VERSION = 1
MAX_SOURCE_CHARS = 2_000_000  # a bigger source file is neither sent nor kept


class ReportError(ValueError):
    """A child report that cannot be read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ChildReport:
    instance: str  # random per child monitor: an exec'd process keeps its pid
    seq: int  # increases with each report from one instance
    final: bool  # sent on the way out; nothing follows it
    process: ProcessInfo
    snapshot: Snapshot
    sources: tuple[tuple[str, str, str], ...] = ()  # (file id, path, text) not sent before

    def to_json(self) -> bytes:
        return json.dumps({
            "report": REPORT_VERSION,
            "instance": self.instance,
            "seq": self.seq,
            "final": self.final,
            "process": self.process.to_dict(),
            "snapshot": self.snapshot.to_dict(),
            "sources": [list(s) for s in self.sources],
        }, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ChildReport:
        try:
            d = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ReportError(f"report is not JSON: {exc}") from None
        except RecursionError:
            raise ReportError("report is malformed: nested too deeply") from None
        if not isinstance(d, dict) or d.get("report") != REPORT_VERSION:
            version = d.get("report") if isinstance(d, dict) else None
            raise ReportError(f"report version {version!r} is not supported "
                              f"(this stethoscope reads version {REPORT_VERSION})")
        try:
            sources = tuple((str(fid), str(path), str(text)) for fid, path, text in d["sources"])
            report = cls(str(d["instance"]), int(d["seq"]), bool(d["final"]),
                         ProcessInfo.from_dict(d["process"]), Snapshot.from_dict(d["snapshot"]),
                         sources)
        except ValueError as exc:
            raise ReportError(f"report is malformed: {exc}") from None
        except (KeyError, TypeError, IndexError, AttributeError, OverflowError,
                RecursionError) as exc:  # e.g. a seq of 1e400 (infinity), or deep nesting
            raise ReportError(f"report is malformed: {type(exc).__name__}: {exc}") from None
        if report.process.pid != report.snapshot.pid:
            raise ReportError("report is malformed: process and snapshot pids differ")
        return report
