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

A RARE child runs in the mode its command line names (lines, auto, sample): a busy
loop, and a one-line function that runs once a second, which sampling nearly always
misses and lines mode never does. The mode switch of the page is driven on it.

A third child starts child processes (multiprocessing with "spawn" and "fork", and
subprocesses): the process panel, the view of one process, the combined view's thread
labels, exit states, and a command line that is an HTML-injection attempt. A fourth
one pushes the process shown out of the monitor's list, so the page falls back to
all processes.

Every run also writes docs/screenshot.png, docs/screenshot-processes.png,
/tmp/banner.png (the hang banner), and on 3.12+ /tmp/page-lines.png and
/tmp/page-auto.png (lines mode, and auto: sampling with lines mode).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from playwright.sync_api import Browser, Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from conftest import wait_for

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
PROCS_SHOT = ROOT / "docs" / "screenshot-processes.png"
BANNER_SHOT = Path("/tmp/banner.png")
LINES_SHOT = Path("/tmp/page-lines.png")
AUTO_SHOT = Path("/tmp/page-auto.png")
HAS_LINES_MODE = sys.version_info >= (3, 12)  # sys.monitoring
XSS_NAME = '<img src=x onerror="window.__xss=1">'
XSS_TAG = "<img src=x onerror=window.__xss=1>"
XSS_CMD = "import sys; sys.stdin.read()  # " + XSS_TAG  # a subprocess's -c argument
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


RARE = '''\
"""A busy loop, and a one-line function that runs once a second: far too short
for the sampler to catch, but lines mode sees every line that runs. The mode to
start in is the first argument.
"""
import os
import sys
import time

import stethoscope

HERE = os.path.dirname(os.path.abspath(__file__))
STOP = os.path.join(HERE, "stop")


def rare(n):
    return n + 1  # RARE-LINE


def spin(n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003  # SPIN-LINE
    return total


def main():
    mon = stethoscope.trace(port=0, mode=sys.argv[1])
    print(mon.url, flush=True)
    count, last = 0, 0.0
    deadline = time.monotonic() + 90  # a safety net: the tests kill it anyway
    while not os.path.exists(STOP) and time.monotonic() < deadline:
        spin(5_000)
        if time.monotonic() - last >= 1:
            last = time.monotonic()
            count = rare(count)
    stethoscope.stop()


if __name__ == "__main__":
    main()
'''


PROCS = '''\
"""A program with child processes, for the process panel.

Two children spin in CHILD-HOT until the test creates "stop" (or their parent is
gone): one started by multiprocessing's "spawn", one by "fork". A fork child exits at
once with code 3; another is terminated (SIGTERM); another ("middle") starts a
grandchild. A subprocess whose command line is an HTML-injection attempt waits on its
stdin; another is killed (SIGKILL) and not reaped until the end, so its exit status
stays readable. The main process has a hot
line of its own, MAIN-HOT. Once the monitor lists every child, the program prints
their pids as one JSON line on stdout.
"""
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import stethoscope

HERE = os.path.dirname(os.path.abspath(__file__))
STOP = os.path.join(HERE, "stop")
XSS_CMD = XSS_CMD_VALUE


def going(parent):
    return not os.path.exists(STOP) and os.getppid() == parent


def spin(parent):
    total = 0
    while going(parent):
        for i in range(200_000):  # ~20 ms: long enough to be seen mid-loop
            total = (total + i * i) % 1_000_003  # CHILD-HOT
        time.sleep(0.005)
    return total


def nap(parent):
    while going(parent):
        time.sleep(0.05)


def leave():
    sys.exit(3)


def family(parent):
    kid = mp.get_context("fork").Process(target=nap, args=(os.getpid(),), name="grandchild")
    kid.start()
    nap(parent)
    kid.join(10)


def tend(n):
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) & 0xFFFFFF  # MAIN-HOT
    return acc


def main():
    mon = stethoscope.trace(port=0)  # prints "stethoscope: serving URL" on stderr
    me = os.getpid()
    spawn = mp.get_context("spawn").Process(target=spin, args=(me,), name="spinner-spawn")
    fork = mp.get_context("fork").Process(target=spin, args=(me,), name="spinner-fork")
    quitter = mp.get_context("fork").Process(target=leave, name="quitter")
    sleeper = mp.get_context("fork").Process(target=nap, args=(me,), name="sleeper")
    middle = mp.get_context("fork").Process(target=family, args=(me,), name="middle")
    for p in (spawn, fork, quitter, sleeper, middle):
        p.start()
    html = subprocess.Popen([sys.executable, "-c", XSS_CMD], stdin=subprocess.PIPE)
    victim = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE)
    pids = {"main": me, "spawn": spawn.pid, "fork": fork.pid, "quitter": quitter.pid,
            "sleeper": sleeper.pid, "middle": middle.pid, "html": html.pid, "victim": victim.pid}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        listed = mon.snapshot("all").processes
        if set(pids.values()) <= {p.pid for p in listed} and \
                any(p.ppid == middle.pid for p in listed):  # the grandchild too
            break
        time.sleep(0.05)
    sleeper.terminate()
    os.kill(victim.pid, signal.SIGKILL)
    quitter.join()
    sleeper.join()
    print(json.dumps(pids), flush=True)
    deadline = time.monotonic() + 120  # a safety net: the tests stop it sooner
    while not os.path.exists(STOP) and time.monotonic() < deadline:
        tend(30_000)
        time.sleep(0.01)
    for p in (spawn, fork, middle):
        p.join(10)
    html.stdin.close()
    html.wait(10)
    victim.wait(10)
    stethoscope.stop()


if __name__ == "__main__":
    main()
'''.replace("XSS_CMD_VALUE", repr(XSS_CMD))

