"""harness.matrix: parsing, validation (real fixture files) and expansion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, run_harness
from harness import matrix
from harness.matrix.settings import Settings
from harness.errors import HarnessError

pytestmark = pytest.mark.fast  # no server, no venv, no container

BAD = sorted((FIXTURES / "matrix" / "bad").glob("*.toml"))


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ")


def test_the_repository_matrix_loads() -> None:
    m = matrix.load(ROOT / "matrix.toml")
    assert m.cells(), "the default matrix has cells"
    for release in m.releases.values():
        assert release.server_version.startswith("2.")


def test_expansion_follows_github_actions_semantics() -> None:
    m = matrix.load(FIXTURES / "matrix" / "full.toml")
    ids = [c.id for c in m.cells()]
    # 2 releases x 2 kinds x 2 pythons = 8, minus gpu+3.12 (2) = 6; include #1 moves the two
    # 24.10/3.11 cells to docker; include #2 matches nothing, so it is a new cell.
    assert ids == [
        "24.03-python-cpu-py3.11",
        "24.03-python-cpu-py3.12",
        "24.03-python-gpu-py3.11",
        "24.10-python-cpu-py3.11-docker",
        "24.10-python-cpu-py3.12",
        "24.10-python-gpu-py3.11-docker",
        "23.10-python-cpu-py3.10",
    ]
    assert m.settings.case_timeout == 30.0
    assert m.settings.start_timeout == Settings().start_timeout


def test_cell_ids_and_fields() -> None:
    cell = matrix.Cell(triton="24.10", backend="python", instance_kind="gpu", python="3.11")
    assert cell.id == "24.10-python-gpu-py3.11"
    assert cell.gpu
    with pytest.raises(TypeError):
        matrix.Cell("24.10", "python", "gpu", "3.11")  # type: ignore[misc]  # keyword-only
    with pytest.raises(AttributeError):
        cell.python = "3.12"  # type: ignore[misc]  # frozen
    env_cell = matrix.Cell(triton="24.10", backend="python", instance_kind="cpu", python="3.12", env="numpy2",
                           runner="docker")
    assert env_cell.id == "24.10-python-cpu-py3.12-numpy2-docker"


def test_env_axis_names_cells_and_packages() -> None:
    m = matrix.load(FIXTURES / "matrix" / "envs.toml")
    cells = m.cells()
    assert [c.id for c in cells] == ["24.10-python-cpu-py3.12-numpy1", "24.10-python-cpu-py3.12-numpy2"]
    assert m.env_packages(cells[1]) == ("numpy>=2",)


def test_runner_override_and_selection() -> None:
    m = matrix.load(FIXTURES / "matrix" / "full.toml")
    assert {c.runner for c in m.cells(runner="docker")} == {"docker"}
    assert [c.id for c in m.select(["24.03-*-gpu-*"])] == ["24.03-python-gpu-py3.11"]
    with pytest.raises(HarnessError, match="no cell matches"):
        m.select(["25.01-*"])
    with pytest.raises(HarnessError, match="unknown runner 'podman'"):
        m.select(runner="podman")
    assert m.cell("24.10-python-cpu-py3.12-docker").runner == "docker"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_matrix_is_one_clear_error(path: Path) -> None:
    with pytest.raises(HarnessError) as info:
        matrix.load(path)
    message = str(info.value)
    assert expected(path) in message
    assert path.name in message, "the error names the file"
    assert "\n" not in message, "one line"
    assert "; " in message, "the error says what to do"


@pytest.mark.parametrize("path", BAD[:4], ids=[p.stem for p in BAD[:4]])
def test_cli_refuses_bad_matrix_with_exit_2(path: Path) -> None:
    done = run_harness("cells", "--matrix", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected(path) in lines[0]
    assert "Traceback" not in done.stderr


def test_nox_refuses_bad_matrix_with_exit_2_and_keeps_the_other_sessions() -> None:
    bad = FIXTURES / "matrix" / "bad" / "duplicate_value.toml"
    env = {**os.environ, "TRITON_MATRIX": str(bad)}
    done = subprocess.run([sys.executable, "-m", "nox", "-s", "matrix"], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 2
    shown = done.stdout + done.stderr  # under nox, the session's stderr reaches the terminal on nox's stdout
    errors = [ln for ln in shown.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "duplicate value '3.11'" in errors[0] and "duplicate_value.toml" in errors[0]
    assert "Traceback" not in shown
    listed = subprocess.run([sys.executable, "-m", "nox", "-l"], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    assert listed.returncode == 0, "a typo in matrix.toml does not break nox -s tests or nox -s report"
    assert "- tests" in listed.stdout and "- report" in listed.stdout


def test_missing_file_is_a_clear_error() -> None:
    done = run_harness("cells", "--matrix", "/nonexistent/matrix.toml")
    assert done.returncode == 2
    assert "file not found" in done.stderr


def test_cells_json_is_what_ci_consumes() -> None:
    done = run_harness("cells", "--json", "--matrix", str(FIXTURES / "matrix" / "full.toml"))
    assert done.returncode == 0, done.stderr
    cells = json.loads(done.stdout)
    assert cells[0] == {"id": "24.03-python-cpu-py3.11", "triton": "24.03", "backend": "python",
                        "instance_kind": "cpu", "python": "3.11", "env": None, "runner": "local", "gpu": False,
                        "timeout_minutes": 15 + 31, "ngc_login": False}  # setup + 1800 s deadline + 20 s stop


def test_matrix_module_needs_only_the_standard_library() -> None:
    """The CI plan job runs 'python -m harness cells' with a bare Python: no third-party imports."""
    code = ("import sys, harness.__main__ as m; sys.exit(m.main(['cells', '--json'])); ")
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)


def test_release_comparisons_are_the_cases_one_way_to_compare() -> None:
    """``release.at_least`` / ``at_most`` / ``pick``: what case libraries compare releases with (by
    number, not as text: 24.10 is newer than 24.7 would be)."""
    r = matrix.Release(name="24.03", server_version="2.44.0")
    assert r.at_least("24.03") and r.at_least("23.12") and not r.at_least("24.07")
    assert r.at_most("24.03") and r.at_most("24.10") and not r.at_most("23.10")
    assert r.pick({"default": "old", "24.03": "new", "24.07": "newer"}) == "new"
    assert r.pick({"default": "old", "24.07": "newer"}) == "old"
    assert r.pick({"24.07": "newer"}) is None
    with pytest.raises(ValueError, match="'24.3' is not a Triton release"):
        r.pick({"24.3": "x"})
    with pytest.raises(ValueError, match="write it as YY.MM"):
        r.at_least("24")


def test_a_ci_job_takes_its_limit_and_ngc_login_from_the_matrix() -> None:
    """``cells --json``'s extra keys: the job's time limit past the cell's deadline and its stop, and an
    NGC login only for docker cells on a release image from nvcr.io."""
    import dataclasses

    from harness import processes
    from harness.matrix import ci
    from harness.matrix.settings import DockerSettings

    m = matrix.load(FIXTURES / "matrix" / "full.toml")
    local, docker = m.cell("24.10-python-cpu-py3.12"), m.cell("24.10-python-cpu-py3.11-docker")
    past = (m.settings.cell_timeout + processes.CELL_STOP_GRACE) / 60
    assert ci.job_minutes(m, local) == ci.SETUP_MINUTES["local"] + -(-past // 1)
    assert ci.job_minutes(m, docker) > ci.job_minutes(m, local)
    assert not ci.pulls_from_ngc(m, docker), "[docker] image = offline: built here, no registry"
    released = dataclasses.replace(m, docker=DockerSettings(image="release"))
    assert ci.pulls_from_ngc(released, docker) and not ci.pulls_from_ngc(released, local)
    assert ci.job(released, docker) == {**docker.as_dict(), "timeout_minutes": ci.job_minutes(m, docker),
                                        "ngc_login": True}
