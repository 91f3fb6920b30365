"""How long a matrix run has left: what the cells are expected to take, at the pace this run shows,
spread over the jobs slots as the scheduler fills them.

1. Expected: a cell takes what it took last time (``reports/durations.json``); a cell never run, the
   median of the known cells of its kind (its backend: a custom cell of 24 cases is no measure of a
   python cell of 212), else of all known ones; the known ones are the history, else this run's
   finished cells and what its running cells project (a cell that has done a tenth of its cases or
   more: what it spent over the share it has done). A first run's custom cells finish in seconds while
   its python cells are still at half: by finished cells alone it said "2 min" with 14 python cells
   still to start. Nothing to go by yet: no ETA.
2. Pace: this run's finished cells that have a history, their actual time over their expected time
   (sums, so a long cell weighs more than a short one); 1 until one finishes. A machine loaded twice as
   much doubles what is left. Cells that were stopped say nothing of a whole run and are left out.
3. Left: a running cell that has done a tenth of its cases or more, what it spent so far scaled by
   what is left of its cases (its own pace, the best evidence there is); before that, its expected
   time times the pace less what it has spent (not below zero); a pending cell, its expected time
   times the pace.
4. Slots: the running cells hold their slots; each pending cell, longest first (the scheduler's
   order), takes the slot that frees first. The ETA is when the last slot frees: at the tail, with
   fewer cells left than slots, the longest cell decides, not the sum divided by the jobs.

Standard library only.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunState:
    """What the ETA is computed from, in seconds."""

    history: Mapping[str, float]  # cell -> its last finished run (before this run)
    finished: Mapping[str, float]  # cell -> what it took in this run (cells that ran to their end)
    running: Mapping[str, float]  # cell -> how long it has run
    pending: tuple[str, ...]  # the cells not started yet
    jobs: int = 1
    done_share: Mapping[str, float] = field(default_factory=dict)  # running cell -> share of its cases done


OWN_PACE_FROM = 0.1  # a running cell's own pace is trusted once it has done this share of its cases


def typical(durations: Mapping[str, float]) -> float:
    """What a cell without a history is expected to take: the median of the known ones (0 without any)."""
    return statistics.median(durations.values()) if durations else 0.0


def pace(state: RunState) -> float:
    """This run's finished cells: actual over expected (1 until a cell with a history finishes)."""
    known = [cell for cell in state.finished if cell in state.history]
    expected = sum(state.history[c] for c in known)
    return sum(state.finished[c] for c in known) / expected if expected > 0 else 1.0


def kind_of(cell: str) -> str:
    """A cell's backend (``24.10-python-cpu-py3.11-numpy1`` -> ``python``): cells of a kind take alike."""
    parts = cell.split("-")
    return parts[1] if len(parts) > 1 else cell


def like(cell: str, known: Mapping[str, float]) -> float:
    """What a cell without its own record is expected to take: the median of its kind, else of all."""
    same = {c: s for c, s in known.items() if kind_of(c) == kind_of(cell)}
    return typical(same or known)


def projected(state: RunState) -> dict[str, float]:
    """The running cells' whole time by their own pace, those that have done enough to tell."""
    return {cell: spent / share for cell, spent in state.running.items()
            if (share := state.done_share.get(cell, 0.0)) >= OWN_PACE_FROM}


def this_run(state: RunState) -> dict[str, float]:
    """What this run has shown of its cells' times: the finished ones, and the running ones projected."""
    return {**projected(state), **state.finished}


def expected_s(state: RunState, cell: str) -> float:
    """What ``cell`` is expected to take at this run's pace."""
    if state.history:
        own = state.history.get(cell)
        return (own if own is not None else like(cell, state.history)) * pace(state)
    return like(cell, this_run(state))


def left_s(state: RunState, cell: str, spent: float) -> float:
    """What a running cell has left: by its own pace once it has done enough, else by expectation."""
    share = state.done_share.get(cell, 0.0)
    if share >= OWN_PACE_FROM:
        return spent * (1.0 - share) / share
    return max(expected_s(state, cell) - spent, 0.0)


def eta_s(state: RunState) -> float | None:
    """Seconds until the run ends (see the module's docstring); None without anything to go by."""
    if not state.history and not this_run(state):
        return None
    slots = [left_s(state, c, spent) for c, spent in state.running.items()]
    slots += [0.0] * max(0, state.jobs - len(slots))
    heapq.heapify(slots)
    for work in sorted((expected_s(state, c) for c in state.pending), reverse=True):
        heapq.heappush(slots, heapq.heappop(slots) + work)
    return max(slots, default=0.0)
