"""Read the cells' JUnit files (``harness.junit``) into the results model (``harness.report.results``).

States are mapped from JUnit elements in one place, shared with the in-cell progress recorder
(:func:`harness.states.case_state`). A cell whose JUnit file is
missing or unreadable becomes an ``error`` cell naming the file; the other cells are kept. A
cell-level outcome written by the cell runner (testcase ``<cell>``) fills the whole column.

A failed case is re-run once (pytest-rerunfailures, ``--reruns=1``). pytest's JUnit writer then holds
one testcase per attempt, and the failed attempt's testcase is empty (the plugin's "rerun" outcome is
none of passed, failed or skipped, so no failure text is written). A case whose last testcase passed
after such an empty one is ``flaky``. So is a case that timed out under load and passed when the cell
ran it again alone (``harness.run.retry``: the property ``passed_alone`` holds the first attempt's evidence).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from harness import junit
from harness.errors import HarnessError
from harness.matrix.known_issues import KnownIssue
from harness.layout import CELL_CASE, NOT_APPLICABLE_PREFIX, Prop, Verdict
from harness.report import issues
from harness.report.results import CELL_KEYS, CellInfo, Result, Results
from harness.perf import section as perf_section
from harness.states import State, case_state, worst

NOT_APPLICABLE = NOT_APPLICABLE_PREFIX.strip()
# The watchdog's exception as pytest names it: its module path (harness.incell.supervise, before the rooms
# harness.supervise: a baseline may carry either) says nothing to a reader.
DIAGNOSED = re.compile(r"^harness\.(?:\w+\.)?supervise\.\w+: ")


FLAKY_MESSAGE = ("failed, then passed when re-run in the same cell "
                 "(pytest-rerunfailures keeps no text of the failed attempt)")
FLAKY_FIRST_MESSAGE = "failed ({first}), then passed when re-run in the same cell"
PASSED_ALONE_MESSAGE = "timed out under load: {evidence}; passed when run again alone"

HOME = str(Path.home())


def scrub(text: str) -> str:
    """Text from tests, models and logs, with the home folder shown as ~ (reports get shared)."""
    return text.replace(HOME, "~") if HOME not in ("/", "") else text


def element_of(case: junit.Case) -> tuple[str | None, str, str]:
    """(element, message, details) of one JUnit testcase: its first result element, None when it passed."""
    for result in case.outcomes:
        text = (result.text or "").strip()
        return result.element, (result.message or "").strip() or (text.splitlines()[0] if text else ""), text
    return None, "", ""


def state_of(case: junit.Case, *, rerun: bool = False) -> tuple[State, str, str]:
    """(state, message, details) of one JUnit testcase (``rerun``: an earlier attempt was run again)."""
    element, message, details = element_of(case)
    state = case_state(element, message, dict(_props(case)), rerun=rerun)
    if state == State.NOT_APPLICABLE:
        message = message[len(NOT_APPLICABLE):].strip()
    return state, message, details


def _case_id(case: junit.Case) -> str:
    found = dict(_props(case)).get(Prop.CASE)
    return found or (f"{case.classname}::{case.name}" if case.classname else case.name)


_SECTION = re.compile(r"^-{3,} (Captured .*?) -{3,}$", re.MULTILINE)


def _captured(case: junit.Case) -> str:
    """pytest's captured sections of a testcase, the empty ones left out."""
    text = "\n".join(x for x in (case.system_out, case.system_err) if x)
    parts = _SECTION.split(text)
    sections = [(title, body.strip("\n")) for title, body in zip(parts[1::2], parts[2::2])]
    kept = [f"--- {title} ---\n{body}" for title, body in sections if body.strip()]
    if not sections and text.strip():
        kept = [text.strip()]
    return "\n\n".join(kept)


def read_junit(path: Path) -> list[junit.Suite]:
    """The suites of one JUnit file; a truncated or foreign file is a HarnessError naming it."""
    try:
        suites = junit.read(path)
    except junit.Unreadable as exc:
        raise HarnessError(f"not valid JUnit XML ({exc})", where=str(path),
                           fix="re-run its cell; the file was cut off or is not JUnit") from None
    if not suites or not any(name == Prop.CELL for s in suites for name, _ in s.properties):
        raise HarnessError("not written by triton-matrix (no 'cell' property)", where=str(path),
                           fix="keep only the cells' own JUnit files in reports/junit/")
    return suites


def load_plan(path: Path) -> list[dict[str, Any]]:
    problem = HarnessError("not a plan written by 'nox -s matrix'", where=str(path),
                           fix="delete it, or re-run nox -s matrix")
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        raise problem from None
    if not isinstance(cells, list) or not all(isinstance(c, dict) and "id" in c for c in cells):
        raise problem
    return cells


def _props(case: junit.Case) -> list[tuple[str, str]]:
    return list(case.properties)


