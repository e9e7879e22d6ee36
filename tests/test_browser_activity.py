"""The page's activity plots and its replay of recordings, in Debian's chromium.

Live: a workload under ``stethoscope.trace(port=0)`` runs a hot loop in its main
thread, and a thread named "burster" that is busy for a few seconds and then waits.
The page polls ``/api/activity`` and draws the strip under the header (``#activity``,
``data-points``) and a sparkline (``.spark``, ``data-max``, ``data-points``,
``data-last``) per file and per thread. The test records every ``/api/activity``
answer the page received and checks that the page shows exactly what the one it
drew last says (the strip's ``data-end`` names it by its last time).

Replay: ``stethoscope run --record`` records a short program; ``stethoscope view``
serves it. The page shows a timeline (``#timeline``, ``data-index``; ``#tl-range``,
``#tl-play``, ``#tl-speed``, ``#tl-pos``) instead of a live stream, and each position
shows the snapshot ``/api/snapshot?at=I`` gives. A recording whose program was
killed is marked truncated.

Writes docs/screenshot-activity.png and docs/screenshot-replay.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from test_browser import NO_PROXY, ROOT, Child, _spawn, wait_until

pytestmark = pytest.mark.browser

ACTIVITY_SHOT = ROOT / "docs" / "screenshot-activity.png"
REPLAY_SHOT = ROOT / "docs" / "screenshot-replay.png"
WAIT_MS = 12_000  # wait_for_function takes only functions: the page's CSP forbids eval

LIVE = '''\
"""A hot loop in the main thread; "burster" is busy until it has used BUSY seconds of
CPU (at most LIMIT seconds, on a loaded machine), then waits."""
import os
import threading
import time

import stethoscope

HERE = os.path.dirname(os.path.abspath(__file__))
STOP = os.path.join(HERE, "stop")
BUSY = 0.6
LIMIT = 6.0


def spin(n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003  # HOT-LINE
    return total


def burst(done):
    end = time.monotonic() + LIMIT
    while time.thread_time() < BUSY and time.monotonic() < end:
        spin(20_000)
    done.wait()  # IDLE-LINE


def main():
    mon = stethoscope.trace(port=0)
    done = threading.Event()
    threading.Thread(target=burst, args=(done,), name="burster", daemon=True).start()
    print(mon.url, flush=True)
    deadline = time.monotonic() + 90  # a safety net: the tests kill it anyway
    while not os.path.exists(STOP) and time.monotonic() < deadline:
        spin(30_000)
    done.set()
    stethoscope.stop()


if __name__ == "__main__":
    main()
'''

SHORT = '''\
"""About three seconds: a hot loop, and a thread busy for the first half of it."""
import threading
import time


def spin(n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003  # HOT-LINE
    return total


def burst():
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        spin(20_000)


worker = threading.Thread(target=burst, name="burster")
worker.start()
end = time.monotonic() + 3.0
while time.monotonic() < end:
    spin(30_000)
worker.join()
'''

LONG = '''\
"""Runs until it is killed (or for a minute): a recording that never gets its end."""
import time


def spin(n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


end = time.monotonic() + 60
while time.monotonic() < end:
    spin(30_000)
    time.sleep(0.005)
'''


# ---------------------------------------------------------------- helpers


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(ROOT / "src"), env.get("PYTHONPATH", "")] if p)
    return env


def get_json(url: str, path: str) -> Any:
    """GET `path` (may carry a query) of the server at `url`, token in the query."""
    u = urllib.parse.urlsplit(url)
    sep = "&" if "?" in path else "?"
    with NO_PROXY.open(f"http://{u.netloc}{path}{sep}{u.query}", timeout=5) as r:
        return json.load(r)


def status_of(url: str, path: str) -> int:
    u = urllib.parse.urlsplit(url)
    sep = "&" if "?" in path else "?"
    try:
        with NO_PROXY.open(f"http://{u.netloc}{path}{sep}{u.query}", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)




@dataclass
class Tab:
    page: Page
    errors: list[str]
    failed: list[str]  # requests that failed or answered >= 400: "STATUS path"
    activity: list[dict[str, Any]] = field(default_factory=list)  # /api/activity answers
    asked: list[str] = field(default_factory=list)  # query strings of /api/activity requests

    def assert_clean(self, expected: tuple[str, ...] = ()) -> None:
        """No script error, no console error and no failed request, except those
        whose text contains one of `expected`."""
        bad = [e for e in self.errors + self.failed if not any(x in e for x in expected)]
        assert not bad, f"the page had errors or failed requests: {bad}"


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    t = Tab(page, [], [])
    page.on("pageerror", lambda exc: t.errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: t.errors.append(
        f"console: {msg.text} @ {urllib.parse.urlsplit(msg.location.get('url') or '').path}")
        if msg.type == "error" else None)

    def on_response(r: Response) -> None:
        path = urllib.parse.urlsplit(r.url).path
        if r.status >= 400:
            t.failed.append(f"{r.status} {path}")
        elif path == "/api/activity":
            try:
                t.activity.append(r.json())
            except Exception as exc:  # the page navigated away meanwhile
                t.errors.append(f"unreadable activity answer: {exc}")

    page.on("response", on_response)
    page.on("request", lambda r: t.asked.append(urllib.parse.urlsplit(r.url).query)
            if urllib.parse.urlsplit(r.url).path == "/api/activity" else None)
    page.on("requestfailed", lambda r: t.failed.append(
        f"failed {urllib.parse.urlsplit(r.url).path}: {r.failure}"))
    try:
        yield t
    finally:
        context.close()


def wait_fn(page: Page, fn: str, arg: Any = None, what: str = "", timeout: int = WAIT_MS) -> None:
    try:
        page.wait_for_function(fn, arg=arg, timeout=timeout)
    except PlaywrightTimeoutError:
        pytest.fail(f"timed out waiting for {what or fn}")


# What the page shows of the activity: the strip and every sparkline, read at once.
READ_PAGE = """() => {
    const strip = document.getElementById('activity');
    const spark = s => s ? {max: +s.dataset.max, points: +s.dataset.points,
        last: s.dataset.last === undefined ? null : +s.dataset.last,
        empty: s.classList.contains('spark-empty'),
        line: s.querySelector('.sp-line').getAttribute('d') || ''} : null;
    const files = {}, threads = {};
    document.querySelectorAll('#files .file').forEach(li => {
        files[li.dataset.id] = spark(li.querySelector('.spark')); });
    document.querySelectorAll('#threads .thread').forEach(c => {
        threads[c.dataset.key] = {name: c.querySelector('.t-name').textContent,
                                  spark: spark(c.querySelector('.spark'))}; });
    return {points: +strip.dataset.points, end: strip.dataset.end === undefined ? null
            : +strip.dataset.end, max: +(strip.dataset.max || 0),
            cpuMax: +(strip.dataset.cpuMax || 0), hidden: strip.hidden,
            heatPath: document.querySelector('#activity .act-heat-line')?.getAttribute('d') || '',
            files, threads};
}"""


def shown_with_answer(tab: Tab, until: Any, what: str, timeout: float = 15) -> tuple[
        dict[str, Any], dict[str, Any]]:
    """(what the page shows, the /api/activity answer it shows) once `until(shown,
    answer)` holds; the answer is the one whose last time the strip names."""
    deadline = time.monotonic() + timeout
    shown: dict[str, Any] = {}
    answer: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        shown = tab.page.evaluate(READ_PAGE)
        answers = [a for a in list(tab.activity) if a.get("times") and shown["end"] is not None
                   and abs(a["times"][-1] - shown["end"]) < 1e-6]
        answer = answers[-1] if answers else None
        if answer is not None and until(shown, answer):
            return shown, answer
        tab.page.wait_for_timeout(150)
    pytest.fail(f"{what}: not shown in time; page: {json.dumps(shown)[:2000]} "
                f"answer: {json.dumps(answer)[:2000]}")


def path_points(d: str) -> list[tuple[float, float]]:
    """The (x, y) points of a path of M/L commands; "hN" adds a point N to the right."""
    out: list[tuple[float, float]] = []
    for cmd, a, b in re.findall(r"([MLh])(-?[\d.]+)(?: (-?[\d.]+))?", d):
        if cmd == "h":
            out.append((out[-1][0] + float(a), out[-1][1]))
        else:
            out.append((float(a), float(b)))
    return out


# ---------------------------------------------------------------- live


def busy_then_idle(cpu: list[float]) -> bool:
    """A thread that used CPU and has been idle since. Two threads share the GIL and
    the machine may be loaded: a few percent is enough (an idle thread has 0)."""
    return max(cpu) >= 3 and cpu[-1] < min(3.0, max(cpu) / 5)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    directory = tmp_path_factory.mktemp("activity")
    work = directory / "busy.py"
    work.write_text(LIVE)
    yield from _spawn([sys.executable, str(work)], directory, work)


def test_live_strip_and_sparklines_show_what_the_api_says(live: Child, tab: Tab) -> None:
    page = tab.page
    page.goto(live.url)
    wait_fn(page, "() => document.body.dataset.state === 'live'", what="the live state")
    assert page.evaluate("document.body.dataset.replay") is None
    assert page.is_hidden("#timeline")
    assert page.is_visible("#activity")

    # The strip has a few points, and shows the answer it drew: points and maximum.
    def strip_ready(shown: dict[str, Any], answer: dict[str, Any]) -> bool:
        return bool(shown["points"] >= 3 and max(answer["total"]) > 0)

    shown, answer = shown_with_answer(tab, strip_ready, "the strip with >= 3 points")
    assert shown["points"] == len(answer["times"])
    assert shown["max"] == pytest.approx(max(answer["total"]))
    assert shown["cpuMax"] == pytest.approx(max(c for c in answer["cpu"] if c is not None))
    assert len(path_points(shown["heatPath"])) == len(answer["times"])

    # The hot file's sparkline: its heat, scaled to its own maximum.
    def file_ready(shown: dict[str, Any], answer: dict[str, Any]) -> bool:
        return any(f["name"] == "busy.py" and max(f["values"]) > 0 for f in answer["files"]) \
            and any(s and s["max"] > 0 for s in shown["files"].values())

    shown, answer = shown_with_answer(tab, file_ready, "the hot file's sparkline")
    hot = next(f for f in answer["files"] if f["name"] == "busy.py")
    spark = shown["files"][hot["id"]]
    assert spark is not None, f"no sparkline for busy.py: {shown['files']}"
    assert spark["points"] == len(hot["values"])
    assert spark["max"] == pytest.approx(max(hot["values"]))
    assert spark["max"] > 0 and not spark["empty"]
    tab.assert_clean()


def test_live_thread_sparkline_shows_busy_then_idle(live: Child, tab: Tab) -> None:
    page = tab.page
    page.goto(live.url)
    wait_fn(page, "() => document.body.dataset.state === 'live'", what="the live state")

    def burster(answer: dict[str, Any]) -> dict[str, Any] | None:
        return next((t for t in answer["threads"] if t["name"] == "burster"), None)

    # The burster was busy for its first seconds and has waited since.
    def settled(shown: dict[str, Any], answer: dict[str, Any]) -> bool:
        t = burster(answer)
        if t is None:
            return False
        values = [v for v in t["values"] if v is not None]
        card = shown["threads"].get(t["key"])
        return bool(values) and busy_then_idle(values) and card is not None \
            and card["spark"] is not None and card["spark"]["points"] > 0

    shown, answer = shown_with_answer(tab, settled, "the burster busy, then idle", timeout=18)
    t = burster(answer)
    assert t is not None
    card = shown["threads"][t["key"]]
    assert card["name"] == "burster"
    spark = card["spark"]
    values = [v for v in t["values"] if v is not None]
    assert spark["points"] == len(t["values"])
    assert spark["max"] == pytest.approx(max(values))
    assert spark["last"] == pytest.approx(values[-1])
    # Drawn that way: a point near the top earlier, the latest on the baseline.
    pts = path_points(spark["line"])
    assert len(pts) >= 2, spark["line"]
    ys = [y for _, y in pts]
    top, base = min(ys), max(ys)
    assert base - top > 6, f"a flat sparkline for a thread that was busy: {spark['line']}"
    assert ys.index(top) < len(ys) - 1
    assert ys[-1] > base - 1.5, f"the idle end is not at the baseline: {spark['line']}"
    # The main thread's card has one too; the pid:ident key matches the card's.
    main_key = next(k for k, c in shown["threads"].items() if c["name"] == "MainThread")
    assert shown["threads"][main_key]["spark"]["points"] > 0
    assert any(x["key"] == main_key for x in answer["threads"])
    tab.assert_clean()


def test_live_activity_follows_the_tab_visibility_and_hover(live: Child, tab: Tab) -> None:
    page = tab.page
    page.goto(live.url)
    wait_fn(page, "() => +document.getElementById('activity').dataset.points >= 2",
            what="activity points")
    # Polled about once a second, not at every snapshot (4 a second).
    n0, t0 = len(tab.activity), time.monotonic()
    page.wait_for_timeout(3000)
    rate = (len(tab.activity) - n0) / (time.monotonic() - t0)
    assert 0.3 <= rate <= 1.6, f"{rate:.2f} activity requests per second"
    # Hovering the strip shows the values of the point under the pointer.
    box = page.locator("#act-plot").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] - 3, box["y"] + 20)
    page.locator("#act-tip").wait_for(state="visible")
    tip = page.inner_text("#act-tip")
    assert "now" in tip and "CPU" in tip and "heat" in tip, tip
    page.mouse.move(1, 1)
    page.locator("#act-tip").wait_for(state="hidden")
    # A hidden tab asks for nothing.
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_timeout(300)
    n1 = len(tab.activity)
    page.wait_for_timeout(2200)
    assert len(tab.activity) == n1, "activity polled while the tab was hidden"
    tab.assert_clean()


def test_live_activity_is_asked_for_the_process_shown(live: Child, tab: Tab) -> None:
    page = tab.page
    pid = live.snapshot()["pid"]
    page.goto(live.url + f"#pid={pid}")
    wait_fn(page, "(pid) => document.body.dataset.view === pid", arg=str(pid),
            what="the view of one process")
    wait_fn(page, "() => +document.getElementById('activity').dataset.points >= 2",
            what="activity points")
    assert tab.asked and all(f"pid={pid}" in q.split("&") for q in tab.asked), tab.asked
    answer = get_json(live.url, f"/api/activity?pid={pid}")
    assert any(t["name"] == "burster" for t in answer["threads"])
    tab.assert_clean()


def test_screenshot_of_activity(live: Child, tab: Tab) -> None:
    page = tab.page
    page.goto(live.url)
    # Enough points for a picture, and the burster's busy start and idle end in it.
    wait_fn(page, "() => +document.getElementById('activity').dataset.points >= 8",
            what="eight activity points", timeout=15_000)
    page.locator("#threads .t-name", has_text="burster").wait_for()
    wait_fn(page, """() => [...document.querySelectorAll('#threads .thread')].some(c =>
                        c.querySelector('.t-name').textContent === 'burster'
                        && +c.querySelector('.spark').dataset.max >= 3
                        && +c.querySelector('.spark').dataset.last
                            < Math.min(3, c.querySelector('.spark').dataset.max / 5))""",
            what="the burster's sparkline, busy then idle")
    ACTIVITY_SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ACTIVITY_SHOT))
    assert ACTIVITY_SHOT.stat().st_size > 20_000
    tab.assert_clean()


# ---------------------------------------------------------------- replay


def _record(directory: Path, program: str, name: str) -> tuple[Path, subprocess.Popen[bytes]]:
    script = directory / f"{name}.py"
    script.write_text(program)
    rec = directory / f"{name}.stetho"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stethoscope", "run", "--record", str(rec), "--quiet", str(script)],
        cwd=directory, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    return rec, proc


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two recordings made side by side: "run" of SHORT, which ends normally, and
    "killed" of LONG, killed (SIGKILL) once a few records are flushed."""
    directory = tmp_path_factory.mktemp("replay")
    run, proc = _record(directory, SHORT, "run")
    killed, victim = _record(directory, LONG, "killed")
    try:
        # Records are flushed every 0.5 s: wait for a few, then kill, which leaves no end.
        wait_until(lambda: victim.poll() is not None
                   or (killed.exists() and killed.stat().st_size > 1500), 20)
        assert victim.poll() is None, victim.communicate()[1].decode()
        os.kill(victim.pid, signal.SIGKILL)
        err = proc.communicate(timeout=40)[1]
        assert proc.returncode == 0, err.decode()
    finally:
        for p in (proc, victim):
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
    assert victim.returncode == -signal.SIGKILL
    for rec in (run, killed):
        assert rec.exists() and rec.stat().st_size > 0, rec
    return {"run": run, "killed": killed}


