"""Issue #7: what a program names and writes is shown as text, in Debian's chromium.

A program whose names and texts are HTML/JS injection attempts runs under the
monitor: its hot module's file name is ``<svg onload=window.__xss=3>.py`` (a legal
Linux file name), that module's source holds ``</script><script>window.__xss=2</script>``
and more, a thread runs in it under a hostile name, and a Python subprocess gets a
hostile word in its argv (an argument of its own, not its ``-c`` code:
test_browser.py checks that one). Each payload would set ``window.__xss`` if the page
ever parsed it as HTML. The page is read live (all processes, then one process's
own view) and as the replay of a recording of the same program
(``stethoscope run --record``, ``stethoscope view``).

In each view the tests assert that ``window.__xss`` stays undefined, that each payload
is visible as literal text where the page shows it, that the DOM holds no element
or attribute a payload would have made (``img[src=x]``, ``svg[onload]``, any ``on*``
attribute, any script but the page's own), that the page's CSP forbids inline script,
and that the page caused no ``securitypolicyviolation`` event (heard by a listener
that Playwright's init script installs; the browser injects init scripts itself, so
the CSP does not stop them) and no console error. A control test shows the CSP and
the listener at work: a script injected inline is blocked and heard.
"""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from test_browser import Child, _run_child, _spawn
from test_browser_activity import _env, get_json

pytestmark = pytest.mark.browser

WAIT_MS = 10_000
FILE_NAME = "<svg onload=window.__xss=3>.py"
SOURCE_LINE = "</script><script>window.__xss=2</script>"
COMMENT_TAG = "<img src=x onerror=window.__xss=7>"
THREAD_NAME = '"><img src=x onerror="window.__xss=1"><b>'
ARGV_TAG = "<img src=x onerror=window.__xss=4>"
CHILD_CODE = "import sys; sys.stdin.read()"

HOSTILE_MODULE = '''\
"""The hot module; its file name is an injection attempt too."""
import time


def churn(n):
    s = "SOURCE_LINE"  # COMMENT_TAG
    total = 0
    for i in range(n):
        total = (total + i * len(s)) % 1_000_003
    return total


def wait(done):
    while not done.wait(0.1):
        pass
'''.replace("SOURCE_LINE", SOURCE_LINE).replace("COMMENT_TAG", COMMENT_TAG)

PROGRAM = '''\
"""Loads the hostile module, starts the hostile thread and subprocess, churns.

LIVE: under stethoscope.trace(port=0), until the test creates "stop" (or 90 s);
otherwise (recorded under `stethoscope run --record`): for 2 s. Both wait first
until the subprocess has reported to the monitor; LIVE then prints its pid as a
JSON line.
"""
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STOP = os.path.join(HERE, "stop")
LIVE = sys.argv[1:] == ["live"]


def load():
    spec = importlib.util.spec_from_file_location("hostile", os.path.join(HERE, FILE_NAME))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    import stethoscope

    # trace() prints "stethoscope: serving URL" on stderr
    mon = stethoscope.trace(port=0) if LIVE else stethoscope.current()
    hostile = load()
    done = threading.Event()
    threading.Thread(target=hostile.wait, args=(done,), name=THREAD_NAME, daemon=True).start()
    child = subprocess.Popen([sys.executable, "-c", CHILD_CODE, ARGV_TAG], stdin=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        hostile.churn(20_000)
        if any(p.pid == child.pid and p.last_report for p in mon.snapshot("all").processes):
            break
    if LIVE:
        print(json.dumps({"child": child.pid, "main": os.getpid()}), flush=True)
    deadline = time.monotonic() + (90 if LIVE else 2)
    while not os.path.exists(STOP) and time.monotonic() < deadline:
        hostile.churn(20_000)
    done.set()
    child.stdin.close()
    child.wait(10)
    if LIVE:
        stethoscope.stop()


main()
'''
for _name, _value in [("FILE_NAME", FILE_NAME), ("THREAD_NAME", THREAD_NAME),
                      ("ARGV_TAG", ARGV_TAG), ("CHILD_CODE", CHILD_CODE)]:
    PROGRAM = PROGRAM.replace(_name, repr(_value))