def read(reports: Path, plan: Path | None = None, known: tuple[KnownIssue, ...] = (), *,
         only: str | None = None) -> Results:
    """Read ``reports/junit/*.xml`` (and the plan, when there is one) into :class:`Results`.

    Cells classify their results against the declared known issues themselves (testcase properties of
    harness.incell.classify); ``known`` are issues applied here to results a cell left unclassified.
    ``only``: that one cell's file, as if the plan named it alone (the live view of a finished cell).
    """
    junit_dir = reports / "junit"
    files = sorted(junit_dir.glob("*.xml")) if junit_dir.is_dir() else []
    plan_path = plan or reports / "plan.json"
    planned = load_plan(plan_path) if plan_path.exists() and only is None else []
    if only is not None:
        files, planned = [f for f in files if f.stem == only], [{"id": only}]
    if not files and not planned:
        raise HarnessError("no JUnit files", where=str(junit_dir), fix="run 'nox -s matrix' (or one cell) first")

    cells: dict[str, CellInfo] = {}
    per_cell: dict[str, dict[str, Result]] = {}
    cell_level: dict[str, Result] = {}
    declared: dict[str, dict[str, Any]] = {}  # issue id -> as the cells declared it
    declared_in: dict[str, list[str]] = {}  # issue id -> cells
    problems: list[str] = []
    for entry in planned:
        cells[entry["id"]] = CellInfo(id=entry["id"], axes={k: entry.get(k) for k in CELL_KEYS})
    for path in files:
        rel = path.relative_to(reports).as_posix()
        try:
            suites = read_junit(path)
        except HarnessError as exc:
            info = cells.setdefault(path.stem, CellInfo(id=path.stem))
            info.junit, info.problem = rel, scrub(str(exc))
            problems.append(str(exc))
            continue
        for suite in suites:
            props = suite.props
            cell_id = props.get(Prop.CELL) or suite.name or path.stem
            info = cells.setdefault(cell_id, CellInfo(id=cell_id))
            info.axes = {k: (props.get(k) or info.axes.get(k) or None) for k in CELL_KEYS}
            # A cell's workers each write a suite; one whose modules never needed a server has no version.
            info.server_version = props.get(Prop.SERVER_VERSION) or info.server_version
            info.expected_server_version = props.get(Prop.EXPECTED_SERVER_VERSION) or info.expected_server_version
            info.packages = props.get(Prop.PACKAGES) or info.packages
            info.junit = rel
            if props.get(Prop.INTERRUPTED):
                info.interrupted = props[Prop.INTERRUPTED]
            collected = [c for c in props.get(Prop.COLLECTED, "").splitlines() if c]
            for name, value in suite.properties:
                if name == Prop.KNOWN_ISSUE_DECLARED:
                    entry = json.loads(value)
                    declared.setdefault(entry["id"], entry)
                    declared_in.setdefault(entry["id"], []).append(cell_id)
            log = reports / "logs" / f"{cell_id}.log"
            info.log = log.relative_to(reports).as_posix() if log.exists() else None
            results = per_cell.setdefault(cell_id, {})
            attempts: dict[str, list[junit.Case]] = {}
            for case in suite.cases:
                if case.name == CELL_CASE:
                    cell_level[cell_id] = _result(case, _case_id(case), cell_id)
                else:
                    attempts.setdefault(_case_id(case), []).append(case)
            facts = issues.facts_of(info)
            for issue in known:
                if facts is not None and issue.applies_to(facts) and issue.id not in declared_in.get(issue.id, ()):
                    declared.setdefault(issue.id, issue.as_dict())
                    declared_in.setdefault(issue.id, []).append(cell_id)
            for case_id, tries in attempts.items():
                result = _result(tries[-1], case_id, cell_id, rerun=any(not t.outcomes for t in tries[:-1]))
                results[case_id] = issues.apply_known(result, _props(tries[-1]), facts, known)
            for case_id in collected:  # the plan of the cell: what did not run is said, never dropped
                if case_id not in results:
                    results[case_id] = _unfinished(case_id, cell_id, props)

    partial = any(info.interrupted for info in cells.values())
    for info in cells.values():
        if info.junit is None:
            partial = True
            info.problem = (f"no JUnit file junit/{info.id}.xml: the cell did not finish "
                            f"(re-run it with 'nox -s {info.id}')")
            problems.append(info.problem)

    all_cases = sorted({case for results in per_cell.values() for case in results})
    table: dict[tuple[str, str], Result] = {}
    for info in cells.values():
        level = cell_level.get(info.id)
        if info.problem:  # a cell without a JUnit file did not run (missing); an unreadable one is an error
            level = Result(case=CELL_CASE, cell=info.id, state=State.MISSING if info.junit is None else State.ERROR,
                           message=info.problem)
        info.level = level
        own = per_cell.get(info.id, {})
        for case in all_cases:
            if case in own:
                table[(case, info.id)] = own[case]
            elif level is not None:
                table[(case, info.id)] = Result(case=case, cell=info.id, state=level.state,
                                                message=level.message, details=level.details)
            else:
                why = (f"the cell was interrupted before this case ({info.interrupted})" if info.interrupted
                       else "the case is not in this cell's JUnit file")
                table[(case, info.id)] = Result(case=case, cell=info.id, state=State.MISSING, message=why)
        states = [r.state for (_, c), r in table.items() if c == info.id]
        if level is not None:
            states.append(level.state)
        info.state = _worst(states)
    ordered = sorted(cells.values(), key=_cell_order)
    summaries = issues.summarize(table, ordered, declared, declared_in)
    notes = [f"{cell}: the declared known issue {s.id} ({s.reason}) did not occur; remove it (or narrow "
             f"where it applies) if the release fixed it" for s in summaries for cell in s.quiet_cells]
    return Results(cells=ordered, results=table, partial=partial, problems=problems, notes=notes,
                   known_issues=summaries, perf=perf_section.read(reports) if only is None else None)


