"""Talking to a monitor: its address, GETs of its JSON, and a poller thread.

The contract: everything here is plain HTTP against the documented API
(docs/http-api.md): ``/api/snapshot?pid=all`` a few times a second and
``/api/source/ID`` once per file. Nothing is ever sent but GETs, never through a
proxy, never without a timeout. A failure never raises out of the poller: it
becomes a short reason (``describe_error``) that the status line shows, and the last
good snapshot stays.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

POLL_INTERVAL = 0.25  # seconds between snapshots, and the longest a key waits
HTTP_TIMEOUT = 2.0
SOURCES_PER_POLL = 5  # new files' sources fetched per poll, so polls stay regular

Snap = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a monitor serves and the token it wants."""

    base: str  # http://host:port
    token: str

    def url(self, path: str, **query: str) -> str:
        return f"{self.base}{path}?{urllib.parse.urlencode({**query, 'token': self.token})}"


def parse_endpoint(url: str, token: str | None = None) -> Endpoint:
    """The monitor named by a URL as the monitor prints it; ValueError says what is wrong."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ValueError(f"{url!r} is not an http:// URL such as http://127.0.0.1:9999/?token=T")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has a bad port") from None
    if not parts.hostname or port is None:
        raise ValueError(f"{url!r} has no host:port; pass the URL the monitor printed")
    found = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
    chosen = token or found
    if not chosen:
        raise ValueError(f"{url!r} has no token: pass the URL as printed (…/?token=T) "
                         "or --token T")
    return Endpoint(f"http://{parts.netloc.rpartition('@')[2]}", chosen)


def describe_error(exc: BaseException) -> str:
    """A short human reason for a failed request (the status line has one line)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"no answer within {HTTP_TIMEOUT:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    if isinstance(exc, json.JSONDecodeError):
        return "the answer is not JSON"
    return str(reason) or type(reason).__name__


class Client:
    """GETs JSON from one monitor, never through a proxy and never without a timeout."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _get(self, path: str, **query: str) -> Any:
        with self._opener.open(self.endpoint.url(path, **query), timeout=HTTP_TIMEOUT) as resp:
            return json.loads(resp.read())

    def snapshot(self) -> Snap:
        answer = self._get("/api/snapshot", pid="all")
        if not isinstance(answer, dict):
            raise ValueError("the snapshot is not a JSON object")
        return answer

    def source(self, file_id: str) -> Source:
        answer = self._get(f"/api/source/{urllib.parse.quote(file_id, safe='')}")
        return Source.from_json(answer)


@dataclass(frozen=True, slots=True)
class Source:
    """One file's text and its colouring spans by line, as /api/source gives them."""

    lines: list[str]
    tokens: dict[int, list[tuple[int, int, str]]]

    @classmethod
    def from_json(cls, answer: Any) -> Source:
        lines = [str(line) for line in answer.get("lines", [])]
        tokens: dict[int, list[tuple[int, int, str]]] = {}
        for line, start, end, kind in answer.get("tokens", []):
            tokens.setdefault(int(line), []).append((int(start), int(end), str(kind)))
        return cls(lines, tokens)


class Poller:
    """Fetches snapshots (and new files' sources) in a daemon thread, so a slow or
    vanished monitor never freezes the keys; the view reads the latest results."""

    def __init__(self, client: Client, interval: float = POLL_INTERVAL) -> None:
        self._client = client
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tui-poller", daemon=True)
        self.snapshot: Snap | None = None
        self.error: str | None = None
        self.sources: dict[str, Source | None] = {}  # None: the monitor has no such file

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HTTP_TIMEOUT + 1)

    def latest(self) -> tuple[Snap | None, str | None, dict[str, Source | None]]:
        with self._lock:
            return self.snapshot, self.error, dict(self.sources)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self._interval)

    def poll_once(self) -> None:
        try:
            snap = self._client.snapshot()
        except Exception as exc:  # any failure only changes the status line
            with self._lock:
                self.error = describe_error(exc)
            return
        with self._lock:
            self.snapshot, self.error = snap, None
        self._fetch_sources(snap)

    def _fetch_sources(self, snap: Snap) -> None:
        wanted = [f["id"] for f in snap.get("files", []) if f.get("id") not in self.sources]
        for file_id in wanted[:SOURCES_PER_POLL]:
            try:
                source: Source | None = self._client.source(file_id)
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    return
                source = None
            except Exception:  # the monitor went away: try again at the next poll
                return
            with self._lock:
                self.sources[file_id] = source
