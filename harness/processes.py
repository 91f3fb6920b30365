"""Child processes that never outlive the run: one place for dying with the parent and for stopping.

Every process of a run is started through :func:`spawn` and dies with its parent
(``PR_SET_PDEATHSIG``), so a SIGKILL of the top process (an OOM kill, a CI runner that gives up)
brings the whole tree down: scheduler -> cell runner -> pytest -> server -> stubs. Stopping is
:func:`shutdown`: a polite signal, a bounded wait, then SIGKILL of the child's process group.

The grace periods nest: each layer waits longer than the one inside it, so an inner layer always gets
to finish its own cleanup (stop its server, write its JUnit file) before the outer one kills it.
Standard library only (the cell runner and the scheduler import it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.layout import STOP_BUDGET_ENV

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
ORPHAN_SETTLE_S = 5.0  # at most this long to kill and reap the orphans a dead child left

# Seconds each layer gives the layer inside it to stop by itself, innermost first.
SERVER_STOP_GRACE = 10.0  # tritonserver: SIGINT, then its group is killed (matrix: settings.stop_timeout)
PYTEST_STOP_GRACE = SERVER_STOP_GRACE + 5  # pytest stops its servers, then writes its JUnit file
CELL_STOP_GRACE = PYTEST_STOP_GRACE + 5  # the cell runner waits for pytest, then marks the JUnit file
RUN_STOP_GRACE = CELL_STOP_GRACE + 5  # the scheduler waits for its cells, then writes the report
NOX_STOP_GRACE = RUN_STOP_GRACE + 10  # nox waits for the scheduler
# What a stopped cell runner needs after its workers ended: their JUnit files joined, orphans ended.
CELL_WRAP_UP = 2.0


def stop_budget() -> float | None:
    """``$TRITON_MATRIX_STOP_BUDGET``: the seconds from the first stop signal until this process is
    killed, where its parent allows less than the grace periods above (a cancelled GitHub Actions step);
    None where unset. A bad value is a HarnessError, so the cell runner checks it before it starts."""
    text = os.environ.get(STOP_BUDGET_ENV, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > CELL_WRAP_UP:  # also NaN
        raise HarnessError(f"{text!r} is not a number of seconds above {CELL_WRAP_UP:g}",
                           where=STOP_BUDGET_ENV, fix="set it to e.g. 6 (GitHub Actions: SIGTERM comes 7.5 s after SIGINT)")
    return value


def within_stop_budget(grace: float) -> float:
    """``grace``, or less where the stop budget leaves less: the budget less the cell runner's wrap-up."""
    budget = stop_budget()
    return grace if budget is None else min(grace, budget - CELL_WRAP_UP)


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent ends.

    Called in a child before exec (``preexec_fn``) or by a process about itself at start. Note: the
    "parent" is the thread that forked; children are only started from the main thread here.
    """
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signum))


def die_with_parent_now(expected_parent: int | None, signum: int = signal.SIGTERM) -> None:
    """:func:`die_with_parent` for a process about itself; if the parent already went, go too."""
    die_with_parent(signum)
    if expected_parent is not None and os.getppid() != expected_parent:
        os.kill(os.getpid(), signum)


def adopt_orphans() -> None:
    """Become the process that orphans of this one's descendants are handed to (a subreaper).

    A pytest worker that dies by SIGKILL takes its server down (:func:`die_with_parent`), but not the
    server's stubs, and an orphan is otherwise handed to PID 1, out of the run's reach. Handed here
    instead, :func:`end_orphans` kills and reaps them.
    """
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)


def adopts_orphans() -> bool:
    flag = ctypes.c_int(0)
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag))
    return bool(flag.value)


_SPARED: set[int] = set()


def spare(pid: int) -> None:
    """Never take ``pid`` (a child of this process) for an orphan to end: it outlives the run on purpose
    (the run's reaper, ``harness.servers.reaper``)."""
    _SPARED.add(pid)


def adopted(started: Iterable[int]) -> list[int]:
    """This process's children that it did not start itself: orphans handed to it as a subreaper
    (read from ``/proc/self/task/*/children``: each thread lists the children attached to it)."""
    ours, found = set(started) | _SPARED, []
    for children in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(pid) for pid in children.read_text().split() if int(pid) not in ours)
    return found


