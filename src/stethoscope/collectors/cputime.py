"""CPU time per thread, read from Linux's /proc/self/task/<tid>/schedstat.

One read-only fd is kept per thread and read with ``pread`` (about a microsecond),
so the sampler can tell a thread that is running from one that waits. On other
systems, or where schedstat is missing, ``read`` returns None ("unknown").
"""

from __future__ import annotations

import contextlib
import os


class ThreadCPU:
    def __init__(self) -> None:
        self._fds: dict[int, int] = {}  # native thread id -> fd
        self.available = os.path.exists(f"/proc/self/task/{os.getpid()}/schedstat")

    def read(self, native_id: int | None) -> int | None:
        """Nanoseconds of CPU the thread has used, or None if unknown or gone."""
        if native_id is None or not self.available:
            return None
        fd = self._fds.get(native_id)
        try:
            if fd is None:
                fd = os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY)
                self._fds[native_id] = fd
            return int(os.pread(fd, 64, 0).split(maxsplit=1)[0])
        except (OSError, ValueError, IndexError):
            self.forget(native_id)
            return None

    def forget(self, native_id: int) -> None:
        fd = self._fds.pop(native_id, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def keep_only(self, native_ids: set[int]) -> None:
        for native_id in [n for n in self._fds if n not in native_ids]:
            self.forget(native_id)

    def close(self) -> None:
        for native_id in list(self._fds):
            self.forget(native_id)
