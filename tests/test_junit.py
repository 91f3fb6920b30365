"""harness.junit on real small JUnit files: the status suite, properties, the workers' join, a dead
worker's completion, the retry's replacement and the report's merged file, each read back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import junit
from harness.layout import CELL_CASE, NOT_APPLICABLE_PREFIX, Element, Prop, Verdict
from harness.states import State

pytestmark = pytest.mark.fast

FIXTURES = Path(__file__).parent / "fixtures" / "junit"
CELL = "24.10-python-cpu-py3.11"
CELL_PROPS = {Prop.CELL: CELL, "triton": "24.10"}


def worker_file(path: Path, *cases: tuple[str, str]) -> Path:
    """A worker's JUnit file as pytest writes it: (case id, outcome element or "") per testcase."""
    body = ""
    for case, outcome in cases:
        module, _, name = case.partition("::")
        inner = f'<{outcome} message="{outcome} of {name}">text</{outcome}>' if outcome else ""
        body += (f'<testcase classname="{module.removesuffix(".py").replace("/", ".")}" name="{name}" '
                 f'file="{module}" time="1.5"><properties><property name="case" value="{case}" /></properties>'
                 f"{inner}</testcase>")
    path.write_text('<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
                    f'<testsuite name="pytest" tests="{len(cases)}"><properties>'
                    f'<property name="cell" value="{CELL}" /></properties>{body}</testsuite></testsuites>')
    return path


def test_a_status_suite_round_trips_with_added_properties(tmp_path: Path) -> None:
    path = junit.write_status(tmp_path / "junit" / "c.xml", CELL_PROPS, State.NOT_APPLICABLE, "no GPU here")
    junit.add_properties(path, {Prop.SETUP_S: "1.250"})
    (suite,) = junit.read(path)
    assert suite.name == CELL and suite.props == {**CELL_PROPS, Prop.SETUP_S: "1.250"}
    (case,) = suite.cases
    assert (case.name, case.outcome) == (CELL_CASE, junit.Outcome(Element.SKIPPED, NOT_APPLICABLE_PREFIX + "no GPU here",
                                                                 "no GPU here", "pytest.skip"))
    assert case.state == State.NOT_APPLICABLE and not case.failed
    assert not junit.has_property(path, Prop.INTERRUPTED)
    junit.write_status(path, CELL_PROPS, State.ERROR, "the venv failed")
    assert junit.read(path)[0].cases[0].state == State.ERROR
    with pytest.raises(ValueError):
        junit.write_status(path, CELL_PROPS, State.PASSED, "")


def test_two_worker_files_join_and_a_missing_one_is_an_error_suite(tmp_path: Path) -> None:
    first = worker_file(tmp_path / "junit-0.xml", ("a/test_a.py::t1", ""), ("a/test_a.py::t2", Element.FAILURE))
    second = shutil.copy(FIXTURES / "mixed.xml", tmp_path / "junit-1.xml")
    out = tmp_path / "cell.xml"
    count = junit.join([(first, None), (Path(second), None), (tmp_path / "junit-2.xml", "worker 2 was killed")], out,
                       CELL)
    suites = junit.read(out)
    assert count == 2 + 9 + 1 == sum(len(s.cases) for s in suites)
    assert [c.case_id for c in suites[0].cases] == ["a/test_a.py::t1", "a/test_a.py::t2"]
    assert [c.failed for c in suites[0].cases] == [False, True]
    lost = suites[2]
    assert lost.props == {Prop.CELL: CELL} and lost.cases[0].outcome.message == "worker 2 was killed"
    junit.add_properties(out, {Prop.INTERRUPTED: "pytest was interrupted (Ctrl-C)"})
    assert junit.has_property(out, Prop.INTERRUPTED)
    assert all(s.props[Prop.INTERRUPTED] for s in junit.read(out))


def test_a_dead_workers_file_is_completed(tmp_path: Path) -> None:
    path = worker_file(tmp_path / "junit-1.xml", ("a/test_a.py::t1", ""), ("a/test_a.py::t2", ""))
    died = junit.worker_died_case("a/test_a.py::t2", "a/test_a.py::t2", "worker 1 died during this case")
    junit.complete(path, CELL_PROPS, [died], [("a/test_a.py::t2", "a/test_a.py::t2")], planned=["a/test_a.py::t3"])
    (suite,) = junit.read(path)
    assert [(c.case_id, c.state) for c in suite.cases] == [("a/test_a.py::t1", State.PASSED),
                                                          ("a/test_a.py::t2", State.ERROR)]
    assert suite.cases[1].props[Prop.VERDICT] == Verdict.WORKER_DIED
    assert (suite.cases[1].classname, suite.cases[1].name, suite.cases[1].file) == ("a.test_a", "t2", "a/test_a.py")
    assert suite.props[Prop.COLLECTED] == "a/test_a.py::t3"
    fresh = tmp_path / "none.xml"  # a hard death leaves no file: one is written with the cell's properties
    junit.complete(fresh, CELL_PROPS, [died], [])
    assert junit.read(fresh)[0].props == CELL_PROPS


def test_a_retried_case_replaces_its_first_attempt(tmp_path: Path) -> None:
    first = worker_file(tmp_path / "junit-0.xml", ("a/test_a.py::t1", Element.FAILURE), ("a/test_a.py::t2", ""))
    second = worker_file(tmp_path / "junit-3.xml", ("a/test_a.py::t1", ""))
    changed = junit.replace_cases(first, second, {"a/test_a.py::t1": "load average 9 on 2 CPUs"})
    assert changed == {"a/test_a.py::t1": (State.FAILED.value, State.FLAKY.value)}
    cases = junit.cases_of(first)
    assert [c.case_id for c in cases] == ["a/test_a.py::t1", "a/test_a.py::t2"], "in place, in order"
    assert cases[0].props[Prop.PASSED_ALONE] == "load average 9 on 2 CPUs" and cases[0].state == State.FLAKY
    assert junit.replace_cases(first, tmp_path / "missing.xml", {"a/test_a.py::t1": ""}) == {}


def test_the_merged_file_is_pretty_and_reads_back(tmp_path: Path) -> None:
    cases = [junit.Case("a [c]", "c", time=1.5), junit.Case("b [c]", "c", time=0.25,
                                                           outcomes=(junit.Outcome(Element.FAILURE, "boom"),))]
    path = tmp_path / "junit.xml"
    junit.write_merged(path, "triton-matrix", [("c", [("triton", "24.10")], cases)])
    text = path.read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="triton-matrix" tests="2" '
                           'failures="1" errors="0" skipped="0" time="1.75">')
    (suite,) = junit.read(path)
    assert suite.props == {"triton": "24.10"} and [c.failed for c in suite.cases] == [False, True]


@pytest.mark.parametrize("name", ["truncated.xml", "missing.xml"])
def test_an_unreadable_file_is_one_exception(name: str) -> None:
    with pytest.raises(junit.Unreadable):
        junit.read(FIXTURES / name)


def test_a_foreign_root_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "x.xml").write_text("<coverage/>")
    with pytest.raises(junit.Unreadable, match="coverage"):
        junit.cases_of(tmp_path / "x.xml")