DROP = '''\
"""A child to look at, then enough short children to push it out of the list.

The first child waits until the test creates "stop-first". Once the test creates
"go", short children run one after another until the monitor no longer lists the
first one (it keeps the newest 100 ended children).
"""
import faulthandler
import json
import multiprocessing as mp
import os
import signal
import time

import stethoscope

HERE = os.path.dirname(os.path.abspath(__file__))


def until(name, parent):
    """Wait for the file `name` (or "stop", the end of the test) or the parent's end."""
    deadline = time.monotonic() + 120  # a safety net: the tests go on sooner
    names = [os.path.join(HERE, n) for n in (name, "stop")]
    while not any(map(os.path.exists, names)) and time.monotonic() < deadline:
        if os.getppid() != parent:
            return
        time.sleep(0.05)


def first(parent):
    until("stop-first", parent)  # FIRST-WAIT


def nothing():
    pass


def listed(mon, pid):
    return any(p.pid == pid for p in mon.snapshot("all").processes)


def main():
    # SIGUSR1 prints every thread's stack, here and in the forked children (they
    # inherit it): a child that never ends, or this loop stuck, can be diagnosed.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    mon = stethoscope.trace(port=0)
    ctx = mp.get_context("fork")
    a = ctx.Process(target=first, args=(os.getpid(),))
    a.start()
    deadline = time.monotonic() + 30
    while not listed(mon, a.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps({"main": os.getpid(), "first": a.pid}), flush=True)
    until("go", os.getppid())
    a.join()
    n, hung = 0, None
    # A child whose only report is lost is never listed: count on the list, not on 100.
    while listed(mon, a.pid) and n < 400:
        p = ctx.Process(target=nothing)
        p.start()
        p.join(30)
        if p.exitcode is None:  # it should take milliseconds: show where it is stuck
            hung = p.pid
            os.kill(p.pid, signal.SIGUSR1)
            time.sleep(1)
            p.kill()
            p.join(5)
            break
        n += 1
    print(json.dumps({"children": n, "dropped": not listed(mon, a.pid), "hung": hung}),
          flush=True)
    until("stop", os.getppid())
    stethoscope.stop()


if __name__ == "__main__":
    main()
'''


# ---------------------------------------------------------------- the monitored child


URL = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> None:
    """Wait until `predicate()` holds, for at most `timeout` s, and go on either way:
    the assertions after the wait say what is missing, better than a timeout would."""
    with contextlib.suppress(AssertionError):
        wait_for(predicate, timeout=timeout, interval=interval)


@dataclass
class Child:
    proc: subprocess.Popen[str]
    url: str
    work: Path
    stderr: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)

    def line_of(self, marker: str) -> int:
        lines = self.work.read_text().splitlines()
        return next(i for i, text in enumerate(lines, 1) if marker in text)

    def stop(self) -> None:
        (self.work.parent / "stop").touch()

    def snapshot(self, pid: int | str | None = None) -> dict[str, Any]:
        """The monitor's current snapshot, read past the page (token in the query);
        `pid`: one process's view instead of the default (all processes)."""
        u = urllib.parse.urlsplit(self.url)
        view = "" if pid is None else f"&pid={pid}"
        with NO_PROXY.open(f"http://{u.netloc}/api/snapshot?{u.query}{view}", timeout=5) as r:
            data: dict[str, Any] = json.load(r)
        return data

    def printed(self, key: str, timeout: float = 60) -> dict[str, Any]:
        """The first JSON object with `key` that the child printed on stdout."""
        def first() -> dict[str, Any] | None:
            for line in list(self.stdout):
                if line.startswith("{") and key in (found := json.loads(line)):
                    return dict(found)
            return None

        if timeout > 0:
            wait_until(lambda: first() is not None or self.proc.poll() is not None, timeout)
            if (found := first()) is not None:
                return found
        raise AssertionError(f"the child printed no {key!r} line; stdout: {''.join(self.stdout)!r}"
                             f" stderr: {''.join(self.stderr)!r}")

    def thread(self, name: str, until: Callable[[dict[str, Any]], bool] = lambda snap: True,
               ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(snapshot, the one thread called `name` in it), from the first snapshot in
        the next 5 s for which `until` holds (a built snapshot is reused for 0.1 s)."""
        latest: list[dict[str, Any]] = []

        def holds() -> bool:
            latest[:] = [self.snapshot()]
            return until(latest[0])

        wait_until(holds, 5)
        snap = latest[0]
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
        # give up as soon as the child is gone
        wait_until(lambda: URL.search("".join(out + err)) or proc.poll() is not None, 20, 0.02)
        if proc.poll() is not None:
            for pump in pumps:
                pump.join(timeout=2)
        m = URL.search("".join(out + err))
        url = m.group(0) if m else ""
        assert url, f"the child printed no URL; stdout: {''.join(out)!r} stderr: {''.join(err)!r}"
        yield Child(proc, url, work, err, out)
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


def _run_rare(directory: Path, mode: str) -> Iterator[Child]:
    work = directory / "rare.py"
    work.write_text(RARE)
    yield from _spawn([sys.executable, str(work), mode], directory, work)


@pytest.fixture
def lines_child(tmp_path: Path) -> Iterator[Child]:
    yield from _run_rare(tmp_path, "lines")


@pytest.fixture
def auto_child(tmp_path: Path) -> Iterator[Child]:
    yield from _run_rare(tmp_path, "auto")


@pytest.fixture
def sample_child(tmp_path: Path) -> Iterator[Child]:
    yield from _run_rare(tmp_path, "sample")


@pytest.fixture
def hang_child(tmp_path: Path) -> Iterator[Child]:
    """HANG under the command line, which prints `stethoscope: serving URL` on stderr."""
    work = tmp_path / "hang.py"
    work.write_text(HANG)
    yield from _spawn([sys.executable, "-m", "stethoscope", "run", "--port", "0",
                       "--hang-report", "1", str(work)], tmp_path, work)


@dataclass
class Family:
    """A monitored program with children, and the pids it printed."""
    child: Child
    pids: dict[str, int]

    def line_of(self, marker: str) -> int:
        return self.child.line_of(marker)

    def wait(self, key: str, timeout: float) -> dict[str, Any]:
        """What the program prints with `key`; if it does not come in time, its
        threads' stacks (it registers faulthandler on SIGUSR1) join the failure."""
        try:
            return self.child.printed(key, timeout=timeout)
        except AssertionError:
            if self.child.proc.poll() is None:
                self.child.proc.send_signal(signal.SIGUSR1)
                # faulthandler writes a header of this kind for each thread
                wait_until(lambda: "most recent call first" in "".join(self.child.stderr), 10)
            return self.child.printed(key, timeout=0)


def _run_family(directory: Path, name: str, program: str, key: str) -> Iterator[Family]:
    """Run `program` (URL on stderr) until it prints a JSON line with `key`; at the end
    create "stop" and give it time to end its children before it is killed."""
    directory.mkdir(parents=True, exist_ok=True)
    work = directory / name
    work.write_text(program)
    spawned = _spawn([sys.executable, str(work)], directory, work)
    child = next(spawned)
    try:
        yield Family(child, {k: int(v) for k, v in child.printed(key).items()})
    finally:
        child.stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=20)
        spawned.close()  # kills it if it is still there


