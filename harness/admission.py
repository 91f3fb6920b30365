"""Admission control: one bound, shared by every process of a run, on the model loads in flight.

A python model's load starts its stub, a Python interpreter that imports numpy: a fraction of a CPU
second each. A module loads its eleven models at once, a dozen workers do so together, and on two
cores every one of those loads then crawls. So every process of a run takes a slot before a load or
an unload and gives it back after: an exclusive ``flock`` on one of N files in a folder the scheduler
names in ``$TRITON_MATRIX_SLOTS`` (``<folder>:<count>``). The kernel releases the lock of a process that
dies, so a crash never leaks a slot. The time spent waiting for a slot counts against no deadline.

Standard library only: the scheduler, the cell runner and the in-cell plugin (any Python 3.9+) use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from harness.deadlines import cpu_count
from harness.layout import SLOTS_ENV

# Model loads and unloads in flight, per CPU, across the whole run. A python model's load mostly waits
# (its stub starts in about a second and uses a tenth of a CPU second of it): at 2 per CPU twelve
# workers left a third of the CPUs idle, queued for slots; at 4 a CPU still serves them without a queue.
LOADS_PER_CPU = 4
# pytest workers (each with its server and stubs) alive at once, per CPU. Measured: a python cell's
# worker keeps about a sixth of a CPU busy (the 24.10 py3.11 cell alone: 46 CPU s in 68 s for 4
# workers, with compiled venvs and one BLAS thread per stub), so six per CPU fill the CPUs without
# queueing on them; the load slots keep their bursts (a module's loads) from piling up.
SERVERS_PER_CPU = 6
POLL_S = 0.02


def load_slots(cpus: int | None = None) -> int:
    return max(2, LOADS_PER_CPU * (cpus or cpu_count()))


def server_budget(cpus: int | None = None) -> int:
    """How many workers, each with its server and stubs, the CPUs serve at once without starving them."""
    return max(2, SERVERS_PER_CPU * (cpus or cpu_count()))


class Slots:
    """N slots in ``folder``; :meth:`held` waits for a free one."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder = folder
        self.count = count

    @classmethod
    def create(cls, folder: Path, count: int | None = None) -> Slots:
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder, count or load_slots())

    def env_value(self) -> str:
        return f"{self.folder}:{self.count}"

    @classmethod
    def from_env(cls) -> Slots | None:
        """The run's slots, or None where no scheduler or cell runner named any (then loads are not bounded)."""
        value = os.environ.get(SLOTS_ENV, "")
        folder, _, count = value.rpartition(":")
        if not folder or not count.isdigit() or int(count) < 1:
            return None
        return cls(Path(folder), int(count))

    @contextlib.contextmanager
    def held(self) -> Iterator[float]:
        """Hold one slot for the block; yields the seconds spent waiting for it."""
        began = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            for k in range(self.count):
                fd = os.open(self.folder / f"slot-{k}", os.O_CREAT | os.O_RDWR, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                try:
                    yield time.monotonic() - began
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                return
            time.sleep(POLL_S)


@contextlib.contextmanager
def admitted() -> Iterator[float]:
    """A slot of this run's bound (none where the run named no slots); yields the seconds waited."""
    slots = Slots.from_env()
    if slots is None:
        yield 0.0
        return
    with slots.held() as waited:
        yield waited
