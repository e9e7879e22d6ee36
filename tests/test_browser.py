"""The web page, driven in Debian's chromium through Playwright, against a real monitor.

A child process runs a small workload (a hot loop, a named worker thread, a thread
whose name is an HTML-injection attempt) under ``stethoscope.trace(port=0)`` and
prints the monitor's URL. The tests read only what the page shows, through the
hooks the page promises: ``data-line``, ``.hot``, ``.bar-recent``/``.bar-total``
(width, ``data-value``, ``title``), ``.now``, the thread cards and
``document.body.dataset.state``.

Every run also writes docs/screenshot.png.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS_NAME = '<img src=x onerror="window.__xss=1">'
WAIT_MS = 10_000  # ms; wait_for_function takes only functions: the page's CSP forbids eval

WORKLOAD = '''\
"""A small program to watch: a checksum loop, a worker thread, a hostile thread name.

The worker only waits on an event, so its stack stays put while a test clicks it.
"""
import os
import threading
import time

import stethoscope
from helpers import digest

HERE = os.path.dirname(os.path.abspath(__file__))
STOP = os.path.join(HERE, "stop")
DATA = list(range(150_000))


def checksum(data):
    total = 0
    for i, x in enumerate(data):
        total = (total + i * x) % 1_000_003  # HOT-LINE
    return total


def idle(done):
    done.wait()  # WORKER-LINE


def wait(done):
    while not done.wait(0.1):
        pass


def main():
    mon = stethoscope.trace(port=0)
    done = threading.Event()
    threading.Thread(target=idle, args=(done,), name="worker-blue", daemon=True).start()
    threading.Thread(target=wait, args=(done,), name=XSS_NAME, daemon=True).start()
    print(mon.url, flush=True)
    deadline = time.monotonic() + 90  # a safety net: the tests kill it anyway
    while not os.path.exists(STOP) and time.monotonic() < deadline:
        checksum(DATA)
        digest(DATA[:20000])
    done.set()
    stethoscope.stop()
    time.sleep(2)


if __name__ == "__main__":
    main()
'''.replace("XSS_NAME", repr(XSS_NAME))

HELPERS = '''\
"""A second monitored file, so the page has a file list to order."""


def digest(values):
    acc = 0
    for v in values:
        acc = (acc * 31 + v) & 0xFFFFFFFF
    return acc
'''


# ---------------------------------------------------------------- the monitored child


@dataclass
class Child:
    proc: subprocess.Popen[str]
    url: str
    work: Path
    stderr: list[str] = field(default_factory=list)

    def line_of(self, marker: str) -> int:
        lines = self.work.read_text().splitlines()
        return next(i for i, text in enumerate(lines, 1) if marker in text)

    def stop(self) -> None:
        (self.work.parent / "stop").touch()


def _pump(stream: IO[str], sink: queue.Queue[str] | list[str]) -> None:
    for line in stream:
        if isinstance(sink, list):
            sink.append(line)
        else:
            sink.put(line)


def _run_child(directory: Path) -> Iterator[Child]:
    """Start the workload, yield it once its URL is known; always kill it afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    work = directory / "work.py"
    work.write_text(WORKLOAD)
    (directory / "helpers.py").write_text(HELPERS)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(ROOT / "src"), env.get("PYTHONPATH", "")] if p)
    proc = subprocess.Popen([sys.executable, str(work)], cwd=directory, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out: queue.Queue[str] = queue.Queue()
        err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True).start()
        threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True).start()
        url = ""
        for _ in range(200):  # up to 20 s, but give up as soon as the child is gone
            try:
                url = out.get(timeout=0.1).strip()
                break
            except queue.Empty:
                if proc.poll() is not None:
                    break
        assert url, f"the workload printed no URL; stderr: {''.join(err)!r}"
        assert url.startswith("http://127.0.0.1:") and "token=" in url, url
        yield Child(proc, url, work, err)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def live_child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    """One workload shared by the tests that only watch it (it gives up after 90 s)."""
    yield from _run_child(tmp_path_factory.mktemp("live"))


