"""The run's ETA: the last run's durations at this run's pace, over the slots the scheduler fills."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from test_progress import FakeClock, finish

from harness.run import eta
from harness.progress import DURATIONS_FILE, write_json
from harness.run.progress_view import Progress

pytestmark = pytest.mark.fast


def view_after_a(tmp_path: Path, took: float, *, history: dict[str, float] | None) -> float | None:
    """Cells a, b, c one at a time; a finished in ``took`` s; the ETA then."""
    if history is not None:
        write_json(tmp_path / DURATIONS_FILE, history)
    clock = FakeClock()
    with Progress(["a", "b", "c"], reports=tmp_path, jobs=1, live=False, stream=io.StringIO(), clock=clock) as view:
        assert view.eta_s() == (sum(history.values()) if history else None)  # nothing to go by without history
        view.started("a")
        clock.now += took
        finish(tmp_path, "a", ["passed"])
        view.finished("a", 0, took)
        return view.eta_s()


def test_the_eta_rises_when_this_runs_cells_take_twice_their_history(tmp_path: Path) -> None:
    history = {"a": 60.0, "b": 100.0, "c": 80.0}
    assert view_after_a(tmp_path / "on-time", 60, history=history) == 180
    assert view_after_a(tmp_path / "loaded", 120, history=history) == 360


def test_without_history_the_finished_cells_of_this_run_set_the_pace(tmp_path: Path) -> None:
    assert view_after_a(tmp_path, 50, history=None) == 100


def test_a_running_cell_counts_what_it_has_left_at_this_pace() -> None:
    state = eta.RunState(history={"a": 60, "b": 100}, finished={"a": 90}, running={"b": 40}, pending=())
    assert eta.eta_s(state) == 100 * 1.5 - 40
    late = eta.RunState(history={"b": 100}, finished={}, running={"b": 130}, pending=())
    assert eta.eta_s(late) == 0  # late: its share is spent, not negative


def test_at_the_tail_the_longest_cell_left_decides_not_the_sum_over_the_jobs() -> None:
    history = {"long": 100, "short": 10, "new": 30}
    assert eta.eta_s(eta.RunState(history=history, finished={}, running={}, pending=("long", "short"), jobs=4)) == 100
    # Two slots: long on one, short then new (the median, 30) on the other: 100 either way.
    assert eta.eta_s(eta.RunState(history=history, finished={}, running={}, pending=("long", "short", "x"),
                                  jobs=2)) == 100
    assert eta.eta_s(eta.RunState(history=history, finished={}, running={"long": 20}, pending=("short", "new"),
                                  jobs=1)) == 80 + 30 + 10


def test_cells_that_were_stopped_or_did_not_apply_say_nothing_of_the_pace(tmp_path: Path) -> None:
    write_json(tmp_path / DURATIONS_FILE, {"a": 60.0, "b": 100.0})
    with Progress(["a", "b"], reports=tmp_path, live=False, stream=io.StringIO(), clock=FakeClock()) as view:
        view.started("a")
        view.finished("a", -15, 1)  # stopped after 1 s of its 60
        assert view.eta_s() == 100


def test_a_cell_without_history_is_expected_to_take_what_its_kind_took() -> None:
    """A fresh clone: two short custom cells and one python cell finished; a python cell left is
    expected to take the python cell's time, not the median of all three."""
    state = eta.RunState(history={}, finished={"24.03-custom-cpu-py3.11": 20.0, "24.07-custom-cpu-py3.11": 22.0,
                                              "24.03-python-cpu-py3.11": 150.0},
                         running={}, pending=("24.10-python-cpu-py3.11",), jobs=2)
    assert eta.eta_s(state) == 150.0


def test_a_running_cell_past_a_tenth_of_its_cases_is_judged_by_its_own_pace() -> None:
    state = eta.RunState(history={"a": 60.0}, finished={}, running={"a": 100.0}, pending=(), jobs=1,
                         done_share={"a": 0.5})
    assert eta.eta_s(state) == pytest.approx(100.0)  # half done in 100 s: 100 s left, not 0
    early = eta.RunState(history={"a": 60.0}, finished={}, running={"a": 10.0}, pending=(), jobs=1,
                         done_share={"a": 0.05})
    assert eta.eta_s(early) == pytest.approx(50.0)


def test_a_first_run_projects_its_running_cells_for_the_cells_of_their_kind_left() -> None:
    """A fresh clone 90 s in: the two custom cells finished in 20 s, three python cells are at half after
    60 s (so about 120 s each) and six more are pending on 3 jobs: two more rounds of about 120 s after the
    running ones' 60 s left, not the custom cells' 20 s each (it said "2 min 19 s" with 14 python cells to go)."""
    python = [f"24.{m:02d}-python-cpu-py3.{v}" for m in (3, 7, 10) for v in (9, 10, 11)]
    state = eta.RunState(history={}, finished={"23.10-custom-cpu-py3.11": 20.0, "23.12-custom-cpu-py3.11": 20.0},
                         running={c: 60.0 for c in python[:3]}, pending=tuple(python[3:]), jobs=3,
                         done_share={c: 0.5 for c in python[:3]})
    assert eta.eta_s(state) == pytest.approx(60.0 + 2 * 120.0)


def test_a_first_run_has_no_eta_until_a_cell_finished_or_has_done_a_tenth() -> None:
    state = eta.RunState(history={}, finished={}, running={"a": 5.0}, pending=("b",), jobs=2, done_share={"a": 0.05})
    assert eta.eta_s(state) is None
    assert eta.eta_s(eta.RunState(history={}, finished={}, running={"a": 5.0}, pending=("b",), jobs=2,
                                  done_share={"a": 0.25})) == pytest.approx(20.0)
