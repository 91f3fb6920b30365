"""Known issues in the report: results held to the issues their cells declared, and each issue's summary.

The cells classify their own results (``harness.incell.classify`` writes testcase properties); here the
properties become states, the matrix's known_failures are applied to results a cell left unclassified,
and each declared issue is summarized across the run (where it occurred, where it did not).
"""

from __future__ import annotations

from typing import Any

from harness.matrix import known_issues as ki
from harness.matrix.known_issues import KnownIssue
from harness.layout import Prop
from harness.matrix import Cell
from harness.report.results import CellInfo, IssueSummary, Result
from harness.states import FAILING, State, held_to_issues


def apply_known(result: Result, props: list[tuple[str, str]], cell: Any,
                known: tuple[KnownIssue, ...] = ()) -> Result:
    """Name the issue behind a result its cell classified (its state already says so,
    :func:`harness.states.case_state`), else hold the result to issues given to the report (a matrix's
    known_failures applied to cells that ran without them), by the same mapping."""
    values = dict(props)
    if Prop.SKIPPED_BY_ERROR in values:
        return result
    issue_id, reason = values.get(Prop.KNOWN_ISSUE), values.get(Prop.KNOWN_ISSUE_REASON, "")
    absent = values.get(Prop.KNOWN_ISSUE_ABSENT)
    if issue_id is None and absent is None and known and cell is not None:
        entries = ki.declared(known, cell, result.case)
        if result.state in FAILING:
            found = ki.first_explaining(entries, f"{result.message}\n{result.details}", values.get(Prop.VERDICT))
            if found is not None:
                issue_id, reason = found.id, found.reason
        elif result.state == State.PASSED:
            absent = next((e.id for e in entries if e.flag_absent), None)
        found_props = {Prop.KNOWN_ISSUE: issue_id or "", Prop.KNOWN_ISSUE_ABSENT: absent or ""}
        result.state = held_to_issues(result.state, found_props)
    if result.state == State.KNOWN_INCOMPATIBLE and issue_id is not None:
        result.issue, result.observed = issue_id, result.first_line
        result.message = f"{result.first_line} — known issue {issue_id}: {reason}"
    elif result.state == State.UNEXPECTEDLY_PASSING and absent is not None:
        result.issue = absent
        result.message = f"declared known issue {absent} did not occur: the case passed"
    return result


def facts_of(info: CellInfo) -> Cell | None:
    """The cell as harness.matrix.known_issues matches it, from the axes its JUnit file recorded."""
    axes = info.axes
    if not all(axes.get(k) for k in ("triton", "backend", "instance_kind", "python")):
        return None
    return Cell(triton=str(axes["triton"]), backend=str(axes["backend"]), instance_kind=str(axes["instance_kind"]),
                python=str(axes["python"]), env=axes.get("env") or None, runner=str(axes.get("runner") or "local"))


def summarize(table: dict[tuple[str, str], Result], cells: list[CellInfo],
                     declared: dict[str, dict[str, Any]], declared_in: dict[str, list[str]]) -> list[IssueSummary]:
    """Each declared issue: the results it explains, the cases that passed instead, and the cells
    where it is declared, ran, and never occurred (perhaps fixed: the report says so)."""
    by_id = {c.id: c for c in cells}
    summaries = []
    for issue_id, entry in sorted(declared.items()):
        summary = IssueSummary(id=issue_id, reason=entry.get("reason", ""), link=entry.get("link"),
                               cases=list(entry.get("cases", [])), declared_cells=sorted(set(declared_in[issue_id])))
        for (_, cell), result in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if result.issue != issue_id:
                continue
            (summary.occurred if result.state == State.KNOWN_INCOMPATIBLE else summary.absent).append(result)
        seen = {r.cell for r in summary.occurred}
        for cell in summary.declared_cells:
            info = by_id.get(cell)
            ran = [r for (case, c), r in table.items() if c == cell and ki.case_matches(summary.cases, case)
                   and r.state not in (State.NOT_APPLICABLE, State.MISSING, State.SKIPPED)]
            if cell not in seen and info is not None and info.problem is None and ran:
                summary.quiet_cells.append(cell)
        summaries.append(summary)
    return summaries