@pytest.fixture(scope="module")
def procs_child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Family]:
    """PROCS, shared by the tests that only watch it."""
    yield from _run_family(tmp_path_factory.mktemp("procs"), "procs.py", PROCS, "main")


@pytest.fixture
def drop_child(tmp_path: Path) -> Iterator[Family]:
    yield from _run_family(tmp_path, "drop.py", DROP, "first")


# ---------------------------------------------------------------- the browser




@dataclass
class Tab:
    page: Page
    errors: list[str]

    def assert_no_errors(self) -> None:
        assert not self.errors, f"the page reported errors: {self.errors}"


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A fresh page (own storage) at 1400x900 that records script errors and CSP
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


def proc_entry(page: Page, pid: int | str) -> Locator:
    """The process panel's entry (a button) for `pid`, or "all"."""
    return page.locator(f'#procs .proc[data-pid="{pid}"]')


def wait_view(page: Page, pid: int | str) -> None:
    """Wait until the page shows the data of `pid` ("all": every process) and says so."""
    page.wait_for_function(
        """(pid) => document.body.dataset.view === pid
            && !!document.querySelector(`#procs .proc.selected[data-pid="${pid}"]`)""",
        arg=str(pid), timeout=WAIT_MS)


def hot_now(page: Page, line: int) -> bool:
    return "hot" in (page.get_attribute(row(line), "class") or "").split()


def card_pids(page: Page) -> list[str]:
    return page.eval_on_selector_all("#threads .thread", "cs => cs.map(c => c.dataset.pid)")


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
    page.wait_for_function(
        "([sel, before]) => Number(document.querySelector(sel).dataset.value) > before",
        arg=[row(hot) + " .bar-total", max(first, titled)], timeout=WAIT_MS)
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
    # The token left the address bar; the tab's sessionStorage still lets a reload in (token.js).
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
    wait_until(lambda: "keeps the process alive" in "".join(hang_child.stderr), 10, 0.1)
    report = "".join(hang_child.stderr)
    start = hang_child.line_of("# STUBBORN-START")
    # Still live: the process is held, not ended; the stream still flows (on CPython
    # 3.12.0-3.12.2 too, which start no thread once __main__ has finished: the
    # server's threads were all started with it).
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
    assert page.evaluate("document.body.dataset.state") == "live"
    assert hang_child.proc.poll() is None
    page.screenshot(path=str(BANNER_SHOT))
    tab.assert_no_errors()


# ---------------------------------------------------------------- child processes


def test_single_process_program_has_no_process_panel(live_child: Child, tab: Tab) -> None:
    page = tab.page
    open_live(page, live_child)
    page.locator("#threads .t-name", has_text="worker-blue").wait_for(timeout=WAIT_MS)
    snap = live_child.snapshot()
    assert [p["pid"] for p in snap["processes"]] == [snap["pid"]], snap["processes"]
    assert page.is_hidden("#procs-panel")
    assert page.is_hidden("#view-kv")
    assert page.locator("#procs .proc").count() == 0
    assert page.locator("#threads .t-proc:visible").count() == 0  # no process labels
    assert page.evaluate("document.body.dataset.view") == "all"
    assert "#" not in page.url
    tab.assert_no_errors()


