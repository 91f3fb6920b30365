"""junit.xml: every cell's results in one file, one suite per cell, each testcase named with its cell."""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from harness.layout import NOT_APPLICABLE_PREFIX
from harness.report.results import Results
from harness.states import State


def write(results: Results, path: Path) -> None:
    xml = JUnitXml("triton-matrix")
    for info in results.cells:
        suite = TestSuite(info.id)  # distinct names: junitparser merges suites that compare equal
        for key, value in info.as_dict().items():
            if value is not None and key not in ("id", "problem"):
                suite.add_property(key, str(value))
        for case in results.cases:
            result = results.get(case, info.id)
            tc = TestCase(f"{case} [{info.id}]", classname=info.id, time=result.time)
            if result.state in (State.FAILED,):
                tc.result = [Failure(result.first_line)]
            elif result.state in (State.ERROR, State.MISSING):
                tc.result = [Error(result.first_line or result.state.value)]
            elif result.state in (State.SKIPPED, State.NOT_APPLICABLE):
                prefix = NOT_APPLICABLE_PREFIX if result.state == State.NOT_APPLICABLE else ""
                tc.result = [Skipped(prefix + result.first_line)]
            if result.details:
                tc.system_out = result.details
            suite.add_testcase(tc)
        suite.update_statistics()
        xml.add_testsuite(suite)
    xml.update_statistics()
    xml.write(str(path), pretty=True)
