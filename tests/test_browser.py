"""The web page, driven in Debian's chromium through Playwright, against a real monitor.

A child process runs a small workload (a hot loop, a daemon and a non-daemon named
worker, a thread whose name is an HTML-injection attempt) under
``stethoscope.trace(port=0)`` and prints the monitor's URL. Another child, run with
``python -m stethoscope run --hang-report 1``, finishes its main thread while a
non-daemon thread waits forever, so the page shows the hang banner. The tests read
only what the page shows, through the hooks the page promises: ``data-line``,
``.hot``, ``.bar-recent``/``.bar-total`` (width, ``data-value``, ``title``), ``.now``,
the thread cards (``data-ident``/``data-daemon``, badges, ``.t-state-text``,
``.hint``, ``.t-created``), ``#banner`` and ``document.body.dataset.state``; what
they expect there comes from ``/api/snapshot`` and from marker comments in the
children's source.

Every run also writes docs/screenshot.png, and /tmp/banner.png (the hang banner).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
BANNER_SHOT = Path("/tmp/banner.png")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS_NAME = '<img src=x onerror="window.__xss=1">'
# CPython 3.12.0-3.12.2 refuse new threads once __main__ has finished (gh-113964): the
# server then answers in its own thread, and every event stream, open ones included,
# closes after one event (README, known limitations).
NO_THREADS_AFTER_MAIN = (3, 12, 0) <= sys.version_info[:3] <= (3, 12, 2)
WAIT_MS = 10_000  # ms; wait_for_function takes only functions: the page's CSP forbids eval

WORKLOAD = '''\
"""A small program to watch: a checksum loop, worker threads, a hostile thread name.

The workers only wait on an event, so their stacks stay put while a test clicks them.
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
    threading.Thread(target=idle, args=(done,), name="worker-blue", daemon=True).start()  # BLUE
    threading.Thread(target=idle, args=(done,), name="worker-green", daemon=False).start()  # GREEN
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

HANG = '''\
"""The main thread finishes (once the test creates "go") while a non-daemon thread
waits on an event nobody sets. A daemon watchdog ends the process if the test
runner goes away without killing it (its stdin closes).
"""
import os
import sys
import threading
import time

GO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go")


def hold(never):
    never.wait()  # STUBBORN-WAIT


def watchdog():
    sys.stdin.read()
    os._exit(3)


threading.Thread(target=watchdog, name="watchdog", daemon=True).start()
threading.Thread(target=hold, args=(threading.Event(),), name="stubborn").start()  # STUBBORN-START
deadline = time.monotonic() + 60
while not os.path.exists(GO) and time.monotonic() < deadline:
    time.sleep(0.05)
'''

HELPERS = '''\
"""A second monitored file, so the page has a file list to order."""


def digest(values):
    acc = 0
    for v in values:
        acc = (acc * 31 + v) & 0xFFFFFFFF
    return acc
'''


# ---------------------------------------------------------------- the monitored child


URL = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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

    def snapshot(self) -> dict[str, Any]:
        """The monitor's current snapshot, read past the page (token in the query)."""
        u = urllib.parse.urlsplit(self.url)
        with NO_PROXY.open(f"http://{u.netloc}/api/snapshot?{u.query}", timeout=5) as r:
            data: dict[str, Any] = json.load(r)
        return data

    def thread(self, name: str, until: Callable[[dict[str, Any]], bool] = lambda snap: True,
               ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(snapshot, the one thread called `name` in it), from the first snapshot in
        the next 5 s for which `until` holds (a built snapshot is reused for 0.1 s)."""
        deadline = time.monotonic() + 5
        snap = self.snapshot()
        while not until(snap) and time.monotonic() < deadline:
            time.sleep(0.05)
            snap = self.snapshot()
        found = [t for t in snap["threads"] if t["name"] == name]
        assert len(found) == 1, f"threads named {name!r}: {found}"
        return snap, found[0]


def _pump(stream: IO[str], sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


def _spawn(args: list[str], directory: Path, work: Path) -> Iterator[Child]:
    """Start a child, yield it once it has printed its URL (on stdout or stderr);
    always kill it afterwards. Its stdin stays an open pipe until then."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(ROOT / "src"), env.get("PYTHONPATH", "")] if p)
    proc = subprocess.Popen(args, cwd=directory, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out: list[str] = []
        err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True)]
        for pump in pumps:
            pump.start()
        url = ""
        deadline = time.monotonic() + 20  # give up as soon as the child is gone
        while not url and time.monotonic() < deadline:
            gone = proc.poll() is not None
            if gone:
                for pump in pumps:
                    pump.join(timeout=2)
            m = URL.search("".join(out + err))
            url = m.group(0) if m else ""
            if gone:
                break
            time.sleep(0.02)
        assert url, f"the child printed no URL; stdout: {''.join(out)!r} stderr: {''.join(err)!r}"
        yield Child(proc, url, work, err)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdin is not None:
            proc.stdin.close()


