"""What the window of stored runs (``history``) says: per (case, cell) since when and how often, and the trends.

For each (case, cell) of this run: its states over the window (a strip, oldest first), its flake rate
(the runs it was flaky in, of the runs it ran in), how often it flipped between red and not red,
"failing since" (the first run of its current red streak, with the revision) and "first seen" (the
first run of the window where it was red). Per cell and per case, a duration trend: this run against
the median of the window's earlier runs. Per known issue, the last run it occurred in. And the run
before this one, as a baseline, for "what changed since the last run".

A (case, cell) whose state was the same in every run of the window, and is neither red nor flaky, is
steady: renderers count steady pairs instead of listing them, so the report stays small at any size.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.report.diff import Baseline
from harness.report.history import DEFAULT_WINDOW, Run, Window
from harness.states import State

DID_NOT_RUN = (State.NOT_APPLICABLE, State.SKIPPED, State.MISSING)
# compat.json's history writes a pair's states as one letter per run; the legend is written with them.
CODES = {State.ERROR: "E", State.TIMEOUT: "T", State.FAILED: "F", State.MISSING: "M", State.UNEXPECTEDLY_PASSING: "U",
         State.FLAKY: "R", State.KNOWN_INCOMPATIBLE: "K", State.PASSED: "P", State.SKIPPED: "S",
         State.NOT_APPLICABLE: "N"}
ABSENT = "-"  # the run had no such (case, cell)
COLUMNS = ("case", "cell", "states", "flake_rate", "flips", "failing_since", "first_seen")


@dataclass(frozen=True)
class Since:
    """A run named to a reader: its id, time and revision."""

    run: str
    label: str
    revision: str | None
    window_start: bool = False  # the first run of the window: it may go back further


@dataclass(frozen=True)
class PairHistory:
    case: str
    cell: str
    states: tuple[State | None, ...]  # oldest first, this run last; None: the run had no such (case, cell)
    failing_since: Since | None = None
    first_seen: Since | None = None

    @property
    def ran(self) -> int:
        return sum(1 for s in self.states if s is not None and s not in DID_NOT_RUN)

    @property
    def flaky(self) -> int:
        return sum(1 for s in self.states if s == State.FLAKY)

    @property
    def flake_rate(self) -> float:
        return self.flaky / self.ran if self.ran else 0.0

    @property
    def flips(self) -> int:
        """Changes between red and not red, from one run it ran in to the next."""
        ran = [s.bad for s in self.states if s is not None and s not in DID_NOT_RUN]
        return sum(1 for a, b in zip(ran, ran[1:]) if a != b)

    @property
    def steady(self) -> bool:
        now = self.states[-1]
        return now is not None and not now.bad and self.flaky == 0 and all(s == now for s in self.states)

    def row(self, case: int, cell: int, run_at: Mapping[str, int]) -> list[Any]:
        """compat.json's row (:data:`COLUMNS`): the case and cell by index, runs by their index in ``runs``."""
        return [case, cell, "".join(CODES[s] if s is not None else ABSENT for s in self.states),
                round(self.flake_rate, 3), self.flips,
                run_at[self.failing_since.run] if self.failing_since else None,
                run_at[self.first_seen.run] if self.first_seen else None]


@dataclass(frozen=True)
class Trend:
    """A duration in this run against the median of the window's earlier runs (seconds)."""

    name: str
    last: float
    median: float | None  # None: no earlier run of the window had it

    @property
    def ratio(self) -> float | None:
        return self.last / self.median if self.median else None

    @property
    def change(self) -> float:
        """Seconds more (or less) than the median: what a reader looks at first, not a ratio of tiny times."""
        return self.last - self.median if self.median is not None else 0.0

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {"name": self.name, "last_s": round(self.last, 3),
                "median_s": round(self.median, 3) if self.median is not None else None,
                "ratio": round(ratio, 3) if ratio is not None else None}


@dataclass(frozen=True)
class IssueSeen:
    id: str
    last_seen: Since | None  # None: in no run of the window
    runs: int  # the runs of the window it occurred in

    def as_dict(self, run_at: Mapping[str, int]) -> dict[str, Any]:
        return {"id": self.id, "last_seen": run_at[self.last_seen.run] if self.last_seen else None, "runs": self.runs}


@dataclass(frozen=True)
class Timeline:
    runs: tuple[Run, ...]  # oldest first, this run last
    pairs: Mapping[tuple[str, str], PairHistory] = field(hash=False)
    cells: tuple[Trend, ...] = ()
    cases: tuple[Trend, ...] = ()
    issues: Mapping[str, IssueSeen] = field(default_factory=dict, hash=False)
    skipped: tuple[str, ...] = ()
    size: int = DEFAULT_WINDOW  # the window asked for: a full window may not reach the store's first run

    @property
    def full(self) -> bool:
        return len(self.runs) >= self.size

    @property
    def previous(self) -> Run | None:
        return self.runs[-2] if len(self.runs) > 1 else None

    def notable(self) -> list[PairHistory]:
        """The pairs that are not steady: red now first (worst first), then the flakiest, the most flipping."""
        found = [p for p in self.pairs.values() if not p.steady]
        return sorted(found, key=lambda p: (not (p.states[-1] and p.states[-1].bad),
                                            p.states[-1].rank if p.states[-1] else 99,
                                            -p.flake_rate, -p.flips, p.cell, p.case))

    def as_dict(self) -> dict[str, Any]:
        """compat.json's ``history``, compact: only the pairs that were not steady, one row each (``columns``),
        their case and cell by index in ``cases`` and ``cells``, their states one letter per run (``codes``),
        and a run by its index in ``runs`` (``failing_since``, ``first_seen``, ``last_seen``)."""
        notable = self.notable()
        run_at = {r.id: i for i, r in enumerate(self.runs)}
        cases = sorted({p.case for p in notable})
        cells = sorted({p.cell for p in notable})
        case_at, cell_at = {c: i for i, c in enumerate(cases)}, {c: i for i, c in enumerate(cells)}
        return {"window": self.size,
                "runs": [{"id": r.id, "label": r.label, "time": r.time.isoformat(), "revision": r.revision,
                          "matrix": r.matrix, "library": r.library, "partial": r.partial} for r in self.runs],
                "unreadable": list(self.skipped),
                "codes": {**{code: state.value for state, code in CODES.items()}, ABSENT: None},
                "cases": cases, "cells": cells, "columns": list(COLUMNS),
                "results": [p.row(case_at[p.case], cell_at[p.cell], run_at) for p in notable],
                "steady": len(self.pairs) - len(notable),
                "durations": {"cells": [t.as_dict() for t in self.cells], "cases": [t.as_dict() for t in self.cases]},
                "known_issues": [i.as_dict(run_at) for i in self.issues.values()]}


