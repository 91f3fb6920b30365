"""One finished cell as the report will count it: the live view's line for a cell that ended.

The report's own reading (:func:`harness.report.model.read` of the cell's one JUnit file), so the view
and the report cannot disagree: the same states, the cases the cell planned and did not run
(``missing``, or ``timeout`` after the cell's deadline), the case in flight when it stopped (``error``),
flaky and known-incompatible cases, and a cell-level outcome (a worker that died, a venv that could
not be made) that fills the cases it has no result for.

The report's rows are every cell's cases; a cell lacking one of them (a worker that died before
planning its modules, a cell that never ran pytest) gets the cell-level state there, else ``missing``.
:meth:`Column.counts` does the same given the cases known so far: the other finished cells', and the
number the cell's pytest collected (its progress files).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from harness.matrix.known_issues import KnownIssue
from harness.report import model
from harness.states import State


@dataclass(frozen=True)
class Column:
    """A finished cell's results by case, as the report holds them."""

    cell: str
    states: dict[str, State] = field(default_factory=dict)  # case id -> state, of the cases its JUnit names
    state: State = State.MISSING  # the report's cell state (the worst of its results)
    fill: State = State.MISSING  # the state of a case it has no result for
    level: str | None = None  # the cell-level outcome's message (why not applicable, the error)
    interrupted: str | None = None  # why the cell stopped before its end
    junit: bool = False  # its JUnit file was there

    def counts(self, cases: Collection[str] = (), collected: int = 0) -> dict[str, int]:
        """The report's counts of this column when its rows are ``cases`` (with its own) and the cell's
        pytest collected ``collected`` cases."""
        counts: dict[str, int] = {}
        for state in self.states.values():
            counts[state.value] = counts.get(state.value, 0) + 1
        rows = len(set(cases) | self.states.keys())
        extra = max(rows, collected) - len(self.states)
        if extra > 0:
            counts[self.fill.value] = counts.get(self.fill.value, 0) + extra
        return counts

    @property
    def not_applicable(self) -> str | None:
        """Why the whole cell did not apply (it ran no case), or None."""
        return self.level if self.fill == State.NOT_APPLICABLE and not self.states else None

    @property
    def error(self) -> str | None:
        """The cell-level error's first line (a worker or the venv failed, the file is unreadable), or None."""
        if self.fill != State.ERROR or self.level is None:
            return None
        lines = self.level.strip().splitlines()
        return lines[0] if lines else ""


def read_column(reports: Path, cell_id: str, known: tuple[KnownIssue, ...] = ()) -> Column:
    """The cell's column of the report (``known``: the issues the report is given, the matrix's)."""
    results = model.read(reports, known=known, only=cell_id)
    info = next(c for c in results.cells if c.id == cell_id)
    states = {case: r.state for (case, cell), r in results.results.items() if cell == cell_id}
    level = info.level
    return Column(cell=cell_id, states=states, state=info.state,
                  fill=level.state if level is not None else State.MISSING,
                  level=level.message if level is not None else None, interrupted=info.interrupted,
                  junit=info.junit is not None and info.problem is None)
