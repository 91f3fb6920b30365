"""Deadlines judged by progress: the one mechanism behind every wait of a cell.

A wait is a hang when what it waits on has stopped moving, not when a wall clock ran out on a busy
machine. What moves: the CPU time of the processes waited on (the server, its python backend stubs,
the worker's own main thread), the time they spent runnable but waiting for a CPU (a starved process
wants to run: it is slow, not stuck; ``/proc/<pid>/task/<tid>/schedstat``), and the bytes of the
server's log. A :class:`Deadline` of ``seconds`` expires at ``seconds`` unless that moved in the last
window, and then one window later, and so on, never later than its cap (``CAP_FACTOR`` x ``seconds``),
so that nothing can stall a run.

The nesting rule (:class:`Budget`): each layer's longest wait ends before the layer outside it gives up,
so the innermost one that knows what it waited on reports it: a model load < a case < the case's
fallback < the cell. :func:`budget` checks it where the settings are read.

Standard library only: the in-cell plugin (any Python 3.9+) and the cell runner use it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.compat import KW_ONLY

CAP_FACTOR = 3.0  # a moving wait is given up to this many times its deadline
WINDOW_MAX_S = 10.0  # progress is judged over the last window: a third of the deadline, at most this
MOVING_SHARE = 0.02  # CPU + run-queue seconds per second of window that count as moving (an idle
# server with loaded python models and a client polling it use well under 1%)
FALLBACK_MARGIN_S = 10.0  # after the case's cap, the fallback ends a case blocked in plain Python
SATURATED_WAIT_SHARE = 0.10  # run-queue waits of this share of the wait: the machine was saturated


def cpu_count() -> int:
    """The CPUs this process may use (a cgroup or taskset limit included, where the OS says so)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Usage:
    """What the processes waited on had done up to one moment."""

    cpu_s: float = 0.0
    waiting_s: float = 0.0  # runnable, waiting for a CPU
    log_bytes: int = 0

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu_s - other.cpu_s, self.waiting_s - other.waiting_s, self.log_bytes - other.log_bytes)

    def moved(self, window_s: float) -> bool:
        """True when this difference is progress over a window of ``window_s`` seconds."""
        return self.log_bytes > 0 or self.cpu_s + self.waiting_s >= MOVING_SHARE * window_s