def _result(case: junit.Case, case_id: str, cell_id: str, *, rerun: bool = False) -> Result:
    """One testcase element as a result (the last one of a case that was re-run)."""
    state, message, details = state_of(case, rerun=rerun)
    props = dict(_props(case))
    verdict = props.get(Prop.VERDICT)
    if state == State.FLAKY:
        alone = props.get(Prop.PASSED_ALONE)
        first = props.get(Prop.FIRST_FAILURE)
        if alone is not None:
            message = PASSED_ALONE_MESSAGE.format(evidence=scrub(alone))
        else:
            message = FLAKY_MESSAGE if first is None else FLAKY_FIRST_MESSAGE.format(first=first)
    else:
        message = DIAGNOSED.sub("", message)
    captured = _captured(case)
    return Result(case=case_id, cell=cell_id, state=state, message=scrub(message),
                  details=scrub("\n\n".join(x for x in (details, captured) if x)), time=case.time or 0.0,
                  verdict=verdict if state.bad and verdict else None)


def _unfinished(case_id: str, cell_id: str, props: dict[str, str]) -> Result:
    """A collected case without a result: the one in flight when the cell stopped is an error; the
    others are missing, or timed out when the cell ran past its own deadline."""
    why = props.get(Prop.INTERRUPTED) or "the cell ended before this case ran"
    if props.get(Prop.INTERRUPTED_CASE) == case_id:
        return Result(case=case_id, cell=cell_id, state=State.ERROR, message=f"interrupted while it ran ({why})",
                      verdict=Verdict.INTERRUPTED)
    state = State.TIMEOUT if props.get(Prop.UNFINISHED) == State.TIMEOUT.value else State.MISSING
    return Result(case=case_id, cell=cell_id, state=state, message=f"not run: {why}")


def _worst(states: list[State]) -> State:
    if not states:
        return State.MISSING
    if all(s == State.NOT_APPLICABLE for s in states):
        return State.NOT_APPLICABLE
    return worst(states)


def _cell_order(info: CellInfo) -> tuple[Any, ...]:
    triton = info.axes.get("triton") or ""
    python = info.axes.get("python") or ""
    return (triton, info.axes.get("backend") or "", info.axes.get("instance_kind") or "",
            tuple(int(x) for x in python.split(".") if x.isdigit()), info.id)


def by_release(results: Results) -> list[tuple[str, list[CellInfo], dict[str, int]]]:
    """(release, its cells, state counts) per Triton release, oldest first."""
    releases: dict[str, list[CellInfo]] = {}
    for info in results.cells:
        releases.setdefault(info.axes.get("triton") or "?", []).append(info)
    return [(name, cells, results.counts(cells)) for name, cells in sorted(releases.items())]


NOTABLE = (State.KNOWN_INCOMPATIBLE, State.UNEXPECTEDLY_PASSING, State.FLAKY)


def failures(results: Results) -> list[Result]:
    """The results a reader must see (failed, errored, missing, timed out, known-incompatible,
    unexpectedly passing, flaky), worst first, in a stable order."""
    bad = [r for r in results.results.values() if r.state.bad or r.state in NOTABLE]
    return sorted(bad, key=lambda r: (r.state.rank, r.cell, r.case))


@dataclass(frozen=True)
class FailureGroup:
    """One case's results with the same state and first line in several cells: read once, not once per cell."""

    state: State
    case: str
    first_line: str
    results: tuple[Result, ...]  # in the order of the cells


def failure_groups(results: Results) -> list[FailureGroup]:
    """The results of :func:`failures`, grouped by (state, case, first line), worst first, in a stable order."""
    column = {info.id: i for i, info in enumerate(results.cells)}
    groups: dict[tuple[State, str, str], list[Result]] = {}
    for result in failures(results):
        groups.setdefault((result.state, result.case, result.first_line), []).append(result)
    found = [FailureGroup(state, case, line, tuple(sorted(rs, key=lambda r: (column.get(r.cell, len(column)), r.cell))))
             for (state, case, line), rs in groups.items()]
    return sorted(found, key=lambda g: (g.state.rank, g.case, g.first_line))


def area_of(case: str) -> str:
    """The area a case belongs to: the first folder of its file (``models`` for model mode's checks)."""
    file = case.partition("::")[0]
    return file.partition("/")[0] if "/" in file else ""
