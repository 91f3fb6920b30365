"""The report's results model: cells x cases, a state each, and the declared known issues' summaries.

Plain dataclasses, apart from the readers that fill them (``model`` reads JUnit, ``issues`` holds
results to the known issues) and the writers that render them, so every one of those imports this
module and this module imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.states import State

CELL_KEYS = ("triton", "backend", "instance_kind", "python", "env", "runner")


@dataclass
class CellInfo:
    id: str
    axes: dict[str, str | None] = field(default_factory=dict)
    server_version: str | None = None
    expected_server_version: str | None = None
    packages: str = ""
    junit: str | None = None  # path relative to the reports folder
    log: str | None = None
    problem: str | None = None  # why the cell's JUnit could not be used
    interrupted: str | None = None  # the cell was stopped before its end; its JUnit holds what ran
    state: State = State.MISSING
    level: Result | None = None  # the cell-level outcome that fills the cases it has no result for

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **{k: self.axes.get(k) for k in CELL_KEYS}, "server_version": self.server_version,
                "state": self.state.value, "packages": self.packages, "log": self.log, "problem": self.problem,
                "interrupted": self.interrupted}


@dataclass
class Result:
    case: str
    cell: str
    state: State
    message: str = ""
    details: str = ""  # the full failure text and the server log of the case
    time: float = 0.0
    issue: str | None = None  # the id of the known issue that explains this result (or did not occur)
    observed: str = ""  # what was seen, where a known issue explains the result
    verdict: str | None = None  # how the harness itself judged a failure (a layout.Verdict value)

    @property
    def first_line(self) -> str:
        return self.message.strip().splitlines()[0] if self.message.strip() else ""

    def as_dict(self) -> dict[str, Any]:
        data = {"case": self.case, "cell": self.cell, "state": self.state.value, "message": self.message}
        if self.verdict:  # only where the harness judged it: a reader need not parse the message for it
            data["verdict"] = self.verdict
        return data


@dataclass
class IssueSummary:
    """One declared known issue across the run: where it occurred (with what was seen), where not."""

    id: str
    reason: str
    link: str | None = None
    cases: list[str] = field(default_factory=list)
    occurred: list[Result] = field(default_factory=list)
    absent: list[Result] = field(default_factory=list)  # cases that passed where it is declared
    declared_cells: list[str] = field(default_factory=list)
    quiet_cells: list[str] = field(default_factory=list)  # declared, ran, never occurred

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason, "link": self.link, "cases": self.cases,
                "occurred": [{"cell": r.cell, "case": r.case, "message": r.observed} for r in self.occurred],
                "did_not_occur": [{"cell": r.cell, "case": r.case} for r in self.absent],
                "declared_cells": self.declared_cells, "cells_where_it_did_not_occur": self.quiet_cells}


@dataclass
class Results:
    cells: list[CellInfo]
    results: dict[tuple[str, str], Result]
    partial: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    known_issues: list[IssueSummary] = field(default_factory=list)
    perf: dict[str, Any] | None = None  # reports/perf.json (nox -s perf), when it ran

    @property
    def cases(self) -> list[str]:
        return sorted({case for case, _ in self.results})

    def get(self, case: str, cell: str) -> Result:
        return self.results[(case, cell)]

    def counts(self, cells: list[CellInfo] | None = None) -> dict[str, int]:
        ids = {c.id for c in (cells or self.cells)}
        counts = {s.value: 0 for s in State}
        for (_, cell), result in self.results.items():
            if cell in ids:
                counts[result.state.value] += 1
        return counts

    @property
    def ok(self) -> bool:
        return not any(r.state.bad for r in self.results.values()) and not any(
            c.state.bad for c in self.cells
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "partial": self.partial,
            "cells": [c.as_dict() for c in self.cells],
            "results": [self.results[k].as_dict() for k in sorted(self.results)],
            "counts": self.counts(),
            "notes": self.notes,
            "known_issues": [i.as_dict() for i in self.known_issues],
        }
