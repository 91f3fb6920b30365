"""The progress of a matrix run: the in-cell recorder (through a real pytest run) and the view."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.progress import DURATIONS_FILE, CellProgress, ProgressRecorder, format_counts, progress_path, write_json
from harness.run.progress_view import Progress

pytestmark = pytest.mark.fast
pytest_plugins = ["pytester"]

CASES = '''
import json
import time

import pytest

PROGRESS = {progress!r}
attempts = {{"flaky": 0}}


def test_sees_itself(request):
    seen = json.load(open(PROGRESS))
    assert (seen["total"], seen["done"], seen["current"], seen["finished"]) == (11, 0, request.node.nodeid, False)


def test_pass():
    pass


def test_fail():
    assert False


@pytest.mark.skip(reason="not-applicable: the case needs a GPU")
def test_not_applicable():
    pass


def test_plain_skip():
    pytest.skip("skipped for another reason")


def test_flaky():
    attempts["flaky"] += 1
    assert attempts["flaky"] > 1


def test_known(record_property):
    record_property("known_issue", "server 2.51.0 with numpy 2")
    assert False


# Not re-run: pytest-timeout's timer covers the first attempt only, a re-run would sleep it out.
@pytest.mark.flaky(reruns=0)
@pytest.mark.timeout(0.5, method="signal")
def test_timeout():
    time.sleep(5)  # stopped by pytest-timeout, as a model that hangs in execute


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown failed")


def test_teardown_error(broken_teardown):
    pass


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    pass
'''


def test_recorder_counts_each_case_once_by_its_final_state(pytester: pytest.Pytester, tmp_path: Path) -> None:
    path = progress_path(tmp_path / "reports", "24.10-python-cpu-py3.11")
    pytester.makepyfile(test_cases=CASES.format(progress=str(path)))
    result = pytester.runpytest("-p", "no:cacheprovider", "--reruns=1", plugins=[ProgressRecorder(path, cell="24.10-python-cpu-py3.11")])

    # pytest's own tally counts phases and attempts (the teardown error's case passes twice, then errs).
    assert result.parseoutcomes() == {"passed": 7, "failed": 3, "skipped": 2, "errors": 1, "rerun": 4}
    written = json.loads(path.read_text())
    assert written["cell"] == "24.10-python-cpu-py3.11"
    assert (written["total"], written["done"], written["current"], written["finished"]) == (11, 11, None, True)
    assert written["counts"] == {"passed": 4, "failed": 1, "not-applicable": 1, "skipped": 1, "flaky": 1,
                                 "known-incompatible": 1, "timeout": 1, "error": 1}
    assert isinstance(written["started"], float)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def report(when: str, outcome: str, nodeid: str = "t.py::test_a") -> SimpleNamespace:
    return SimpleNamespace(nodeid=nodeid, when=when, outcome=outcome, passed=outcome == "passed",
                           failed=outcome == "failed", skipped=outcome == "skipped", longrepr="assert False",
                           user_properties=[])


@pytest.mark.parametrize("rerun_teardown_logged", [True, False], ids=["rerunfailures>=15", "rerunfailures<15"])
def test_recorder_counts_a_rerun_case_once(tmp_path: Path, rerun_teardown_logged: bool) -> None:
    """pytest-rerunfailures 14 logs no teardown after a rerun attempt; later versions do."""
    recorder = ProgressRecorder(tmp_path / "cell.json", cell="cell")
    first = [report("setup", "passed"), report("call", "rerun")]
    for phase in [*first, *([report("teardown", "passed")] if rerun_teardown_logged else []),
                  report("setup", "passed"), report("call", "failed"), report("teardown", "passed")]:
        recorder.pytest_runtest_logreport(phase)
    assert (recorder.snapshot().done, recorder.snapshot().counts) == (1, {"failed": 1})


# -- the view


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write_progress(reports: Path, cell: str, counts: dict[str, int], *, total: int | None = None) -> None:
    done = sum(counts.values())
    write_json(progress_path(reports, cell), CellProgress(cell=cell, total=done if total is None else total,
                                                          done=done, counts=counts, finished=True).as_dict())


def write_cell_status(reports: Path, cell: str, element: str, message: str) -> None:
    """What the cell runner writes for a cell that did not apply (skipped) or could not run (error)."""
    write_junit(reports, cell, [], level=f'<{element} message="{message}"/>')


# How pytest's JUnit writer records a case in each state (with the properties the cell writes for it).
RECORDED = {
    "passed": "",
    "failed": '<failure message="assert False"/>',
    "timeout": '<failure message="Failed: Timeout &gt;10.0s"/>',
    "error": '<error message="failed on setup with &quot;RuntimeError: no model&quot;"/>',
    "not-applicable": '<skipped message="not-applicable: the case needs a GPU"/>',
    "skipped": '<skipped message="skipped for another reason"/>',
    "known-incompatible": '<properties><property name="known_issue" value="stub-hang"/></properties>'
                          '<failure message="Failed: Timeout &gt;10.0s"/>',
}


def write_junit(reports: Path, cell: str, states: list[str], *, props: dict[str, str] | None = None,
                level: str | None = None) -> None:
    """A cell's JUnit file as its worker writes it: case ``t::case_<i>`` in ``states[i]`` (``flaky``: a
    re-run attempt, then a pass; ``missing``: planned, no testcase); ``level``: a cell-level result."""
    cases = []
    for i, state in enumerate(states):
        name = f'classname="t" name="case_{i}"'
        if state == "flaky":
            cases.append(f"<testcase {name}/><testcase {name}/>")
        elif state != "missing":
            cases.append(f"<testcase {name}>{RECORDED[state]}</testcase>")
    if level is not None:
        cases.append(f'<testcase classname="triton-matrix" name="&lt;cell&gt;">{level}</testcase>')
    planned = "&#10;".join(f"t::case_{i}" for i in range(len(states)))
    properties = {"cell": cell, **({"collected": planned} if states else {}), **(props or {})}
    path = reports / "junit" / f"{cell}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'<testsuites><testsuite name="{cell}"><properties>'
                    + "".join(f'<property name="{k}" value="{v}"/>' for k, v in properties.items())
                    + f'</properties>{"".join(cases)}</testsuite></testsuites>')


def finish(reports: Path, cell: str, states: list[str], *, total: int | None = None, **junit: Any) -> None:
    """A cell's last progress file and its JUnit file, as it leaves them when it ends."""
    counts: dict[str, int] = {}
    for state in states:
        if state != "missing":
            counts[state] = counts.get(state, 0) + 1
    write_progress(reports, cell, counts, total=len(states) if total is None else total)
    write_junit(reports, cell, states, **junit)


