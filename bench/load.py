"""A machine kept busy while the bench measures: does the matrix give the same states under load?

A CI runner is shared: other jobs take the CPU, and a deadline that holds on an idle machine may not.
One busy Python loop per CPU stands for them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

from harness import processes

BUSY_LOOP = "while True: pass"


def busy_loop_count() -> int:
    """One busy loop per CPU: every core has something else to run too."""
    return os.cpu_count() or 1


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[list[int]]:
    """``count`` busy loops in one process group of their own, started before and killed (the whole
    group, then each waited for) after the block, whatever ends it. Each also dies with this process
    (SIGKILL on its death), so not even a SIGKILL of the bench leaves one running."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            procs.append(processes.spawn([sys.executable, "-c", BUSY_LOOP], death_signal=signal.SIGKILL,
                                         process_group=procs[0].pid if procs else 0, stdin=subprocess.DEVNULL))
        yield [p.pid for p in procs]
    finally:
        if procs:
            processes.signal_group(procs[0].pid, signal.SIGKILL)
            for proc in procs:
                proc.kill()  # a no-op where the group's SIGKILL already ended it
                proc.wait()
