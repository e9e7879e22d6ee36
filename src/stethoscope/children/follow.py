"""The program monitor's part that follows its child processes.

While it runs, the program's monitor takes its children's reports in an inbox, a
Unix socket in a directory only this user can enter (inbox.py), and
``CHILD_ENV`` in the environment names that socket, so a Python child started
from now on monitors itself and reports there (link.py). A report is taken only
from a process of this user about itself (the kernel names the sender): no
process is listed that did not report for itself. Reports are kept in a
ProcessTable, whose sources are bounded in total; a child gone without its final
report is marked killed (watch.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..config import Config
from ..model import ChildReport, ProcessTable, ReportError
from ..model.activity import Activity
from .inbox import Inbox
from .link import CHILD_ENV, ChildLink
from .watch import ChildWatch
from .wire import HAS_PEERCRED


class Following:
    def __init__(self, config: Config, activity: Activity) -> None:
        self._config = config
        self.table = ProcessTable(os.getpid(), activity=activity)
        self._watch = ChildWatch(self.table)
        self.link: ChildLink | None = None
        self._inbox: Inbox | None = None
        self._env_set: str | None = None
        self._note: Callable[[str], None] = lambda message: None
        self._said_dropped = False

    @property
    def inbox(self) -> str | None:
        """The path of the socket children report to, while it is open."""
        return self._inbox.path if self._inbox is not None else None

    def start(self, note: Callable[[str], None], mode: Callable[[], str]) -> None:
        """Open the inbox; children started from now on report to it, and its
        answers name ``mode()``."""
        self._note = note
        if not HAS_PEERCRED:
            note("child processes are not followed: this platform cannot tell which "
                 "process sent a report")
            return
        inbox = Inbox(self._take, mode, note)
        try:
            inbox.open()
        except OSError as exc:
            note(f"child processes are not followed: their report socket could not be "
                 f"made: {exc}")
            return
        inbox.start()
        self._inbox = inbox
        self.link = link = ChildLink.of(self._config, inbox.path)
        if not link.files_shared:
            note("child processes show files.user: a files filter of your own cannot be "
                 "sent to them (files.path_contains and files.contains_regex can)")
        self._env_set = link.to_env()
        os.environ[CHILD_ENV] = self._env_set

    def check(self) -> None:
        self._watch.check()

    def _take(self, body: bytes, sender: int) -> str | None:
        """A report from the inbox, sent by process ``sender``: None when taken."""
        try:
            report = ChildReport.from_json(body)
        except ReportError as exc:
            return str(exc)
        if report.process.pid != sender:
            return (f"process {sender} sent a report about process {report.process.pid}: "
                    f"a process reports only for itself")
        return self._accept(report)

    def _accept(self, report: ChildReport) -> str | None:
        try:
            self.table.accept(report, time.time())
        except ReportError as exc:
            return str(exc)
        if self.table.sources_dropped and not self._said_dropped:
            self._said_dropped = True
            self._note(f"children's sources are no longer kept: they hold "
                       f"{self.table.max_source_chars} characters in all (the page shows "
                       f"later ones as unknown)")
        return None

    def stop(self) -> None:
        if self._env_set is not None and os.environ.get(CHILD_ENV) == self._env_set:
            del os.environ[CHILD_ENV]
        self._env_set = None
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            inbox.close()

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the inbox's descriptors (the parent's stay)."""
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            inbox.forget_after_fork()