def reap_adopted(started: Iterable[int]) -> None:
    """Reap the adopted orphans that have ended (a stub of a server its worker stopped), so that no
    zombie waits for the end of the cell. Live ones are left to :func:`end_orphans`."""
    for pid in adopted(started):
        fields = proc_stat(pid)
        if fields is not None and fields[1] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def end_orphans(started: Iterable[int], *, settle: float = ORPHAN_SETTLE_S) -> list[int]:
    """Kill (with their process groups: a server's stubs) and reap every orphan handed to this
    process, until none is left or ``settle`` seconds passed; returns the pids it found.

    ``started``: the children this process started itself (left alone). Does nothing unless this
    process is a subreaper (:func:`adopt_orphans`): elsewhere a child it did not start is someone's.
    """
    if not adopts_orphans():
        return []
    started, found = set(started), []
    deadline = time.monotonic() + settle
    while orphans := adopted(started):
        for pid in orphans:
            if pid not in found:
                found.append(pid)
            fields = proc_stat(pid)
            if fields is not None and fields[1] != "Z":
                group = int(fields[3])
                if group != os.getpgrp():
                    signal_group(group, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return found


def spawn(cmd: Sequence[str], *, own_group: bool = False, death_signal: int = signal.SIGTERM,
          restore_sigint: bool = False, **popen: Any) -> subprocess.Popen[Any]:
    """Start ``cmd`` so that it dies with this process.

    ``own_group``: a process group of its own (a server: the group is what gets killed, stubs with it);
    ``restore_sigint``: SIGINT back to the default where this process was started with it ignored (a
    background job of a non-interactive shell), so Ctrl-C reaches the child.
    """

    def prepare() -> None:
        if restore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        die_with_parent(death_signal)

    return subprocess.Popen(list(cmd), start_new_session=own_group, preexec_fn=prepare, **popen)  # noqa: PLW1509


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """This process on ``cpus`` while a child starts (the child, its threads and its own children inherit
    it); ``None``: no pinning."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def proc_stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` as ``[comm, state, ppid, pgrp, ...]`` (field N of proc(5) at index N - 2),
    or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    return [text[text.find("(") + 1: text.rfind(")")], *text[text.rfind(")") + 2:].split()]


_PF_EXITING = 0x4  # proc(5) stat field 9 (flags): the process is in the middle of exiting


def exiting(pid: int) -> bool:
    """True when ``pid`` has ended or is ending (gone, a zombie, or exiting: its sockets may already be
    closed while its parent cannot reap it yet)."""
    fields = proc_stat(pid)
    if fields is None or fields[1] in ("Z", "X"):
        return True
    try:
        return bool(int(fields[7]) & _PF_EXITING)
    except (IndexError, ValueError):
        return False


def pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def command_lines() -> dict[int, list[bytes]]:
    """Every process's argv, by pid (from ``/proc``; a process that ended while it was read is left out)."""
    found = {}
    for pid in pids():
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
    return found


def group_alive(pgid: int) -> bool:
    """True while a non-zombie process of this process group exists (read from /proc)."""
    for pid in pids():
        fields = proc_stat(pid)
        if fields is not None and len(fields) > 3 and fields[3] == str(pgid) and fields[1] != "Z":
            return True
    return False


def kill_group(proc: subprocess.Popen[Any], *, settle: float = 5.0) -> None:
    """SIGKILL ``proc``'s process group (it leads one) until no member is left, bounded by ``settle``."""
    signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(settle)
    deadline = time.monotonic() + settle
    while group_alive(proc.pid) and time.monotonic() < deadline:
        signal_group(proc.pid, signal.SIGKILL)
        time.sleep(0.02)


def shutdown(proc: subprocess.Popen[Any], *, grace: float, first: int = signal.SIGINT,
             group: bool = False) -> int:
    """Send ``first``, wait up to ``grace`` seconds, then SIGKILL (its group where ``group``).

    Returns the exit code. Like nox's ``shutdown_process``, with one named grace per layer.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    if group:
        kill_group(proc)
    elif proc.poll() is None:
        proc.kill()
    return proc.wait()


def describe_exit(code: int | None) -> str:
    """'exit code 1', 'killed by SIGKILL', or 'still running'."""
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"