def test_process_panel_lists_the_children_as_a_tree(procs_child: Family, tab: Tab) -> None:
    page, pids = tab.page, procs_child.pids
    open_live(page, procs_child.child)
    page.locator("#procs-panel").wait_for(state="visible", timeout=WAIT_MS)
    for pid in pids.values():
        proc_entry(page, pid).wait_for(timeout=WAIT_MS)
    # "All processes" first and selected; then the main process; its children under it.
    entries = page.eval_on_selector_all("#procs .proc", "bs => bs.map(b => b.dataset.pid)")
    assert entries[:2] == ["all", str(pids["main"])], entries
    everything = proc_entry(page, "all")
    assert everything.locator(".p-name").inner_text() == "All processes (combined)"
    assert "selected" in (everything.get_attribute("class") or "").split()
    assert everything.get_attribute("aria-current") == "true"
    assert page.evaluate("document.body.dataset.view") == "all"
    assert page.text_content("#view") == "all processes"
    # Every process the monitor lists has an entry, and only those (the spawn context's
    # resource_tracker may show up a moment after the rest).
    seen: dict[str, Any] = {}

    def panel_lists_them() -> bool:
        seen["snap"] = procs_child.child.snapshot()
        seen["listed"] = {p["pid"]: p for p in seen["snap"]["processes"]}
        seen["entries"] = page.eval_on_selector_all("#procs .proc",
                                                    "bs => bs.map(b => b.dataset.pid)")
        return set(seen["entries"][1:]) == {str(pid) for pid in seen["listed"]}

    wait_until(panel_lists_them, 10, 0.2)
    snap, listed, entries = seen["snap"], seen["listed"], seen["entries"]
    assert snap["view"] == "combined"
    assert set(pids.values()) <= set(listed), (pids, listed)
    assert set(entries[1:]) == {str(pid) for pid in listed}, (entries, listed)
    main = proc_entry(page, pids["main"])
    assert (main.get_attribute("data-depth"), main.locator(".p-name").inner_text()) == ("0", "main")
    x_main = main.locator(".p-name").bounding_box()
    for key in ("spawn", "fork", "quitter", "sleeper", "middle", "html", "victim"):
        entry = proc_entry(page, pids[key])
        assert listed[pids[key]]["ppid"] == pids["main"], listed[pids[key]]
        assert entry.get_attribute("data-depth") == "1", key
        assert entry.locator(".p-pid").inner_text() == f"pid {pids[key]}"
        x = entry.locator(".p-name").bounding_box()
        assert x is not None and x_main is not None and x["x"] > x_main["x"] + 8, key  # indented
        argv = listed[pids[key]]["argv"]
        cmd = entry.locator(".p-cmd")
        assert cmd.inner_text().startswith(Path(argv[0]).name + " "), (key, cmd.inner_text())
        assert cmd.get_attribute("title") == shlex.join(argv), key  # the whole command line
    # A grandchild goes under its parent, one level deeper.
    grand = [p for p in listed.values() if p["ppid"] == pids["middle"]]
    assert [p["name"] for p in grand] == ["grandchild"], grand
    at = entries.index(str(pids["middle"]))
    assert entries[at + 1] == str(grand[0]["pid"]), entries
    entry = proc_entry(page, grand[0]["pid"])
    assert entry.get_attribute("data-depth") == "2"
    x_mid = proc_entry(page, pids["middle"]).locator(".p-name").bounding_box()
    x_grand = entry.locator(".p-name").bounding_box()
    assert x_mid is not None and x_grand is not None and x_grand["x"] > x_mid["x"] + 8

    # Names, start methods, states: what the monitor says, as the page says it.
    for key, name, method in [("spawn", "spinner-spawn", "spawn"), ("fork", "spinner-fork", "fork"),
                              ("quitter", "quitter", "fork"), ("sleeper", "sleeper", "fork"),
                              ("middle", "middle", "fork"), ("html", "subprocess", ""),
                              ("victim", "subprocess", "")]:
        info = listed[pids[key]]
        assert (info["name"] or info["method"], info["method"] if info["name"] else "") == \
            (name, method), info
        entry = proc_entry(page, pids[key])
        assert entry.locator(".p-name").inner_text() == name
        assert entry.locator(".p-method").text_content() == method
    states = {"spawn": "running", "fork": "running", "html": "running", "quitter": "exited 3",
              "sleeper": "terminated (SIGTERM)", "victim": "killed (SIGKILL)"}
    for key, text in states.items():
        wait_texts(page, f'#procs .proc[data-pid="{pids[key]}"] .p-state', [text])
    snap = procs_child.child.snapshot()
    listed = {p["pid"]: p for p in snap["processes"]}
    assert [listed[pids["quitter"]][k] for k in ("state", "exit_code")] == ["exited", 3]
    assert [listed[pids["sleeper"]][k] for k in ("exit_code", "exit_how")] == [-15, "SIGTERM"]
    assert [listed[pids["victim"]][k] for k in ("state", "exit_code")] == ["killed", -9]
    assert "exit code -9" in (proc_entry(page, pids["victim"]).locator(".p-state")
                              .get_attribute("title") or "")
    # The spinning children use CPU, and the page shows how much.
    for key in ("spawn", "fork"):
        page.wait_for_function(
            "(sel) => /^[0-9.]+%$/.test(document.querySelector(sel).textContent)",
            arg=f'#procs .proc[data-pid="{pids[key]}"] .p-cpu', timeout=WAIT_MS)
    assert proc_entry(page, pids["quitter"]).locator(".p-cpu").text_content() == ""
    shown = page.eval_on_selector_all("#procs .proc[data-state]",
                                      "bs => bs.map(b => b.dataset.state)")
    assert page.text_content("#procs-count") == \
        f"{len(shown)} · {shown.count('running')} running", shown
    tab.assert_no_errors()


