"""harness.report: merging real JUnit files (written by real cell runs) into every format."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from junitparser import JUnitXml

from conftest import FIXTURES, run_harness
from harness.errors import HarnessError
from harness.report import build, markdown, model, pagefilter
from harness.report.results import Result
from harness.states import State

pytestmark = pytest.mark.fast  # no server, no venv, no container

JUNIT = FIXTURES / "junit"
CPU311 = "24.10-python-cpu-py3.11"
GPU311 = "24.10-python-gpu-py3.11"
CPU312 = "24.10-python-cpu-py3.12"


def reports_with(tmp_path: Path, files: dict[str, str], plan: list[str] | None = None) -> Path:
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    for cell, fixture in files.items():
        shutil.copy(JUNIT / fixture, reports / "junit" / f"{cell}.xml")
    if plan is not None:
        (reports / "plan.json").write_text(json.dumps({"cells": [{"id": c} for c in plan]}))
    return reports


def test_states_are_mapped_from_junit(tmp_path: Path) -> None:
    results = model.read(reports_with(tmp_path, {CPU311: "mixed.xml"}))
    cell = CPU311
    state = {case: results.get(case, cell).state for case in results.cases}
    assert state["mixed/test_mixed.py::test_passes[http]"] == State.PASSED
    assert state["mixed/test_mixed.py::test_fails[grpc]"] == State.FAILED
    assert state["mixed/test_mixed.py::test_errors"] == State.ERROR
    assert state["mixed/test_mixed.py::test_skipped"] == State.SKIPPED
    assert state["mixed/test_mixed.py::test_not_applicable"] == State.NOT_APPLICABLE
    na = results.get("mixed/test_mixed.py::test_not_applicable", cell)
    assert na.message == "case needs backend onnxruntime; cell has python"
    failed = results.get("mixed/test_mixed.py::test_fails[http]", cell)
    assert failed.first_line == "AssertionError: OUTPUT1 is a - b"
    assert "Captured Log" in failed.details, "the server log of the failure travels into the report"
    info = results.cells[0]
    assert info.server_version == "2.51.0" and info.axes["python"] == "3.11"
    assert info.state == State.ERROR
    assert not results.ok


def test_cell_level_outcomes_fill_their_column(tmp_path: Path) -> None:
    reports = reports_with(tmp_path, {CPU311: "mixed.xml", GPU311: "gpu-not-applicable.xml",
                                      CPU312: "env-error.xml"})
    results = model.read(reports)
    by_id = {c.id: c for c in results.cells}
    assert by_id[GPU311].state == State.NOT_APPLICABLE
    assert by_id[CPU312].state == State.ERROR
    for case in results.cases:
        gpu = results.get(case, GPU311)
        assert gpu.state == State.NOT_APPLICABLE and gpu.message.startswith("no GPU on this machine")
        env = results.get(case, CPU312)
        assert env.state == State.ERROR and "installing the cell environment failed" in env.message
    assert by_id[GPU311].server_version is None


def test_truncated_junit_is_an_error_cell_and_the_others_are_kept(tmp_path: Path) -> None:
    reports = reports_with(tmp_path, {CPU311: "mixed.xml", CPU312: "truncated.xml"})
    results = model.read(reports)
    broken = {c.id: c for c in results.cells}[CPU312]
    assert broken.state == State.ERROR
    assert f"junit/{CPU312}.xml" in broken.problem and "not valid JUnit XML" in broken.problem
    assert results.get("mixed/test_mixed.py::test_passes[http]", CPU311).state == State.PASSED
    assert results.get("mixed/test_mixed.py::test_passes[http]", CPU312).state == State.ERROR


def test_foreign_junit_is_named(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="not written by triton-matrix"):
        model.read_junit(JUNIT / "foreign.xml")


def test_planned_cell_without_junit_makes_a_partial_report(tmp_path: Path) -> None:
    reports = reports_with(tmp_path, {CPU311: "mixed.xml"}, plan=[CPU311, CPU312])
    results = model.read(reports)
    assert results.partial
    missing = {c.id: c for c in results.cells}[CPU312]
    assert missing.state == State.MISSING and f"no JUnit file junit/{CPU312}.xml" in missing.problem
    data = json.loads(json.dumps(results.as_dict()))
    assert data["partial"] is True


def test_empty_reports_folder_is_a_clear_error(tmp_path: Path) -> None:
    done = run_harness("report", "--reports", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path}/junit: no JUnit files; run 'nox -s matrix' (or one cell) first"]


def test_every_format_is_written_and_json_keeps_its_shape(tmp_path: Path) -> None:
    reports = reports_with(tmp_path, {CPU311: "mixed.xml", GPU311: "gpu-not-applicable.xml"})
    code = build.main(reports=reports)
    assert code == 1, "failures make the report's verdict non-zero"
    data = json.loads((reports / "compat.json").read_text())
    assert set(data) >= {"partial", "cells", "results"}
    assert set(data["cells"][0]) >= {"id", "triton", "server_version", "backend", "instance_kind", "python",
                                     "runner", "state"}
    assert set(data["results"][0]) >= {"case", "cell", "state", "message"}
    states = {r["state"] for r in data["results"]}
    assert states == {"passed", "failed", "error", "skipped", "not-applicable"}
    merged = JUnitXml.fromfile(str(reports / "junit.xml"))
    suites = list(merged)
    assert [s.name for s in suites] == [CPU311, GPU311], "one distinct suite per cell"
    names = [case.name for case in suites[0]]
    assert "mixed/test_mixed.py::test_fails[http] [24.10-python-cpu-py3.11]" in names
    assert suites[0].failures == 4 and suites[0].errors == 1


def test_report_is_idempotent(tmp_path: Path) -> None:
    reports = reports_with(tmp_path, {CPU311: "mixed.xml", GPU311: "gpu-not-applicable.xml"})
    build.main(reports=reports)
    first = {p.name: p.read_bytes() for p in reports.glob("compat.*")}
    build.main(reports=reports)
    assert first == {p.name: p.read_bytes() for p in reports.glob("compat.*")}


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    reports = reports_with(tmp_path, {CPU311: "mixed.xml"})
    build.main(reports=reports)
    # the page's one script is the filter's own; no markup from the tests may add another
    page = (reports / "compat.html").read_text().replace(pagefilter.script(), "")
    md = (reports / "compat.md").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>markup</b>" not in page
    assert "<script>" not in md and "<b>markup</b>" not in md
    for line in md.splitlines():
        if "pipe" in line and line.startswith("|"):
            assert "pipe&#124;and" in line, "a pipe in a name must not split the table row"
    tags: list[str] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: tags.append(tag)  # type: ignore[method-assign]
    parser.feed(page)
    assert "script" not in tags and "b" not in tags, "no markup from tests reaches the page as markup"
    assert "table" in tags


def test_markdown_stays_under_one_mebibyte(tmp_path: Path) -> None:
    results = model.read(reports_with(tmp_path, {CPU311: "mixed.xml"}))
    base = results.results[("mixed/test_mixed.py::test_fails[http]", CPU311)]
    for i in range(3000):  # 3000 failures with long logs
        results.results[(f"big/test_{i}.py::test_x", CPU311)] = Result(
            case=f"big/test_{i}.py::test_x", cell=CPU311, state=State.FAILED, message=base.message,
            details="x" * 2000)
    text = markdown.render(results)
    assert len(text.encode()) < 1024 * 1024
    assert "more failures are left out" in text


VERDICTS_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
 <properties><property name="cell" value="{cell}"/><property name="triton" value="24.10"/></properties>
 <testcase classname="v.test_v" name="test_hang">
  <properties><property name="case" value="v/test_v.py::test_hang"/><property name="verdict" value="timeout"/>
  </properties>
  <failure message="{timeout}: the case ran past its 30 s deadline">...</failure></testcase>
 <testcase classname="v.test_v" name="test_crash">
  <properties><property name="case" value="v/test_v.py::test_crash"/><property name="verdict" value="server-died"/>
  </properties>
  <failure message="{died}: the server ended (killed by SIGSEGV)">...</failure></testcase>
 <testcase classname="v.test_v" name="test_wrong">
  <properties><property name="case" value="v/test_v.py::test_wrong"/></properties>
  <failure message="AssertionError: OUTPUT0">...</failure></testcase>
</testsuite></testsuites>
"""


