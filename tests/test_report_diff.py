"""The release diff (--baseline) and the flaky state, on JUnit files of real cell runs.

``run1-baseline.xml`` and ``run2-broken.xml`` are the JUnit files of two real runs of the cell
24.10-python-cpu-py3.11 (``test_two_real_runs_show_the_regression`` makes them again): the first with a
case that fails once and passes on its re-run and a case that fails twice, the second with a
deliberately broken case, a fixed one, a new one and a removed one.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import FIXTURES, run_harness
from harness import matrix as matrix_mod
from harness.report import build, diff, markdown, model, pagefilter
from harness.report.results import Result
from harness.states import State
from test_end_to_end import MATRIX, write_case_library

JUNIT = FIXTURES / "junit"
CELL = "24.10-python-cpu-py3.11"
GPU = "24.10-python-gpu-py3.11"


@pytest.fixture(autouse=True)
def plain_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A matrix without declared incompatibilities, for the report and the cells alike."""
    path = tmp_path / "matrix.toml"
    path.write_text(MATRIX)
    monkeypatch.setenv(matrix_mod.MATRIX_ENV, str(path))
    return path


def reports_with(folder: Path, files: dict[str, str]) -> Path:
    (folder / "junit").mkdir(parents=True)
    for cell, fixture in files.items():
        shutil.copy(JUNIT / fixture, folder / "junit" / f"{cell}.xml")
    return folder


def baseline_of(tmp_path: Path, files: dict[str, str]) -> Path:
    """The compat.json of a report over ``files`` (as the previous release's run wrote it)."""
    reports = reports_with(tmp_path / "baseline", files)
    build.main(reports=reports)
    return reports / "compat.json"


@pytest.mark.fast
def test_a_real_rerun_is_written_as_an_empty_attempt_then_the_last_one() -> None:
    """What pytest-rerunfailures leaves in pytest's JUnit file: one testcase per attempt, the failed
    attempt's testcase without any failure element."""
    root = ET.parse(JUNIT / "run1-baseline.xml").getroot()
    attempts = [tc for tc in root.iter("testcase") if tc.get("name") == "test_flaky[http]"]
    assert len(attempts) == 2 and all(tc.find("failure") is None for tc in attempts)
    twice = [tc for tc in root.iter("testcase") if tc.get("name") == "test_fixed[http]"]
    assert [tc.find("failure") is not None for tc in twice] == [False, True]


@pytest.mark.fast
def test_pass_after_fail_is_flaky(tmp_path: Path) -> None:
    results = model.read(reports_with(tmp_path / "r", {CELL: "run1-baseline.xml"}))
    state = {case: results.get(case, CELL).state for case in results.cases}
    assert state["area/test_area.py::test_flaky[http]"] == State.FLAKY
    assert state["area/test_area.py::test_flaky[grpc]"] == State.PASSED, "passed at once: not flaky"
    assert state["area/test_area.py::test_fixed[http]"] == State.FAILED, "failed on its re-run too"
    assert state["area/test_area.py::test_add[http]"] == State.PASSED
    flaky = results.get("area/test_area.py::test_flaky[http]", CELL)
    assert "passed when re-run" in flaky.message
    assert flaky in model.failures(results), "a flaky case is listed for the reader"
    assert not State.FLAKY.bad
    assert results.counts()["flaky"] == 1 and len(results.cases) == 8, "one result per case, not per attempt"


