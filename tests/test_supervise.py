"""The watchdog that keeps a case's deadline from outside the case's thread."""

from __future__ import annotations

import threading
import time

import pytest

from harness.incell import supervise
from harness.deadlines import Deadline

pytestmark = pytest.mark.fast


def test_fires_once_at_the_deadline_from_another_thread() -> None:
    dog = supervise.Watchdog()
    fired: list[int] = []
    done = threading.Event()
    dog.arm(Deadline(0.2), lambda: (fired.append(threading.get_ident()), done.set()))
    started = time.monotonic()
    assert done.wait(5), "the deadline was not kept"
    assert 0.15 < time.monotonic() - started < 2
    assert fired and fired[0] != threading.get_ident(), "it runs outside the (blocked) case thread"
    assert dog.disarm() is True
    dog.close()


def test_disarmed_in_time_never_fires() -> None:
    dog = supervise.Watchdog()
    fired = threading.Event()
    dog.arm(Deadline(0.3), fired.set)
    assert dog.disarm() is False
    assert not fired.wait(0.6)
    dog.close()


def test_rearmed_for_the_next_case_keeps_the_new_deadline() -> None:
    dog = supervise.Watchdog()
    first, second = threading.Event(), threading.Event()
    dog.arm(Deadline(0.2), first.set)
    dog.disarm()
    dog.arm(Deadline(0.3), second.set)
    assert second.wait(5) and not first.is_set()
    dog.close()


def test_stack_of_a_blocked_thread_names_where_it_waits() -> None:
    release = threading.Event()

    def blocked_in_a_named_place() -> None:
        release.wait(10)

    thread = threading.Thread(target=blocked_in_a_named_place)
    thread.start()
    time.sleep(0.1)
    try:
        assert "blocked_in_a_named_place" in supervise.stack_of(thread.ident or 0)
    finally:
        release.set()
        thread.join()


def test_diagnosed_failures_are_not_rerun() -> None:
    names = {kind.__name__ for kind in supervise.NOT_RERUN}
    assert {"CaseTimeout", "ServerDied", "StubDied", "Interrupted", "ServerExited", "LoadTimeout"} <= names


def test_the_fallback_ends_a_case_blocked_in_plain_python_only_while_armed() -> None:
    """A case that a dead server does not end (a loop in plain Python) gets CaseFallback in its own
    thread at the fallback; a case disarmed before it never sees one afterwards."""
    dog = supervise.Watchdog()
    expired = threading.Event()
    dog.arm(Deadline(0.1), expired.set, fallback_s=0.3)
    began = time.monotonic()
    with pytest.raises(supervise.CaseFallback):
        while time.monotonic() - began < 5:
            pass
    assert expired.is_set() and 0.25 < time.monotonic() - began < 2
    dog.disarm()
    dog.arm(Deadline(0.1), lambda: None, fallback_s=0.2)
    dog.disarm()
    time.sleep(0.4)  # nothing pending may fire after the case was disarmed
    dog.close()


def test_a_fallback_is_a_timeout_verdict() -> None:
    assert issubclass(supervise.CaseFallback, supervise.CaseTimeout)
