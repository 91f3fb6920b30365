"""CPU seconds of every process of a run, those whose parent ended first included.

``RUSAGE_CHILDREN`` counts a process once its parent has waited for it, and its parent's count
reaches the bench only through waits all the way up. A python stub of a server that was killed (a
deadline, a load that never answered) loses its parent first: reparented to init, its CPU seconds
would not count. Made the subreaper of its descendants, the bench adopts such processes instead and
waits for them itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource

_PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> bool:
    """Become the subreaper of this process's descendants; False where the kernel refused."""
    with contextlib.suppress(Exception):
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1) == 0
    return False


def reap_orphans() -> int:
    """Wait for every child that has ended (adopted ones included, so their CPU seconds count); the
    running ones are left alone. Returns how many were waited for."""
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped += 1


def children_cpu_s() -> float:
    """User + system seconds of every child waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
