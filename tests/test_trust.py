"""The program's descriptors are the program's: stethoscope never reads, writes or
closes a number the program has taken over, and never sits on 0-2."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import child_env, run_cli, run_python

CLOSERANGE = textwrap.dedent("""
    import os, sys, threading, time
    folder, recording = sys.argv[1], sys.argv[2]
    if recording != "-":   # let the recorder write its first snapshot after the header
        start, end = os.path.getsize(recording), time.monotonic() + 60
        while os.path.getsize(recording) == start and time.monotonic() < end:
            time.sleep(0.01)
    os.closerange(3, 1024)   # as daemonising code does: every inherited descriptor
    fds = [os.open(os.path.join(folder, f"uf{i}.txt"), os.O_WRONLY | os.O_CREAT, 0o600)
           for i in range(8)]
    n = 0
    end = time.monotonic() + 2.5   # the workload: writes while the recorder runs
    while time.monotonic() < end:
        for fd in fds:
            os.write(fd, b"line %d\\n" % n)
        n += 1
        time.sleep(0.02)
    t = threading.Thread(target=lambda: None)   # the program's own threads still start
    t.start(); t.join()
    for fd in fds:
        os.close(fd)
    print(n)
""")


def test_closerange_under_record_leaves_the_programs_files_alone(tmp_path: Path) -> None:
    script = tmp_path / "daemonish.py"
    script.write_text(CLOSERANGE)
    plain = run_python([str(script), str(tmp_path), "-"])
    assert plain.returncode == 0, plain.stderr
    for name in os.listdir(tmp_path):
        if name.startswith("uf"):
            os.unlink(tmp_path / name)

    record = tmp_path / "run.stetho"
    proc = run_cli(["run", "--port", "0", "--record", str(record), str(script),
                    str(tmp_path), str(record)], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    n = int(proc.stdout.split()[-1])
    expected = b"".join(b"line %d\n" % i for i in range(n))
    for i in range(8):
        assert (tmp_path / f"uf{i}.txt").read_bytes() == expected, f"uf{i}.txt was touched"
    # The recorder noticed that its descriptor is gone (it tries at the latest when it
    # writes the end) and said so, instead of writing into whatever took the number.
    assert "closed or replaced its descriptor" in proc.stderr, proc.stderr
    assert "recorded to" not in proc.stderr
    # What was written before the program closed it stays readable.
    text = run_cli(["export", "--format", "text", str(record)])
    assert text.returncode == 0, text.stderr
    assert "daemonish.py" in text.stdout


LOWEST = textwrap.dedent("""
    import os
    first = os.open(os.devnull, os.O_RDONLY)
    second = os.open(os.devnull, os.O_RDONLY)
    os.write(1, b"%d %d\\n" % (first, second))
""")


def test_closed_standard_descriptors_are_never_taken(tmp_path: Path) -> None:
    """With stdin and stderr closed, the program's next two open()s get 0 and 2, as
    they would without stethoscope (its sockets and recording sit above 2)."""
    script = tmp_path / "lowest.py"
    script.write_text(LOWEST)
    record = tmp_path / "low.stetho"

    def close_0_and_2() -> None:
        os.close(0)
        os.close(2)

    proc = subprocess.run(
        [sys.executable, "-m", "stethoscope", "run", "--port", "0", "--record", str(record),
         str(script)], env=child_env(), stdout=subprocess.PIPE, timeout=120,
        preexec_fn=close_0_and_2)
    assert proc.returncode == 0
    assert proc.stdout.split() == [b"0", b"2"], proc.stdout
    assert record.stat().st_size > 0