def assert_one_line_per_cell(output: str, ran: list[str], not_applicable: list[str] = ()) -> list[str]:
    """What the run prints by default: one line per cell that ran, none per case (no pytest SKIPPED
    lines, no not-applicable case), and the not-applicable cells only in the total. Returns the lines
    of the cells, in their order. For the scheduler's end-to-end test too."""
    lines = output.splitlines()
    assert not [ln for ln in lines if "SKIPPED" in ln or "not-applicable:" in ln or "not applicable:" in ln]
    total = re.compile(r"^[✓✗] (interrupted: )?\d+ (of \d+ )?cells?, ")
    cell_lines = [ln for ln in lines if re.match(r"^[✓✗] \S", ln) and not total.match(ln)]
    assert sorted(ln.split()[1] for ln in cell_lines) == sorted(ran)
    assert not [ln for ln in lines if any(f" {cell} " in f"{ln} " for cell in not_applicable)]
    return cell_lines


def run_view(reports: Path, *, verbose: bool = False, jobs: int = 2) -> tuple[str, FakeClock]:
    """Four cells, as a scheduler drives the view: one green, one red, one not applicable, one error."""
    out, clock = io.StringIO(), FakeClock()
    cells = ["24.10-python-cpu-py3.11", "23.10-custom-cpu-py3.11", "24.10-python-gpu-py3.11",
             "24.07-python-cpu-py3.12"]
    with Progress(cells, reports=reports, jobs=jobs, live=False, verbose=verbose, stream=out, clock=clock) as view:
        view.started(cells[0])
        view.started(cells[1])
        clock.now += 29
        view.poll()
        finish(reports, cells[0], ["passed"] * 12 + ["not-applicable"] * 4 + ["known-incompatible"])
        finish(reports, cells[1], ["passed"] * 10 + ["failed"] * 2 + ["error"] + ["not-applicable"] * 4)
        clock.now += 1
        view.poll()
        view.finished(cells[0], 0, 61.2)
        view.finished(cells[1], 1, 212)
        write_cell_status(reports, cells[2], "skipped", "not-applicable: no GPU on this machine")
        view.started(cells[2])
        view.finished(cells[2], 0, 0.4)
        write_cell_status(reports, cells[3], "error", "uv pip install failed: no network")
        view.started(cells[3])
        view.finished(cells[3], 1, 3)
    return out.getvalue(), clock


