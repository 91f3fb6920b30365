"""Deadlines that a blocked thread cannot escape, and the failures the harness diagnoses itself.

pytest-timeout's SIGALRM cannot interrupt a thread blocked in the gRPC C core or in gevent, and it
fires inside pytest's own hooks (a worker's INTERNALERROR), so the deadline of a case is kept by a
thread of its own (:class:`Watchdog`), judged by progress (``harness.deadlines``). At expiry it calls
back the plugin, which records evidence (the case's stack, the server's side, how busy the machine
was) and ends what the case waits on (the server's process group); the blocked call then returns
with an error, the case is judged a timeout, the server is started again, and the cell goes on.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness import servers
from harness.deadlines import Deadline


class CaseTimeout(Exception):
    """The case ran past its deadline; the watchdog ended what it waited on."""


class ServerDied(Exception):
    """The server ended while the case ran."""


class StubDied(Exception):
    """A python backend stub ended abnormally while the case ran: evidence that goes first in the case's
    message (the case's own error follows). Not a verdict of its own: a case that kills a stub on
    purpose is still judged by what it asserts."""


class Interrupted(Exception):
    """The run was stopped (Ctrl-C, SIGTERM, the cell's deadline) while the case ran."""


# pytest-rerunfailures --rerun-except (by name): re-running these only costs their deadline again, and
# a server that cannot start or hangs will not do better the second time.
NOT_RERUN: tuple[type[BaseException], ...] = (
    CaseTimeout, ServerDied, StubDied, Interrupted, *servers.SERVER_ERRORS)


def stack_of(thread_id: int) -> str:
    """Where a thread is now (the case's stack at its deadline)."""
    frame = sys._current_frames().get(thread_id)
    return "".join(traceback.format_stack(frame)) if frame is not None else "(thread gone)"


class Watchdog:
    """One thread, one case at a time: :meth:`arm` before a case, :meth:`disarm` after it.

    At the case's :class:`~harness.deadlines.Deadline` (judged by progress) it calls ``on_expire``, which
    ends what the case waits on. If the case is still running ``fallback_s`` after it began (a case
    blocked in plain Python, which a dead server does not end), it raises :class:`CaseFallback` in the
    case's thread: only while armed, so never inside pytest's own hooks (unlike pytest-timeout's alarm).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: Deadline | None = None
        self._on_expire: Callable[[], None] | None = None
        self._fallback_at: float | None = None
        self._target: int | None = None  # the thread the fallback interrupts
        self._fired = False
        self._injected = False
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, deadline: Deadline, on_expire: Callable[[], None], *, fallback_s: float | None = None) -> None:
        with self._cond:
            self._deadline = deadline
            self._on_expire = on_expire
            self._fallback_at = None if fallback_s is None else deadline.started + fallback_s
            self._target = threading.get_ident()
            self._fired = self._injected = False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="case-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; True when the deadline had passed (the callback ran or runs)."""
        with self._cond:
            if self._injected and self._target is not None:  # not delivered yet: it must not outlive the case
                _set_async_exc(self._target, None)
            self._deadline = self._on_expire = self._fallback_at = self._target = None
            self._cond.notify()
            return self._fired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            callback = None
            with self._cond:
                while not self._closed:
                    wait = self._next_wait()
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._closed:
                    return
                assert self._deadline is not None
                if not self._fired:
                    callback, self._on_expire, self._fired = self._on_expire, None, True
                elif self._fallback_at is not None and self._target is not None:
                    self._fallback_at = None
                    self._injected = True
                    _set_async_exc(self._target, CaseFallback)
            if callback is not None:
                callback()

    def _next_wait(self) -> float | None:
        """Seconds until the watchdog must act (<= 0: now); None while nothing is armed or left to do."""
        if self._deadline is None:
            return None
        if not self._fired:
            left = self._deadline.poll()
            return 0.0 if left is None else left
        if self._fallback_at is not None:
            return self._fallback_at - self._deadline.clock()
        return None


class CaseFallback(CaseTimeout):
    """Raised in a case's thread that still ran well after its deadline had ended its servers."""


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in thread ``thread_id`` when it next runs Python code (None: cancel a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc) if exc is not None else None)


@dataclass(frozen=True)
class Expiry:
    """What the watchdog saw when a case's deadline expired."""

    when: str  # the phase that ran past it: "setup", "call" or "teardown" (pytest's report.when)
    server_side: list[str]
    stack: str
    evidence: str  # how busy the machine was (harness.deadlines.Deadline.evidence)
    saturated: bool


def server_side(servers: list[Any], since: float) -> list[str]:
    """What the servers saw since ``since`` (monotonic): stubs that ended badly, a server that ended.

    A server the harness stopped or killed itself (a spare one at the end of its block, one the
    watchdog ended) is no evidence: its stubs went with it.
    """
    seen: list[str] = []
    for server in servers:
        if server.broken:
            continue
        ended = server.exit_status()
        if ended is not None:
            seen.append(f"{server.name} ended ({ended})")
            continue
        seen += server.ended_stubs(since)
    return seen


PHASE_NAMES = {"setup": " in its fixtures' setup", "teardown": " in its fixtures' teardown"}


def diagnose(exc: BaseException | None, *, expired: Expiry | None, deadline: float,
             interrupted: str | None, server: Any, generation: int | None, stubs: list[str]) -> Exception | None:
    """The harness's own verdict on a failed case, from evidence; None when the case's own error stands.

    ``expired``: what the watchdog saw at the deadline (None when the deadline was kept); ``server``:
    the cell's server, ``generation`` the one the case began with; ``stubs``: what :func:`server_side`
    saw during the case.
    """
    original = f"{type(exc).__name__}: {exc}".strip() if exc is not None else "the case swallowed it"
    if expired is not None:
        said = f" Seen meanwhile: {'; '.join(expired.server_side)}." if expired.server_side else ""
        phase = PHASE_NAMES.get(expired.when, "")
        return CaseTimeout(f"Timeout: no progress within the case's {deadline:g} s deadline{phase} ({expired.evidence}); "
                           f"the server was killed to end the wait and is started again for the next case.{said} "
                           f"The case then saw: {original}")
    if interrupted:
        return Interrupted(f"{interrupted} while this case ran: {original}")
    if server is not None and server.generation == generation and server.exit_status() is not None \
            and not server.broken:
        return ServerDied(f"{server.name} ended during this case ({server.exit_status()}): {original}"
                          f"{server.tail_note()}")
    if stubs:
        return StubDied(f"{'; '.join(stubs)} during this case: {original}")
    return None