def _run_child(directory: Path) -> Iterator[Child]:
    """The workload under stethoscope.trace(port=0), which prints the URL on stdout."""
    directory.mkdir(parents=True, exist_ok=True)
    work = directory / "work.py"
    work.write_text(WORKLOAD)
    (directory / "helpers.py").write_text(HELPERS)
    yield from _spawn([sys.executable, str(work)], directory, work)


@pytest.fixture(scope="module")
def live_child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    """One workload shared by the tests that only watch it (it gives up after 90 s)."""
    yield from _run_child(tmp_path_factory.mktemp("live"))


@pytest.fixture
def own_child(tmp_path: Path) -> Iterator[Child]:
    """A workload for a test that stops it."""
    yield from _run_child(tmp_path)


@pytest.fixture
def hang_child(tmp_path: Path) -> Iterator[Child]:
    """HANG under the command line, which prints `stethoscope: serving URL` on stderr."""
    work = tmp_path / "hang.py"
    work.write_text(HANG)
    yield from _spawn([sys.executable, "-m", "stethoscope", "run", "--port", "0",
                       "--hang-report", "1", str(work)], tmp_path, work)


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
    page.set_default_timeout(WAIT_MS)  # a missing element fails in 10 s, not 30
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


def card_of(page: Page, thread: dict[str, Any]) -> Locator:
    return page.locator(f'#threads .thread[data-ident="{thread["ident"]}"]')


def wait_texts(page: Page, selector: str, expected: list[str]) -> None:
    """Wait until the elements matching `selector` read exactly `expected`, in order;
    on timeout, fail with what they read instead."""
    try:
        page.wait_for_function(
            """([sel, want]) => {
                const got = Array.from(document.querySelectorAll(sel), e => e.textContent);
                return JSON.stringify(got) === JSON.stringify(want);
            }""", arg=[selector, expected], timeout=WAIT_MS)
    except PlaywrightTimeoutError:
        got = page.eval_on_selector_all(selector, "es => es.map(e => e.textContent)")
        pytest.fail(f"{selector} reads {got}, expected {expected}")


def source_shows(page: Page, name: str, line: int) -> None:
    """Wait until the source view shows `name` with `line` flashed and in view."""
    page.wait_for_function(
        """([name, sel]) => {
            const r = document.querySelector(sel), box = document.getElementById('source');
            if (document.getElementById('src-name').textContent !== name || !r) return false;
            const a = r.getBoundingClientRect(), b = box.getBoundingClientRect();
            return r.classList.contains('flash') && a.top >= b.top && a.bottom <= b.bottom;
        }""", arg=[name, row(line)], timeout=WAIT_MS)


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


@pytest.mark.parametrize(("name", "daemon", "marker"), [
    ("worker-blue", True, "# BLUE"),
    ("worker-green", False, "# GREEN"),
])
def test_worker_card_shows_name_flag_state_and_creation_site(
        live_child: Child, tab: Tab, name: str, daemon: bool, marker: str) -> None:
    page = tab.page
    open_live(page, live_child)
    page.locator("#threads .t-name", has_text=name).wait_for(timeout=WAIT_MS)
    _, t = live_child.thread(name)
    start = live_child.line_of(marker)
    # What the monitor says, checked against the workload itself ...
    assert (t["daemon"], t["alive"], t["main"], t["kind"]) == (daemon, True, False, "event"), t
    assert "Event.wait()" in t["state"], t
    assert (t["created_by"], t["daemon_inherited"]) == ("MainThread", False), t
    site = t["created_at"][0]
    assert site["file"] and (Path(site["path"]).name, site["line"], site["func"]) == \
        ("work.py", start, "main"), t["created_at"]
    assert bool(t["hints"]) is not daemon, t["hints"]  # hints only for non-daemon threads
    # ... is what the card shows.
    card = card_of(page, t)
    assert card.locator(".t-name").inner_text() == name
    assert card.get_attribute("data-daemon") == str(daemon).lower()
    assert card.get_attribute("data-main") == "false"
    flag = card.locator(".badge-daemon" if daemon else ".badge-nondaemon")
    assert flag.inner_text() == ("daemon" if daemon else "non-daemon")
    assert card.locator(".badge-nondaemon" if daemon else ".badge-daemon").count() == 0
    assert card.locator(".badge-blocking").count() == 0  # the main thread still runs
    wait_texts(page, f'#threads .thread[data-ident="{t["ident"]}"] .t-state-text', [t["state"]])
    assert card.locator(".t-state-text").is_visible()
    wait_texts(page, f'#threads .thread[data-ident="{t["ident"]}"] .hint', t["hints"])
    assert card.locator(".t-hints").is_visible() is not daemon

    # The creation site: a summary line that unfolds into the stack at start().
    summary = card.locator(".t-created-sum")
    assert summary.inner_text() == f"started by MainThread at work.py:{start} in main"
    site_frame = card.locator(f'.t-created .frame.mon[data-line="{start}"]').first
    assert site_frame.is_hidden()
    # Look at the other file first: the click must switch files, then scroll.
    page.locator("#files .file", has_text="helpers.py").click(timeout=WAIT_MS)
    page.wait_for_function(
        "() => document.getElementById('src-name').textContent === 'helpers.py'"
        " && !!document.querySelector('#source .line')", timeout=WAIT_MS)
    summary.click()
    site_frame.wait_for(state="visible", timeout=WAIT_MS)
    assert site_frame.locator(".loc").inner_text() == f"work.py:{start}"
    assert site_frame.locator(".fn").inner_text() == "main"
    site_frame.click()
    source_shows(page, "work.py", start)
    assert "Thread(" in page.locator(row(start)).inner_text()
    assert name in page.locator(row(start)).inner_text()
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