def test_plain_view_prints_one_line_per_finished_cell(tmp_path: Path) -> None:
    output, _ = run_view(tmp_path)

    cell_lines = assert_one_line_per_cell(output, ran=["24.10-python-cpu-py3.11", "23.10-custom-cpu-py3.11",
                                                       "24.07-python-cpu-py3.12"],
                                          not_applicable=["24.10-python-gpu-py3.11"])
    # A cell that could not run has every case of the run as an error in the report, and so here.
    assert cell_lines == [
        "✓ 24.10-python-cpu-py3.11  12 passed · 4 n/a · 1 known  61 s",
        "✗ 23.10-custom-cpu-py3.11  10 passed · 2 failed · 1 error · 4 n/a  3 min 32 s",
        "✗ 24.07-python-cpu-py3.12  17 error · error: uv pip install failed: no network  3 s",
    ]
    # The not-applicable cell's 17 cases are not-applicable in the report: counted too.
    assert output.splitlines()[-1] == \
        "✗ 4 cells, 2 red, 1 not applicable  22 passed · 2 failed · 18 error · 25 n/a · 1 known  30 s"


def test_verbose_shows_not_applicable_cells(tmp_path: Path) -> None:
    output, _ = run_view(tmp_path, verbose=True)

    assert "– 24.10-python-gpu-py3.11  not applicable: no GPU on this machine" in output.splitlines()


def test_heartbeat_names_what_runs_every_30_s(tmp_path: Path) -> None:
    output, _ = run_view(tmp_path)

    beats = [ln for ln in output.splitlines() if ln.startswith("…")]
    # One at the start, one at 30 s (none at 29 s), naming the running cells with their cases. With no
    # history the ETA projects the running cells (all cases done in 30 s) onto the two cells still to start.
    assert beats == ["… 0/4 cells done",
                     ("… 0/4 cells done · running 24.10-python-cpu-py3.11 (17/17, 30 s), "
                      "23.10-custom-cpu-py3.11 (17/17, 3 failed, 30 s) · ETA 30 s")]


def test_durations_are_saved_for_the_next_run(tmp_path: Path) -> None:
    run_view(tmp_path)
    saved = json.loads((tmp_path / DURATIONS_FILE).read_text())
    # The not-applicable cell took its time too; the error cell's 3 s are kept as well (exit code 1).
    assert saved == {"24.10-python-cpu-py3.11": 61.2, "23.10-custom-cpu-py3.11": 212.0,
                     "24.10-python-gpu-py3.11": 0.4, "24.07-python-cpu-py3.12": 3.0}

    write_json(tmp_path / DURATIONS_FILE, {"a": 60, "b": 100, "old-cell": 80})
    with Progress(["a"], reports=tmp_path, live=False, stream=io.StringIO(), clock=FakeClock()) as view:
        view.started("a")
        finish(tmp_path, "a", ["passed"])
        view.finished("a", 0, 70)
    assert json.loads((tmp_path / DURATIONS_FILE).read_text()) == {"a": 70.0, "b": 100, "old-cell": 80}


