"""junit.xml: every cell's results in one file, one suite per cell, each testcase named with its cell
(written by ``harness.junit.write_merged``)."""

from __future__ import annotations

from pathlib import Path

from harness import junit
from harness.layout import NOT_APPLICABLE_PREFIX, Element
from harness.report.results import Results
from harness.states import State


def write(results: Results, path: Path) -> None:
    suites = []
    for info in results.cells:
        props = [(key, str(value)) for key, value in info.as_dict().items()
                 if value is not None and key not in ("id", "problem")]
        cases = []
        for case in results.cases:
            result = results.get(case, info.id)
            outcome = None
            if result.state in (State.FAILED,):
                outcome = junit.Outcome(Element.FAILURE, result.first_line or None)
            elif result.state in (State.ERROR, State.MISSING):
                outcome = junit.Outcome(Element.ERROR, result.first_line or result.state.value)
            elif result.state in (State.SKIPPED, State.NOT_APPLICABLE):
                prefix = NOT_APPLICABLE_PREFIX if result.state == State.NOT_APPLICABLE else ""
                outcome = junit.Outcome(Element.SKIPPED, (prefix + result.first_line) or None)
            cases.append(junit.Case(name=f"{case} [{info.id}]", classname=info.id, time=result.time,
                                    outcomes=(outcome,) if outcome else (), system_out=result.details or None))
        suites.append((info.id, props, cases))
    junit.write_merged(path, "triton-matrix", suites)
