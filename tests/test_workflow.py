"""The GitHub Actions workflow: actionlint finds nothing, and its plan step prints the harness's cells.

actionlint comes from PyPI (requirements-dev.txt) and checks the run scripts with shellcheck when it
is installed (.ci/run installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, require, run_harness

pytestmark = pytest.mark.fast  # no server, no venv, no container

WORKFLOW = ROOT / ".github" / "workflows" / "matrix.yml"


@pytest.fixture(scope="module")
def actionlint() -> str:
    found = Path(sys.executable).parent / "actionlint"
    path = str(found) if found.exists() else shutil.which("actionlint")
    require(path is not None, "actionlint is not installed (pip install -r requirements-dev.txt)")
    return str(path)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def lint(actionlint: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint, "-no-color", str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_actionlint_is_clean(actionlint: str) -> None:
    done = lint(actionlint, WORKFLOW)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_actionlint_catches_a_broken_copy(actionlint: str, tmp_path: Path) -> None:
    """The check above can fail: the same workflow with a bad key and an unknown job is refused."""
    broken = tmp_path / ".github" / "workflows" / "matrix.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("fail-fast: false", "fail-fast: sometimes")
                      .replace("needs: [plan, cell]", "needs: [plan, cells]"))
    done = lint(actionlint, broken)
    assert done.returncode == 1
    assert "fail-fast" in done.stdout and '"cells"' in done.stdout, done.stdout


def test_plan_step_prints_what_the_harness_prints(workflow: dict, tmp_path: Path) -> None:
    """The plan step's own script, run as GitHub runs it (bash, $GITHUB_OUTPUT, no cell glob)."""
    step = next(s for s in workflow["jobs"]["plan"]["steps"] if s.get("id") == "cells")
    output = tmp_path / "github_output"
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "CELLS": "",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    name, _, value = output.read_text().strip().partition("=")
    assert name == "cells" and "\n" not in value
    expected = run_harness("cells", "--json")
    assert expected.returncode == 0
    assert json.loads(value) == json.loads(expected.stdout)
    assert workflow["jobs"]["plan"]["outputs"]["cells"] == "${{ steps.cells.outputs.cells }}"


def test_cells_fan_out_and_the_report_always_runs(workflow: dict) -> None:
    jobs = workflow["jobs"]
    cell = jobs["cell"]
    assert cell["strategy"]["fail-fast"] is False
    assert cell["strategy"]["matrix"]["cell"] == "${{ fromJSON(needs.plan.outputs.cells) }}"
    assert "matrix.cell.gpu" in cell["runs-on"] and '["self-hosted", "linux", "gpu"]' in cell["runs-on"]
    runs = [s.get("run", "") for s in cell["steps"]]
    assert 'nox -s "$CELL"' in runs
    upload = next(s for s in cell["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "cell-${{ matrix.cell.id }}" and upload["if"] == "always()"
    report = jobs["report"]
    assert report["if"].startswith("always()") and set(report["needs"]) == {"plan", "cell"}
    download = next(s for s in report["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"] == {"pattern": "cell-*", "path": "reports", "merge-multiple": True}
    assert any("nox -s report" in s.get("run", "") for s in report["steps"])
    uploaded = [s for s in report["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert "reports/compat.html" in uploaded[-1]["with"]["path"]
