"""A case module or conftest.py that fails to import in the cell (#24): an error result naming the file,
the line and the exception, the cell's other modules run, and nothing calls it interrupted. The plugin
through pytester with a cell of the tests' matrix, the report and the live line from real files: no
server is started."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, write_spec
from harness import spec
from harness.run import pool
from harness.run import workers
from harness.layout import Prop, worker_junit_path
from harness.progress import read_cell, write_json
from harness.run.progress_view import outcome_of
from harness.report import model
from harness.states import State

pytestmark = pytest.mark.fast
pytest_plugins = ["pytester"]
CELL = "24.10-python-cpu-py3.11"


@pytest.fixture(autouse=True)
def _harness_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def run_worker(pytester: pytest.Pytester, *targets: Path) -> tuple[pytest.RunResult, ET.Element]:
    """One worker as the cell runner starts it: the plugin, the case root, its case files as arguments."""
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "harness.incell.plugin", f"--spec={write_spec(pytester.path, CELL, [pytester.path], pytester.path / 'r')}",
        f"--rootdir={pytester.path}", f"--junitxml={junit}",
        "-o", "junit_family=xunit1", "-p", "no:cacheprovider", *map(str, targets))
    return result, (ET.parse(junit).getroot() if junit.exists() else ET.Element("none"))


def errors_by_case(junit: ET.Element) -> dict[str, str]:
    """case id -> the message of its <error>."""
    found = {}
    for case in junit.iter("testcase"):
        error = case.find("error")
        if error is not None:
            found[next(p.get("value") for p in case.iter("property") if p.get("name") == Prop.CASE)] = \
                error.get("message")
    return found


def suite_properties(junit: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in junit.find("testsuite/properties")}


def test_a_module_that_fails_to_import_is_an_error_naming_file_line_and_exception(pytester: pytest.Pytester) -> None:
    area = pytester.mkdir("area")
    (area / "test_imports.py").write_text("import os\nimport not_a_package_here\n\ndef test_never():\n    pass\n")
    (area / "test_raises.py").write_text("def helper():\n    raise RuntimeError('boom at import')\n\nhelper()\n")
    (area / "test_syntax.py").write_text("def test_s(:\n    pass\n")  # only the cell's Python sees it
    (area / "test_ok.py").write_text("def test_ok():\n    pass\n")
    result, junit = run_worker(pytester, *(area / f"test_{m}.py" for m in ("imports", "raises", "syntax", "ok")))
    assert result.ret == pytest.ExitCode.TESTS_FAILED, "an error, not pytest's INTERRUPTED (2)"
    result.assert_outcomes(passed=1, errors=3)
    assert errors_by_case(junit) == {
        "area/test_syntax.py": "area/test_syntax.py:1: SyntaxError: invalid syntax",
        "area/test_imports.py": "area/test_imports.py:2: ModuleNotFoundError: No module named 'not_a_package_here'",
        "area/test_raises.py": "area/test_raises.py:2: RuntimeError: boom at import",
    }
    props = suite_properties(junit)
    assert Prop.INTERRUPTED not in props
    assert props[Prop.COLLECTED] == "area/test_ok.py::test_ok", "the other module ran"


def test_a_conftest_that_raises_is_an_error_of_its_own_and_the_other_areas_run(pytester: pytest.Pytester) -> None:
    broken, fine = pytester.mkdir("broken"), pytester.mkdir("fine")
    (broken / "conftest.py").write_text("import pytest\n\nraise ValueError('conftest says no')\n")
    (broken / "test_b.py").write_text("def test_b():\n    pass\n")
    (fine / "test_f.py").write_text("def test_f():\n    pass\n")
    result, junit = run_worker(pytester, broken / "test_b.py", fine / "test_f.py")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, "not pytest's usage error (4), which writes no JUnit file"
    result.assert_outcomes(passed=1, errors=1)
    assert errors_by_case(junit) == {"broken/conftest.py": "broken/conftest.py:3: ValueError: conftest says no"}
    assert Prop.INTERRUPTED not in suite_properties(junit)


def test_a_misspelled_marker_is_an_error_of_its_module(pytester: pytest.Pytester) -> None:
    """The worker's own command (``--strict-markers``): ``@pytest.mark.modles`` would otherwise load
    nothing and pass for the wrong reason; the library's real markers are registered by the plugin."""
    area = pytester.mkdir("area")
    (area / "test_typo.py").write_text("import pytest\n\n@pytest.mark.modles('add_sub')\ndef test_t():\n    pass\n")
    (area / "test_ok.py").write_text(
        "import pytest\n\n@pytest.mark.backend('python')\n@pytest.mark.min_triton('23.10')\n"
        "@pytest.mark.case_timeout(5)\ndef test_ok():\n    pass\n")
    reports = pytester.path / "r"
    path = write_spec(pytester.path, CELL, [pytester.path], reports)
    launch = pool.Launch(python=Path(sys.executable), spec=spec.read(path), spec_path=path, options=(), cwd=pytester.path)
    command = launch.command(workers.Share(worker=0, targets=(str(area),)), pytester.path / "claims")
    assert "--strict-markers" in command
    done = subprocess.run(command, cwd=pytester.path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)
    junit = ET.parse(worker_junit_path(reports, CELL, 0)).getroot()
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    errors = errors_by_case(junit)
    assert list(errors) == ["area/test_typo.py"], errors
    assert "'modles' not found in `markers` configuration option" in errors["area/test_typo.py"]
    assert suite_properties(junit)[Prop.COLLECTED] == "area/test_ok.py::test_ok", "the other module ran"


