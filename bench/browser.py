"""The browser pass: time stethoscope.stop() while a real browser shows the page.

Debian's /usr/bin/chromium, headless, driven by the ``playwright`` package (its
``playwright install`` cannot download browsers here). Per stethoscope cell, one
fresh process (bench/harness.py with BENCH_BROWSER_WAIT=1) prints its URL and waits;
the page is opened and must reach the "live" state (its event stream delivered a
snapshot) before the workload starts; stop() is then timed inside the process
while the stream is open. The pass is separate from the timing rounds, so the
browser's own CPU use does not disturb them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import Any

from measure import parse, tail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LIVE_TIMEOUT_MS = 20_000


class Browser:
    """One headless chromium for the whole pass; ``unavailable`` says why there is none."""

    def __init__(self) -> None:
        self.unavailable: str | None = None
        self._pw: Any = None
        self._browser: Any = None
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            self.unavailable = "playwright is not installed in this environment"
            return
        if not os.access(CHROMIUM, os.X_OK):
            self.unavailable = f"{CHROMIUM} not found (apt-get install chromium)"
            return
        try:
            self._pw = sync_playwright().start()
            self._browser = self._pw.chromium.launch(executable_path=CHROMIUM,
                                                     args=CHROMIUM_ARGS)
        except Exception as exc:
            self.unavailable = f"chromium did not start: {type(exc).__name__}: {exc}"
            self.close()

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._pw is not None:
            self._pw.stop()
            self._pw = None

    def stop_latency(self, cmd: list[str], env: dict[str, str], timeout: float,
                     cwd: str) -> dict[str, Any]:
        """Run ``cmd`` with the page open; its STOP_MS, or an error message."""
        env = dict(env, BENCH_BROWSER_WAIT="1")
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                                start_new_session=True)
        assert proc.stdin is not None and proc.stdout is not None
        page = self._browser.new_page()
        try:
            url = None
            head: list[str] = []
            for line in proc.stdout:
                head.append(line)
                if line.startswith("HARNESS URL "):
                    url = line.split(" ", 2)[2].strip()
                    break
            if url is None:
                raise RuntimeError("the process printed no URL")
            page.goto(url)
            page.wait_for_selector('body[data-state="live"]', timeout=LIVE_TIMEOUT_MS)
            proc.stdin.write("go\n")
            proc.stdin.flush()  # communicate() closes it
            out, err = proc.communicate(timeout=timeout)
            ended = _page_state(page)
        except Exception as exc:
            _kill(proc)
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
        finally:
            page.close()
        _, harness = parse("".join(head) + out)
        if proc.returncode != 0:
            return {"error": f"exit status {proc.returncode}\n{tail(err)}"}
        stop_ms = next((float(h.split()[1]) for h in harness if h.startswith("STOP_MS ")), None)
        if stop_ms is None:
            return {"error": "no STOP_MS line"}
        return {"stop_ms": stop_ms, "page_state_after": ended}


def _page_state(page: Any) -> str:
    # The page should have received the stream's final "end" event by now.
    deadline = time.monotonic() + 2.0
    state = ""
    while time.monotonic() < deadline:
        state = str(page.evaluate("document.body.dataset.state"))
        if state == "ended":
            break
        time.sleep(0.05)
    return state


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
