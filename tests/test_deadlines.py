"""Deadlines judged by progress: a busy but moving wait is not a hang, a stalled one is, and the layers nest."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import admission, deadlines
from harness.deadlines import Budget, Deadline, NestingError, Probe, Usage
from harness.errors import HarnessError
from harness.matrix.settings import Settings, Validator, parse_settings

pytestmark = pytest.mark.fast


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeProbe(Probe):
    """Usage that grows by ``per_s`` CPU seconds per second of the fake clock."""

    def __init__(self, clock: FakeClock, per_s: float, waiting_per_s: float = 0.0) -> None:
        object.__setattr__(self, "clock", clock)
        object.__setattr__(self, "per_s", per_s)
        object.__setattr__(self, "waiting_per_s", waiting_per_s)

    def sample(self) -> Usage:
        return Usage(cpu_s=self.clock.now * self.per_s, waiting_s=self.clock.now * self.waiting_per_s)


def run_out(deadline: Deadline, clock: FakeClock) -> float:
    """Advance the fake clock as a waiter would until the deadline expires; returns when."""
    while (left := deadline.poll()) is not None:
        clock.now += max(left, 0.01)
        assert clock.now < 1000, "never expired"
    return clock.now


def test_a_stalled_wait_expires_at_its_deadline() -> None:
    clock = FakeClock()
    deadline = Deadline(30, FakeProbe(clock, per_s=0.001), clock=clock)  # an idle server: 0.1% of a CPU
    assert 30 <= run_out(deadline, clock) < 30.5
    assert deadline.extended == 0 and not deadline.expired_at_cap


def test_a_busy_but_progressing_wait_is_extended_up_to_its_cap() -> None:
    clock = FakeClock()
    deadline = Deadline(30, FakeProbe(clock, per_s=0.3), clock=clock)  # a stub starting on a busy machine
    assert run_out(deadline, clock) == pytest.approx(90, abs=0.5)
    assert deadline.expired_at_cap and deadline.extended >= 5
    assert "extended" in deadline.evidence() and "90 s cap" in deadline.evidence()


def test_a_starved_wait_that_only_queues_for_a_cpu_is_moving() -> None:
    clock = FakeClock()
    deadline = Deadline(10, FakeProbe(clock, per_s=0.0, waiting_per_s=0.5), clock=clock)
    assert run_out(deadline, clock) == pytest.approx(30, abs=0.5)


def test_a_wait_that_stops_moving_expires_one_window_later() -> None:
    clock = FakeClock()

    class StopsAt40(FakeProbe):
        def sample(self) -> Usage:
            return Usage(cpu_s=min(clock.now, 40) * 0.3)

    deadline = Deadline(30, StopsAt40(clock, per_s=0), clock=clock)
    assert 40 < run_out(deadline, clock) <= 40 + 2 * deadlines.window_of(30) + 0.5


def test_without_a_probe_it_is_a_wall_clock_deadline() -> None:
    clock = FakeClock()
    assert 5 <= run_out(Deadline(5, clock=clock), clock) < 5.1


def test_a_real_busy_process_moves_and_a_sleeping_one_does_not() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.3)
        busy_probe, idle_probe = Probe(roots=lambda: [busy.pid]), Probe(roots=lambda: [idle.pid])
        b0, i0 = busy_probe.sample(), idle_probe.sample()
        time.sleep(1.0)
        assert (busy_probe.sample() - b0).moved(1.0)
        assert not (idle_probe.sample() - i0).moved(1.0)
    finally:
        busy.kill()
        idle.kill()
        busy.wait()
        idle.wait()


def test_the_layers_nest_load_case_fallback_cell() -> None:
    budget = Settings().budget()
    names = [name for name, _, _ in budget.layers()]
    assert names == ["load", "case", "fallback", "cell"]
    ends = [end for _, _, end in budget.layers()]
    starts = [start for _, start, _ in budget.layers()]
    assert ends == sorted(ends) and starts == sorted(starts)
    budget.check()
    assert budget.load_cap < budget.case_cap < budget.fallback < budget.cell


@pytest.mark.parametrize("bad", [Budget(load=30, case=30, cell=1800), Budget(load=20, case=30, cell=95)])
def test_a_budget_that_does_not_nest_is_refused(bad: Budget) -> None:
    with pytest.raises(NestingError):
        bad.check()


def test_matrix_settings_that_do_not_nest_are_bad_input_naming_the_key() -> None:
    with pytest.raises(HarnessError, match=r"m.toml: settings: .*load deadline.*case"):
        parse_settings(Validator("m.toml"), {"load_timeout": 60, "case_timeout": 30})


def test_load_slots_bound_every_process_of_the_run(tmp_path: Path) -> None:
    """Two slots: a third holder (another process) waits until one is given back."""
    slots = admission.Slots.create(tmp_path / "slots", 2)
    holder = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from harness.admission import Slots;"
        "from pathlib import Path; s = Slots(Path(sys.argv[2]), 2)\n"
        "with s.held(): print('held', flush=True); time.sleep(float(sys.argv[3]))"
    )
    root = str(Path(__file__).resolve().parent.parent)
    first = subprocess.Popen([sys.executable, "-c", holder, root, str(slots.folder), "1.0"], stdout=subprocess.PIPE)
    second = subprocess.Popen([sys.executable, "-c", holder, root, str(slots.folder), "30"], stdout=subprocess.PIPE)
    try:
        assert first.stdout and first.stdout.readline() == b"held\n"
        assert second.stdout and second.stdout.readline() == b"held\n"
        began = time.monotonic()
        with slots.held() as waited:
            assert 0.3 < time.monotonic() - began < 10 and waited > 0.3, "a third holder got in while two held"
    finally:
        second.kill()  # a killed holder's slot is free at once (the kernel drops its lock)
        second.wait()
        first.wait()
    got = threading.Event()
    with slots.held(), slots.held():
        got.set()
    assert got.is_set()