@pytest.mark.fast
def test_baseline_diff_lists_regressions_first_and_fails(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    baseline = baseline_of(tmp_path, {CELL: "run1-baseline.xml", GPU: "gpu-not-applicable.xml"})
    capsys.readouterr()
    reports = reports_with(tmp_path / "now", {CELL: "run2-broken.xml", GPU: "gpu-not-applicable.xml"})
    code = build.main(reports=reports, baseline=baseline)
    assert code == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == (f"REGRESSION: 2 newly failing since {baseline}; 2 fixed, 1 changed, 4 new, 4 removed")
    assert out[-3].startswith("  ▼ 24.10-python-cpu-py3.11 area/test_area.py::test_add[grpc]: passed -> failed")

    data = json.loads((reports / "compat.json").read_text())
    changes = data["baseline"]["changes"]
    kinds = [c["kind"] for c in changes]
    assert kinds == sorted(kinds, key=diff.KINDS.index), "regressions, fixed, changed, new, removed"
    assert [(c["case"], c["before"], c["after"]) for c in changes[:2]] == [
        ("area/test_area.py::test_add[grpc]", "passed", "failed"),
        ("area/test_area.py::test_add[http]", "passed", "failed")]
    assert changes[0]["message"] == "AssertionError: deliberately broken"
    by_case = {(c["case"], c["cell"]): c for c in changes}
    assert by_case[("area/test_area.py::test_fixed[http]", CELL)]["kind"] == "fixed"
    assert by_case[("area/test_area.py::test_flaky[http]", CELL)] == {
        "case": "area/test_area.py::test_flaky[http]", "cell": CELL, "kind": "changed", "before": "flaky",
        "after": "passed", "message": ""}
    assert by_case[("area/test_area.py::test_new[grpc]", GPU)]["after"] == "not-applicable"
    assert by_case[("area/test_area.py::test_removed[http]", CELL)]["kind"] == "removed"
    assert set(data) >= {"partial", "cells", "results"}, "compat.json keeps its shape"

    md = (reports / "compat.md").read_text()
    order = ["### ▼ Regressions (2)", "▲ Fixed (2)", "Δ Other changes (1)", "+ New (4)", "− Removed (4)", "## Cases"]
    assert [md.index(title) for title in order] == sorted(md.index(title) for title in order)
    assert "| area/test_area.py::test_add[grpc] | 24.10-python-cpu-py3.11 | ✅ passed | ❌ failed |" in md
    assert "❌<sup>▼</sup>" in md and "✅<sup>▲</sup>" in md, "the grid marks the changed (case, cell)"

    page = (reports / "compat.html").read_text()
    assert page.index('id="diff-summary"') < page.index('id="changes"') < page.index('id="grid"')
    first_row = page[page.index('<tr class="', page.index('id="changes"')):]
    assert first_row.startswith('<tr class="regression">') and "test_add[grpc]" in first_row.split("</tr>")[0]
    assert 'class="s failed chg-regression"' in page and 'class="s passed chg-fixed"' in page


@pytest.mark.fast
def test_no_regression_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = baseline_of(tmp_path, {CELL: "run2-broken.xml"})
    reports = reports_with(tmp_path / "now", {CELL: "run2-broken.xml"})
    assert build.main(reports=reports, baseline=baseline) == 1, "failures still fail the run"
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"no regression since {baseline}; 0 fixed, 0 changed, 0 new, 0 removed")
    assert "**no regression since" in (reports / "compat.md").read_text()
    passing = baseline_of(tmp_path / "b", {GPU: "gpu-not-applicable.xml"})
    assert build.main(reports=reports_with(tmp_path / "gpu", {GPU: "gpu-not-applicable.xml"}),
                      baseline=passing) == 0


@pytest.mark.parametrize("content, problem", [
    (None, "cannot read the baseline (No such file or directory)"),
    ("<testsuites/>", "the baseline is not JSON"),
    ('{"cells": []}', "not a compatibility report (no 'results' list of case, cell and state)"),
    ('{"results": [{"case": "a", "cell": "b"}]}', "not a compatibility report"),
])
@pytest.mark.fast
def test_a_baseline_that_is_not_a_report_is_one_line(tmp_path: Path, content: str | None, problem: str) -> None:
    reports = reports_with(tmp_path / "now", {CELL: "run2-broken.xml"})
    bad = tmp_path / "previous.json"
    if content is not None:
        bad.write_text(content)
    done = run_harness("report", "--reports", str(reports), "--baseline", str(bad))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: {problem}"), lines
    assert lines[0].endswith("pass the compat.json of an earlier 'nox -s report' run")
    assert not (reports / "compat.json").exists(), "nothing is written before the baseline is read"


@pytest.mark.fast
def test_the_report_can_diff_against_the_compat_json_it_replaces(tmp_path: Path) -> None:
    reports = reports_with(tmp_path / "r", {CELL: "run1-baseline.xml"})
    build.main(reports=reports)
    (reports / "junit" / f"{CELL}.xml").write_bytes((JUNIT / "run2-broken.xml").read_bytes())
    assert build.main(reports=reports, baseline=reports / "compat.json") == 1
    assert json.loads((reports / "compat.json").read_text())["baseline"]["counts"]["regression"] == 2


@pytest.mark.fast
def test_hostile_names_in_the_diff_are_escaped(tmp_path: Path) -> None:
    baseline = baseline_of(tmp_path, {CELL: "mixed.xml"})
    data = json.loads(baseline.read_text())
    for row in data["results"]:  # they passed last release: now they are regressions
        row["state"] = "passed"
    baseline.write_text(json.dumps(data))
    reports = reports_with(tmp_path / "now", {CELL: "mixed.xml"})
    assert build.main(reports=reports, baseline=baseline) == 1
    # the page's one script is the filter's own; no markup from the tests may add another
    page, md = (reports / "compat.html").read_text().replace(pagefilter.script(), ""), (reports / "compat.md").read_text()
    assert "test_hostile_names[&lt;script&gt;alert(1)&lt;/script&gt;]" in page
    assert "<script>" not in page and "<b>markup</b>" not in page
    assert "<script>" not in md and "<b>markup</b>" not in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| mixed/test_mixed.py::test_hostile_names[pipe")
            and f"| {CELL} |" in ln]  # the changes' rows (the history's name the cell in backticks)
    assert rows and all("pipe&#124;and" in ln and ln.count(" | ") == 4 for ln in rows)


