"""Third-party benchmark workload: Pygments highlights a large Python source as HTML.

Code nobody here wrote, as a user's program would run it: Pygments' regex lexer
(``RegexLexer.get_tokens_unprocessed``, a pure-Python loop per token) and its
``HtmlFormatter`` (pure-Python per token and per line), on Pygments' own lexer
sources (``pygments/lexers/*.py``, sorted, concatenated, cut to the size asked).
bench/scripts pin the Pygments version, so the input and the result are the same
on every interpreter.

The benchmark's monitors are limited to bench/workloads *and* the pygments
package, so they have the library's lines to watch, not just this driver.

Prints the same protocol as every workload: ``RESULT``, ``ELAPSED``, ``END``.
``BENCH_SCALE`` (default 1.0) scales the input size (~1 s on CPython 3.12).
"""

from __future__ import annotations

import hashlib
import os
import time

import pygments
import pygments.lexers
from pygments.formatters import HtmlFormatter
from pygments.lexers.python import PythonLexer

CHARS = 600_000


def source_text(size: int) -> str:
    folder = os.path.dirname(pygments.lexers.__file__)
    parts: list[str] = []
    total = 0
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py") or name.startswith("_"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text = f.read()
        parts.append(text)
        total += len(text)
        if total >= size:
            break
    whole = "".join(parts)
    # Cut at a line end so the lexer sees whole lines.
    return whole[: whole.rfind("\n", 0, size) + 1] if len(whole) > size else whole


def main() -> None:
    scale = float(os.environ.get("BENCH_SCALE", "1.0"))
    text = source_text(max(1000, int(CHARS * scale)))
    started = time.perf_counter()
    html = pygments.highlight(text, PythonLexer(), HtmlFormatter(linenos="table"))
    digest = hashlib.sha256(html.encode()).hexdigest()[:16]
    elapsed = time.perf_counter() - started
    print(f"RESULT {len(text)}:{len(html)}:{digest}")
    print(f"ELAPSED {elapsed:.6f}")
    print(f"END {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
