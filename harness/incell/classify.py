"""A cell's pytest results held to its declared known issues, in the cell (the plugin calls these).

The cell classifies, so its JUnit file already says what happened: a failure a declared issue explains
(``harness.matrix.known_issues``: which issues apply, what they explain) gets the testcase properties
:attr:`Prop.KNOWN_ISSUE` and :attr:`Prop.KNOWN_ISSUE_REASON` (+ :attr:`Prop.KNOWN_ISSUE_LINK`); a case
that passed where an issue naming it is declared gets :attr:`Prop.KNOWN_ISSUE_ABSENT`; a skip raised while
handling an exception (an import that fails, a fixture that breaks) is turned into a failure with
:attr:`Prop.SKIPPED_BY_ERROR`. The issues that apply to the cell go into its suite properties
(:attr:`Prop.KNOWN_ISSUE_DECLARED`), so the report can say where an issue did not occur. The names are
``harness.layout``'s, which the report (``harness.report.model``, ``harness.report.issues``) reads too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from harness.layout import NOT_APPLICABLE_PREFIX, Prop
from harness.matrix.known_issues import CellLike, KnownIssue, declared, first_explaining


@dataclass
class Tally:
    """Failures of the cell's session that a declared issue explained (the rest are real failures)."""

    explained: int = 0


_TALLY = pytest.StashKey[Tally]()


def _tally(config: pytest.Config) -> Tally:
    return config.stash.setdefault(_TALLY, Tally())


def suite_properties(issues: Iterable[KnownIssue], cell: CellLike) -> list[tuple[str, str]]:
    """One suite property per issue declared for the cell: where it did not occur is read from these."""
    return [(Prop.KNOWN_ISSUE_DECLARED, json.dumps(i.as_dict(), sort_keys=True)) for i in issues if i.applies_to(cell)]


def prepare(item: pytest.Item, issues: Iterable[KnownIssue], cell: CellLike, case_id: str) -> None:
    """A case with a declared issue is not re-run: its failure is expected, a re-run only costs time."""
    if declared(issues, cell, case_id):
        item.add_marker(pytest.mark.flaky(reruns=0))


def result(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
           issues: Iterable[KnownIssue], cell: CellLike, case_id: str) -> None:
    """Hold one pytest report to the declared issues; writes the testcase properties named above."""
    if report.when == "call" and report.passed:
        for issue in declared(issues, cell, case_id):
            if issue.flag_absent and (Prop.KNOWN_ISSUE_ABSENT, issue.id) not in item.user_properties:
                item.user_properties.append((Prop.KNOWN_ISSUE_ABSENT, issue.id))
        return
    if report.skipped and call.excinfo is not None and not _is_not_applicable(report):
        cause = call.excinfo.value.__cause__ or call.excinfo.value.__context__
        if cause is not None:  # pytest.skip while handling an exception: the exception is the result
            report.outcome = "failed"
            report.longrepr = (f"skipped because of an error: {type(cause).__name__}: {cause}\n"
                               f"(skip reason: {_skip_reason(report)})")
            item.user_properties.append((Prop.SKIPPED_BY_ERROR, f"{type(cause).__name__}: {cause}"))
            return
    if not report.failed:
        return
    verdict = next((value for name, value in item.user_properties if name == Prop.VERDICT), None)
    issue = first_explaining(declared(issues, cell, case_id), observed_text(report), verdict)
    if issue is not None and (Prop.KNOWN_ISSUE, issue.id) not in item.user_properties:
        _tally(item.config).explained += 1
        item.user_properties.extend([(Prop.KNOWN_ISSUE, issue.id), (Prop.KNOWN_ISSUE_REASON, issue.reason)])
        if issue.link:
            item.user_properties.append((Prop.KNOWN_ISSUE_LINK, issue.link))


def exit_status(session: pytest.Session, exitstatus: int) -> int:
    """A cell whose every failure is a declared issue exits 0 (its CI job is not red for amber
    results); any other failure, error or collection error keeps pytest's code."""
    if int(exitstatus) == 1 and session.testsfailed and session.testsfailed == _tally(session.config).explained:
        return 0
    return int(exitstatus)


def observed_text(report: pytest.TestReport) -> str:
    """The failure itself and how the server ended, not the whole server log (it names earlier cases)."""
    ended = [text for title, text in report.sections if "server ended" in title]
    return "\n".join([report.longreprtext, *ended])


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def _is_not_applicable(report: pytest.TestReport) -> bool:
    return NOT_APPLICABLE_PREFIX.strip() in _skip_reason(report)