def test_compat_json_carries_the_harness_verdict(tmp_path: Path) -> None:
    """A reader (the bench's count of the harness's own reds) tells a deadline from a server crash
    without parsing messages; a plain failure has no verdict key."""
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    from harness.incell.supervise import CaseTimeout, ServerDied

    (reports / "junit" / f"{CPU311}.xml").write_text(VERDICTS_XML.format(
        cell=CPU311, timeout=f"{CaseTimeout.__module__}.CaseTimeout", died=f"{ServerDied.__module__}.ServerDied"))
    rows = {r["case"]: r for r in model.read(reports).as_dict()["results"]}
    assert rows["v/test_v.py::test_hang"]["state"] == "timeout"
    # pytest names the exception by its module path; the report says what the watchdog saw
    assert rows["v/test_v.py::test_hang"]["message"] == "the case ran past its 30 s deadline"
    assert rows["v/test_v.py::test_crash"]["message"] == "the server ended (killed by SIGSEGV)"
    assert rows["v/test_v.py::test_hang"]["verdict"] == "timeout"
    assert rows["v/test_v.py::test_crash"]["state"] == "error"
    assert rows["v/test_v.py::test_crash"]["verdict"] == "server-died"
    assert "verdict" not in rows["v/test_v.py::test_wrong"]
