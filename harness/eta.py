"""How long a matrix run has left: what the cells are expected to take, at the pace this run shows,
spread over the jobs slots as the scheduler fills them.

1. Expected: a cell takes what it took last time (``reports/durations.json``); a cell never run, the
   median of the known ones; without any history, the median of this run's finished cells (no
   history and nothing finished yet: no ETA).
2. Pace: this run's finished cells that have a history, their actual time over their expected time
   (sums, so a long cell weighs more than a short one); 1 until one finishes. A machine loaded twice as
   much doubles what is left. Cells that were stopped say nothing of a whole run and are left out.
3. Left: a running cell, its expected time times the pace less what it has spent (not below zero); a
   pending cell, its expected time times the pace.
4. Slots: the running cells hold their slots; each pending cell, longest first (the scheduler's
   order), takes the slot that frees first. The ETA is when the last slot frees: at the tail, with
   fewer cells left than slots, the longest cell decides, not the sum divided by the jobs.

Standard library only.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RunState:
    """What the ETA is computed from, in seconds."""

    history: Mapping[str, float]  # cell -> its last finished run (before this run)
    finished: Mapping[str, float]  # cell -> what it took in this run (cells that ran to their end)
    running: Mapping[str, float]  # cell -> how long it has run
    pending: tuple[str, ...]  # the cells not started yet
    jobs: int = 1


def typical(durations: Mapping[str, float]) -> float:
    """What a cell without a history is expected to take: the median of the known ones (0 without any)."""
    return statistics.median(durations.values()) if durations else 0.0


def pace(state: RunState) -> float:
    """This run's finished cells: actual over expected (1 until a cell with a history finishes)."""
    known = [cell for cell in state.finished if cell in state.history]
    expected = sum(state.history[c] for c in known)
    return sum(state.finished[c] for c in known) / expected if expected > 0 else 1.0


def expected_s(state: RunState, cell: str) -> float:
    """What ``cell`` is expected to take at this run's pace."""
    if state.history:
        return state.history.get(cell, typical(state.history)) * pace(state)
    return typical(state.finished)


def eta_s(state: RunState) -> float | None:
    """Seconds until the run ends (see the module's docstring); None without anything to go by."""
    if not state.history and not state.finished:
        return None
    slots = [max(expected_s(state, c) - spent, 0.0) for c, spent in state.running.items()]
    slots += [0.0] * max(0, state.jobs - len(slots))
    heapq.heapify(slots)
    for work in sorted((expected_s(state, c) for c in state.pending), reverse=True):
        heapq.heappush(slots, heapq.heappop(slots) + work)
    return max(slots, default=0.0)
