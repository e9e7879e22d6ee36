"""A source file as the page shows it: its lines plus syntax-colouring spans.

Colouring comes from the stdlib ``tokenize``, so it costs no dependency and is
exactly Python's own view of the text. A file that does not tokenize (a syntax
error, an unfinished edit) is still shown, just without colours past the error.
"""

from __future__ import annotations

import builtins
import io
import keyword
import os
import tokenize
from typing import Any

Span = tuple[int, int, int, str]  # line, start column, end column, kind

_BUILTINS = frozenset(dir(builtins))


def read_source(path: str, identity: tuple[int, int] | None = None) -> str:
    """The file's text decoded the way Python decodes it (PEP 263 cookie or UTF-8).
    With ``identity`` (st_dev, st_ino), only from that file: OSError if the path now
    leads to another one (a symlink or a file put in its place after it ran)."""
    with open(path, "rb") as f:
        if identity is not None:
            st = os.fstat(f.fileno())
            if (st.st_dev, st.st_ino) != identity:
                raise OSError(f"{path} is no longer the file that ran")
        data = f.read()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding, errors="replace")


def _spans(text: str) -> list[Span]:
    spans: list[Span] = []
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            kind = _kind(tok, previous)
            if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT) and tok.string:
                previous = tok.string
            if kind is None:
                continue
            (srow, scol), (erow, ecol) = tok.start, tok.end
            if srow == erow:
                spans.append((srow, scol, ecol, kind))
                continue
            # A multi-line string: one span per line it covers.
            lines = tok.string.split("\n")
            for offset, part in enumerate(lines):
                row = srow + offset
                start = scol if offset == 0 else 0
                end = start + len(part) if offset == 0 else len(part)
                spans.append((row, start, end, kind))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return spans


def _kind(tok: tokenize.TokenInfo, previous: str) -> str | None:
    if tok.type == tokenize.STRING:
        return "str"
    if tok.type == tokenize.COMMENT:
        return "com"
    if tok.type == tokenize.NUMBER:
        return "num"
    if tok.type == tokenize.OP:
        return "deco" if tok.string == "@" else "op"
    if tok.type == tokenize.NAME:
        if previous in ("def", "class"):
            return "def"
        if keyword.iskeyword(tok.string) or keyword.issoftkeyword(tok.string):
            return "kw"
        if tok.string in _BUILTINS:
            return "builtin"
        return None
    # 3.12+ tokenizes f-strings into parts
    if tok.type in (getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_MIDDLE", -1),
                    getattr(tokenize, "FSTRING_END", -1)):
        return "str"
    return None


def render_source(file_id: str, path: str, name: str, text: str) -> dict[str, Any]:
    # Python numbers lines by \n, \r\n and \r only (str.splitlines also splits
    # on form feeds and other separators, which would shift every number).
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return {
        "id": file_id,
        "path": path,
        "name": name,
        "lines": lines,
        "tokens": [list(span) for span in _spans(text)],
    }