def thread_usage(pid: int, tid: int | None = None) -> tuple[float, float]:
    """(CPU seconds, run-queue seconds) of one thread, or of every thread of ``pid``; (0, 0) when gone."""
    tids = [tid] if tid is not None else _tids(pid)
    cpu = wait = 0
    for one in tids:
        try:
            with open(f"/proc/{pid}/task/{one}/schedstat", encoding="ascii") as fh:
                fields = fh.read().split()
            cpu += int(fields[0])
            wait += int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    return cpu / 1e9, wait / 1e9


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (a server's python backend stubs)."""
    found: list[int] = []
    for tid in _tids(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                found += [int(p) for p in fh.read().split()]
        except (OSError, ValueError):
            continue
    return found


def _tids(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


@dataclass(frozen=True, **KW_ONLY)
class Probe:
    """Where to look for progress: process trees (a server and its stubs, by their root pids, asked anew
    each time: a restarted server has a new pid), single threads (the worker's main thread) and logs."""

    roots: Callable[[], Iterable[int]] = tuple
    threads: tuple[tuple[int, int], ...] = ()  # (pid, tid)
    logs: Callable[[], Iterable[Path]] = tuple

    def sample(self) -> Usage:
        cpu = wait = 0.0
        for root in self.roots():
            for pid in (root, *children(root)):
                c, w = thread_usage(pid)
                cpu, wait = cpu + c, wait + w
        for pid, tid in self.threads:
            c, w = thread_usage(pid, tid)
            cpu, wait = cpu + c, wait + w
        size = 0
        for log in self.logs():
            try:
                size += log.stat().st_size
            except OSError:
                continue
        return Usage(cpu, wait, size)


def main_thread_probe() -> Probe:
    """The calling thread of this process (a blocked client call uses none of it)."""
    return Probe(threads=((os.getpid(), threading.get_native_id()),))


def combine(*probes: Probe) -> Probe:
    return Probe(roots=lambda: [r for p in probes for r in p.roots()],
                 threads=tuple(t for p in probes for t in p.threads),
                 logs=lambda: [log for p in probes for log in p.logs()])


_ambient: Probe | None = None  # what a case's own waits watch (set by the cell's plugin)


def set_ambient(probe: Probe | None) -> None:
    global _ambient
    _ambient = probe


def for_wait(seconds: float) -> Deadline:
    """A deadline for a case's own wait (a poll of statistics, of the log, of a model's state), judged
    by the progress of the servers the case uses: a case library's helpers call this."""
    return Deadline(seconds, _ambient)


def window_of(seconds: float) -> float:
    return max(0.05, min(WINDOW_MAX_S, seconds / 3))


@dataclass
class Deadline:
    """``seconds`` to finish, longer while what it waits on moves, never past ``cap``.

    Poll it: :meth:`poll` returns None once the deadline has expired, else the seconds until it needs
    looking at again. Without a probe it is a plain wall-clock deadline.
    """

    seconds: float
    probe: Probe | None = None
    cap_factor: float = CAP_FACTOR
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    extended: int = field(init=False, default=0)
    expired_at_cap: bool = field(init=False, default=False)
    _first: Usage | None = field(init=False, default=None)
    _baseline: tuple[float, Usage] | None = field(init=False, default=None)
    _judge_at: float = field(init=False)
    _last: Usage | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self._judge_at = self.seconds
        self._window = window_of(self.seconds)
        if self.probe is not None:
            self._first = self._last = self.probe.sample()

    @property
    def cap(self) -> float:
        return self.seconds * self.cap_factor

    def elapsed(self) -> float:
        return self.clock() - self.started

    def poll(self) -> float | None:
        """None when expired; else seconds until the next look (at most one window, never past the cap)."""
        now = self.elapsed()
        if now >= self.cap:
            self.expired_at_cap = True
            return None
        left = self._judge(now)
        return None if left is None else min(left, self.cap - now)

    def _judge(self, now: float) -> float | None:
        if self.probe is None:
            return None if now >= self.seconds else min(self.seconds - now, self._window)
        start_window = self._judge_at - self._window
        if now < start_window:
            return min(start_window - now, self._window)
        if self._baseline is None:
            self._baseline = (now, self._sample())
            return max(0.0, self._judge_at - now)
        if now < self._judge_at:
            return self._judge_at - now
        taken, before = self._baseline
        current = self._sample()
        if not (current - before).moved(max(now - taken, 1e-3)):
            return None
        self.extended += 1
        self._judge_at = now + self._window
        self._baseline = (now, current)
        return self._window

    def _sample(self) -> Usage:
        assert self.probe is not None
        self._last = self.probe.sample()
        return self._last

    def wait(self, done: Callable[[], bool], *, interval: float = 0.05,
             sleep: Callable[[float], None] = time.sleep) -> bool:
        """Poll ``done`` until it is true (True) or the deadline expires (False)."""
        while not done():
            left = self.poll()
            if left is None:
                return False
            sleep(max(0.001, min(interval, left)))
        return True

    def used(self) -> Usage:
        """What the processes waited on did during the wait (as last sampled)."""
        if self.probe is None or self._first is None:
            return Usage()
        return self._sample() - self._first

    def saturated(self) -> bool:
        """The machine was saturated during the wait: its load exceeded the CPUs, or what was waited
        on spent a tenth of the wait queued for a CPU."""
        return load_average() > cpu_count() or self.used().waiting_s >= SATURATED_WAIT_SHARE * self.elapsed()

    def evidence(self) -> str:
        """How busy the machine was and what the waited-on processes did: every timeout says it."""
        used = self.used()
        parts = [f"load average {load_average():.1f} on {cpu_count()} CPUs"]
        if self.probe is not None:
            parts.append(f"what it waited on used {used.cpu_s:.2f} CPU s and waited {used.waiting_s:.2f} s "
                         f"for a CPU in {self.elapsed():.0f} s")
            if self.extended:
                parts.append(f"the deadline was extended {self.extended} time(s) while it moved"
                             + (f", up to its {self.cap:g} s cap" if self.expired_at_cap else ""))
        return "; ".join(parts)


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


# -- the nesting rule ---------------------------------------------------------------------------


class NestingError(ValueError):
    """A layer's deadline does not end before the layer outside it gives up."""


@dataclass(frozen=True, **KW_ONLY)
class Budget:
    """Every deadline of a cell, innermost first; each layer's cap ends before the next layer's
    deadline can, so the innermost waiter reports what it waited on."""

    load: float  # one model load, unload or server start (settings.load_timeout)
    case: float  # one case (settings.case_timeout, or its marker)
    cell: float  # the whole cell (settings.cell_timeout)

    @property
    def load_cap(self) -> float:
        return self.load * CAP_FACTOR

    @property
    def case_cap(self) -> float:
        return self.case * CAP_FACTOR

    @property
    def fallback(self) -> float:
        """When a case blocked in plain Python is ended from outside (after the servers were killed)."""
        return self.case_cap + FALLBACK_MARGIN_S

    def layers(self) -> list[tuple[str, float, float]]:
        """(name, deadline, latest end) innermost first."""
        return [("load", self.load, self.load_cap), ("case", self.case, self.case_cap),
                ("fallback", self.fallback, self.fallback), ("cell", self.cell, self.cell)]

    def check(self) -> None:
        """Deadlines and latest ends both grow outwards, or :class:`NestingError` names the pair."""
        layers = self.layers()
        for (inner, inner_deadline, inner_end), (outer, outer_deadline, outer_end) in zip(layers, layers[1:]):
            if inner_deadline >= outer_deadline or inner_end >= outer_end:
                raise NestingError(f"the {inner} deadline ({inner_deadline:g} s, at most {inner_end:g} s) must end "
                                   f"before the {outer} one ({outer_deadline:g} s, at most {outer_end:g} s)")
