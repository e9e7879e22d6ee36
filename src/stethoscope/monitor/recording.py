"""The monitor's recording (``trace(record=...)``): open, run, and finish on every exit.

The file itself is recordings/file.py's ``Recorder``. This part gives it the
program's header, and makes sure it is finished however the process ends: normal
exit and Ctrl+C go through the monitor's atexit handler; SIGTERM left at its
default would end the process without atexit, so it is taken in the main thread,
the recording is finished, and the process then dies of SIGTERM as the sender
meant. A bad path is a ConfigError before anything in the program has changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import FrameType
from typing import Any

from .. import _compat
from .._stderr import say
from .._version import __version__
from ..config import Config, ConfigError
from ..model import Snapshot
from ..model.stacks import StackLog
from .process import argv
from .signals import die_of_sigterm, release_sigterm, take_sigterm


class RecordingPart:
    def __init__(self, config: Config, started: float, *, snapshot: Callable[[], Snapshot],
                 source: Callable[[str], tuple[str, str] | None],
                 note: Callable[[str], None]) -> None:
        from ..recordings.file import Recorder, RecordingError

        assert config.record is not None
        self._quiet = config.quiet
        self._note = note
        header: dict[str, Any] = {
            "stethoscope": __version__, "pid": os.getpid(), "argv": list(argv()),
            "python": _compat.PY_VERSION, "started": started,
            "sample_hz": config.sample_hz, "mode": config.mode}
        try:
            self.recorder = Recorder(config.record, header, snapshot=snapshot, source=source,
                                     stack_log=StackLog(), on_fault=note)
        except RecordingError as exc:
            raise ConfigError(str(exc)) from None
        self._sigterm: Callable[[int, FrameType | None], None] | None = None

    @property
    def stack_log(self) -> StackLog:
        return self.recorder.stack_log

    def start(self, stop: Callable[[], None]) -> None:
        """Start writing; ``stop`` (the monitor's) finishes the recording on SIGTERM."""
        self.recorder.start()

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            stop()
            die_of_sigterm()

        if take_sigterm(on_sigterm):
            self._sigterm = on_sigterm

    def close(self) -> None:
        if self._sigterm is not None:
            release_sigterm(self._sigterm)
            self._sigterm = None
        try:
            self.recorder.close()
        except Exception as exc:
            self._note(f"the recording did not close cleanly: {exc}")
        # After a fault its one note has said why it stopped: "recorded to" would not be true.
        if not self._quiet and not self.recorder.failed:
            path = self.recorder.path
            say(f"recorded to {path}; replay with: stethoscope view {path}")

    def forget_after_fork(self) -> None:
        self.recorder.forget()
