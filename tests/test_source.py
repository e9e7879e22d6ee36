from __future__ import annotations

from pathlib import Path

from stethoscope.render.source import read_source, render_source

TEXT = '''import os  # comment
@decorator
def spin(n):
    """Doc
    string."""
    return len(os.sep) + 42
'''


def _kinds(rendered: dict[str, object]) -> dict[str, str]:
    lines = rendered["lines"]
    assert isinstance(lines, list)
    out = {}
    for line, start, end, kind in rendered["tokens"]:  # type: ignore[attr-defined]
        out[lines[line - 1][start:end]] = kind
    return out


def test_tokens_colour_keywords_strings_comments_numbers_and_definitions() -> None:
    rendered = render_source("abc", "/x.py", "x.py", TEXT)
    kinds = _kinds(rendered)
    assert kinds["import"] == "kw"
    assert kinds["# comment"] == "com"
    assert kinds["spin"] == "def"
    assert kinds["42"] == "num"
    assert kinds["len"] == "builtin"
    assert kinds["@"] == "deco"
    assert kinds['    """Doc'[4:]] == "str"
    assert kinds['    string."""'] == "str"


def test_lines_are_numbered_as_python_numbers_them() -> None:
    rendered = render_source("abc", "/x.py", "x.py", "a = 1\r\nb = '\x0c'\rc = 3\n")
    assert rendered["lines"] == ["a = 1", "b = '\x0c'", "c = 3"]


def test_broken_source_is_still_shown() -> None:
    rendered = render_source("abc", "/x.py", "x.py", "def broken(:\n    x = '''\n")
    assert rendered["lines"] == ["def broken(:", "    x = '''"]


def test_read_source_honours_the_coding_cookie(tmp_path: Path) -> None:
    path = tmp_path / "latin.py"
    path.write_bytes("# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n".encode("latin-1"))
    assert "café" in read_source(str(path))
