"""A worker that dies loses only its case in flight; a timeout under load gets one quiet retry, alone.

The cell runner for real (``harness.run.cell.run``) with real pytest workers of the cell's plugin on plain
case modules: none uses the server, so none is started; the venv is this one.
"""

from __future__ import annotations

import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import TEST_MATRIX

from harness.run import cell as cell_mod
from harness import junit as junit_mod
from harness import claims, layout
from harness.matrix import interpreters
from harness.run import requeue
from harness.run import retry
from harness import matrix as matrix_mod
from harness.layout import Prop, Verdict
from harness.progress import read_cell
from harness.report import model
from harness.states import State

pytestmark = pytest.mark.fast
CELL = "24.10-python-cpu-py3.11"


def run_cell(monkeypatch: pytest.MonkeyPatch, lib: Path, reports: Path, workers: int, cell_timeout: float = 120,
             settings: str = "") -> int:
    """``python -m harness cell`` in this process, its venv this one (the cases need no server)."""
    path = reports.parent / "matrix.toml"
    matrix_text = TEST_MATRIX.read_text().replace("[settings]\n", f"[settings]\ncell_timeout = {cell_timeout}\n")
    for line in settings.splitlines():  # replaces the tests' matrix's own line of that key
        key = line.split("=")[0].strip()
        matrix_text = "\n".join(line if ln.startswith(f"{key} =") else ln for ln in matrix_text.splitlines()) + "\n"
    path.write_text(matrix_text)
    matrix = matrix_mod.load(str(path))
    this = interpreters.Interpreter(version="3.11", executable=Path(sys.executable), base_prefix=Path(sys.base_prefix))
    monkeypatch.setattr(cell_mod, "not_applicable", lambda matrix, cell: None)
    monkeypatch.setattr(cell_mod.interpreters, "find", lambda version: this)
    monkeypatch.setattr(cell_mod.envs, "ensure", lambda **kwargs: SimpleNamespace(python=Path(sys.executable)))
    return cell_mod.run(matrix, matrix.cell(CELL), roots=[lib], reports=reports, worker_count=workers)


def library(root: Path, modules: dict[str, str], conftest: str = "") -> Path:
    area = root / "area"
    area.mkdir(parents=True)
    for name, source in modules.items():
        (area / name).write_text(textwrap.dedent(source))
    if conftest:
        (area / "conftest.py").write_text(textwrap.dedent(conftest))
    return root


COUNTED = '''
from pathlib import Path

def ran(name):
    """Count a run of this case in a file next to the module (the test reads how often each ran)."""
    with open(Path(__file__).with_name("ran.txt"), "a") as fh:
        fh.write(name + "\\n")
'''


def runs(lib: Path) -> dict[str, int]:
    names = (lib / "area" / "ran.txt").read_text().split()
    return {name: names.count(name) for name in names}


def states(reports: Path) -> dict[str, tuple[State, str]]:
    results = model.read(reports)
    return {case: (results.get(case, CELL).state, results.get(case, CELL).message) for case in results.cases}


def cell_props(reports: Path) -> dict[str, str]:
    root = ET.parse(layout.junit_path(reports, CELL)).getroot()
    return {p.get("name"): p.get("value") for s in root.iter("testsuite") for p in s.find("properties")}