def test_a_signal_still_interrupts(pytester: pytest.Pytester) -> None:
    area = pytester.mkdir("area")
    (area / "test_stop.py").write_text(
        f"import os, signal\n\ndef test_stopped():\n    os.kill(os.getpid(), {int(signal.SIGTERM)})\n\n"
        "def test_after():\n    pass\n")
    result, junit = run_worker(pytester, area / "test_stop.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert suite_properties(junit)[Prop.INTERRUPTED] == "interrupted by SIGTERM"


def test_the_report_shows_a_collection_error_as_an_error_with_its_text(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    shutil.copy(FIXTURES / "junit" / "collect-errors.xml", reports / "junit" / f"{CELL}.xml")
    results = model.read(reports)
    assert not results.partial
    assert results.cells[0].interrupted is None and results.cells[0].state == State.ERROR
    conftest, module = results.get("area2/conftest.py", CELL), results.get("area/test_raises.py", CELL)
    assert (conftest.state, conftest.message) == (State.ERROR, "area2/conftest.py:1: ValueError: conftest says no")
    assert (module.state, module.message) == (State.ERROR, "area/test_raises.py:2: RuntimeError: boom at import")
    assert "raise RuntimeError" in module.details, "the traceback stays in the details"
    assert results.get("area/test_ok.py::test_ok", CELL).state == State.PASSED
    assert len(results.cases) == 3, "each worker reports the error; the report shows it once"


def test_the_live_line_counts_a_collection_error_once_and_not_as_interrupted(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    shutil.copy(FIXTURES / "junit" / "collect-errors.xml", reports / "junit" / f"{CELL}.xml")
    for worker, counts in enumerate(({"passed": 1}, {}, {})):  # every worker collected the broken ones
        write_json(reports / "progress" / CELL / f"{worker}.json",
                   {"cell": CELL, "total": 1, "done": sum(counts.values()), "counts": counts, "finished": True,
                    "started": 0.0, "broken": ["area2", "area/test_raises.py"]})
    assert read_cell(reports, CELL).counts == {"passed": 1, "error": 2}
    outcome = outcome_of(reports, CELL, exit_code=1, elapsed_s=3.0)
    assert outcome.red() and outcome.problem is None, outcome
    assert {k: v for k, v in outcome.counts().items() if v} == {"passed": 1, "error": 2}


def test_compat_json_of_a_collection_error(tmp_path: Path) -> None:
    from harness.report import build

    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    shutil.copy(FIXTURES / "junit" / "collect-errors.xml", reports / "junit" / f"{CELL}.xml")
    assert build.main(reports=reports) == 1
    data = json.loads((reports / "compat.json").read_text())
    assert data["partial"] is False and data["cells"][0]["interrupted"] is None
    assert {"case": "area/test_raises.py", "cell": CELL, "state": "error",
            "message": "area/test_raises.py:2: RuntimeError: boom at import"} in data["results"]
    assert os.path.getsize(reports / "compat.md") > 0
