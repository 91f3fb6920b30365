"""The user's path, for real: nox -s matrix / python -m harness cell -> servers -> JUnit -> report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import ROOT, run_harness, triton_processes
from test_progress import assert_one_line_per_cell

MATRIX = """
[axes]
triton = ["24.10"]
backend = ["python"]
instance_kind = ["cpu", "gpu"]
python = ["3.11"]

[releases."24.10"]
server_version = "2.51.0"
pytriton = "0.7.0"
pythons = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]

[settings]
case_timeout = 60
"""


@pytest.fixture
def marker() -> str:
    """A value put into the harness's environment, to find the processes of this run alone."""
    return uuid.uuid4().hex


def nox_matrix(tmp_path: Path, marker: str, *args: str, matrix: str = MATRIX) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "matrix.toml"
    path.write_text(matrix)
    env = {**os.environ, "TRITON_MATRIX_TEST": marker}
    return subprocess.run(
        [sys.executable, "-m", "nox", "-s", "matrix", "--", f"--matrix={path}", f"--reports={tmp_path / 'reports'}",
         *args],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env, check=False)


def write_case_library(root: Path, test_source: str) -> Path:
    area = root / "area"
    (area / "models").mkdir(parents=True)
    shutil.copytree(ROOT / "cases" / "basics" / "models" / "add_sub", area / "models" / "e2e_add_sub")
    config = area / "models" / "e2e_add_sub" / "config.pbtxt"
    config.write_text(config.read_text().replace('"add_sub"', '"e2e_add_sub"'))
    (area / "test_area.py").write_text(textwrap.dedent(test_source))
    return root


def test_nox_matrix_runs_real_cells_and_writes_the_report(tmp_path: Path, marker: str) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "cases" / "basics", lib / "basics", ignore=shutil.ignore_patterns("__pycache__"))
    (lib / "basics" / "test_elsewhere.py").write_text(  # a case that is not applicable in every cell
        "import pytest\n\n@pytest.mark.backend('onnxruntime')\ndef test_onnx_only():\n    pass\n")
    done = nox_matrix(tmp_path, marker, f"--cases={lib}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # The terminal gets one line per cell that ran, no per-case SKIPPED line, the gpu cell in the total.
    assert_one_line_per_cell(done.stdout + done.stderr, ran=["24.10-python-cpu-py3.11"],
                             not_applicable=["24.10-python-gpu-py3.11"])
    reports = tmp_path / "reports"
    data = json.loads((reports / "compat.json").read_text())
    cells = {c["id"]: c for c in data["cells"]}
    assert cells["24.10-python-cpu-py3.11"]["server_version"] == "2.51.0", "the live server's version"
    assert cells["24.10-python-cpu-py3.11"]["state"] == "passed"
    assert cells["24.10-python-gpu-py3.11"]["state"] == "not-applicable"
    assert data["partial"] is False
    rows = {(r["case"], r["cell"]): r for r in data["results"]}
    exact = rows[("basics/test_add_sub.py::test_add_sub_exact[grpc]", "24.10-python-cpu-py3.11")]
    assert exact["state"] == "passed"
    gpu = rows[("basics/test_add_sub.py::test_add_sub_exact[grpc]", "24.10-python-gpu-py3.11")]
    assert gpu["state"] == "not-applicable" and "no GPU" in gpu["message"]
    for name in ("compat.html", "compat.md", "junit.xml", "junit/24.10-python-cpu-py3.11.xml",
                 "logs/24.10-python-cpu-py3.11.log"):
        assert (reports / name).stat().st_size > 0, name
    suites = list(ET.parse(reports / "junit" / "24.10-python-cpu-py3.11.xml").getroot().iter("testsuite"))
    assert len(suites) == 3, "a suite per worker: three case files, three workers"
    props = [{p.get("name"): p.get("value") for p in suite.find("properties")} for suite in suites]
    assert all(p["runner"] == "local" and p["python"] == "3.11" and p["workers"] == "3" for p in props)
    assert "2.51.0" in {p.get("server_version") for p in props}  # a worker with only n/a cases starts none
    assert {suite.get("name") for suite in suites} == {"24.10-python-cpu-py3.11"}
    assert not triton_processes(marker), "no tritonserver or stub of the run is left"


def test_failing_cases_fail_the_run_and_keep_the_report(tmp_path: Path, marker: str) -> None:
    lib = write_case_library(tmp_path / "lib", """
        import numpy as np
        import pytest

        pytestmark = pytest.mark.models("e2e_add_sub")

        def test_wrong_expectation(client):
            a = np.ones(4, dtype=np.float32)
            out = client.infer("e2e_add_sub", {"INPUT0": a, "INPUT1": a})
            assert out["OUTPUT0"].tolist() == [3, 3, 3, 3]
        """)
    done = nox_matrix(tmp_path, marker, f"--cases={lib}", "--cell=*cpu*")
    assert done.returncode != 0
    data = json.loads((tmp_path / "reports" / "compat.json").read_text())
    states = {(r["case"], r["state"]) for r in data["results"]}
    assert states == {("area/test_area.py::test_wrong_expectation[http]", "failed"),
                      ("area/test_area.py::test_wrong_expectation[grpc]", "failed")}
    assert "test_wrong_expectation" in (tmp_path / "reports" / "compat.md").read_text()
    assert not triton_processes(marker)


def test_user_library_plus_builtin(tmp_path: Path, marker: str) -> None:
    lib = write_case_library(tmp_path / "lib", """
        import pytest

        @pytest.mark.models("e2e_add_sub")
        def test_ready(client):
            assert client.is_model_ready("e2e_add_sub")
        """)
    reports = tmp_path / "reports"
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--cases={lib}", "--cases=builtin",
                       f"--reports={reports}", env={"TRITON_MATRIX_TEST": marker})
    assert done.returncode == 0, done.stdout[-3000:]
    root = ET.parse(reports / "junit" / "24.10-python-cpu-py3.11.xml").getroot()
    cases = {p.get("value") for p in root.iter("property") if p.get("name") == "case"}
    assert "area/test_area.py::test_ready[http]" in cases
    assert "basics/test_add_sub.py::test_add_sub_exact[http]" in cases