def test_a_killed_worker_loses_only_its_case_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL of a worker mid-case: that case is an error naming the signal; everything else of the cell
    runs and passes (the dead worker's modules, its finished cases whose results died with it, and the
    modules nobody had taken), in a replacement worker; the killing case is never run again."""
    lib = library(tmp_path / "lib", {
        "test_a.py": COUNTED + '''
import os, signal

def test_1_before():
    ran("a1")

def test_2_dies():
    ran("a2")
    os.kill(os.getpid(), signal.SIGKILL)

def test_3_after():
    ran("a3")
''',
        **{f"test_{m}.py": COUNTED + f"def test_one():\n    ran('{m}')\n" for m in ("b", "c", "d")},
    })
    reports = tmp_path / "reports"
    assert run_cell(monkeypatch, lib, reports, workers=2) == 1
    seen = states(reports)
    died = seen.pop("area/test_a.py::test_2_dies")
    assert died[0] == State.ERROR and died[1].startswith("worker "), died
    assert "died during this case (killed by SIGKILL)" in died[1], died
    assert {case: state for case, (state, _) in seen.items()} == {
        "area/test_a.py::test_1_before": State.PASSED, "area/test_a.py::test_3_after": State.PASSED,
        "area/test_b.py::test_one": State.PASSED, "area/test_c.py::test_one": State.PASSED,
        "area/test_d.py::test_one": State.PASSED}
    count = runs(lib)
    assert count["a2"] == 1 and count["a3"] == 1 and count["b"] == count["c"] == count["d"] == 1, count
    assert cell_props(reports)[Prop.WORKERS] == "3", "two workers and one replacement"
    progress = read_cell(reports, CELL)
    assert progress is not None and progress.finished and progress.counts.get("error") == 1, progress
    assert progress.done == progress.total == 6, progress


INTERNAL_ERROR_CONFTEST = '''
from pathlib import Path

def pytest_runtest_logreport(report):
    marker = Path(__file__).with_name("internal-error-raised")
    if report.when == "call" and report.nodeid.endswith("test_2_breaks_pytest") and not marker.exists():
        marker.touch()
        raise RuntimeError("a plugin broke")
'''


def test_an_internal_error_keeps_what_finished_and_hands_on_the_rest(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """INTERNALERROR in the one worker of a cell: what it finished stays (not run again), the case in
    flight is an error with the worker's last error line, its unfinished case and the modules it had
    not taken yet run in a replacement; the cell is not reported as not run."""
    lib = library(tmp_path / "lib", {
        "test_a.py": COUNTED + '''
def test_1_before():
    ran("a1")

def test_2_breaks_pytest():
    ran("a2")

def test_3_after():
    ran("a3")
''',
        "test_b.py": COUNTED + "def test_one():\n    ran('b')\n",
    }, conftest=INTERNAL_ERROR_CONFTEST)
    # test_a first: the larger module is taken first when no run is known
    (lib / "area" / "test_a.py").write_text((lib / "area" / "test_a.py").read_text() + "#" * 2000)
    reports = tmp_path / "reports"
    assert run_cell(monkeypatch, lib, reports, workers=1) == 1
    seen = states(reports)
    state, message = seen.pop("area/test_a.py::test_2_breaks_pytest")
    assert state == State.ERROR and message.startswith("worker 0 died during this case (exit code 3"), message
    assert "a plugin broke" in message, "the worker's last error line"
    assert {case: s for case, (s, _) in seen.items()} == {
        "area/test_a.py::test_1_before": State.PASSED, "area/test_a.py::test_3_after": State.PASSED,
        "area/test_b.py::test_one": State.PASSED}
    assert runs(lib) == {"a1": 1, "a2": 1, "a3": 1, "b": 1}, "what finished is kept, not run again"
    assert not model.read(reports).partial
    progress = read_cell(reports, CELL)
    assert progress is not None and progress.done == progress.total == 4 and progress.finished, progress


def test_a_crash_loop_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case kills its worker: two replacements, then what is left is an error that says why."""
    lib = library(tmp_path / "lib", {"test_a.py": "import os, signal\n\n" + "".join(
        f"def test_{n}_dies():\n    os.kill(os.getpid(), signal.SIGKILL)\n\n" for n in range(1, 6))})
    reports = tmp_path / "reports"
    assert run_cell(monkeypatch, lib, reports, workers=1) == 1
    seen = states(reports)
    for n in (1, 2, 3):
        state, message = seen[f"area/test_a.py::test_{n}_dies"]
        assert state == State.ERROR and "died during this case (killed by SIGKILL)" in message, (n, message)
    for n in (4, 5):
        state, message = seen[f"area/test_a.py::test_{n}_dies"]
        assert state == State.ERROR and message.startswith("not run: worker 2 died (killed by SIGKILL) and the "
                                                           "cell had started its 2 replacement workers"), message
    assert cell_props(reports)[Prop.WORKERS] == "3" and cell_props(reports)["triton"] == "24.10"


RETRIED = COUNTED + '''
from harness.incell.supervise import CaseTimeout

def attempt(name):
    """1 the first time this case runs, 2 the second."""
    ran(name)
    return Path(__file__).with_name("ran.txt").read_text().split().count(name)

def test_slow_once(record_property):
    if attempt("slow") == 1:
        record_property("retry_alone", "load average 9.1 on 2 CPUs")
        raise CaseTimeout("no answer within the case's 30 s deadline (attempt 1)")

def test_slow_always(record_property):
    n = attempt("always")
    record_property("retry_alone", f"load average {n}.0 on 2 CPUs")
    raise CaseTimeout(f"no answer within the case's 30 s deadline (attempt {n})")

def test_known(record_property):
    ran("known")
    record_property("known_issue", "some-issue")
    record_property("retry_alone", "load average 9.1 on 2 CPUs")
    raise CaseTimeout("no answer within the case's 30 s deadline")

def test_fine():
    ran("fine")
'''