def pairs_of(history: Mapping[str, Any]) -> list[dict[str, Any]]:
    """compat.json's ``history`` results read back as one dict per pair: names for indexes, state values for
    letters, run ids for run indexes (what a script would write; the tests read it so)."""
    codes, runs = history["codes"], [r["id"] for r in history["runs"]]
    found = []
    for row in history["results"]:
        pair = dict(zip(history["columns"], row))
        pair["case"], pair["cell"] = history["cases"][pair["case"]], history["cells"][pair["cell"]]
        pair["states"] = [codes[code] for code in pair["states"]]
        for key in ("failing_since", "first_seen"):
            pair[key] = runs[pair[key]] if pair[key] is not None else None
        found.append(pair)
    return found


def since(run: Run, *, window_start: bool = False) -> Since:
    return Since(run=run.id, label=run.label, revision=run.revision, window_start=window_start)


def _pair(case: str, cell: str, runs: tuple[Run, ...]) -> PairHistory:
    states = tuple(e.state if (e := r.entries.get((case, cell))) is not None else None for r in runs)
    failing = first = None
    if states[-1] is not None and states[-1].bad:
        start = len(states) - 1
        while start > 0 and states[start - 1] is not None and states[start - 1].bad:  # type: ignore[union-attr]
            start -= 1
        failing = since(runs[start], window_start=start == 0)
        seen = next(i for i, s in enumerate(states) if s is not None and s.bad)
        first = since(runs[seen], window_start=seen == 0)
    return PairHistory(case=case, cell=cell, states=states, failing_since=failing, first_seen=first)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _trends(runs: tuple[Run, ...], of: int) -> tuple[Trend, ...]:
    """Per cell (``of`` 1: the sum of its cases' durations) or per case (``of`` 0: its mean over the
    cells it ran in, so that a cell added or dropped does not read as a change)."""
    def durations(run: Run) -> dict[str, float]:
        totals: dict[str, list[float]] = {}
        for key, entry in run.entries.items():
            if entry.state not in DID_NOT_RUN:
                totals.setdefault(key[of], []).append(entry.duration)
        return {name: (sum(v) if of == 1 else sum(v) / len(v)) for name, v in totals.items()}

    per_run = [durations(r) for r in runs]
    now = per_run[-1]
    return tuple(Trend(name, last, _median([d[name] for d in per_run[:-1] if name in d]))
                 for name, last in sorted(now.items()))


def _issues(runs: tuple[Run, ...], ids: Iterable[str]) -> dict[str, IssueSeen]:
    found = {}
    for issue in sorted(set(ids) | {i for r in runs for i in r.issues}):
        seen = [i for i, r in enumerate(runs) if r.issues.get(issue)]
        last = since(runs[seen[-1]], window_start=seen[-1] == 0) if seen else None
        found[issue] = IssueSeen(id=issue, last_seen=last, runs=len(seen))
    return found


def build(window: Window, issue_ids: Iterable[str] = (), size: int = DEFAULT_WINDOW) -> Timeline:
    """The timeline of the window's last run (this run) over the window."""
    runs = window.runs
    now = runs[-1]
    pairs = {key: _pair(key[0], key[1], runs) for key in sorted(now.entries)}
    return Timeline(runs=runs, pairs=pairs, cells=_trends(runs, 1), cases=_trends(runs, 0),
                    issues=_issues(runs, issue_ids), skipped=window.skipped, size=size)


def baseline_of(run: Run) -> Baseline:
    """A stored run as a baseline of ``harness.report.diff`` (states only: the store keeps no message)."""
    states = {key: (entry.state.value, "") for key, entry in run.entries.items()}
    return Baseline(path=f"the last run ({run.label})", partial=run.partial, states=states)


def since_text(found: Since | None, past: Timeline) -> str:
    """A run as a reader is told it ("or earlier" where it is the first run of a full window)."""
    if found is None:
        return ""
    now = " (this run)" if found.run == past.runs[-1].id else ""
    earlier = " or earlier" if found.window_start and past.full else ""
    return f"{found.label}{now}{earlier}"


def largest_changes(trends: Iterable[Trend]) -> list[Trend]:
    """The trends with an earlier median, the largest change in seconds first."""
    return sorted((t for t in trends if t.median is not None), key=lambda t: (-abs(t.change), t.name))


def trend_text(trend: Trend) -> str:
    ratio = trend.ratio
    return f"{ratio:.2f}x" if ratio is not None else "—"


def strip(pair: PairHistory, symbols: Mapping[str, str], absent: str = "·") -> str:
    """The pair's states as one string of symbols, oldest first (``absent`` where a run did not have it)."""
    return "".join(symbols[s.value] if s is not None else absent for s in pair.states)
