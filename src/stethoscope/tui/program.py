"""The monitored program of ``run --tui``: a child ``stethoscope run``, its log, its exit.

The contract: the child runs in its own session with stdin from /dev/null and its
stdout and stderr in a log file, so the terminal (its keys, its signals, its
screen) belongs to the view alone. Its exit code reads as a shell reports it, and
stopping it reaches its own children too (the whole process group), with a grace
between SIGTERM and SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from ..config import new_token

KILL_GRACE = 3.0  # SIGTERM, then SIGKILL after this long


def program_command(monitor_words: list[str], target: list[str], url_file: str) -> list[str]:
    """The child that runs the program: ``stethoscope run`` with the user's options
    after ours, so a --port or --token the user gave wins (``--opt=value``: a random
    token may start with a dash)."""
    return [sys.executable, "-m", "stethoscope", "run", "--quiet", "--port=0",
            f"--token={new_token()}", f"--url-file={url_file}", *monitor_words, *target]


class Program:
    """The monitored program of ``run --tui``: a child process in its own session
    (so the terminal's keys and signals stay with the view) whose output goes to a
    log file that the view shows and prints at the end."""

    def __init__(self, command: list[str], workdir: str) -> None:
        self.log_path = os.path.join(workdir, "output.log")
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")  # output shows up live, as on a terminal
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self.pid = self.proc.pid

    def exit_code(self) -> int | None:
        """The program's code as a shell reports it (128 + signal when killed)."""
        code = self.proc.poll()
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def wait_for_file(self, path: str, timeout: float) -> str | None:
        """The contents of ``path`` once the program writes it; None if it exits first."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(FileNotFoundError), open(path) as f:
                return f.read().strip()
            if self.exit_code() is not None or time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def tail(self, count: int) -> list[str]:
        """The last ``count`` lines of the output; reads only the end of the log."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 200 * count))
                data = f.read()
        except OSError:
            return []
        return data.decode("utf-8", "replace").splitlines()[-count:]

    def kill(self) -> None:
        """SIGTERM the program's process group (its own children too), SIGKILL it if
        still there after a grace."""
        for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 5.0)):
            if self.exit_code() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait)