# Installed before the page's own script in every document of the tab.
LISTEN = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || '')
                                + ' ' + (e.sample || ''));
});
"""

# What a payload parsed as HTML would have left in the DOM.
INJECTED = """() => {
    const found = [];
    for (const e of document.querySelectorAll('*')) {
        for (const a of e.attributes) {
            if (a.name.toLowerCase().startsWith('on')) found.push(e.tagName + '[' + a.name + ']');
        }
    }
    document.querySelectorAll('img, svg[onload], iframe, object, embed, base, form')
        .forEach((e) => found.push('element ' + e.tagName));
    const scripts = Array.from(document.scripts, (s) => s.getAttribute('src') || 'inline');
    if (JSON.stringify(scripts) !== JSON.stringify(['/static/js/main.js'])) {
        found.push('scripts ' + JSON.stringify(scripts));
    }
    return found;
}"""


def write_program(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / FILE_NAME).write_text(HOSTILE_MODULE)
    script = directory / "hostile_program.py"
    script.write_text(PROGRAM)
    return script


# ---------------------------------------------------------------- programs


@dataclass
class Live:
    child: Child
    pids: dict[str, int]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp("hostile-live")
    script = write_program(directory)
    spawned = _spawn([sys.executable, str(script), "live"], directory, script)
    child = next(spawned)
    try:
        yield Live(child, {k: int(v) for k, v in child.printed("child", timeout=30).items()})
    finally:
        child.stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=15)
        spawned.close()


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    """The program recorded by ``stethoscope run --record``, served by ``stethoscope view``."""
    directory = tmp_path_factory.mktemp("hostile-replay")
    script = write_program(directory)
    rec = directory / "hostile.stetho"
    done = subprocess.run([sys.executable, "-m", "stethoscope", "run", "--record", str(rec),
                           "--quiet", "--port", "0", str(script)], cwd=directory, env=_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    yield from _spawn([sys.executable, "-m", "stethoscope", "view", str(rec), "--port", "0"],
                      directory, rec)


# ---------------------------------------------------------------- the browser




@dataclass
class Tab:
    page: Page
    errors: list[str]

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__cspViolations || ['listener missing']"))

    def assert_clean(self) -> None:
        """No CSP violation heard, no console error, no script error."""
        assert self.violations() == []
        assert self.errors == [], self.errors


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.add_init_script(LISTEN)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" else None)
    try:
        yield Tab(page, errors)
    finally:
        context.close()


def open_page(tab: Tab, url: str, state: str) -> None:
    """Open the page; check its CSP from the answer; wait for the first picture."""
    response = tab.page.goto(url)
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"], csp
    assert directives["default-src"] == ["'none'"], csp
    assert directives["frame-ancestors"] == ["'none'"], csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
    assert "'strict-dynamic'" not in csp and "'unsafe-hashes'" not in csp, csp
    tab.page.wait_for_function(
        "(s) => document.body.dataset.state === s || document.body.dataset.replay === '1'",
        arg=state, timeout=WAIT_MS)
    assert tab.page.evaluate("Array.isArray(window.__cspViolations)"), "init script missing"


def show_hostile_file(page: Page) -> None:
    """Pick the hostile file in the file list; wait until its source is shown."""
    entry = page.locator("#files .file", has_text="svg onload")
    entry.first.wait_for(timeout=WAIT_MS)
    entry.first.click()
    page.wait_for_function(
        "(name) => document.getElementById('src-name').textContent === name"
        " && !!document.querySelector('#source .line')", arg=FILE_NAME, timeout=WAIT_MS)


def assert_visible_text(page: Page, where: str, text: str) -> None:
    found = page.locator(where).get_by_text(text, exact=False)
    found.first.wait_for(state="visible", timeout=WAIT_MS)
    assert text in (found.first.text_content() or ""), (where, text)


def wait_title(page: Page) -> None:
    """The tab's title names the file shown (from the next picture on)."""
    page.wait_for_function("(n) => document.title.includes(n)", arg=FILE_NAME, timeout=WAIT_MS)


def assert_inert(page: Page) -> None:
    page.wait_for_timeout(600)  # a few live re-renders (4 a second) in between
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate(INJECTED) == []


