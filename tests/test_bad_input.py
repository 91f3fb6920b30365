"""Bad input beyond matrix.toml (that is tests/test_matrix.py): the case library, the command line,
the report's inputs. Each is one line naming the file or option and the fix, exit code 2, nothing
started, nothing already written lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, run_harness
from test_end_to_end import write_case_library

pytestmark = pytest.mark.fast  # no server, no venv, no container


def one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit code 2 and one ``error:`` line (under nox, a session's stderr reaches the terminal through
    nox's stdout: both streams are what the user reads)."""
    shown = done.stdout + done.stderr
    assert done.returncode == 2, shown[-3000:]
    lines = [ln for ln in shown.strip().splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, shown
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in shown


def nox_matrix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nox", "-s", "matrix", "--", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_model_folder_without_config(tmp_path: Path) -> None:
    lib = write_case_library(tmp_path / "lib", "def test_x():\n    pass\n")
    (lib / "area" / "models" / "e2e_empty" / "1").mkdir(parents=True)
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--cases={lib}", f"--reports={tmp_path / 'r'}")
    one_line_error(done, "e2e_empty", "model folder has no config.pbtxt", "add config.pbtxt")
    assert not (tmp_path / "r").exists(), "nothing started, nothing written"


def test_template_that_does_not_render(tmp_path: Path) -> None:
    lib = write_case_library(tmp_path / "lib", "import pytest\n\n@pytest.mark.models('e2e_add_sub')\n"
                                               "def test_x(triton):\n    pass\n")
    config = lib / "area" / "models" / "e2e_add_sub" / "config.pbtxt"
    config.write_text(config.read_text().replace("${kind}", "${knid}"))
    reports = tmp_path / "r"
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--cases={lib}", f"--reports={reports}")
    one_line_error(done, "e2e_add_sub/config.pbtxt: unknown placeholder ${knid}", "use one of ${kind}")
    assert not reports.exists(), "nothing started, nothing written"


def test_case_library_that_does_not_exist(tmp_path: Path) -> None:
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--cases={tmp_path / 'nope'}")
    one_line_error(done, "nope: case library not found")


def test_unknown_cell(tmp_path: Path) -> None:
    done = run_harness("cell", "25.01-python-cpu-py3.11", f"--reports={tmp_path}")
    one_line_error(done, "no cell '25.01-python-cpu-py3.11'", "python -m harness cells")


@pytest.mark.parametrize(("args", "fragments"), [
    (["--runner=podman"], ["--runner: unknown runner 'podman'", "local, docker"]),
    (["--cell=nope*"], ["no cell matches 'nope*'"]),
], ids=["unknown-runner", "filter-matches-nothing"])
def test_nox_matrix_refuses_bad_options(args: list[str], fragments: list[str], tmp_path: Path) -> None:
    done = nox_matrix(*args, f"--reports={tmp_path / 'r'}")
    one_line_error(done, *fragments)
    assert not (tmp_path / "r").exists()


def test_cli_cells_with_unknown_runner() -> None:
    one_line_error(run_harness("cells", "--runner", "kubernetes"), "unknown runner 'kubernetes'")


def test_report_of_an_empty_folder(tmp_path: Path) -> None:
    one_line_error(run_harness("report", f"--reports={tmp_path}"), "no JUnit files", "nox -s matrix")


def test_report_with_a_broken_plan_keeps_everything(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    shutil.copy(FIXTURES / "junit" / "mixed.xml", reports / "junit" / "24.10-python-cpu-py3.11.xml")
    (reports / "plan.json").write_text("{not json")
    (reports / "compat.json").write_text('{"kept": true}')
    one_line_error(run_harness("report", f"--reports={reports}"), "plan.json", "not a plan")
    assert (reports / "compat.json").read_text() == '{"kept": true}', "nothing already written is lost"


def test_report_with_a_foreign_junit_names_it_and_keeps_the_rest(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    shutil.copy(FIXTURES / "junit" / "mixed.xml", reports / "junit" / "24.10-python-cpu-py3.11.xml")
    shutil.copy(FIXTURES / "junit" / "foreign.xml", reports / "junit" / "surefire.xml")
    done = run_harness("report", f"--reports={reports}")
    assert done.returncode == 1
    assert "junit/surefire.xml: not written by triton-matrix" in done.stderr
    assert "24.10-python-cpu-py3.11" in (reports / "compat.md").read_text()


def test_bad_matrix_through_nox_leaves_reports_alone(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "compat.json").write_text("previous")
    bad = FIXTURES / "matrix" / "bad" / "unknown_runner.toml"
    done = subprocess.run([sys.executable, "-m", "nox", "-s", "matrix", "--", f"--reports={reports}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "TRITON_MATRIX": str(bad)},
                          check=False)
    one_line_error(done, "unknown_runner.toml", "unknown runner 'kubernetes'")
    assert (reports / "compat.json").read_text() == "previous"


def broken_library(root: Path, file: str, source: str) -> Path:
    """A case library with one good case file and ``file`` (relative to it) holding ``source``."""
    lib = write_case_library(root, "def test_x():\n    pass\n")
    (lib / file).write_text(source)
    return lib


def kept_reports(reports: Path) -> dict[str, str]:
    """A reports folder of an earlier run, to see that a refused run loses nothing of it."""
    (reports / "junit").mkdir(parents=True)
    (reports / "compat.json").write_text('{"kept": true}')
    (reports / "junit" / "24.10-python-cpu-py3.11.xml").write_text("<testsuites/>")
    return {p.relative_to(reports).as_posix(): p.read_text() for p in reports.rglob("*") if p.is_file()}


def test_case_file_with_a_syntax_error_is_said_before_the_cell_starts(tmp_path: Path) -> None:
    lib = broken_library(tmp_path / "lib", "area/test_bad.py", "import os\n\ndef test_bad(:\n    pass\n")
    reports = tmp_path / "r"
    before = kept_reports(reports)
    done = run_harness("cell", "24.10-python-cpu-py3.11", f"--cases={lib}", f"--reports={reports}")
    one_line_error(done, f"{lib / 'area' / 'test_bad.py'}:3:", "SyntaxError: invalid syntax", "fix the file")
    after = {p.relative_to(reports).as_posix(): p.read_text() for p in reports.rglob("*") if p.is_file()}
    assert after == before, "nothing started, nothing already written lost"


def test_conftest_with_a_syntax_error_stops_nox_matrix_before_any_cell(tmp_path: Path) -> None:
    lib = broken_library(tmp_path / "lib", "area/conftest.py", "import pytest\n\n@pytest.fixture\ndef x()\n")
    reports = tmp_path / "r"
    before = kept_reports(reports)
    done = nox_matrix(f"--cases={lib}", f"--reports={reports}")
    one_line_error(done, f"{lib / 'area' / 'conftest.py'}:4:", "SyntaxError: expected ':'")
    after = {p.relative_to(reports).as_posix(): p.read_text() for p in reports.rglob("*") if p.is_file()}
    assert after == before, "no plan, no cell, no report: nothing already written lost"
    assert "interrupted" not in done.stdout + done.stderr