@pytest.mark.fast
def test_markdown_with_a_huge_diff_stays_under_one_mebibyte(tmp_path: Path) -> None:
    results = model.read(reports_with(tmp_path / "r", {CELL: "run2-broken.xml"}))
    base = results.get("area/test_area.py::test_add[http]", CELL)
    states = {}
    for i in range(20000):  # a new release where everything broke, with long names and logs
        case = f"big/test_{i}.py::test_{'x' * 200}"
        results.results[(case, CELL)] = Result(case=case, cell=CELL, state=State.FAILED,
                                                     message=base.message, details="x" * 2000)
        states[(case, CELL)] = ("passed", "")
        states[(f"gone/test_{i}.py::test_y", CELL)] = ("passed", "")
    changes = diff.compare(diff.Baseline(path="prev/compat.json", partial=False, states=states), results)
    assert len(changes.regressions) == 20000
    text = markdown.render(results, changes)
    assert len(text.encode()) < 1024 * 1024
    assert "REGRESSION: 20000 newly failing" in text and "19900 more: see compat.html" in text


def test_two_real_runs_show_the_regression(tmp_path: Path, interpreter: object, plain_matrix: Path) -> None:
    """A real cell run, then the same cell with a deliberately broken case: the report of the second
    run against the first one's compat.json shows the regression first and exits non-zero."""
    common = """
        import pathlib
        import numpy as np
        import pytest

        pytestmark = pytest.mark.models("e2e_add_sub")
        FLAG = pathlib.Path(__file__).parents[2] / "flaky.flag"

        def add(client):
            a = np.ones(4, dtype=np.float32)
            return client.infer("e2e_add_sub", {"INPUT0": a, "INPUT1": a})["OUTPUT0"].tolist()

        def test_flaky(client):
            if client.protocol == "http" and not FLAG.exists():
                FLAG.write_text("failed once")
                assert False, "the first attempt fails"

        def test_add(client):
        """
    common = textwrap.dedent(common)
    first = write_case_library(tmp_path / "lib1", common + "    assert add(client) == [2, 2, 2, 2]\n")
    second = write_case_library(tmp_path / "lib2", common + (
        '    assert add(client) == [3, 3, 3, 3], "deliberately broken"\n'))
    matrix = plain_matrix
    runs = []
    for lib in (first, second):
        reports = tmp_path / f"reports-{lib.name}"
        done = run_harness("cell", CELL, f"--matrix={matrix}", f"--cases={lib}", f"--reports={reports}")
        assert (reports / "junit" / f"{CELL}.xml").exists(), done.stdout[-3000:] + done.stderr[-3000:]
        runs.append(reports)
    assert run_harness("report", f"--reports={runs[0]}", f"--matrix={matrix}").returncode == 0, "flaky passes"
    baseline = json.loads((runs[0] / "compat.json").read_text())
    assert {(r["case"], r["state"]) for r in baseline["results"]} == {
        ("area/test_area.py::test_flaky[http]", "flaky"), ("area/test_area.py::test_flaky[grpc]", "passed"),
        ("area/test_area.py::test_add[http]", "passed"), ("area/test_area.py::test_add[grpc]", "passed")}
    flaky = next(r for r in baseline["results"] if r["case"] == "area/test_area.py::test_flaky[http]")
    assert "failed (call: AssertionError: the first attempt fails" in flaky["message"], "says what failed first"

    done = run_harness("report", f"--reports={runs[1]}", f"--matrix={matrix}",
                       f"--baseline={runs[0] / 'compat.json'}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == (
        f"REGRESSION: 2 newly failing since {runs[0] / 'compat.json'}; 0 fixed, 1 changed, 0 new, 0 removed")
    changes = json.loads((runs[1] / "compat.json").read_text())["baseline"]["changes"]
    assert [(c["kind"], c["case"]) for c in changes] == [
        ("regression", "area/test_area.py::test_add[grpc]"), ("regression", "area/test_area.py::test_add[http]"),
        ("changed", "area/test_area.py::test_flaky[http]")]
    md = (runs[1] / "compat.md").read_text()
    assert md.index("## Changes since the baseline") < md.index("### ▼ Regressions (2)") < md.index("## Cases")
    assert "AssertionError: deliberately broken" in md.split("### ▼ Regressions (2)")[1].split("<details>")[0]
    page = (runs[1] / "compat.html").read_text()
    assert page.index('<tr class="regression">') < page.index('<tr class="changed">')