def assert_all_as_text(page: Page, threads: bool = True) -> None:
    """Every payload of the combined picture, where the page shows it, as text."""
    show_hostile_file(page)
    assert_visible_text(page, "#files", FILE_NAME)
    assert page.locator("#src-name").inner_text() == FILE_NAME
    assert_visible_text(page, "#source", SOURCE_LINE)
    assert_visible_text(page, "#source", COMMENT_TAG)
    lines = page.eval_on_selector_all("#source .line", "rs => rs.map(r => r.textContent)")
    assert any(SOURCE_LINE in line and COMMENT_TAG in line for line in lines), lines[:10]
    if threads:
        name = page.locator("#threads .t-name", has_text="onerror")
        name.first.wait_for(timeout=WAIT_MS)
        assert name.first.inner_text() == THREAD_NAME
        assert name.first.is_visible()
    cmd = page.locator("#procs .proc .p-cmd", has_text="onerror=window.__xss=4")
    cmd.first.wait_for(timeout=WAIT_MS)
    assert ARGV_TAG in cmd.first.inner_text() and cmd.first.is_visible()
    assert_inert(page)


# ---------------------------------------------------------------- tests


def test_live_page_shows_hostile_file_name_source_thread_and_argv_as_text(
        live: Live, tab: Tab) -> None:
    page = tab.page
    open_page(tab, live.child.url, "live")
    assert_all_as_text(page)
    wait_title(page)
    # The thread's stack names the hostile file: still text in the card.
    card = page.locator("#threads .thread", has=page.locator(".t-name", has_text="onerror"))
    card.first.click()
    assert_visible_text(page, "#threads", FILE_NAME)
    assert_inert(page)
    tab.assert_clean()


def test_process_views_show_them_as_text_too(live: Live, tab: Tab) -> None:
    page = tab.page
    open_page(tab, live.child.url, "live")
    child, main = live.pids["child"], live.pids["main"]
    # The subprocess on its own: its argv heads the page.
    page.locator(f'#procs .proc[data-pid="{child}"]').click()
    page.wait_for_function("(pid) => document.body.dataset.view === pid", arg=str(child),
                           timeout=WAIT_MS)
    page.wait_for_function("(tag) => document.getElementById('argv').textContent.includes(tag)",
                           arg=ARGV_TAG, timeout=WAIT_MS)
    assert page.locator("#argv").is_visible()
    assert_inert(page)
    # The main process on its own: the file, its source, the thread.
    page.locator(f'#procs .proc[data-pid="{main}"]').click()
    page.wait_for_function("(pid) => document.body.dataset.view === pid", arg=str(main),
                           timeout=WAIT_MS)
    assert_all_as_text(page)
    wait_title(page)
    tab.assert_clean()