def test_missing_interpreter_is_not_applicable_with_its_reason(tmp_path: Path) -> None:
    """A Python that is not installed (a failing pyenv-like shim on PATH) is reported, not skipped."""
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3.9"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.9: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    matrix = tmp_path / "m.toml"
    matrix.write_text(MATRIX.replace('python = ["3.11"]', 'python = ["3.9"]').replace('"gpu"', '"cpu"', 0))
    reports = tmp_path / "reports"
    env = {"PATH": f"{shims}:/usr/bin:/bin", "HOME": str(tmp_path)}  # no pyenv reachable either
    done = run_harness("cell", "24.10-python-cpu-py3.9", f"--matrix={matrix}", f"--reports={reports}", env=env)
    assert done.returncode == 0
    root = ET.parse(reports / "junit" / "24.10-python-cpu-py3.9.xml").getroot()
    skipped = root.find(".//skipped")
    assert skipped is not None
    assert "no working Python 3.9 interpreter" in skipped.get("message")
    assert str(shim) in skipped.get("message"), "the reason names what was tried"


def test_stub_the_release_does_not_ship_is_not_applicable(tmp_path: Path) -> None:
    matrix = tmp_path / "m.toml"
    matrix.write_text(MATRIX.replace('"3.12", "3.13"]', '"3.12"]').replace('python = ["3.11"]',
                                                                          'python = ["3.13"]'))
    reports = tmp_path / "reports"
    done = run_harness("cell", "24.10-python-cpu-py3.13", f"--matrix={matrix}", f"--reports={reports}")
    assert done.returncode == 0
    message = ET.parse(reports / "junit" / "24.10-python-cpu-py3.13.xml").getroot().find(".//skipped").get("message")
    assert "ships python backend stubs for 3.8, 3.9, 3.10, 3.11, 3.12 only, not 3.13" in message


def test_version_mismatch_with_matrix_is_an_error(tmp_path: Path, marker: str) -> None:
    matrix = tmp_path / "m.toml"
    matrix.write_text(MATRIX.replace('server_version = "2.51.0"', 'server_version = "2.50.0"'))
    reports = tmp_path / "reports"
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--matrix={matrix}", f"--reports={reports}",
                       env={"TRITON_MATRIX_TEST": marker}, )
    assert done.returncode == 1
    root = ET.parse(reports / "junit" / "24.10-python-cpu-py3.11.xml").getroot()
    errors = [e.get("message") for e in root.iter("error")]
    assert errors and all("server reports version 2.51.0 but matrix.toml says 2.50.0" in m for m in errors)
    assert not triton_processes(marker)


