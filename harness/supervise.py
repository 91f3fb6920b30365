"""Deadlines that a blocked thread cannot escape, and the failures the harness diagnoses itself.

pytest-timeout's SIGALRM cannot interrupt a thread blocked in the gRPC C core or in gevent, so the
deadline of a case is kept by a thread of its own (:class:`Watchdog`). At expiry it calls back the
plugin, which records evidence (the case's stack, the server's side) and ends what the case waits on
(the server's process group); the blocked call then returns with an error, the case is judged a
timeout, the server is started again, and the cell goes on.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from harness import servers


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
    """One thread, one deadline at a time: :meth:`arm` before a case, :meth:`disarm` after it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._on_expire: Callable[[], None] | None = None
        self._fired = False
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, seconds: float, on_expire: Callable[[], None]) -> None:
        with self._cond:
            self._deadline = self._clock() + seconds
            self._on_expire = on_expire
            self._fired = False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="case-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; True when the deadline had passed (the callback ran or runs)."""
        with self._cond:
            self._deadline = None
            self._on_expire = None
            self._cond.notify()
            return self._fired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._deadline is None or self._clock() < self._deadline):
                    wait = None if self._deadline is None else max(0.0, self._deadline - self._clock())
                    self._cond.wait(wait)
                if self._closed:
                    return
                callback, self._on_expire, self._deadline = self._on_expire, None, None
                self._fired = True
            if callback is not None:
                callback()


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


def diagnose(exc: BaseException | None, *, expired: tuple[list[str], str] | None, deadline: float,
             interrupted: str | None, server: Any, generation: int | None, stubs: list[str]) -> Exception | None:
    """The harness's own verdict on a failed case, from evidence; None when the case's own error stands.

    ``expired``: what the watchdog saw at the deadline (None when the deadline was kept); ``server``:
    the cell's server, ``generation`` the one the case began with; ``stubs``: what :func:`server_side`
    saw during the case.
    """
    original = f"{type(exc).__name__}: {exc}".strip() if exc is not None else "the case swallowed it"
    if expired is not None:
        said = f" Seen meanwhile: {'; '.join(expired[0])}." if expired[0] else ""
        return CaseTimeout(f"Timeout: no answer within the case's {deadline:g} s deadline; the server was killed "
                           f"to end the wait and is started again for the next case.{said} The case then saw: "
                           f"{original}")
    if interrupted:
        return Interrupted(f"{interrupted} while this case ran: {original}")
    if server is not None and server.generation == generation and server.exit_status() is not None \
            and not server.broken:
        return ServerDied(f"{server.name} ended during this case ({server.exit_status()}): {original}"
                          f"{server.tail_note()}")
    if stubs:
        return StubDied(f"{'; '.join(stubs)} during this case: {original}")
    return None