@pytest.fixture
def own_child(tmp_path: Path) -> Iterator[Child]:
    """A workload for a test that stops it."""
    yield from _run_child(tmp_path)


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
                    "Run `make test`, which installs it (apt-get install -y chromium).")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Tab:
    page: Page
    errors: list[str]

    def assert_no_errors(self) -> None:
        assert not self.errors, f"the page reported errors: {self.errors}"


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A fresh page (own cookies) at 1400x900 that records script errors and CSP
    violations, which chromium reports as console errors."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" else None)
    try:
        yield Tab(page, errors)
    finally:
        context.close()


def open_live(page: Page, child: Child) -> None:
    page.goto(child.url)
    page.wait_for_function("() => document.body.dataset.state === 'live'", timeout=WAIT_MS)


def row(line: int) -> str:
    return f'#source .line[data-line="{line}"]'


def wait_hot(page: Page, line: int) -> None:
    """Wait until the line is marked hot and its recent bar has a visible width."""
    page.wait_for_function(
        """(sel) => {
            const r = document.querySelector(sel);
            const bar = r && r.querySelector('.bar-recent');
            return !!bar && r.classList.contains('hot')
                && bar.getBoundingClientRect().width > 0;
        }""",
        arg=row(line), timeout=WAIT_MS)


def total_of(page: Page, line: int) -> int:
    return int(page.get_attribute(row(line) + " .bar-total", "data-value") or 0)


def total_from_title(page: Page, line: int) -> int:
    """The total the page tells on hover (titles are written when the pointer arrives)."""
    page.mouse.move(1, 1)
    page.hover(row(line) + " .gut")
    title = page.get_attribute(row(line) + " .bar-total", "title") or ""
    m = re.search(r"total: ([\d,]+)", title)
    assert m, f"no total in the bar's title {title!r}"
    return int(m.group(1).replace(",", ""))


# ---------------------------------------------------------------- tests


def test_hot_line_lights_up_and_grows_live(live_child: Child, tab: Tab) -> None:
    page = tab.page
    open_live(page, live_child)
    # The hottest (here: only) file is selected without a click.
    page.wait_for_function(
        "() => document.querySelector('#files .file.selected .f-name')?.textContent"
        " === 'work.py'",
        timeout=WAIT_MS)
    assert page.text_content("#src-name") == "work.py"
    hot = live_child.line_of("# HOT-LINE")
    wait_hot(page, hot)
    assert float(page.get_attribute(row(hot) + " .bar-recent", "data-value") or 0) > 0
    assert "heat = " in (page.text_content("#heat-label") or "")
    # A line with no data is neither hot nor has a bar width.
    blank = live_child.line_of("import threading")
    assert "hot" not in (page.get_attribute(row(blank), "class") or "")

    # Live: the total grows without a reload, in the bar's value and in its title.
    first = total_of(page, hot)
    titled = total_from_title(page, hot)
    width_first = page.eval_on_selector(row(hot) + " .bar-total", "e => e.style.width")
    assert first > 0 and titled > 0 and width_first not in ("", "0%")
    page.wait_for_timeout(2500)
    page.wait_for_function(
        "([sel, before]) => Number(document.querySelector(sel).dataset.value) > before",
        arg=[row(hot) + " .bar-total", first], timeout=WAIT_MS)
    assert total_of(page, hot) > first
    assert total_from_title(page, hot) > titled
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    tab.assert_no_errors()