def test_unknown_marker_value_is_a_clear_cell_error(tmp_path: Path) -> None:
    lib = write_case_library(tmp_path / "lib", """
        import pytest

        @pytest.mark.backend("pythn")
        def test_typo():
            pass
        """)
    reports = tmp_path / "reports"
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--cases={lib}", f"--reports={reports}")
    assert done.returncode == 4
    error = ET.parse(reports / "junit" / "24.10-python-cpu-py3.11.xml").getroot().find(".//error")
    assert "marker backend has unknown value 'pythn'" in error.get("message")


def test_broken_case_library_stops_before_anything_starts(tmp_path: Path) -> None:
    lib = write_case_library(tmp_path / "lib", "def test_x():\n    pass\n")
    shutil.copytree(lib / "area" / "models" / "e2e_add_sub", lib / "area" / "other" / "models" / "e2e_add_sub")
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--cases={lib}", f"--reports={tmp_path / 'r'}")
    assert done.returncode == 2
    assert "model name 'e2e_add_sub' is used twice" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "logs").exists(), "no server was started"


def test_cell_whose_every_case_is_not_applicable_is_reported_as_such(tmp_path: Path) -> None:
    """No case of the cell runs a fixture: its JUnit file must still name the cell and its axes."""
    matrix = tmp_path / "m.toml"
    matrix.write_text(MATRIX.replace('backend = ["python"]', 'backend = ["custom"]'))
    reports = tmp_path / "reports"
    done = run_harness("cell", "24.10-custom-cpu-py3.11", f"--matrix={matrix}", f"--reports={reports}", "--",
                       "cases/basics")
    assert done.returncode == 0, done.stdout[-2000:]
    assert run_harness("report", f"--reports={reports}", f"--matrix={matrix}").returncode == 0
    data = json.loads((reports / "compat.json").read_text())
    assert [(c["id"], c["state"], c["backend"]) for c in data["cells"]] == [
        ("24.10-custom-cpu-py3.11", "not-applicable", "custom")]
    assert {r["state"] for r in data["results"]} == {"not-applicable"}


KILLS_ITS_SERVER = """
import numpy as np
import pytest

pytestmark = pytest.mark.models("add_sub")


def test_ends_its_server(triton, http_client):
    triton.kill("the case ends its own server")
    a = np.ones(4, dtype=np.float32)
    http_client.infer("add_sub", {"INPUT0": a, "INPUT1": a})


def test_after_the_restart(client):
    assert client.is_model_ready("add_sub")
"""


def test_workers_give_the_serial_paths_results(tmp_path: Path) -> None:
    """The same library with one worker that loads models one by one and with three workers: the same
    cases with the same states; a case that kills its server fails alone in both, and the cell's
    log holds the server of each worker under its name."""
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "cases" / "basics", lib / "basics", ignore=shutil.ignore_patterns("__pycache__"))
    (lib / "basics" / "test_kills.py").write_text(KILLS_ITS_SERVER)
    states = {}
    for how in ("--serial", "--workers=3"):
        reports = tmp_path / how.strip("-").split("=")[0]
        done = run_harness("cell", "24.10-python-cpu-py3.11", f"--cases={lib}", f"--reports={reports}", how)
        assert done.returncode == 1, done.stdout[-3000:]
        assert run_harness("report", f"--reports={reports}").returncode == 1
        data = json.loads((reports / "compat.json").read_text())
        states[how] = {r["case"]: r["state"] for r in data["results"]}
        suites = list(ET.parse(reports / "junit" / "24.10-python-cpu-py3.11.xml").getroot().iter("testsuite"))
        assert len(suites) == (1 if how == "--serial" else 3)
    assert states["--serial"] == states["--workers=3"]
    assert states["--serial"]["basics/test_kills.py::test_ends_its_server"] == "failed"  # the request fails
    assert states["--serial"]["basics/test_kills.py::test_after_the_restart[grpc]"] == "passed"
    assert list(states["--serial"].values()).count("passed") >= 7
    log = (tmp_path / "workers" / "logs" / "24.10-python-cpu-py3.11.log").read_text()
    named = re.findall(r"^==== worker (\d)'s server ====$", log, re.MULTILINE)  # a worker may take no module
    assert len(named) >= 2 and named == sorted(set(named)), named