def test_a_timeout_under_load_runs_again_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cases that ask to be run again alone are, once, after every worker ended: one that passes
    then is flaky with the first attempt's evidence, one that fails again is red with its second
    failure; a known issue and a passed case are not run again."""
    lib = library(tmp_path / "lib", {"test_a.py": RETRIED, "test_b.py": COUNTED + "def test_b():\n    ran('b')\n"})
    reports = tmp_path / "reports"
    assert run_cell(monkeypatch, lib, reports, workers=2) == 1
    assert runs(lib) == {"slow": 2, "always": 2, "known": 1, "fine": 1, "b": 1}
    seen = states(reports)
    assert seen["area/test_a.py::test_slow_once"] == (
        State.FLAKY, "timed out under load: load average 9.1 on 2 CPUs; passed when run again alone")
    state, message = seen["area/test_a.py::test_slow_always"]
    assert state == State.TIMEOUT and "(attempt 2)" in message, message
    assert seen["area/test_a.py::test_fine"][0] == State.PASSED
    assert cell_props(reports)[Prop.WORKERS] == "3", "two workers and the retry worker"
    progress = read_cell(reports, CELL)
    assert progress is not None and progress.counts.get("flaky") == 1 and progress.done == progress.total == 5, progress


def test_a_retry_that_passes_makes_a_cell_of_only_passes_green(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lib = library(tmp_path / "lib", {"test_a.py": RETRIED.split("def test_slow_always")[0]})
    reports = tmp_path / "reports"
    assert run_cell(monkeypatch, lib, reports, workers=1) == 0
    assert states(reports)["area/test_a.py::test_slow_once"][0] == State.FLAKY


# -- the pieces, without processes ---------------------------------------------------------------------


def junit_case(case: str, result: str = "", props: dict[str, str] | None = None) -> str:
    properties = "".join(f'<property name="{k}" value="{v}"/>' for k, v in {Prop.CASE: case, **(props or {})}.items())
    return f'<testcase classname="area.test_a" name="{case.split("::")[-1]}" time="1">' \
           f"<properties>{properties}</properties>{result}</testcase>"


def junit(*cases: str) -> str:
    return f'<testsuites><testsuite name="{CELL}"><properties><property name="cell" value="{CELL}"/>' \
           f'</properties>{"".join(cases)}</testsuite></testsuites>'


TIMEOUT = '<failure message="harness.incell.supervise.CaseTimeout: no answer within the case\'s 30 s deadline"/>'


def test_the_retry_patches_the_cells_junit(tmp_path: Path) -> None:
    first, second = tmp_path / "junit-0.xml", tmp_path / "junit-1.xml"
    evidence = {Prop.RETRY_ALONE: "load average 9.1 on 2 CPUs", Prop.VERDICT: Verdict.TIMEOUT}
    first.write_text(junit(junit_case("a::passes_again", TIMEOUT, evidence),
                           junit_case("a::fails_again", TIMEOUT, evidence),
                           junit_case("a::known", TIMEOUT, {**evidence, "known_issue": "x"}), junit_case("a::fine")))
    wanted = retry.candidates(first)
    assert wanted == {"a::passes_again": "load average 9.1 on 2 CPUs", "a::fails_again": "load average 9.1 on 2 CPUs"}
    second.write_text(junit(junit_case("a::passes_again"),
                            junit_case("a::fails_again", '<failure message="assert 1 == 2 (second attempt)"/>')))
    changed = junit_mod.replace_cases(first, second, wanted)
    assert changed == {"a::passes_again": ("timeout", "flaky"), "a::fails_again": ("timeout", "failed")}
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    first.replace(layout.junit_path(reports, CELL))
    results = model.read(reports)
    passed, failed = results.get("a::passes_again", CELL), results.get("a::fails_again", CELL)
    assert (passed.state, passed.message) == (
        State.FLAKY, "timed out under load: load average 9.1 on 2 CPUs; passed when run again alone")
    assert (failed.state, failed.message) == (State.FAILED, "assert 1 == 2 (second attempt)")
    assert [c for c in results.cases] == ["a::fails_again", "a::fine", "a::known", "a::passes_again"]
    assert results.get("a::known", CELL).state != State.FLAKY


def test_what_a_hard_killed_worker_lost(tmp_path: Path) -> None:
    """No leftover and no JUnit file: everything it took but the case in flight (its progress file's
    current case) goes on; with a JUnit file and a leftover, only what the leftover names."""
    reports, cell = tmp_path, CELL
    folder = layout.claims_path(reports, cell)
    cases = [claims.Case(f"area/test_a.py::t{n}", f"area/test_a.py::t{n}") for n in range(3)]
    assert claims.take(folder, claims.Claim("area/test_a.py", 1, tuple(cases)))
    assert not claims.take(folder, claims.Claim("area/test_a.py", 0, tuple(cases))), "one worker takes a module"
    assert claims.take(folder, claims.Claim("area/test_b.py", 0, (claims.Case("area/test_b.py::t", "b"),)))
    progress = layout.progress_path(reports, cell, 1)
    progress.parent.mkdir(parents=True)
    progress.write_text('{"cell": "c", "total": 4, "done": 1, "counts": {"passed": 1}, '
                        '"current": "area/test_a.py::t1"}')
    lost = requeue.lost_by(reports, cell, folder, 1, -9, "")
    assert lost.in_flight == cases[1] and lost.rest_cases == [cases[0], cases[2]] and not lost.kept
    assert lost.how == "killed by SIGKILL"
    layout.worker_junit_path(reports, cell, 1).write_text(junit(junit_case(cases[0].case), junit_case(cases[1].case)))
    claims.Leftover(in_flight=cases[1].nodeid, rest=(cases[2].nodeid,)).write(layout.leftover_path(reports, cell, 1))
    lost = requeue.lost_by(reports, cell, folder, 1, 3, "INTERNALERROR> RuntimeError: boom")
    assert lost.in_flight == cases[1] and lost.rest_cases == [cases[2]] and lost.kept
    requeue.record(reports, {Prop.CELL: cell}, lost, handed_to=2)
    completed = ET.parse(layout.worker_junit_path(reports, cell, 1)).getroot()
    outcome = {tc.find("properties/property[@name='case']").get("value"): [c.tag for c in tc if c.tag != "properties"]
               for tc in completed.iter("testcase")}
    assert outcome == {cases[0].case: [], cases[1].case: ["error"]}, "the half-reported case in flight replaced"
    message = completed.find(".//error").get("message")
    assert message == "worker 1 died during this case (exit code 3: INTERNALERROR> RuntimeError: boom)"


def test_a_cell_past_its_deadline_starts_no_follow_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped worker is no dead one: at the cell's deadline it sweeps what nobody took (not run, a
    timeout after cell_timeout), the case in flight is an error, and nothing is started after it."""
    lib = library(tmp_path / "lib", {
        "test_a.py": "import time\nimport pytest\n\ndef test_quick():\n    pass\n\n"
                     "@pytest.mark.case_timeout(100)\ndef test_sleeps():\n    time.sleep(60)\n"
                     + "#" * 2000,
        "test_b.py": "def test_never():\n    pass\n",
    })
    reports = tmp_path / "reports"
    # The case's own deadline (and so its fallback) lies past the cell's: the cell's deadline stops it.
    assert run_cell(monkeypatch, lib, reports, workers=1, cell_timeout=20,
                    settings="case_timeout = 2\nload_timeout = 1") == 2
    seen = states(reports)
    assert seen["area/test_a.py::test_quick"][0] == State.PASSED
    assert seen["area/test_a.py::test_sleeps"][0] == State.ERROR
    assert seen["area/test_b.py::test_never"][0] == State.TIMEOUT
    assert cell_props(reports)[Prop.WORKERS] == "1"


def test_a_worker_dead_in_a_stopped_cell_leaves_the_rest_not_run(tmp_path: Path) -> None:
    reports, cell = tmp_path, CELL
    cases = [claims.Case(f"area/test_a.py::t{n}", f"area/test_a.py::t{n}") for n in range(3)]
    claims.take(layout.claims_path(reports, cell), claims.Claim("area/test_a.py", 0, tuple(cases)))
    lost = requeue.Lost(worker=0, how="killed by SIGKILL", in_flight=cases[0],
                        rest=(claims.Claim("area/test_a.py", 0, tuple(cases[1:])),), kept=False)
    requeue.record(reports, {Prop.CELL: cell, "triton": "24.10"}, lost, handed_to=None, stopped=True)
    (reports / "junit").mkdir()
    layout.worker_junit_path(reports, cell, 0).replace(layout.junit_path(reports, cell))
    results = model.read(reports)
    assert results.get(cases[0].case, cell).state == State.ERROR
    assert [results.get(c.case, cell).state for c in cases[1:]] == [State.MISSING, State.MISSING]
