"""The live view and the report tell the same truth: one real pytest run writes a cell's progress file
and its JUnit file; the view's line, the recorder's counts and the report's counts of it agree."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from test_progress import FakeClock, finish

from harness.progress import ProgressRecorder, format_counts, progress_path
from harness.run.progress_view import Progress
from harness.report import model

pytestmark = pytest.mark.fast
pytest_plugins = ["pytester"]

CELL = "24.10-python-cpu-py3.11"

# Every way a case ends that the two used to count differently, and a planned case that never ran.
CASES = '''
import time

import pytest

attempts = {{"flaky": 0}}


@pytest.fixture(scope="session", autouse=True)
def plan(record_testsuite_property):
    """What the harness's plugin writes: the cell, and the worker's plan (one case it never ran)."""
    record_testsuite_property("cell", {cell!r})
    record_testsuite_property("collected", "test_cases::test_pass\\ntest_cases::test_never_ran")


def test_pass():
    pass


def test_fail():
    assert False


def test_flaky():
    attempts["flaky"] += 1
    assert attempts["flaky"] > 1


@pytest.mark.flaky(reruns=0)
def test_known(record_property):
    record_property("known_issue", "stub-hang")
    assert False


def test_known_issue_did_not_occur(record_property):
    record_property("known_issue_absent", "stub-hang")


@pytest.mark.flaky(reruns=0)
@pytest.mark.timeout(0.5, method="signal")
def test_timeout():
    time.sleep(5)


@pytest.fixture
def slow_load():
    raise TimeoutError("the model load timed out")  # a timeout seen in setup: an error in the report


@pytest.mark.flaky(reruns=0)
def test_setup_timeout(slow_load):
    pass


@pytest.mark.flaky(reruns=0)
def test_server_died(record_property):
    record_property("verdict", "server-died")
    assert False, "the server ended"


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown failed")


@pytest.mark.flaky(reruns=0)
def test_fail_then_teardown_error(broken_teardown):
    assert False


@pytest.mark.xfail(reason="declared with pytest's xfail")
def test_xfail():
    assert False


@pytest.mark.skip(reason="not-applicable: the case needs a GPU")
def test_not_applicable():
    pass


def test_skipped_by_error(record_property):
    record_property("skipped_by_error", "ImportError: no module named cupy")
    assert False
'''


def test_a_finished_cell_counts_as_in_the_report(pytester: pytest.Pytester, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    out = io.StringIO()
    with Progress([CELL], reports=reports, live=False, stream=out, clock=FakeClock()) as view:
        view.started(CELL)
        pytester.makepyfile(test_cases=CASES.format(cell=CELL))
        pytester.runpytest("-p", "no:cacheprovider", "--reruns=1", f"--junitxml={reports / 'junit' / CELL}.xml",
                           plugins=[ProgressRecorder(progress_path(reports, CELL), cell=CELL)])
        view.finished(CELL, 1, 12)

    report = {state: n for state, n in model.read(reports).counts().items() if n}
    assert report == {"passed": 1, "failed": 1, "flaky": 1, "known-incompatible": 1, "unexpectedly-passing": 1,
                      "timeout": 1, "error": 4, "skipped": 1, "not-applicable": 1, "missing": 1}
    recorded = json.loads(progress_path(reports, CELL).read_text())["counts"]
    assert recorded == {state: n for state, n in report.items() if state != "missing"}  # it cannot see a plan
    lines = out.getvalue().splitlines()
    assert f"✗ {CELL}  {format_counts(report)}  12 s" in lines
    assert lines[-1] == f"✗ 1 cell, 1 red, 0 not applicable  {format_counts(report)}  0 s"


def test_a_dead_worker_and_a_cell_that_could_not_run_count_as_in_the_report(tmp_path: Path) -> None:
    """A worker that died fills the cases it never planned with its error; a cell whose venv failed has
    every case of the run as an error; a not-applicable one every case not-applicable."""
    out, states = io.StringIO(), ["passed", "timeout", "known-incompatible", "flaky", "missing"]
    cells = ["a", "b", "c", "d"]
    with Progress(cells, reports=tmp_path, live=False, stream=out, clock=FakeClock()) as view:
        for cell in cells:
            view.started(cell)
        finish(tmp_path, "a", states)
        view.finished("a", 0, 1)
        # b's worker 1 died: its suite is a cell-level error; worker 0 planned and ran two cases of five.
        finish(tmp_path, "b", ["passed", "failed"], total=len(states),
               level='<error message="worker 1 ended with code -9 before writing its JUnit file"/>')
        view.finished("b", 1, 1)
        finish(tmp_path, "c", [], total=0, level='<error message="uv pip install failed: no network"/>')
        view.finished("c", 1, 1)
        finish(tmp_path, "d", [], total=0, level='<skipped message="not-applicable: no GPU on this machine"/>')
        view.finished("d", 0, 1)

    results = model.read(tmp_path)
    lines = out.getvalue().splitlines()
    for cell in ("a", "b", "c"):
        counts = results.counts([c for c in results.cells if c.id == cell])
        line = next(ln for ln in lines if ln.startswith(("✓ ", "✗ ")) and ln.split()[1] == cell)
        assert format_counts(counts) in line, (cell, counts, line)
    assert "✗ b  1 passed · 1 failed · 3 error · error: worker 1 ended with code -9 before writing its JUnit file  1 s" \
        in lines
    assert lines[-1].startswith(f"✗ 4 cells, 3 red, 1 not applicable  {format_counts(results.counts())}  ")


def test_a_cut_off_junit_file_is_an_error_as_in_the_report(tmp_path: Path) -> None:
    out = io.StringIO()
    with Progress(["a"], reports=tmp_path, live=False, stream=out, clock=FakeClock()) as view:
        view.started("a")
        (tmp_path / "junit").mkdir()
        (tmp_path / "junit" / "a.xml").write_text("<testsuites><testsuite name='a'><testcase")
        view.finished("a", 1, 2)
    assert model.read(tmp_path).cells[0].state.value == "error"
    line = out.getvalue().splitlines()[1]
    assert line.startswith("✗ a  error: ") and "not valid JUnit XML" in line
