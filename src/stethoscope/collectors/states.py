"""What a thread is doing, read from its stack: a state, and hints for a hang.

Pure functions over plain frames. The innermost Python frame tells most of it:
stdlib frames (queue.get, Thread.join, Event.wait, selectors, socket) name the
wait directly; for C calls made from the user's own line (time.sleep,
sock.recv) the text of that line does. A thread seen using CPU is "running",
whatever its stack says.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from ..files import user
from ..model import Frame

# (file suffix, function names) -> (kind, state)
_STDLIB_WAITS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("threading.py", ("_shutdown",), "exiting",
     "finished: waiting at exit for the non-daemon threads"),
    ("queue.py", ("Queue.get", "get"), "queue.get", "waiting in queue.get()"),
    ("queue.py", ("Queue.put", "put"), "queue.put", "waiting in queue.put()"),
    ("threading.py", ("Thread._wait_for_tstate_lock", "_wait_for_tstate_lock",
                      "Thread.join", "join"), "join", "waiting in Thread.join()"),
    ("threading.py", ("Event.wait",), "event", "waiting in Event.wait()"),
    ("threading.py", ("Barrier.wait", "Barrier._wait"), "barrier", "waiting in Barrier.wait()"),
    ("threading.py", ("Semaphore.acquire", "acquire"), "lock", "waiting in Semaphore.acquire()"),
    ("threading.py", ("Condition.wait", "Condition.wait_for", "wait", "wait_for"), "condition",
     "waiting in Condition.wait()"),
    ("_base.py", ("Future.result", "result", "wait", "as_completed", "Future._wait"),
     "future", "waiting for a Future"),
    ("selectors.py", ("EpollSelector.select", "PollSelector.select", "SelectSelector.select",
                      "select"), "select", "waiting in select()"),
    ("socket.py", ("socket.accept", "accept"), "socket.accept", "waiting in socket.accept()"),
    ("socket.py", ("SocketIO.readinto", "readinto"), "socket.recv", "waiting in a socket read"),
    ("ssl.py", ("SSLSocket.recv", "SSLSocket.read", "recv", "read", "recv_into"),
     "socket.recv", "waiting in a socket read"),
    ("subprocess.py", ("Popen.wait", "Popen._wait", "Popen.communicate", "wait", "_wait",
                       "communicate", "_try_wait"), "subprocess", "waiting for a child process"),
    ("socketserver.py", ("BaseServer.serve_forever", "serve_forever"), "server",
     "serving requests in serve_forever()"),
)

# Text of the innermost line -> (kind, state), for C calls.
_LINE_WAITS: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern), kind, state) for pattern, kind, state in (
        (r"\.recv(?:_into|from|from_into|msg)?\(", "socket.recv", "waiting in socket.recv()"),
        (r"\.accept\(", "socket.accept", "waiting in socket.accept()"),
        (r"\.(?:sendall|send)\(", "socket.send", "waiting in socket.send()"),
        (r"\bsleep\(", "sleep", "sleeping in time.sleep()"),
        (r"\.acquire\(|^\s*with\b.*\block\b", "lock", "waiting for a lock"),
        (r"\.join\(", "join", "waiting in join()"),
        (r"\.get\(", "queue.get", "waiting in get()"),
        (r"\.wait\(", "event", "waiting in wait()"),
        (r"\bselect\(|\.poll\(", "select", "waiting in select()"),
        (r"\binput\(", "input", "waiting for input()"),
        (r"\.read(?:line|lines|into)?\(", "read", "waiting in a read"),
    )
)

HINT_EXECUTOR = ("a concurrent.futures.ThreadPoolExecutor worker whose task never ends: at exit "
                 "Python joins these workers, so make the task return (timeout, stop flag) or "
                 "call executor.shutdown(cancel_futures=True) and end the task")
HINT_SOCKETSERVER = ("a socketserver request thread: ThreadingMixIn.daemon_threads is False, so "
                     "each open connection holds the exit; set daemon_threads = True (as "
                     "ThreadingHTTPServer does) and call server.shutdown() and server_close()")
HINT_SERVE_FOREVER = ("serve_forever() never returns by itself: call server.shutdown() from "
                      "another thread, then server_close()")

HINTS = {
    "queue.get": "queue.get() without a timeout waits forever: use get(timeout=...) in a loop "
                 "that checks a stop flag, or put a sentinel that ends the loop before exit",
    "queue.put": "queue.put() on a full queue waits forever: use put(timeout=...) or drain the "
                 "queue before exit",
    "join": "it waits for another thread that has not ended: see that thread",
    "event": "Event.wait() without a timeout: set() the event before exit, or wait(timeout=...) "
             "in a loop that checks a stop flag",
    "condition": "Condition.wait() without a timeout: notify() it before exit, or wait with a "
                 "timeout and a stop flag",
    "barrier": "a Barrier that never fills: abort() it before exit, or wait with a timeout",
    "lock": "waiting for a lock that is never released: acquire(timeout=...) and find its holder",
    "future": "waiting for a Future whose task never ends: result(timeout=...), or cancel it",
    "select": "select() without a timeout: give it a timeout and check a stop flag, or close "
              "what it waits on",
    "socket.recv": "a socket read without a timeout: call sock.settimeout(...) and check a stop "
                   "flag, or shutdown() and close() the socket before exit",
    "socket.accept": "accept() without a timeout: settimeout(...) on the listening socket, or "
                     "close it before exit",
    "socket.send": "a send that the peer never reads: settimeout(...) or close the connection",
    "sleep": "it sleeps: use Event.wait(timeout) instead, so it can be woken at exit",
    "subprocess": "it waits for a child process: give wait()/communicate() a timeout, or "
                  "terminate the child before exit",
    "input": "it waits for input(): run it in a daemon thread, or close stdin",
    "read": "a blocking read: give it a timeout, or close what it reads from before exit",
    "server": HINT_SERVE_FOREVER,
    "exiting": "the main thread is waiting at exit for the non-daemon threads",
    "running": "it is still running Python code: give its loop a stop flag, or make it "
               "daemon=True if it may be killed at exit",
    "waiting": "it waits in C code without a timeout: give the call a timeout and a stop flag, "
               "or close what it waits on",
}
def _suffix(path: str) -> str:
    return os.path.basename(path)


def classify(stack: Sequence[Frame], busy: bool | None, top_line: str = "") -> tuple[str, str]:
    """(kind, state) for a thread whose stack is ``stack``, innermost first."""
    if busy:
        return "running", "running Python code"
    # The library frames on top of the stack; the outermost one that is a known
    # wait is the call the program made (Queue.get, not the Condition.wait inside).
    library = []
    for frame in stack:
        if user(frame.path):
            break
        library.append(frame)
    for frame in reversed(library):
        name = _suffix(frame.path)
        for suffix, funcs, kind, state in _STDLIB_WAITS:
            if name == suffix and frame.func in funcs:
                if kind == "condition" and _is_event_wait(library):
                    return "event", "waiting in Event.wait()"
                return kind, state
    for pattern, kind, state in _LINE_WAITS:
        if pattern.search(top_line):
            return kind, state
    if busy is None:
        return "running", "running (no CPU figures on this system)"
    return "waiting", "waiting in C code"


def _is_event_wait(stack: Sequence[Frame]) -> bool:
    # On 3.10 frames carry bare names: Event.wait calls Condition.wait, so two
    # nested "wait" frames in threading.py mean Event.wait.
    waits = [f for f in stack if _suffix(f.path) == "threading.py" and f.func == "wait"]
    return len(waits) >= 2


def in_stack(stack: Sequence[Frame], filename_suffix: str, funcs: tuple[str, ...]) -> bool:
    return any(f.path.endswith(filename_suffix) and f.func.rsplit(".", 1)[-1] in funcs
               for f in stack)


def hints(kind: str, stack: Sequence[Frame], birth_stack: Sequence[Frame],
          inherited_from: str | None, join_target: str | None) -> tuple[str, ...]:
    """What to change so this thread stops holding the exit, most specific first."""
    out: list[str] = []
    if kind == "join" and join_target:
        out.append(f"it waits in join() for thread {join_target!r}, which has not ended: "
                   f"see that thread")
    else:
        out.append(HINTS.get(kind, HINTS["waiting"]))
    whole = [*stack, *birth_stack]
    if in_stack(whole, os.path.join("concurrent", "futures", "thread.py"), ("_worker",
                                                                           "_adjust_thread_count")):
        out.append(HINT_EXECUTOR)
    if in_stack(whole, "socketserver.py", ("process_request_thread", "process_request")):
        out.append(HINT_SOCKETSERVER)
    if inherited_from is not None:
        out.append(f"it is non-daemon only because it was started from {inherited_from} "
                   f"(itself non-daemon) without daemon=...: threads inherit the creator's "
                   f"flag; pass daemon=True if it may be killed at exit")
    return tuple(out)