def test_interrupted_run_keeps_finished_durations_only(tmp_path: Path) -> None:
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt), \
            Progress(["a", "b", "c"], reports=tmp_path, live=False, stream=out, clock=FakeClock()) as view:
        for cell in ("a", "b", "c"):
            view.started(cell)
        finish(tmp_path, "a", ["passed"] * 3)
        # b's pytest was stopped after one case of five: its plan was not written, the cell runner marks it.
        finish(tmp_path, "b", ["passed"], total=5, props={"interrupted": "pytest was interrupted"})
        view.finished("a", 0, 5)
        view.finished("b", 2, 7)
        view.finished("c", -15, 1)  # stopped before its pytest began
        raise KeyboardInterrupt
    lines = out.getvalue().splitlines()
    assert "✗ b  1 passed · 4 missing · interrupted  7 s" in lines
    assert "✗ c  3 missing · interrupted  1 s" in lines  # the report's rows are a's cases: missing in c
    assert lines[-1].startswith("✗ interrupted: 3 cells, 2 red")
    assert json.loads((tmp_path / DURATIONS_FILE).read_text()) == {"a": 5.0}


def test_exit_code_2_without_junit_is_shown_as_it_is(tmp_path: Path) -> None:
    """``python -m harness cell`` exits 2 on a bad command line: not an interruption."""
    out = io.StringIO()
    with Progress(["a"], reports=tmp_path, live=False, stream=out, clock=FakeClock()) as view:
        view.started("a")
        view.finished("a", 2, 0.3)
    assert "✗ a  no JUnit file · exit code 2  0 s" in out.getvalue().splitlines()


def test_stale_progress_files_are_cleared_at_start(tmp_path: Path) -> None:
    write_progress(tmp_path, "a", {"failed": 9})
    with Progress(["a"], reports=tmp_path, live=False, stream=io.StringIO(), clock=FakeClock()) as view:
        view.started("a")
        view.poll()
        assert view.heartbeat() == "… 0/1 cells done · running a (starting, 0 s)"
        ProgressRecorder(progress_path(tmp_path, "a"), cell="a")  # the cell's pytest has begun, not yet collected
        view.poll()
        assert view.heartbeat() == "… 0/1 cells done · running a (collecting, 0 s)"


def test_live_view_renders_on_a_terminal(tmp_path: Path) -> None:
    from rich.console import Console

    file = io.StringIO()
    console = Console(file=file, force_terminal=True, width=140, color_system=None)
    clock = FakeClock()
    with Progress(["24.10-python-cpu-py3.11"], reports=tmp_path, live=True, console=console, clock=clock) as view:
        view.started("24.10-python-cpu-py3.11")
        write_json(progress_path(tmp_path, "24.10-python-cpu-py3.11"),
                   CellProgress(cell="24.10-python-cpu-py3.11", total=265, done=12, counts={"passed": 11, "failed": 1},
                                current="basics/test_add_sub.py::test_add_sub_exact[http]").as_dict())
        clock.now += 5
        view.poll()
        rendered = file.getvalue()
        for shown in ("current case", "12/265", "basics/test_add_sub.py::test_add_sub_exact[http]", "5 s"):
            assert shown in rendered
        finish(tmp_path, "24.10-python-cpu-py3.11", ["passed"] * 265)
        view.finished("24.10-python-cpu-py3.11", 0, 61)
    assert "✓ 24.10-python-cpu-py3.11  265 passed  61 s" in file.getvalue()


def test_without_rich_the_view_falls_back_to_plain_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # import rich.console raises ImportError
    out = io.StringIO()
    with Progress(["a"], reports=tmp_path, live=True, stream=out, clock=FakeClock()) as view:
        view.started("a")
        finish(tmp_path, "a", ["passed"] * 2)
        view.finished("a", 0, 2)
    assert out.getvalue().splitlines() == ["… 0/1 cells done", "✓ a  2 passed  2 s",
                                           "✓ 1 cell, 0 red, 0 not applicable  2 passed  0 s"]


def test_counts_are_shown_in_a_fixed_order() -> None:
    assert format_counts({"known-incompatible": 3, "not-applicable": 50, "passed": 212, "failed": 0}) == \
        "212 passed · 50 n/a · 3 known"