def test_hang_banner_names_the_thread_holding_the_exit(hang_child: Child, tab: Tab) -> None:
    page = tab.page
    open_live(page, hang_child)
    page.locator("#threads .t-name", has_text="stubborn").wait_for(timeout=WAIT_MS)
    snap, stubborn = hang_child.thread("stubborn")
    _, watchdog = hang_child.thread("watchdog")
    card, dog = card_of(page, stubborn), card_of(page, watchdog)
    # While the main thread runs: no exit info, no banner, no "holds exit".
    assert (snap["state"], snap["exit"]) == ("running", None), snap["exit"]
    assert page.is_hidden("#banner")
    assert card.locator(".badge-blocking").count() == 0

    (hang_child.work.parent / "go").touch()  # the main thread finishes
    banner = page.locator("#banner")
    banner.wait_for(state="visible", timeout=WAIT_MS)
    assert banner.inner_text() == \
        "main thread finished — 1 non-daemon thread keeps the process alive: stubborn"
    assert "banner-finished" in (banner.get_attribute("class") or "")
    blocking = card.locator(".badge-blocking")
    blocking.wait_for(timeout=WAIT_MS)
    assert blocking.inner_text() == "holds exit"

    # The hang report, printed on stderr after --hang-report 1 s.
    deadline = time.monotonic() + 10
    while "keeps the process alive" not in "".join(hang_child.stderr) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    report = "".join(hang_child.stderr)
    start = hang_child.line_of("# STUBBORN-START")
    # Still live: the process is held, not ended; the stream still flows (checked
    # before the test's own requests below, see NO_THREADS_AFTER_MAIN).
    assert page.evaluate("document.body.dataset.state") == "live"
    assert hang_child.proc.poll() is None
    assert "1 non-daemon thread keeps the process alive" in report, report
    assert 'Thread "stubborn"' in report and f"hang.py:{start}" in report, report
    assert "watchdog" not in report, report

    # The monitor's view of the exit, and the card that shows it.
    snap, stubborn = hang_child.thread("stubborn", until=lambda s: bool(s["exit"]["reported"]))
    assert snap["state"] == "main-finished"
    assert (snap["exit"]["blocking"], snap["exit"]["reported"]) == ([stubborn["ident"]], True)
    assert (stubborn["daemon"], stubborn["daemon_inherited"], stubborn["kind"]) == \
        (False, True, "event"), stubborn
    assert any("Event.wait()" in h for h in stubborn["hints"]), stubborn["hints"]
    assert card.locator(".t-name").inner_text() == "stubborn"
    assert "blocking" in (card.get_attribute("class") or "")
    assert card.locator(".badge-nondaemon").inner_text() == "non-daemon (inherited)"
    sel = f'#threads .thread[data-ident="{stubborn["ident"]}"]'
    wait_texts(page, sel + " .t-state-text", [stubborn["state"]])
    wait_texts(page, sel + " .hint", stubborn["hints"])
    assert card.locator(".hint").first.is_visible()
    assert card.locator(".t-created-sum").inner_text() == \
        f"started by MainThread at hang.py:{start} in <module>"
    # The thread holding the exit comes right after main; the daemon one holds nothing.
    names = page.locator("#threads .thread .t-name").all_inner_texts()
    assert names[:2] == ["MainThread", "stubborn"], names
    assert dog.locator(".badge-daemon").inner_text() == "daemon"
    assert dog.locator(".badge-blocking").count() == 0
    assert "1 holding exit" in (page.text_content("#threads-count") or "")
    states = ["live", "reconnecting"] if NO_THREADS_AFTER_MAIN else ["live"]
    assert page.evaluate("document.body.dataset.state") in states
    assert hang_child.proc.poll() is None
    page.screenshot(path=str(BANNER_SHOT))
    tab.assert_no_errors()
