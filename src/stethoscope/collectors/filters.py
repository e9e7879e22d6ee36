"""Maps a code object's file name to a file id, or None when it is not monitored.

The user's filter is called once per distinct file name (results are cached),
never with the monitor's own files, and an exception in it counts as "not
monitored" and is reported once instead of reaching the user's program.
"""

from __future__ import annotations

from collections.abc import Callable

from ..files import FileFilter, is_internal
from ..model import Store


class Resolver:
    def __init__(self, accept: FileFilter, store: Store,
                 on_error: Callable[[str], None] | None = None) -> None:
        self._accept = accept
        self._store = store
        self._on_error = on_error
        # file name -> file id or None. Plain dict reads are safe from any thread
        # under the GIL; a race only costs a second call of the filter.
        self.cache: dict[str, str | None] = {}

    def __call__(self, filename: str) -> str | None:
        try:
            return self.cache[filename]
        except KeyError:
            pass
        fid: str | None = None
        if not is_internal(filename):
            try:
                accepted = bool(self._accept(filename))
            except Exception as exc:  # the user's filter must not break their program
                accepted = False
                on_error, self._on_error = self._on_error, None  # once, not once per file
                if on_error is not None:
                    on_error(f"the files filter raised {type(exc).__name__}: {exc} (first for "
                             f"{filename}); files it raises for are not monitored")
            if accepted:
                fid = self._store.register_file(filename)
        self.cache[filename] = fid
        return fid
