"""The program monitor's part that follows its child processes.

While it runs, ``CHILD_ENV`` in the environment names this monitor, so a Python
child started from now on monitors itself and reports here (link.py). Reports
are kept in a ProcessTable; a child gone without its final report is marked
killed (watch.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..config import Config
from ..model import ChildReport, ProcessTable, ReportError
from ..model.activity import Activity
from .link import CHILD_ENV, ChildLink
from .watch import ChildWatch


class Following:
    def __init__(self, config: Config, activity: Activity) -> None:
        self._config = config
        self.table = ProcessTable(os.getpid(), activity=activity)
        self._watch = ChildWatch(self.table)
        self.link: ChildLink | None = None
        self._env_set: str | None = None

    def start(self, port: int, note: Callable[[str], None]) -> None:
        self.link = link = ChildLink.of(self._config, port)
        if not link.files_shared:
            note("child processes show files.user: a files filter of your own cannot be "
                 "sent to them (files.path_contains and files.contains_regex can)")
        self._env_set = link.to_env()
        os.environ[CHILD_ENV] = self._env_set

    def check(self) -> None:
        self._watch.check()

    def accept(self, body: bytes) -> str | None:
        try:
            self.table.accept(ChildReport.from_json(body), time.time())
        except ReportError as exc:
            return str(exc)
        return None

    def stop(self) -> None:
        if self._env_set is not None and os.environ.get(CHILD_ENV) == self._env_set:
            del os.environ[CHILD_ENV]
        self._env_set = None
