"""The release diff: what changed per (case, cell) since a previous report's compat.json.

A release manager reads what got worse first: regressions (a case that did not fail in the baseline
and fails now), then fixes, then other changes of state, then new and removed (case, cell) pairs.
The baseline is only read through compat.json's stable keys (``results``: case, cell, state,
message), so a report of an older triton-matrix works as a baseline too. Where both reports carry
``nox -s perf``'s figures, the metrics whose call against the reference changed are listed too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.perf.section import CallChange, call_changes
from harness.report.results import Results
from harness.states import State

# In the order a reader gets them.
KINDS = ("regression", "fixed", "changed", "new", "removed")
MARKS = {"regression": "▼", "fixed": "▲", "changed": "Δ", "new": "+", "removed": "−"}
TITLES = {"regression": "Regressions", "fixed": "Fixed", "changed": "Other changes", "new": "New",
          "removed": "Removed"}
BAD = {s.value for s in State if s.bad}


@dataclass(frozen=True)
class Change:
    case: str
    cell: str
    kind: str  # one of KINDS
    before: str | None  # the baseline's state (None: not in the baseline)
    after: str | None  # the state now (None: not in this report)
    message: str  # first line of the message now (of the baseline's, for removed pairs)

    def as_dict(self) -> dict[str, Any]:
        return {"case": self.case, "cell": self.cell, "kind": self.kind, "before": self.before,
                "after": self.after, "message": self.message}


@dataclass(frozen=True)
class Baseline:
    path: str
    partial: bool
    states: dict[tuple[str, str], tuple[str, str]]  # (case, cell) -> (state, message)
    perf: Any = None  # its compat.json's ``perf`` block, as written (None: it has none)


@dataclass
class Diff:
    baseline: Baseline
    changes: list[Change]  # regressions first, then KINDS' order, each sorted by cell and case
    perf_changes: list[CallChange] = field(default_factory=list)  # worse first
    pairs: dict[tuple[str, str], Change] = field(init=False, repr=False)
    old_cases: set[str] = field(init=False, repr=False)
    old_cells: set[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pairs = {(c.case, c.cell): c for c in self.changes if c.after is not None}
        self.old_cases = {case for case, _ in self.baseline.states}
        self.old_cells = {cell for _, cell in self.baseline.states}

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def regressions(self) -> list[Change]:
        return self.of("regression")

    def mark(self, case: str, cell: str) -> Change | None:
        """The change to mark on one (case, cell) of the grid, if any.

        A whole new cell (column) or new case (row) is marked once, on its header (see ``is_new``),
        not on every one of its (case, cell).
        """
        change = self.pairs.get((case, cell))
        if change is not None and change.kind == "new" and (self.is_new(cell=cell) or self.is_new(case=case)):
            return None
        return change

    def is_new(self, *, case: str | None = None, cell: str | None = None) -> bool:
        """Whether the baseline has no result at all for this case, or for this cell."""
        if case is not None:
            return case not in self.old_cases
        return cell not in self.old_cells

    def summary(self) -> str:
        """One line: the verdict against the baseline, with every count."""
        counts = ", ".join(f"{len(self.of(k))} {k}" for k in KINDS[1:])
        regressions = len(self.regressions)
        head = (f"REGRESSION: {regressions} newly failing" if regressions
                else "no regression")
        partial = " (the baseline is partial)" if self.baseline.partial else ""
        worse = sum(c.worse for c in self.perf_changes)
        perf = (f"; {len(self.perf_changes)} perf calls changed ({worse} now slower or more memory)"
                if self.perf_changes else "")
        return f"{head} since {self.baseline.path}{partial}; {counts}{perf}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.baseline.path, "partial": self.baseline.partial,
                "counts": {k: len(self.of(k)) for k in KINDS},
                "changes": [c.as_dict() for c in self.changes],
                "perf_changes": [c.as_dict() for c in self.perf_changes]}


def load(path: Path) -> Baseline:
    """A previous compat.json; anything else is a one-line HarnessError naming the file."""
    fix = "pass the compat.json of an earlier 'nox -s report' run"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarnessError(f"cannot read the baseline ({exc.strerror or exc})", where=str(path), fix=fix) from None
    except ValueError:
        raise HarnessError("the baseline is not JSON", where=str(path), fix=fix) from None
    rows = data.get("results") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("case", "cell", "state")) for r in rows
    ):
        raise HarnessError("not a compatibility report (no 'results' list of case, cell and state)",
                           where=str(path), fix=fix)
    states = {(r["case"], r["cell"]): (r["state"], _first_line(r.get("message"))) for r in rows}
    return Baseline(path=str(path), partial=bool(data.get("partial")), states=states, perf=data.get("perf"))


def compare(baseline: Baseline, results: Results) -> Diff:
    """Every (case, cell) whose state differs from the baseline's, or that only one side has."""
    changes = []
    for (case, cell), result in results.results.items():
        after = result.state.value
        old = baseline.states.get((case, cell))
        if old is None:
            changes.append(Change(case, cell, "new", None, after, result.first_line))
        elif old[0] != after:
            kind = ("regression" if after in BAD and old[0] not in BAD
                    else "fixed" if old[0] in BAD and after not in BAD else "changed")
            changes.append(Change(case, cell, kind, old[0], after, result.first_line))
    for (case, cell), (state, message) in baseline.states.items():
        if (case, cell) not in results.results:
            changes.append(Change(case, cell, "removed", state, None, message))
    changes.sort(key=lambda c: (KINDS.index(c.kind), c.after not in BAD, c.cell, c.case))
    return Diff(baseline=baseline, changes=changes, perf_changes=call_changes(baseline.perf, results.perf))


def _first_line(message: object) -> str:
    text = message.strip() if isinstance(message, str) else ""
    return text.splitlines()[0] if text else ""