def _view(rec: Path) -> Iterator[Child]:
    yield from _spawn([sys.executable, "-m", "stethoscope", "view", str(rec), "--port", "0"],
                      rec.parent, rec)


@pytest.fixture(scope="module")
def viewer(recordings: dict[str, Path]) -> Iterator[Child]:
    yield from _view(recordings["run"])


@pytest.fixture
def killed_viewer(recordings: dict[str, Path]) -> Iterator[Child]:
    yield from _view(recordings["killed"])


def open_replay(page: Page, child: Child) -> dict[str, Any]:
    """Open the page of a recording; its /api/recording."""
    rec: dict[str, Any] = get_json(child.url, "/api/recording")
    page.goto(child.url)
    wait_fn(page, "() => document.body.dataset.replay === '1'", what="replay mode")
    wait_fn(page, "() => document.getElementById('timeline').dataset.index === '0'",
            what="the first snapshot shown")
    return rec


def index_shown(page: Page) -> int:
    return int(page.get_attribute("#timeline", "data-index") or -1)


def seek(page: Page, i: int) -> None:
    """Move the slider to `i` as a user would (input event), wait until it is shown."""
    page.evaluate("""(i) => {
        const r = document.getElementById('tl-range');
        r.value = String(i);
        r.dispatchEvent(new Event('input', {bubbles: true}));
    }""", i)
    wait_fn(page, "(i) => document.getElementById('timeline').dataset.index === String(i)",
            arg=i, what=f"snapshot {i} shown")