def test_selecting_a_child_shows_its_own_heat_and_threads(procs_child: Family, tab: Tab) -> None:
    page, pids = tab.page, procs_child.pids
    child_hot, main_hot = procs_child.line_of("# CHILD-HOT"), procs_child.line_of("# MAIN-HOT")
    spawn = pids["spawn"]
    open_live(page, procs_child.child)
    # All processes: both hot lines.
    wait_hot(page, child_hot)
    wait_hot(page, main_hot)

    proc_entry(page, spawn).click()
    wait_view(page, spawn)
    assert page.evaluate("location.hash") == f"#pid={spawn}"
    assert proc_entry(page, "all").get_attribute("aria-current") is None
    assert page.text_content("#view") == f"pid {spawn} · spinner-spawn"
    assert page.text_content("#pid") == str(spawn)
    # Its own heat: its hot line, not the main process's.
    page.wait_for_function(
        """([hot, cold]) => {
            const h = document.querySelector(hot), c = document.querySelector(cold);
            return !!h && !!c && h.classList.contains('hot') && !c.classList.contains('hot');
        }""", arg=[row(child_hot), row(main_hot)], timeout=WAIT_MS)
    assert page.text_content("#src-name") == "procs.py"
    own = procs_child.child.snapshot(spawn)
    assert (own["view"], own["pid"]) == ("process", spawn)
    # Its own threads, and only those: the cards are the ones the monitor lists for it.
    want = sorted(str(t["ident"]) for t in own["threads"])
    page.wait_for_function(
        """(want) => {
            const cs = Array.from(document.querySelectorAll('#threads .thread'));
            return JSON.stringify(cs.map(c => c.dataset.ident).sort()) === JSON.stringify(want);
        }""", arg=want, timeout=WAIT_MS)
    assert set(card_pids(page)) == {str(spawn)}
    main_card = page.locator("#threads .thread[data-main=true]")
    assert main_card.locator(".t-name").inner_text() == "MainThread"
    assert "spin" in main_card.locator(".frame.mon .fn").all_inner_texts()
    assert page.locator("#threads .t-proc:visible").count() == 0  # one process: no labels

    # A reload keeps the process shown (the hash), and the tab's stored token lets it in.
    page.reload()
    page.wait_for_function("() => document.body.dataset.state === 'live'", timeout=WAIT_MS)
    wait_view(page, spawn)
    assert page.evaluate("location.hash") == f"#pid={spawn}"
    wait_hot(page, child_hot)
    assert not hot_now(page, main_hot)

    # Back to all processes, by mouse; then to the main process alone, by keyboard.
    proc_entry(page, "all").click()
    wait_view(page, "all")
    assert page.evaluate("location.hash") == ""
    wait_hot(page, main_hot)
    page.focus('#procs .proc[data-pid="all"]')
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.pid") == str(pids["main"])
    page.keyboard.press("Enter")
    wait_view(page, pids["main"])
    page.wait_for_function(
        """([hot, cold]) => {
            const h = document.querySelector(hot), c = document.querySelector(cold);
            return !!h && !!c && h.classList.contains('hot') && !c.classList.contains('hot');
        }""", arg=[row(main_hot), row(child_hot)], timeout=WAIT_MS)
    page.wait_for_function(
        "(pid) => Array.from(document.querySelectorAll('#threads .thread'))"
        ".every(c => c.dataset.pid === pid)", arg=str(pids["main"]), timeout=WAIT_MS)
    assert page.text_content("#view") == f"pid {pids['main']} · main"
    tab.assert_no_errors()


def test_combined_view_labels_threads_with_their_process(procs_child: Family, tab: Tab) -> None:
    page, pids = tab.page, procs_child.pids
    open_live(page, procs_child.child)
    wait_view(page, "all")
    running = {str(pids[k]) for k in ("main", "spawn", "fork", "html")}
    page.wait_for_function(
        """(want) => {
            const got = new Set(Array.from(document.querySelectorAll('#threads .thread'),
                                           c => c.dataset.pid));
            return want.every(p => got.has(p));
        }""", arg=sorted(running), timeout=WAIT_MS)
    snap = procs_child.child.snapshot()
    assert {str(t["pid"]) for t in snap["threads"]} >= running
    # Each card names its process: "pid N · name".
    for key, name in [("spawn", "spinner-spawn"), ("fork", "spinner-fork"), ("html", "subprocess"),
                      ("main", "main")]:
        label = page.locator(f'#threads .thread[data-pid="{pids[key]}"] .t-proc').first
        assert label.is_visible()
        assert label.inner_text() == f"pid {pids[key]} · {name}"
    # Grouped by process, in the panel's order, the main process first.
    order = page.eval_on_selector_all("#procs .proc", "bs => bs.map(b => b.dataset.pid)")[1:]
    seq = card_pids(page)
    groups = [p for i, p in enumerate(seq) if i == 0 or seq[i - 1] != p]
    assert len(groups) == len(set(groups)), seq  # each process's cards together
    assert groups[0] == str(pids["main"]), seq
    assert groups == [p for p in order if p in groups], (groups, order)
    # fork copies the thread: the fork child's MainThread has the main one's ident.
    main_ident = next(t["ident"] for t in snap["threads"]
                      if t["pid"] == pids["main"] and t["main"])
    assert any(t["pid"] == pids["fork"] and t["ident"] == main_ident for t in snap["threads"])
    twins = page.locator(f'#threads .thread[data-ident="{main_ident}"]')
    pids_of_twins = {twins.nth(i).get_attribute("data-pid") for i in range(twins.count())}
    assert {str(pids["main"]), str(pids["fork"])} <= pids_of_twins
    assert f"in {len(set(seq))} processes" in (page.text_content("#threads-count") or "")
    # The threads of a process that has ended are its last report, not live ones.
    gone = page.locator(f'#threads .thread[data-pid="{pids["quitter"]}"]')
    reported = [t for t in snap["threads"] if t["pid"] == pids["quitter"]]
    assert gone.count() == len(reported), reported
    for i in range(len(reported)):
        assert "proc-gone" in (gone.nth(i).get_attribute("class") or "").split()
        assert gone.nth(i).locator(".badge-dead").inner_text() == "process exited 3"
        assert gone.nth(i).locator(".t-cpu").text_content() == ""
    tab.assert_no_errors()


