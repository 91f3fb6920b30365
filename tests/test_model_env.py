"""The model-environment axis, proven with the real pair: server 2.51.0 with numpy 1 answers
exactly, with numpy 2 it answers outputs without data. Undeclared, that fails the run; declared as a
known incompatibility, the report shows it and the run passes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import run_harness

MATRIX = """
[axes]
triton = ["24.10"]
backend = ["python"]
instance_kind = ["cpu"]
python = ["3.12"]
env = ["numpy1", "numpy2"]

[releases."24.10"]
server_version = "2.51.0"
pytriton = "0.7.0"
pythons = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]

[envs.numpy1]
packages = ["numpy<2"]

[envs.numpy2]
packages = ["numpy>=2"]
"""
KNOWN = """
[[known_failures]]
cells = ["*-numpy2"]
reason = "2.51.0 with numpy 2 answers outputs without data"
message = ["cannot reshape array of size 0"]
"""
EXACT = "basics/test_add_sub.py::test_add_sub_exact[http]"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("envs")
    (root / "plain.toml").write_text(MATRIX)
    (root / "known.toml").write_text(MATRIX + KNOWN)
    for cell in ("24.10-python-cpu-py3.12-numpy1", "24.10-python-cpu-py3.12-numpy2"):
        run_harness("cell", cell, f"--matrix={root / 'plain.toml'}", f"--reports={root / 'reports'}", "--",
                    "cases/basics")
    return root


def props(reports: Path, cell: str) -> dict[str, str]:
    root = ET.parse(reports / "reports" / "junit" / f"{cell}.xml").getroot()
    return {p.get("name"): p.get("value") for p in root.find("testsuite/properties")}


def test_each_cell_records_the_packages_it_really_ran_with(reports: Path) -> None:
    one = props(reports, "24.10-python-cpu-py3.12-numpy1")["packages"]
    two = props(reports, "24.10-python-cpu-py3.12-numpy2")["packages"]
    assert "numpy==1.26." in one
    assert "numpy==2." in two


def test_undeclared_it_is_a_failure_with_the_servers_answer(reports: Path) -> None:
    done = run_harness("report", f"--reports={reports / 'reports'}", f"--matrix={reports / 'plain.toml'}")
    assert done.returncode == 1
    rows = {(r["case"], r["cell"]): r for r in json.loads((reports / "reports" / "compat.json").read_text())["results"]}
    assert rows[(EXACT, "24.10-python-cpu-py3.12-numpy1")]["state"] == "passed"
    broken = rows[(EXACT, "24.10-python-cpu-py3.12-numpy2")]
    assert broken["state"] == "failed"
    assert "of shape [4] but data that does not fill it" in broken["message"]


def test_declared_it_is_known_incompatible_and_the_run_passes(reports: Path) -> None:
    done = run_harness("report", f"--reports={reports / 'reports'}", f"--matrix={reports / 'known.toml'}")
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((reports / "reports" / "compat.json").read_text())
    rows = {(r["case"], r["cell"]): r for r in data["results"]}
    known = rows[(EXACT, "24.10-python-cpu-py3.12-numpy2")]
    assert known["state"] == "known-incompatible"
    assert known["message"].endswith("known issue matrix.known_failures[0]: 2.51.0 with numpy 2 answers outputs "
                                     "without data")
    assert "of shape [4] but data that does not fill it" in known["message"]  # what was observed
    assert rows[(EXACT, "24.10-python-cpu-py3.12-numpy1")]["state"] == "passed"
    assert "🔶" in (reports / "reports" / "compat.md").read_text()
