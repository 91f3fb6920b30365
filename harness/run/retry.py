"""A timeout under load gets one quiet retry: run again alone, at the end of the cell.

A case whose deadline expired while the machine was saturated (the plugin says so with the testcase
property ``retry_alone``, its value the evidence) says more about the machine than about the release.
Once every worker of the cell has ended, the cell runner runs those cases once more in one fresh worker
that has the machine to itself, without reruns, and patches the cell's JUnit file: a case that passes
then is ``flaky`` (``passed_alone`` holds the first attempt's evidence, the report words it); one that
fails again keeps the second attempt's failure (``harness.junit.replace_cases``). A case explained by
a known issue is never run again. Standard library only.
"""

from __future__ import annotations

from pathlib import Path

from harness import claims, junit
from harness.layout import Prop
from harness.progress import CellProgress, write_json

RERUNS = ("--reruns=0",)  # the retry is the second attempt: no third


def candidates(junit_file: Path) -> dict[str, str]:
    """Case id -> evidence of the cell's failed cases that ask to be run again alone."""
    try:
        cases = junit.cases_of(junit_file)
    except junit.Unreadable:
        return {}
    found = {}
    for case in cases:
        props = case.props
        if case.case_id and case.failed and Prop.RETRY_ALONE in props and Prop.KNOWN_ISSUE not in props:
            found[case.case_id] = props[Prop.RETRY_ALONE]
    return found


def claims_for(wanted: dict[str, str], known: list[claims.Claim]) -> list[claims.Claim]:
    """The wanted cases by module, their node ids from the claims the cell's workers made."""
    modules: dict[str, dict[str, claims.Case]] = {}
    for claim in known:
        for case in claim.cases:
            if case.case in wanted:
                modules.setdefault(claim.module, {})[case.nodeid] = case
    return [claims.Claim(module=m, worker=0, cases=tuple(cases.values())) for m, cases in modules.items()]


def amend_progress(path: Path, cell_id: str, changed: dict[str, tuple[str, str]]) -> None:
    """The retry worker's progress file as a correction: its cases were counted by the worker that ran
    them first, so it counts no case of its own, only each one's move from the first state to the last."""
    counts: dict[str, int] = {}
    for first, last in changed.values():
        counts[first] = counts.get(first, 0) - 1
        counts[last] = counts.get(last, 0) + 1
    before = CellProgress.read(path) or CellProgress(cell=cell_id)
    write_json(path, CellProgress(cell=cell_id, total=0, done=0, counts={k: v for k, v in counts.items() if v},
                                  started=before.started, finished=True).as_dict())
