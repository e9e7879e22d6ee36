"""Children talk only to their parent, and what they send is bounded.

The threats: another local user who takes the program's TCP port once the program
has gone (children must never report there), a process of this user that reports
about a process other than itself (no fake processes), reports that would pin
unbounded memory, and a report socket left behind or reachable by others.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import stethoscope
from stethoscope.children.link import CHILD_ENV, SHARED
from stethoscope.model import ChildReport, FileHeat, ProcessInfo, Snapshot, ThreadInfo
from stethoscope.model.processes import MAX_SOURCE_TOTAL
from stethoscope.model.report import MAX_SOURCE_CHARS
from stethoscope.model.store import file_id_for

from conftest import child_env, run_python, start_python, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc; SO_PEERCRED")

# -- (a) the squatter on the program's old port ---------------------------------------

OUTLIVES = '''
import json, os, subprocess, sys, time
import stethoscope

if __name__ == "__main__":
    if sys.argv[1] == "child":
        status, release, parent = sys.argv[2], sys.argv[3], int(sys.argv[4])
        SECRET = "hunter2-in-the-childs-source"
        deadline = time.monotonic() + 120
        while os.getppid() == parent and time.monotonic() < deadline:
            sum(range(1000))  # at work while its parent leaves
        orphaned = time.monotonic()
        while not os.path.exists(release) and time.monotonic() < deadline:
            sum(range(1000))  # and on, orphaned, until the test has listened enough
            with open(status + ".tmp", "w") as f:
                f.write(str(time.monotonic() - orphaned))
            os.replace(status + ".tmp", status)
            time.sleep(0.05)
        mon = stethoscope.current()
        with open(status + ".end", "w") as f:
            f.write("unmonitored" if mon is None or not mon.running else "still monitored")
        sys.exit(0)
    mon = stethoscope.trace(port=0, quiet=True)
    child = subprocess.Popen([sys.executable, __file__, "child", *sys.argv[2:4], str(os.getpid())],
                             stdout=subprocess.DEVNULL, stderr=open(sys.argv[4], "w"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(  # it has started and reported
            p.pid == child.pid for p in mon.snapshot("all").processes):
        time.sleep(0.05)
    reported = any(p.pid == child.pid for p in mon.snapshot("all").processes)
    print(json.dumps({"port": mon.port, "token": mon.config.token, "child": child.pid,
                      "reported": reported, "link": os.environ["STETHOSCOPE_CHILD"]}))
    # now the program goes, without waiting for its child
'''


class _Squatter:
    """Another user's listener on a port: it answers every request 204 and keeps
    whatever it was sent."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while chunk := conn.recv(65536):
                        data += chunk
                        if b"\r\n\r\n" in data:
                            conn.sendall(b"HTTP/1.0 204 No Content\r\n"
                                         b"X-Stethoscope-Mode: trace\r\n\r\n")
                            break
                except OSError:
                    pass
                self.received.append(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sock.close()


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_a_child_that_outlives_its_program_sends_nothing_to_the_programs_old_port(
        tmp_path: Path) -> None:
    path = tmp_path / "outlives.py"
    path.write_text(OUTLIVES)
    status, release, errors = tmp_path / "status", tmp_path / "release", tmp_path / "errors"
    result = run_python([str(path), "parent", str(status), str(release), str(errors)],
                        cwd=tmp_path, timeout=100)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["reported"], "the child never reported to its program: nothing is tested"
    link = json.loads(out["link"])
    assert set(link) == {"v", "inbox", *SHARED}  # where to report: a path, no port
    assert out["token"] not in out["link"]  # and no token
    squatter = _Squatter(out["port"])  # the program has gone: its port is free to take
    try:
        # Ten report periods of the child's, orphaned, while the port is taken
        wait_for(lambda: status.exists() and float(status.read_text() or 0) > 5.0,
                 timeout=100)
        release.write_text("")
        wait_for(lambda: _gone(out["child"]))
    finally:
        squatter.close()
    assert squatter.received == []
    assert (tmp_path / "status.end").read_text() == "unmonitored"  # it stopped reporting
    assert "Traceback" not in errors.read_text(), errors.read_text()


# -- reports sent by hand ---------------------------------------------------------------

SENDER = '''
import json, os, sys
from stethoscope.children.reporter import exchange
from stethoscope.children.wire import RefusedError

inbox, template = sys.argv[1], json.load(open(sys.argv[2]))
answers = []
for i, about in enumerate(json.loads(sys.argv[3])):
    report = dict(template, seq=i + 1)
    pid = os.getpid() if about == "self" else about
    report["process"] = dict(report["process"], pid=pid)
    report["snapshot"] = dict(report["snapshot"], pid=pid)
    chars = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    report["sources"] = [[f"big{i}-{k}", f"/app/big{i}-{k}.py", chr(97 + k) * chars]
                         for k in range(3)] if chars else []
    try:
        answers.append(["taken", exchange(inbox, json.dumps(report).encode(), 60)])
    except RefusedError as exc:
        answers.append(["refused", str(exc)])
print(json.dumps({"pid": os.getpid(), "answers": answers}))
'''


def _template(tmp_path: Path, files: tuple[FileHeat, ...] | None = None) -> Path:
    path = tmp_path / "template.json"
    path.write_bytes(_template_bytes(files))
    return path


def _template_bytes(files: tuple[FileHeat, ...] | None = None) -> bytes:
    """A well-formed running process's report (its pid is filled in by the sender)."""
    if files is None:
        files = (FileHeat("f1", "/app/prog.py", "prog.py", ((3, 1, 1, 0, 0, 0, 0, 0, 0, 0),)),)
    snap = Snapshot(pid=0, argv=("prog.py",), python="3.12.1", started=1.0, time=2.0,
                    state="running", mode="trace", heat="hits", window=10,
                    sample_hz_requested=100.0, sample_hz_achieved=99.0,
                    files=files,
                    now=(), threads=(ThreadInfo(7, 70, "MainThread", False, True, True, ()),),
                    notes=())
    proc = ProcessInfo(0, os.getpid(), ("python", "prog.py"), "", "spawn", 1.0, "running")
    return ChildReport("i" * 16, 1, False, proc, snap).to_json()


def _send(tmp_path: Path, inbox: str, about: list[Any], chars: int = 0,
          files: tuple[FileHeat, ...] | None = None) -> dict[str, Any]:
    """Reports sent to ``inbox`` by another process of this user (not a followed
    child: it sends by hand)."""
    sender = tmp_path / "sender.py"
    sender.write_text(SENDER)
    env = child_env()
    env.pop(CHILD_ENV, None)
    result = run_python([str(sender), inbox, str(_template(tmp_path, files)),
                         json.dumps(about), str(chars)], env=env, timeout=100)
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def _inbox() -> str:
    path: str = json.loads(os.environ[CHILD_ENV])["inbox"]
    return path


def test_a_report_about_another_process_is_refused_and_lists_nothing(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with stethoscope.trace(port=0, quiet=True) as mon:
            out = _send(tmp_path, _inbox(), [bystander.pid, "self"])
            pids = {p.pid for p in mon.snapshot("all").processes}
    finally:
        bystander.kill()
        bystander.wait()
    forged, own = out["answers"]
    assert forged[0] == "refused" and "reports only for itself" in forged[1], forged
    assert bystander.pid not in pids
    assert own == ["taken", "auto"]  # the sender about itself: taken, the mode answered
    assert out["pid"] in pids


def test_childrens_sources_stop_at_the_total_bound(tmp_path: Path) -> None:
    chars = MAX_SOURCE_CHARS  # the largest a source may be; three per report
    reports = MAX_SOURCE_TOTAL // (3 * chars) + 2  # more than the bound holds
    with stethoscope.trace(port=0, quiet=True) as mon:
        out = _send(tmp_path, _inbox(), ["self"] * reports, chars)
        kept = {f"big{i}-{k}": mon.sources.text(f"big{i}-{k}")
                for i in range(reports) for k in range(3)}
        notes = mon.snapshot("all").notes
    assert [a[0] for a in out["answers"]] == ["taken"] * reports  # dropped, not refused
    found = {fid: v for fid, v in kept.items() if v is not None}
    assert sum(len(text) for _, text in found.values()) <= MAX_SOURCE_TOTAL
    assert len(found) == MAX_SOURCE_TOTAL // chars  # first come, as many as fit
    assert found["big0-0"] == ("/app/big0-0.py", "a" * chars)
    assert kept[f"big{reports - 1}-2"] is None  # the last: beyond the bound
    assert sum("sources are no longer kept" in n for n in notes) == 1, notes


# -- (c) the report directory ---------------------------------------------------------

DIRECTORY = '''
import json, multiprocessing as mp, os, stat, sys, time
import stethoscope

def listener_inode(path):
    with open("/proc/net/unix") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7] == path:
                return parts[6]
    return None

def holds(inode):
    """This process holds a descriptor of that socket."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == f"socket:[{inode}]":
                return True
        except OSError:
            pass
    return False

def child(out, inode):
    with open(out, "w") as f:
        f.write(json.dumps(holds(inode)))

if __name__ == "__main__":
    mon = stethoscope.trace(port=0, quiet=True)
    inbox = json.loads(os.environ["STETHOSCOPE_CHILD"])["inbox"]
    directory = os.path.dirname(inbox)
    inode = listener_inode(inbox)
    out = {"directory": directory, "mode": stat.S_IMODE(os.stat(directory).st_mode),
           "owner": os.stat(directory).st_uid, "listed": inode is not None,
           "parent_holds": holds(inode)}
    pid = os.fork()
    if pid == 0:  # leaves the usual way: atexit handlers and all
        child(sys.argv[1] + ".fork", inode)
        sys.exit(0)
    os.waitpid(pid, 0)
    p = mp.get_context("fork").Process(target=child, args=(sys.argv[1] + ".mp", inode))
    p.start(); p.join()
    out["after_children"] = os.path.exists(inbox)
    out["child_held"] = [json.load(open(sys.argv[1] + ext)) for ext in (".fork", ".mp")]
    print(json.dumps(out), flush=True)
    if sys.argv[2] == "stop":
        stethoscope.stop()
        print(json.dumps(os.path.exists(directory)))
    # else: the program ends, and its monitor with it
'''


@pytest.mark.parametrize("end", ["stop", "exit"])
def test_the_report_directory_is_private_and_goes_with_the_program(
        tmp_path: Path, end: str) -> None:
    path = tmp_path / "directory.py"
    path.write_text(DIRECTORY)
    result = run_python([str(path), str(tmp_path / "held"), end], cwd=tmp_path, timeout=100)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    out = json.loads(lines[0])
    assert out["mode"] == 0o700 and out["owner"] == os.getuid()
    assert out["listed"] and out["parent_holds"]  # the check below can see a copy
    assert out["after_children"]  # a forked child ending never removes the parent's
    assert out["child_held"] == [False, False]  # and closed its inherited copy at once
    if end == "stop":
        assert json.loads(lines[1]) is False  # gone at stop()
    assert not os.path.exists(out["directory"])


def test_the_inbox_is_a_socket_in_a_private_directory_while_the_monitor_runs() -> None:
    with stethoscope.trace(port=0, quiet=True):
        inbox = _inbox()
        st = os.stat(os.path.dirname(inbox))
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
        assert stat.S_ISSOCK(os.stat(inbox).st_mode)
    assert not os.path.exists(os.path.dirname(inbox))


def test_a_spawned_program_lists_its_report_directory_only_while_it_runs(
        tmp_path: Path) -> None:
    program = textwrap.dedent('''
        import json, os, sys, time, stethoscope
        stethoscope.trace(port=0, quiet=True)
        print(json.loads(os.environ["STETHOSCOPE_CHILD"])["inbox"], flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
            time.sleep(0.02)
    ''')
    proc = start_python(["-c", program, str(tmp_path / "go")], cwd=tmp_path)
    try:
        assert proc.stdout is not None
        inbox = proc.stdout.readline().strip()
        assert os.path.exists(inbox)
        (tmp_path / "go").write_text("")
        proc.wait(100)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0
    assert not os.path.exists(os.path.dirname(inbox))


# -- processes that are gone ----------------------------------------------------------


def test_a_pid_that_now_names_another_users_process_is_marked_gone() -> None:
    if os.getuid() != 0:
        pytest.skip("needs root, to run a process as another user")
    from stethoscope.children.watch import ChildWatch
    from stethoscope.model import ProcessTable

    stranger = subprocess.Popen(["sleep", "120"], user=65534)  # as if our child's pid was reused
    ours = subprocess.Popen(["sleep", "120"])
    try:
        table = ProcessTable(own_pid=os.getpid())
        template = json.loads(_template_bytes())
        for pid in (stranger.pid, ours.pid):
            report = dict(template, process=dict(template["process"], pid=pid),
                          snapshot=dict(template["snapshot"], pid=pid))
            table.accept(ChildReport.from_json(json.dumps(report).encode()), 2.0)
        ChildWatch(table, grace=0).check()
        states = {p.pid: (p.state, p.exit_how) for p in table.infos()}
    finally:
        for proc in (stranger, ours):
            proc.kill()
            proc.wait()
    assert states == {stranger.pid: ("killed", "vanished"), ours.pid: ("running", "")}


def test_a_pid_reused_by_a_later_process_of_ours_is_marked_gone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stethoscope.children import watch
    from stethoscope.model import ProcessTable

    ours = subprocess.Popen(["sleep", "120"])
    try:
        table = ProcessTable(own_pid=os.getpid())
        template = json.loads(_template_bytes())
        report = dict(template, process=dict(template["process"], pid=ours.pid),
                      snapshot=dict(template["snapshot"], pid=ours.pid))
        table.accept(ChildReport.from_json(json.dumps(report).encode()), 2.0)
        checker = watch.ChildWatch(table, grace=0)
        checker.check()  # first seen: its start time noted
        assert table.infos()[0].state == "running"
        real = watch.process_start
        monkeypatch.setattr(watch, "process_start", lambda pid: (real(pid) or 0) + 1)
        checker.check()  # the same number, a process started later
        state = table.infos()[0].state
    finally:
        ours.kill()
        ours.wait()
    assert state == "killed"


def test_a_report_naming_a_path_never_makes_the_monitor_read_it(tmp_path: Path) -> None:
    """A report names files by id and path; the monitor serves only texts a report
    carries, never what is at a path it names."""
    secret = tmp_path / "secret.py"
    secret.write_text("API_KEY = 'not-for-the-page'\n")
    named = str(secret)
    secret_id = file_id_for(named)
    heat = ((1, 1, 1, 0, 0, 0, 0, 0, 0, 0),)
    with stethoscope.trace(port=0, quiet=True) as mon:
        out = _send(tmp_path, _inbox(), ["self"], files=(FileHeat(secret_id, named,
                                                                  "secret.py", heat),))
        assert out["answers"][0][0] == "taken", out
        listed = {f.id for f in mon.snapshot("all").files}
        url = f"http://127.0.0.1:{mon.port}/api/source/{secret_id}"
        request = urllib.request.Request(url, headers={"X-Stethoscope-Token": mon.config.token})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)
        assert mon.sources.text(secret_id) is None
    assert secret_id in listed  # listed by the path the report named ...
    assert answer.value.code == 404  # ... with no source to serve
    assert b"not-for-the-page" not in answer.value.read()
