"""The report's side of known issues, from a JUnit file a real cell wrote (tests/fixtures/junit/
known-issues.xml, the fixture library's cell): each state, the Known issues section in compat.json,
HTML and Markdown, and a matrix's known_failures applied by the report to a cell that ran without."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES
from harness.matrix import known_issues as ki
from harness.matrix.settings import Validator
from harness.report import html, jsonfile, markdown, model
from harness.report.results import Result, Results
from harness.states import State

pytestmark = pytest.mark.fast

CELL = "24.10-python-cpu-py3.11"
CASE = "ki/test_ki.py::"


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    (tmp_path / "junit").mkdir()
    shutil.copy(FIXTURES / "junit" / "known-issues.xml", tmp_path / "junit" / f"{CELL}.xml")
    return tmp_path


def states(results: Results) -> dict[str, Result]:
    return {case.removeprefix(CASE): r for (case, cell), r in results.results.items()}


def test_states_from_the_cells_properties(reports: Path) -> None:
    got = states(model.read(reports))
    assert got["test_output1_is_the_sum[http]"].state == State.KNOWN_INCOMPATIBLE
    assert got["test_output1_is_the_sum[http]"].message.startswith("AssertionError: OUTPUT1 is not a + b")
    assert "— known issue sum-in-output1: the model answers a - b" in got["test_output1_is_the_sum[http]"].message
    assert got["test_exact[grpc]"].state == State.UNEXPECTEDLY_PASSING
    assert got["test_fails_otherwise[grpc]"].state == State.FAILED
    assert got["test_fails_elsewhere"].state == State.FAILED
    assert got["test_skip_caused_by_an_error"].state == State.ERROR
    assert got["test_not_applicable[http]"].state == State.NOT_APPLICABLE


def test_known_issues_in_every_format(reports: Path) -> None:
    results = model.read(reports)
    jsonfile.write(results, reports / "compat.json")
    data = json.loads((reports / "compat.json").read_text())
    issues = {i["id"]: i for i in data["known_issues"]}
    assert len(issues["sum-in-output1"]["occurred"]) == 2
    assert issues["never-happens"]["cells_where_it_did_not_occur"] == [CELL]
    assert issues["other-message"]["occurred"] == [] and issues["other-message"]["did_not_occur"] == []
    page = html.render(results)
    section = page[page.index('<h2 id="known-issues">'):page.index('<h2 id="cells">')]
    assert section.count("<h3 ") == 3
    assert 'href="https://example.invalid/issues/1"' in section
    assert "did not occur (passed)" in section and "OUTPUT1 is not a + b" in section
    text = markdown.render(results)
    assert "## Known issues" in text and "`sum-in-output1`" in text
    assert any("did not occur" in note and "never-happens" in note for note in results.notes)


def test_a_matrix_entry_applied_by_the_report(reports: Path) -> None:
    """A cell that ran without the matrix's known_failures: the report applies them (same matching)."""
    known = (ki.parse_known_failure(Validator("matrix.toml"), {
        "cells": ["24.10-*"], "cases": ["ki/test_ki.py::test_fails_otherwise*"], "reason": "declared in the matrix",
        "message": ["OUTPUT0 is not zero"]}, 0),)
    got = states(model.read(reports, known=known))
    assert got["test_fails_otherwise[http]"].state == State.KNOWN_INCOMPATIBLE
    assert got["test_fails_otherwise[http]"].message.endswith("known issue matrix.known_failures[0]: declared in the matrix")
    assert got["test_fails_elsewhere"].state == State.FAILED
