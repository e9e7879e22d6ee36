"""Source text of the files the program ran, for the page, recordings and reports.

A file's source is read only from the very file that ran: its (st_dev, st_ino)
was noted when it first ran, and the open file is checked against it, so a path
swapped for a symlink (or another file) since is never read. Nothing is ever read
by a path that a request names: files are known by id, and the id must be one
this process ran (or one a child ran and sent).
"""

from __future__ import annotations

import json
import os

from ..model import ProcessTable, Store
from ..render.source import read_source, render_source

UNREADABLE = ("# stethoscope: the source of this file could not be read (or it is no "
              "longer the file that ran)\n")


class Sources:
    def __init__(self, store: Store, children: ProcessTable | None) -> None:
        self._store = store
        self._children = children
        self._rendered: dict[str, bytes] = {}

    def own(self, file_id: str) -> tuple[str, str] | None:
        """(path, text) of a file this process ran, read only from the very file that
        ran; None for an id this process has not seen. OSError, SyntaxError or
        UnicodeError when it cannot be read."""
        path = self._store.path(file_id)
        if path is None:
            return None
        identity = self._store.identity(file_id)
        if identity is None:  # no file there when it ran: nothing there is its source
            raise FileNotFoundError(f"{path} did not exist when it ran")
        return path, read_source(path, identity)

    def text(self, file_id: str) -> tuple[str, str] | None:
        """(path, text) of a file this process ran, or one a child ran and sent."""
        path = self._store.path(file_id)
        if path is None:
            return self._children.source(file_id) if self._children is not None else None
        try:
            return self.own(file_id)
        except (OSError, SyntaxError, UnicodeError):
            return path, UNREADABLE

    def json(self, file_id: str) -> bytes | None:
        """The file as the page shows it (render/source.py), by id; None when unknown."""
        cached = self._rendered.get(file_id)
        if cached is not None:
            return cached
        found = self.text(file_id)
        if found is None:
            return None
        path, text = found
        cached = json.dumps(render_source(file_id, path, os.path.basename(path), text),
                            separators=(",", ":")).encode()
        self._rendered[file_id] = cached
        return cached