def test_hostile_command_line_is_shown_as_text(procs_child: Family, tab: Tab) -> None:
    page, pids = tab.page, procs_child.pids
    open_live(page, procs_child.child)
    cmd = proc_entry(page, pids["html"]).locator(".p-cmd")
    cmd.wait_for(timeout=WAIT_MS)
    assert cmd.is_visible()
    assert XSS_TAG in cmd.inner_text()
    assert cmd.inner_text().startswith("python") and " -c " in cmd.inner_text()
    assert XSS_CMD in (cmd.get_attribute("title") or "")
    label = page.locator(f'#threads .thread[data-pid="{pids["html"]}"] .t-proc').first
    label.wait_for(timeout=WAIT_MS)
    assert XSS_CMD in (label.get_attribute("title") or "")
    page.wait_for_timeout(1000)  # several live updates re-render the panel
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    # Shown on its own too, the command line stays text (header, banner-free).
    proc_entry(page, pids["html"]).click()
    wait_view(page, pids["html"])
    page.wait_for_timeout(500)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    tab.assert_no_errors()


def test_screenshot_of_processes(procs_child: Family, tab: Tab) -> None:
    page, pids = tab.page, procs_child.pids
    open_live(page, procs_child.child)
    wait_view(page, "all")
    wait_hot(page, procs_child.line_of("# CHILD-HOT"))
    wait_hot(page, procs_child.line_of("# MAIN-HOT"))
    wait_texts(page, f'#procs .proc[data-pid="{pids["victim"]}"] .p-state', ["killed (SIGKILL)"])
    page.locator(f'#threads .thread[data-pid="{pids["spawn"]}"]').first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # a few more updates: bars settle, CPU figures appear
    PROCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(PROCS_SHOT))
    assert PROCS_SHOT.stat().st_size > 20_000
    tab.assert_no_errors()


def test_page_falls_back_to_all_processes(drop_child: Family, tab: Tab) -> None:
    page, child = tab.page, drop_child.child
    first = drop_child.pids["first"]
    notice = page.locator("#procs-notice")
    # A pid from an old URL that is not one of the program's: all processes, said so.
    page.goto(child.url + "#pid=1")
    page.wait_for_function("() => document.body.dataset.state === 'live'", timeout=WAIT_MS)
    wait_view(page, "all")
    assert notice.inner_text() == "process 1 is not listed (any more) — showing all processes"
    assert page.evaluate("location.hash") == ""

    proc_entry(page, first).click()
    wait_view(page, first)
    assert notice.is_hidden()
    wait_texts(page, f'#procs .proc[data-pid="{first}"] .p-state', ["running"])
    # It ends: the page keeps showing its last report, and the stream goes on.
    (child.work.parent / "stop-first").touch()
    wait_texts(page, f'#procs .proc[data-pid="{first}"] .p-state', ["exited 0"])
    name = next(p["name"] for p in child.snapshot()["processes"] if p["pid"] == first)
    assert name.startswith("ForkProcess-"), name
    banner = page.locator("#banner")
    banner.wait_for(state="visible", timeout=WAIT_MS)
    assert banner.inner_text() == f"process {first} ({name}) exited 0 — showing its last report"
    assert page.evaluate("document.body.dataset.state") == "live"
    assert page.evaluate("location.hash") == f"#pid={first}"

    # 100 more ended children push it out of the list: back to all processes.
    (child.work.parent / "go").touch()
    done = drop_child.wait("children", timeout=120)
    assert done["hung"] is None, \
        f"a forked child never ended; its stacks are in the stderr: {child.stderr}"
    assert done["dropped"] is True and done["children"] >= 100, done
    wait_view(page, "all")
    assert notice.is_visible()
    assert notice.inner_text() == \
        f"process {first} ({name}) is no longer listed — showing all processes"
    assert page.evaluate("location.hash") == ""
    assert proc_entry(page, first).count() == 0
    assert first not in [p["pid"] for p in child.snapshot()["processes"]]
    assert page.is_hidden("#banner")
    assert page.evaluate("document.body.dataset.state") == "live"
    tab.assert_no_errors()


# ---------------------------------------------------------------- modes


