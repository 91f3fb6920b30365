"""Collection errors for real (#24): a real cell runs the fixture library tests/fixtures/collect_errors (a
module that imports a package the cell's venv lacks, a conftest.py that raises, a module that is
fine) with its workers; the cell's JUnit file and the report's compat.json name each file, line and
exception, the fine module runs, and nothing says interrupted or partial."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import FIXTURES, run_harness
from harness.matrix import envs
from harness.layout import Prop, junit_path

CELL = "24.10-python-cpu-py3.11"
LIB = FIXTURES / "collect_errors"
MISSING = "area/test_missing_package.py:3: ModuleNotFoundError: No module named 'not_installed_in_any_cell'"
CONFTEST = "broken_conftest/conftest.py:3: RuntimeError: this conftest refuses to load"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, cell_env: envs.CellEnv) -> Path:
    root = tmp_path_factory.mktemp("collect-errors")
    done = run_harness("cell", CELL, f"--cases={LIB}", f"--reports={root}", "--workers=2")
    shown = done.stdout + done.stderr
    assert done.returncode == 1, shown[-3000:]  # errors, not pytest's 2 (interrupted) or 4 (usage error)
    assert "interrupted" not in shown.lower(), shown[-3000:]
    report = run_harness("report", f"--reports={root}")
    assert report.returncode == 1, report.stdout[-3000:] + report.stderr[-3000:]
    return root


def test_the_cells_junit_names_file_line_and_error(reports: Path) -> None:
    root = ET.parse(junit_path(reports, CELL)).getroot()
    names = {p.get("name") for p in root.iter("property")}
    assert Prop.INTERRUPTED not in names and Prop.INTERRUPTED_CASE not in names
    messages = {case.find("error").get("message") for case in root.iter("testcase") if case.find("error") is not None}
    assert messages == {MISSING, CONFTEST}


def test_compat_json_has_the_errors_and_is_not_partial(reports: Path) -> None:
    data = json.loads((reports / "compat.json").read_text())
    assert data["partial"] is False
    assert [(c["id"], c["state"], c["interrupted"]) for c in data["cells"]] == [(CELL, "error", None)]
    results = {r["case"]: (r["state"], r["message"]) for r in data["results"]}
    assert results == {
        "area/test_missing_package.py": ("error", MISSING),
        "broken_conftest/conftest.py": ("error", CONFTEST),
        "area/test_ok.py::test_still_runs": ("passed", ""),
    }