def _index_with_everything(url: str) -> int:
    """A recorded snapshot that holds the hostile file, thread and subprocess."""
    count = int(get_json(url, "/api/recording")["count"])
    for i in [count // 2, *range(count)]:
        snap = get_json(url, f"/api/snapshot?at={i}")
        if any(f["name"] == FILE_NAME for f in snap["files"]) \
                and any(t["name"] == THREAD_NAME and t["alive"] for t in snap["threads"]) \
                and any(ARGV_TAG in p["argv"] for p in snap["processes"]):
            return i
    raise AssertionError("no recorded snapshot holds the hostile file, thread and subprocess")


def test_replay_of_a_recording_shows_them_as_text(replay: Child, tab: Tab) -> None:
    page = tab.page
    index = _index_with_everything(replay.url)
    open_page(tab, replay.url, "replay")
    page.wait_for_function("() => document.getElementById('timeline').dataset.index === '0'",
                           timeout=WAIT_MS)
    page.evaluate("""(i) => {
        const r = document.getElementById('tl-range');
        r.value = String(i);
        r.dispatchEvent(new Event('input', {bubbles: true}));
    }""", index)
    page.wait_for_function("(i) => document.getElementById('timeline').dataset.index === String(i)",
                           arg=index, timeout=WAIT_MS)
    assert_all_as_text(page)
    # Played to the end (the program gone), nothing changes that.
    page.focus("#tl-range")
    page.keyboard.press("End")
    page.wait_for_function("() => document.body.dataset.state === 'stopped'", timeout=WAIT_MS)
    wait_title(page)
    assert_inert(page)
    assert_visible_text(page, "#files", FILE_NAME)
    tab.assert_clean()


def test_the_csp_blocks_inline_script_and_the_listener_hears_it(live: Live, tab: Tab) -> None:
    """The control: what the tests above would see if something slipped through."""
    page = tab.page
    open_page(tab, live.child.url, "live")
    assert tab.violations() == []
    page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__ctl = 1';
        document.body.appendChild(s);
        const d = document.createElement('div');
        d.innerHTML = '<img src=x onerror="window.__ctl2 = 1">';
        document.body.appendChild(d);
    }""")
    with contextlib.suppress(PlaywrightTimeoutError):  # the assertions say what was heard
        page.wait_for_function("() => (window.__cspViolations || []).length >= 2", timeout=5000)
    heard = tab.violations()
    # the inline script element and the inline event handler, each blocked and heard
    assert len([v for v in heard if v.startswith("script-src") and "inline" in v]) >= 2, heard
    assert page.evaluate("typeof window.__ctl") == "undefined"
    assert page.evaluate("typeof window.__ctl2") == "undefined"
    assert page.evaluate(INJECTED) != []  # the check sees such an element
    assert any("Content Security Policy" in e for e in tab.errors), tab.errors


# ---------------------------------------------------------------- another port of 127.0.0.1
#
# Browsers do not keep cookies apart by port, and SameSite counts every port of
# 127.0.0.1 as one site: a token cookie went to any listener on the loopback
# address, rode on any loopback page's form posts, and a second monitor's cookie
# replaced the first's. The page now keeps its token in sessionStorage (per tab and
# origin) and sends it in a header; the server refuses a request a browser sent
# for another origin (Origin) or another port of the same site (Sec-Fetch-Site).

FOREIGN_PAGE = """<!doctype html><html><body><p id="here">another port</p>
<form id="form" method="POST" enctype="text/plain" action="ACTION">
<input name="x" value="y"></form></body></html>"""


@dataclass
class Foreign:
    """Plain http.servers on two more loopback ports: one serves a page, the other
    listens as another local user's listener could; both note every request's headers."""
    port: int = 0
    spy_port: int = 0
    seen: list[dict[str, str]] = field(default_factory=list)
    action: str = ""


@pytest.fixture
def foreign() -> Iterator[Foreign]:
    site = Foreign()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.seen.append({k.lower(): v for k, v in self.headers.items()})
            body = FOREIGN_PAGE.replace("ACTION", site.action).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page) for _ in range(2)]
    site.port, site.spy_port = (server.server_address[1] for server in servers)
    threads = [threading.Thread(target=server.serve_forever, name="foreign-site", daemon=True)
               for server in servers]
    for thread in threads:
        thread.start()
    try:
        yield site
    finally:
        for server, thread in zip(servers, threads, strict=True):
            server.shutdown()
            server.server_close()
            thread.join(30)


@pytest.fixture(scope="module")
def monitors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Child, Child]]:
    """Two monitored programs, each with its own server (two loopback ports)."""
    first = _run_child(tmp_path_factory.mktemp("mon-a"))
    second = _run_child(tmp_path_factory.mktemp("mon-b"))
    a, b = next(first), next(second)
    try:
        yield a, b
    finally:
        for child, spawned in [(a, first), (b, second)]:
            child.stop()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=15)
            spawned.close()


def _origin(child: Child) -> str:
    return "http://" + urllib.parse.urlsplit(child.url).netloc


def _token(child: Child) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(child.url).query)["token"][0]


def _wait_live(page: Page) -> None:
    page.wait_for_function("() => document.body.dataset.state === 'live'", timeout=WAIT_MS)


def test_a_page_on_another_loopback_port_gets_no_cookie_no_data_and_no_mode_switch(
        monitors: tuple[Child, Child], foreign: Foreign, browser: Browser) -> None:
    mon = monitors[0]
    origin, token = _origin(mon), _token(mon)
    mode = mon.snapshot()["requested_mode"]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(mon.url)  # the monitor's page first: in the old design it set the cookie
        _wait_live(page)
        assert "token=" not in page.url
        assert context.cookies() == []
        other = context.new_page()
        other.goto(f"http://127.0.0.1:{foreign.port}/")
        other.locator("#here").wait_for()
        # A fetch of the monitor's data, with whatever credentials the browser has: it
        # fails (no token; and the answer is not the other origin's to read anyway).
        fetch = """async ([url, mode]) => {
            try { const r = await fetch(url, {credentials: 'include', mode: mode});
                  return r.type === 'opaque' ? 'opaque' : 'read ' + r.status; }
            catch (e) { return 'failed'; }
        }"""
        assert other.evaluate(fetch, [f"{origin}/api/snapshot", "cors"]) == "failed"
        # With the token itself (a page that learned it): the server refuses it for
        # where it comes from (seen below the page, which gets an opaque answer).
        for url in [f"{origin}/api/snapshot", f"{origin}/api/snapshot?token={token}"]:
            with other.expect_response(lambda r: "/api/snapshot" in r.url) as seen:
                assert other.evaluate(fetch, [url, "no-cors"]) == "opaque"
            assert seen.value.status == 403, url
        # What the browser sends to a listener on another loopback port, as it sent
        # to the monitor: no cookie, and the page's origin and site relation.
        spy = f"http://127.0.0.1:{foreign.spy_port}/spy"
        assert other.evaluate(fetch, [spy, "cors"]) == "failed"  # no CORS answer there
        assert other.evaluate(fetch, [spy, "no-cors"]) == "opaque"
        cors, no_cors = foreign.seen[-2:]
        assert cors.get("origin") == f"http://127.0.0.1:{foreign.port}", cors
        assert cors.get("sec-fetch-site") == no_cors.get("sec-fetch-site") == "same-site"
        # ... and that is why the monitor refused: the same request without them is served.
        with urllib.request.urlopen(f"{origin}/api/snapshot?token={token}", timeout=10) as r:
            assert r.status == 200
        for headers, why in [({"Origin": cors["origin"]}, b"(Origin)"),
                             ({"Sec-Fetch-Site": "same-site"}, b"(Sec-Fetch-Site)")]:
            request = urllib.request.Request(f"{origin}/api/snapshot?token={token}",
                                             headers=headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 403 and why in refused.value.read()
        # A text/plain form post to the mode switch, with and without the token.
        for action in [f"{origin}/api/mode?mode=trace",
                       f"{origin}/api/mode?mode=trace&token={token}"]:
            foreign.action = action
            other.goto(f"http://127.0.0.1:{foreign.port}/")
            with other.expect_navigation() as landed:
                other.evaluate("() => document.getElementById('form').submit()")
            assert landed.value is not None and landed.value.status == 403
            assert other.locator("body").inner_text().startswith("403 "), action
            assert mon.snapshot()["requested_mode"] == mode
        # The monitor's own page still works, and no cookie ever reached the other port.
        _wait_live(page)
        assert context.cookies() == []
        assert foreign.seen and all("cookie" not in h for h in foreign.seen), foreign.seen
    finally:
        context.close()


def test_two_monitors_in_one_browser_both_keep_working(
        monitors: tuple[Child, Child], browser: Browser) -> None:
    context = browser.new_context()
    try:
        pages = []
        for mon in monitors:
            page = context.new_page()
            page.goto(mon.url)
            _wait_live(page)
            pages.append(page)
        for page, mon in zip(pages, monitors, strict=True):  # each reloads into its own monitor
            assert "token=" not in page.url
            with page.expect_response(lambda r: "/api/snapshot" in r.url) as seen:
                page.reload()
            assert seen.value.status == 200 and seen.value.json()["pid"] == mon.proc.pid
            _wait_live(page)
        assert context.cookies() == []
        # and each tab's token is its own monitor's, kept per origin
        tokens = [page.evaluate("() => sessionStorage.getItem('stethoscope-token')")
                  for page in pages]
        assert tokens == [_token(mon) for mon in monitors]
    finally:
        context.close()