def threads_shown(page: Page) -> list[str]:
    names = page.eval_on_selector_all("#threads .thread .t-name",
                                      "ns => ns.map(n => n.textContent)")
    return [str(n) for n in names]


def test_replay_timeline_shows_each_recorded_snapshot(viewer: Child, tab: Tab) -> None:
    page = tab.page
    assert status_of(viewer.url, "/api/events") == 404  # what the page must not ask for
    rec = open_replay(page, viewer)
    count = rec["count"]
    assert count >= 4, rec
    assert page.is_visible("#timeline")
    assert page.get_attribute("#tl-range", "max") == str(count - 1)
    assert page.is_hidden("#tl-trunc")
    assert page.inner_text("#conn-text") == "recording"
    assert page.is_disabled("#mode-pick")
    assert "recording" in (page.get_attribute("#mode-pick", "title") or "")
    assert rec["file"] in page.inner_text("#tl-file")
    # The strip covers the whole run, with the marker at the start.
    act = get_json(viewer.url, "/api/activity")
    wait_fn(page, "(n) => +document.getElementById('activity').dataset.points === n",
            arg=len(act["times"]), what="the whole run in the strip")
    assert page.locator("#activity .act-marker").is_visible()

    for i in (count // 2, 1, count - 1):
        seek(page, i)
        snap = get_json(viewer.url, f"/api/snapshot?at={i}")
        wait_fn(page, "(s) => document.body.dataset.state === s", arg=snap["state"],
                what=f"state {snap['state']} at {i}")
        names = sorted({t["name"] for t in snap["threads"]})
        assert sorted(set(threads_shown(page))) == names, (i, names)
        pos = page.inner_text("#tl-pos")
        assert pos.endswith(f"{rec['times'][-1] - rec['started']:.1f} s"), pos
        assert pos.startswith(f"{snap['time'] - rec['started']:.1f} s") or \
            pos.startswith(f"{rec['times'][i] - rec['started']:.1f} s"), pos
    # The last snapshot: the program had ended.
    assert page.evaluate("document.body.dataset.state") == "stopped"
    assert "end of the recording" in page.inner_text("#banner")

    # Arrow keys step when the slider has the focus.
    page.focus("#tl-range")
    page.keyboard.press("ArrowLeft")
    wait_fn(page, "(i) => document.getElementById('timeline').dataset.index === String(i)",
            arg=count - 2, what="a step back")
    page.keyboard.press("Home")
    wait_fn(page, "() => document.getElementById('timeline').dataset.index === '0'",
            what="back to the start")
    # A click on the strip goes to that moment.
    box = page.locator("#act-plot").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + 20)
    wait_fn(page, "(n) => +document.getElementById('timeline').dataset.index >= n",
            arg=count // 2, what="a seek by clicking the strip")
    tab.assert_clean()


def test_replay_plays_to_the_end(viewer: Child, tab: Tab) -> None:
    page = tab.page
    rec = open_replay(page, viewer)
    count = rec["count"]
    # Every index the timeline shows while playing, as the page sets it (a poll from
    # here could miss steps on a loaded machine).
    page.evaluate("""() => {
        const tl = document.getElementById('timeline');
        window.__shown = [tl.dataset.index];
        new MutationObserver(() => window.__shown.push(tl.dataset.index))
            .observe(tl, {attributes: true, attributeFilter: ['data-index']});
    }""")
    page.select_option("#tl-speed", "1")  # a step per recorded 0.5 s: none skipped
    page.click("#tl-play")
    assert page.get_attribute("#timeline", "data-playing") == "1"
    with contextlib.suppress(PlaywrightTimeoutError):  # the assertion says where it stopped
        page.wait_for_function("(i) => document.getElementById('timeline').dataset.index"
                               " === String(i)", arg=count - 1, timeout=20_000)
    assert index_shown(page) == count - 1, f"play did not reach the end: at {index_shown(page)}"
    seen = {int(i) for i in page.evaluate("() => window.__shown")}
    assert len(seen) >= 3, seen  # it went through positions in between, not a jump
    wait_fn(page, "() => document.getElementById('timeline').dataset.playing === '0'",
            what="pause at the end")
    wait_fn(page, "() => document.body.dataset.state === 'stopped'", what="the final state")
    # Play again from the end starts over; pause stops it.
    page.select_option("#tl-speed", "1")
    page.click("#tl-play")
    wait_fn(page, "() => document.getElementById('timeline').dataset.index === '0'",
            what="a restart")
    page.click("#tl-play")
    assert page.get_attribute("#timeline", "data-playing") == "0"
    at = index_shown(page)
    page.wait_for_timeout(700)  # more than one recorded interval at 1x
    assert index_shown(page) == at
    REPLAY_SHOT.parent.mkdir(parents=True, exist_ok=True)
    seek(page, max(1, count * 2 // 5))
    page.locator("#source .line.hot").first.wait_for()
    page.screenshot(path=str(REPLAY_SHOT))
    assert REPLAY_SHOT.stat().st_size > 20_000
    tab.assert_clean()


def test_replay_of_a_killed_program_is_marked_truncated(killed_viewer: Child, tab: Tab) -> None:
    page = tab.page
    rec = open_replay(page, killed_viewer)
    assert rec["truncated"] is True
    assert page.is_visible("#tl-trunc")
    assert page.inner_text("#tl-trunc") == "truncated"
    seek(page, rec["count"] - 1)
    assert "cut off here: the program was killed" in page.inner_text("#banner")
    tab.assert_clean()  # the page asked /api/recording first: no event stream tried