def test_threads_panel_lists_threads_with_flags(live_child: Child, tab: Tab) -> None:
    page = tab.page
    open_live(page, live_child)
    main = page.locator("#threads .thread", has=page.locator(".t-name", has_text="MainThread"))
    worker = page.locator("#threads .thread", has=page.locator(".t-name", has_text="worker-blue"))
    main.wait_for(timeout=WAIT_MS)
    worker.wait_for(timeout=WAIT_MS)
    assert main.get_attribute("data-main") == "true"
    assert main.locator(".badge-main").is_visible()
    assert main.locator(".badge-nondaemon").is_visible()
    assert worker.get_attribute("data-daemon") == "true"
    assert worker.locator(".badge-daemon").inner_text() == "daemon"
    assert worker.get_attribute("data-main") == "false"

    # The worker's stack, innermost first, names its sleeping line; clicking it
    # opens work.py scrolled to that line.
    sleep_line = live_child.line_of("# WORKER-LINE")
    frame = worker.locator(f'.frame.mon[data-line="{sleep_line}"]').first
    frame.wait_for(timeout=WAIT_MS)
    assert frame.locator(".loc").inner_text() == f"work.py:{sleep_line}"
    assert frame.locator(".fn").inner_text().endswith("idle")
    # Look at the other file first: the click must switch files, then scroll.
    page.locator("#files .file", has_text="helpers.py").click(timeout=WAIT_MS)
    page.wait_for_function(
        "() => document.getElementById('src-name').textContent === 'helpers.py'"
        " && !!document.querySelector('#source .line')", timeout=WAIT_MS)
    frame.click()
    page.wait_for_function(
        "() => document.getElementById('src-name').textContent === 'work.py'", timeout=WAIT_MS)
    page.wait_for_function(
        """(sel) => {
            const r = document.querySelector(sel), box = document.getElementById('source');
            if (!r) return false;
            const a = r.getBoundingClientRect(), b = box.getBoundingClientRect();
            return a.top >= b.top && a.bottom <= b.bottom;
        }""", arg=row(sleep_line), timeout=WAIT_MS)
    tab.assert_no_errors()


def test_hostile_thread_name_is_shown_as_text(live_child: Child, tab: Tab) -> None:
    page = tab.page
    open_live(page, live_child)
    name = page.locator("#threads .t-name", has_text="onerror")
    name.wait_for(timeout=WAIT_MS)
    assert name.inner_text() == XSS_NAME
    page.wait_for_timeout(1000)  # several live updates re-render the panel
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    # The token left the address bar; the HttpOnly cookie still lets a reload in.
    assert "token=" not in page.url
    page.reload()
    page.wait_for_function("() => document.body.dataset.state === 'live'", timeout=WAIT_MS)
    page.locator("#threads .t-name", has_text="onerror").wait_for(timeout=WAIT_MS)
    assert page.evaluate("typeof window.__xss") == "undefined"
    tab.assert_no_errors()


def test_screenshot_of_live_page(live_child: Child, tab: Tab) -> None:
    page = tab.page
    open_live(page, live_child)
    wait_hot(page, live_child.line_of("# HOT-LINE"))
    page.locator("#threads .t-name", has_text="worker-blue").wait_for(timeout=WAIT_MS)
    page.wait_for_selector("#source .line.now", timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # a few more updates: bars settle, totals grow
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 20_000
    tab.assert_no_errors()


def test_page_keeps_final_picture_when_program_ends(own_child: Child, tab: Tab) -> None:
    page = tab.page
    open_live(page, own_child)
    hot = own_child.line_of("# HOT-LINE")
    wait_hot(page, hot)
    assert page.is_hidden("#banner")

    own_child.stop()
    page.wait_for_function(
        "() => ['ended', 'disconnected'].includes(document.body.dataset.state)",
        timeout=WAIT_MS)
    state = page.evaluate("document.body.dataset.state")
    banner = page.locator("#banner")
    assert banner.is_visible()
    expected = "program ended — showing the final picture" if state == "ended" else "disconnected"
    assert expected in banner.inner_text()
    # The last data stays: the file, its source and its heat.
    assert page.text_content("#src-name") == "work.py"
    assert page.locator(row(hot)).is_visible()
    assert "checksum" in (page.text_content("#source") or "")
    assert total_of(page, hot) > 0
    assert own_child.proc.wait(timeout=10) == 0, "".join(own_child.stderr)
    # Once the stream has ended the page stops asking; nothing else may have failed.
    assert not [e for e in tab.errors if "ERR_CONNECTION_REFUSED" not in e], tab.errors