def line_figures(snap: dict[str, Any], name: str, line: int) -> dict[str, int]:
    """The figures of `line` of the file called `name`, by field name (zeros if none)."""
    fields: list[str] = snap["line_fields"]
    for f in snap["files"]:
        if f["name"] == name:
            for r in f["lines"]:
                if r[0] == line:
                    return dict(zip(fields, r, strict=True))
    return dict.fromkeys(fields, 0)


def post_mode(child: Child, mode: str) -> tuple[int, str]:
    """POST /api/mode past the page (token in the query): (status, body)."""
    u = urllib.parse.urlsplit(child.url)
    req = urllib.request.Request(f"http://{u.netloc}/api/mode?{u.query}&mode={mode}",
                                 method="POST")
    try:
        with NO_PROXY.open(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_class(page: Page, line: int, cls: str) -> None:
    page.wait_for_function(
        "([sel, cls]) => !!document.querySelector(sel)?.classList.contains(cls)",
        arg=[row(line), cls], timeout=WAIT_MS)


def value_of(page: Page, line: int, bar: str = "recent") -> int:
    return int(page.get_attribute(row(line) + f" .bar-{bar}", "data-value") or 0)


def gutter_title(page: Page, line: int) -> str:
    """The row's description, written when the pointer arrives on its gutter."""
    page.mouse.move(1, 1)
    page.hover(row(line) + " .gut")
    return page.get_attribute(row(line) + " .gut", "title") or ""


def pick_mode(page: Page, mode: str, running: str) -> None:
    """Ask for `mode` with the header's select; wait until the header says `running`."""
    page.select_option("#mode-pick", mode)
    wait_texts(page, "#mode", [running])


def wait_heat(page: Page, start: str) -> None:
    page.wait_for_function(
        "(start) => document.getElementById('heat-label').textContent.startsWith(start)",
        arg=start, timeout=WAIT_MS)


@pytest.mark.skipif(not HAS_LINES_MODE, reason="lines mode needs sys.monitoring (Python 3.12+)")
def test_lines_mode_shows_a_rarely_run_line_as_ran(lines_child: Child, tab: Tab) -> None:
    page = tab.page
    rare, spin = lines_child.line_of("# RARE-LINE"), lines_child.line_of("# SPIN-LINE")
    open_live(page, lines_child)
    wait_texts(page, "#mode", ["lines"])
    assert page.input_value("#mode-pick") == "lines"
    assert page.text_content("#heat-label") == \
        "heat = windows each line ran in (every line, 5 windows/s)"
    assert page.text_content("#ch-pct") == "ran %"
    assert page.is_visible("#lg-ran-now") and page.is_hidden("#lg-incl")
    # The busy line runs in every window: the hottest, 100 % of them, ran just now.
    wait_hot(page, spin)
    wait_class(page, spin, "ran-now")
    # The rare line: once a second, so in about one window of five.
    page.wait_for_function(
        "(sel) => Number(document.querySelector(sel)?.dataset.value) >= 2",
        arg=row(rare) + " .bar-recent", timeout=WAIT_MS)
    wait_hot(page, rare)
    before = value_of(page, rare)
    api = line_figures(lines_child.snapshot(), "rare.py", rare)
    after = value_of(page, rare)
    assert api["ran_recent"] >= 2 and api["ran_total"] >= api["ran_recent"], api
    assert api["hits_total"] == 0 and api["ran_last_ms"] > 0, api
    assert min(before, after) - 1 <= api["ran_recent"] <= max(before, after) + 1, \
        (before, api, after)
    assert value_of(page, rare) < value_of(page, spin)
    wait_texts(page, row(spin) + " .pct", ["100%"])
    share = page.text_content(row(rare) + " .pct") or ""
    assert re.fullmatch(r"\d+(\.\d)?%", share) and 2 <= float(share[:-1]) <= 50, share
    # The busy line stays marked as running just now; the rare line is marked at
    # the moment it runs, then no longer.
    marked = []
    for _ in range(6):
        marked.append("ran-now" in (page.get_attribute(row(spin), "class") or "").split())
        page.wait_for_timeout(250)
    assert marked.count(True) >= 5, marked
    wait_class(page, rare, "ran-now")
    page.wait_for_function("(sel) => !document.querySelector(sel).classList.contains('ran-now')",
                           arg=row(rare), timeout=WAIT_MS)
    title = gutter_title(page, rare)
    m = re.search(r"last ran (\d+\.\d) s ago", title)
    assert m and float(m.group(1)) < 3, title
    assert re.search(r"last 10 s: ran in \d+ windows? \(", title), title
    page.mouse.move(1, 1)
    page.wait_for_timeout(1500)  # the bars settle
    page.screenshot(path=str(LINES_SHOT))
    tab.assert_no_errors()


@pytest.mark.skipif(not HAS_LINES_MODE, reason="lines mode needs sys.monitoring (Python 3.12+)")
def test_auto_mode_shows_lines_that_ran_but_were_not_sampled(auto_child: Child, tab: Tab) -> None:
    page = tab.page
    rare, spin = auto_child.line_of("# RARE-LINE"), auto_child.line_of("# SPIN-LINE")
    open_live(page, auto_child)
    wait_texts(page, "#mode", ["sample+lines"])
    assert page.input_value("#mode-pick") == "auto"
    wait_heat(page, "heat = sampled time")
    assert page.text_content("#ch-pct") == "% time"
    assert page.is_visible("#lg-ran-only") and page.is_visible("#lg-ran-now")
    # The busy line: sampled time, and ran just now.
    wait_hot(page, spin)
    wait_class(page, spin, "ran-now")
    assert "ran-only" not in (page.get_attribute(row(spin), "class") or "")
    # The rare line: no sample caught it, lines mode saw it run.
    wait_class(page, rare, "ran-only")
    wait_texts(page, row(rare) + " .pct", ["ran"])
    api = line_figures(auto_child.snapshot(), "rare.py", rare)
    assert api["ran_recent"] >= 1 and api["self_recent"] == 0 == api["incl_recent"], api
    assert "hot" not in (page.get_attribute(row(rare), "class") or "")
    title = gutter_title(page, rare)
    assert "too short for the sampler to catch" in title, title
    m = re.search(r"last ran (\d+\.\d) s ago", title)
    assert m and float(m.group(1)) < 3, title
    assert page.text_content("#heat-label") == "heat = sampled timeran just now (exact)"
    page.mouse.move(1, 1)
    page.wait_for_timeout(2000)  # the bars settle
    page.screenshot(path=str(AUTO_SHOT))
    tab.assert_no_errors()


@pytest.mark.skipif(not HAS_LINES_MODE,
                    reason="trace and lines from the page need Python 3.12+ (see the next test)")
def test_mode_switch_from_the_page_to_trace_lines_and_back(sample_child: Child, tab: Tab) -> None:
    page = tab.page
    spin = sample_child.line_of("# SPIN-LINE")
    open_live(page, sample_child)
    wait_texts(page, "#mode", ["sample"])
    assert page.input_value("#mode-pick") == "sample"
    assert page.text_content("#heat-label") == "heat = sampled time (self samples)"
    wait_hot(page, spin)
    assert page.locator("#source .line.ran-now").count() == 0

    # Trace: exact counts of the busy loop, growing, as the monitor reports them.
    pick_mode(page, "trace", "trace")
    assert page.input_value("#mode-pick") == "trace"
    wait_heat(page, "heat = exact executed-line counts")
    assert page.text_content("#ch-pct") == "runs"
    page.wait_for_function(
        "(sel) => Number(document.querySelector(sel)?.dataset.value) > 5000",
        arg=row(spin) + " .bar-total", timeout=WAIT_MS)
    seen = value_of(page, spin, "total")
    snap = sample_child.snapshot()
    assert (snap["mode"], snap["heat"]) == ("trace", "hits")
    hits = line_figures(snap, "rare.py", spin)["hits_total"]
    assert hits >= seen > 5000
    page.wait_for_function(
        "([sel, n]) => Number(document.querySelector(sel).dataset.value) > n",
        arg=[row(spin) + " .bar-total", hits], timeout=WAIT_MS)
    assert page.is_hidden("#mode-msg")

    # Lines, then back to sampling.
    pick_mode(page, "lines", "lines")
    wait_heat(page, "heat = windows each line ran in")
    wait_class(page, spin, "ran-now")
    assert sample_child.snapshot()["mode"] == "lines"
    pick_mode(page, "sample", "sample")
    wait_heat(page, "heat = sampled time (self samples)")
    page.wait_for_function("() => !document.querySelector('#source .line.ran-now')",
                           timeout=WAIT_MS)
    assert sample_child.snapshot()["mode"] == "sample"
    assert page.input_value("#mode-pick") == "sample"
    assert page.is_hidden("#mode-msg")
    tab.assert_no_errors()


@pytest.mark.skipif(HAS_LINES_MODE, reason="Python 3.12+ can switch to any mode from the page")
def test_mode_switch_shows_the_monitors_refusal(sample_child: Child, tab: Tab) -> None:
    page = tab.page
    open_live(page, sample_child)
    wait_texts(page, "#mode", ["sample"])
    # From the server's thread, settrace cannot reach the program's threads: refused.
    page.select_option("#mode-pick", "trace")
    msg = page.locator("#mode-msg")
    msg.wait_for(state="visible", timeout=WAIT_MS)
    status, reason = post_mode(sample_child, "trace")
    assert status == 400 and "settrace" in reason, (status, reason)
    wait_texts(page, "#mode-msg-text",
               [f"cannot switch to trace: {reason.strip().removeprefix('400 ')}"])
    assert "mode-msg-error" in (msg.get_attribute("class") or "")
    wait_texts(page, "#mode", ["sample"])
    assert page.input_value("#mode-pick") == "sample"
    assert sample_child.snapshot()["mode"] == "sample"
    # Lines mode falls back to sampling, and says so.
    page.select_option("#mode-pick", "lines")
    page.wait_for_function(
        "() => document.getElementById('mode-msg-text').textContent"
        " === 'asked for lines: the monitor runs sample (see the notes)'", timeout=WAIT_MS)
    page.locator("#notes .note", has_text="lines mode needs Python 3.12+").wait_for(
        timeout=WAIT_MS)
    assert page.input_value("#mode-pick") == "lines"
    wait_texts(page, "#mode", ["sample"])
    # Auto is sampling here: no message.
    page.select_option("#mode-pick", "auto")
    msg.wait_for(state="hidden", timeout=WAIT_MS)
    wait_texts(page, "#mode", ["sample"])
    page.wait_for_timeout(600)  # a few snapshots: the select keeps what was asked for
    assert page.input_value("#mode-pick") == "auto"
    # The refusal's 400 is logged by the browser; nothing else may be.
    others = [e for e in tab.errors if "status of 400" not in e]
    assert not others, tab.errors
