"""A cell's workers: the order they take modules in, how they share them, one JUnit file from theirs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import junit as junit_mod
from harness import options, sources
from harness.run import workers
from harness.layout import CELL_CASE, Prop, progress_path
from harness.progress import CellProgress, read_cell, write_json

pytestmark = pytest.mark.fast
ROOT = Path(__file__).resolve().parent.parent


def touch(path: Path, size: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#" * size)
    return path


def test_case_files_are_what_pytest_collects_by_default(tmp_path: Path) -> None:
    a = touch(tmp_path / "area" / "test_a.py")
    b = touch(tmp_path / "area" / "b_test.py")
    touch(tmp_path / "area" / "helpers.py")
    touch(tmp_path / "area" / "__pycache__" / "test_a.py")
    touch(tmp_path / ".hidden" / "test_x.py")
    assert sources.case_files(tmp_path) == [b, a]
    assert workers.targets_of([str(tmp_path), f"{a}::test_one"]) == [str(b), str(a), f"{a}::test_one"]


def test_modules_are_taken_longest_first_by_the_last_run(tmp_path: Path) -> None:
    short, long_, unknown = (touch(tmp_path / f"test_{n}.py", size=s) for n, s in
                             (("short", 10), ("long", 10), ("unknown", 40 * 1024)))
    junit = tmp_path / "last.xml"
    junit.write_text('<testsuites><testsuite name="c">'
                     '<testcase classname="test_long" name="a" file="test_long.py" time="30"/>'
                     '<testcase classname="test_long" name="b" file="test_long.py" time="20"/>'
                     '<testcase classname="test_short" name="a" file="test_short.py" time="2"/>'
                     "</testsuite></testsuites>")
    known = workers.timings([junit], tmp_path)
    assert known == {long_.resolve(): 50.0, short.resolve(): 2.0}
    # never timed: half a second per KB of cases, so a 40 KB module comes before a 2 s one
    order = workers.ordered([str(short), f"{unknown}::t1", str(long_), f"{unknown}::t2"], known)
    assert order == [str(long_), f"{unknown}::t1", f"{unknown}::t2", str(short)]


def test_no_more_workers_than_case_files(tmp_path: Path) -> None:
    targets = [str(touch(tmp_path / f"test_{i}.py")) for i in range(2)]
    shares = workers.shares(targets, options.workers_for(targets, 4), own={0: ("checks.py",)})
    assert [(s.worker, s.targets) for s in shares] == [(0, (*targets, "checks.py")), (1, tuple(targets))]
    assert len(workers.shares([], options.workers_for([], 4))) == 1


def test_exit_code_of_the_cell() -> None:
    assert workers.exit_code([0, 0]) == 0
    assert workers.exit_code([0, 1]) == 1
    assert workers.exit_code([5, 0]) == 0  # a worker that found nothing left to take
    assert workers.exit_code([5, 5]) == 5
    assert workers.exit_code([1, 2]) == 2  # a stop before failures
    assert workers.exit_code([0, -9]) == -9
    assert workers.exit_code([0, None]) is None


def suite(cell: str, cases: list[str]) -> str:
    body = "".join(f'<testcase classname="m" name="{c}" time="1"/>' for c in cases)
    return f'<testsuites><testsuite name="{cell}"><properties><property name="cell" value="{cell}"/></properties>' \
           f"{body}</testsuite></testsuites>"


def test_one_junit_file_from_the_workers_and_a_lost_worker_is_an_error(tmp_path: Path) -> None:
    first, second = tmp_path / "junit-0.xml", tmp_path / "junit-1.xml"
    first.write_text(suite("c", ["a", "b"]))
    second.write_text(suite("c", ["c"]))
    out = tmp_path / "cell.xml"
    ran = junit_mod.join([(first, None), (second, None), (tmp_path / "junit-2.xml", "worker 2 was killed")],
                             out, "c")
    assert ran == 4
    suites = list(ET.parse(out).getroot().iter("testsuite"))
    assert [[c.get("name") for c in s.iter("testcase")] for s in suites] == [["a", "b"], ["c"], [CELL_CASE]]
    lost = suites[2]
    assert lost.find("testcase/error").get("message") == "worker 2 was killed"
    assert {p.get("name"): p.get("value") for p in lost.iter("property")} == {Prop.CELL: "c"}


def test_the_cell_progress_adds_up_its_workers(tmp_path: Path) -> None:
    for worker, (done, counts, current) in enumerate([(3, {"passed": 3}, None), (2, {"passed": 1, "failed": 1},
                                                                                 "m.py::t")]):
        write_json(progress_path(tmp_path, "c", worker),
                   CellProgress(cell="c", total=10, done=done, counts=counts, current=current,
                                started=100.0 + worker).as_dict())
    merged = read_cell(tmp_path, "c")
    assert merged is not None
    assert (merged.total, merged.done, merged.counts, merged.current, merged.started, merged.finished) == (
        10, 5, {"passed": 4, "failed": 1}, "m.py::t", 100.0, False)
    assert read_cell(tmp_path, "other") is None


QUEUE_CONFTEST = """
from pathlib import Path
from harness.incell.sharing import ModuleQueue

def pytest_configure(config):
    config.pluginmanager.register(ModuleQueue(Path({claims!r})), "queue")
"""
MODULE = """
import os, time
import pytest

@pytest.fixture(scope="module")
def where():
    with open({log!r}, "a") as fh:
        fh.write(f"{{os.getpid()}} setup {{__name__}}\\n")
    yield
    with open({log!r}, "a") as fh:
        fh.write(f"{{os.getpid()}} teardown {{__name__}}\\n")

@pytest.mark.parametrize("n", range(3))
def test_case(where, n):
    time.sleep(0.1)
"""


def test_workers_take_each_module_once_and_tear_it_down_in_order(tmp_path: Path) -> None:
    """Two workers at once over six modules: every module runs in exactly one of them, each takes some,
    and a worker's module fixtures are torn down before its next module starts."""
    claims, log = tmp_path / "claims", tmp_path / "log.txt"
    (tmp_path / "conftest.py").write_text(QUEUE_CONFTEST.format(claims=str(claims)))
    for i in range(6):
        (tmp_path / f"test_m{i}.py").write_text(MODULE.format(log=str(log)))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path)]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    lines = [line.split() for line in log.read_text().splitlines()]
    by_pid: dict[str, list[tuple[str, str]]] = {}
    for pid, what, module in lines:
        by_pid.setdefault(pid, []).append((what, module))
    assert len(by_pid) == 2, f"one worker took every module: {lines}"
    setups = sorted(module for events in by_pid.values() for what, module in events if what == "setup")
    assert setups == [f"test_m{i}" for i in range(6)]
    for events in by_pid.values():  # setup, teardown of one module, then the next
        assert [what for what, _ in events] == ["setup", "teardown"] * (len(events) // 2), events
    assert sum(int(out.split(" passed")[0].split()[-1]) for out in outputs) == 18, outputs


def test_a_stopped_worker_claims_what_nobody_took(tmp_path: Path) -> None:
    """-x stops a worker at its first failure: the modules nobody took are claimed (so the cell reports
    them as not run) and none of their cases runs."""
    claims = tmp_path / "claims"
    (tmp_path / "conftest.py").write_text(QUEUE_CONFTEST.format(claims=str(claims)) + textwrap.dedent("""
        def pytest_sessionfinish(session):
            queue = session.config.pluginmanager.get_plugin("queue")
            queue.sweep()
            print("CLAIMED", len(queue.claimed))
        """))
    (tmp_path / "test_a.py").write_text("def test_fails():\n    assert False\n")
    (tmp_path / "test_b.py").write_text("def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    cmd = [sys.executable, "-m", "pytest", "-x", "-s", "-q", "-p", "no:cacheprovider", "test_a.py", "test_b.py"]
    done = subprocess.run(cmd, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert "1 failed" in done.stdout and "passed" not in done.stdout, done.stdout
    assert "CLAIMED 3" in done.stdout, done.stdout
    assert len(list(claims.iterdir())) == 2


def test_a_worker_takes_only_the_selected_cases(tmp_path: Path) -> None:
    """-k deselects before the worker takes modules: a deselected case never runs."""
    (tmp_path / "conftest.py").write_text(QUEUE_CONFTEST.format(claims=str(tmp_path / "claims")))
    (tmp_path / "test_a.py").write_text("def test_kept():\n    pass\n\ndef test_dropped():\n    assert False\n")
    (tmp_path / "test_b.py").write_text("def test_dropped_too():\n    assert False\n")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "kept", "test_a.py", "test_b.py"]
    done = subprocess.run(cmd, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert "1 passed, 2 deselected" in done.stdout, done.stdout


def test_the_report_reads_a_cell_from_its_workers_suites(tmp_path: Path) -> None:
    """A worker whose modules needed no server writes no version; a stopped worker lists what it took
    but did not run: the cell keeps the version, the in-flight case is an error, the rest missing."""
    from conftest import FIXTURES

    from harness.report import model
    from harness.states import State

    cell = "24.10-python-cpu-py3.11"
    stopped = tmp_path / "junit-1.xml"
    props = {Prop.CELL: cell, "triton": "24.10", "runner": "local", Prop.INTERRUPTED: "interrupted by SIGTERM",
             Prop.INTERRUPTED_CASE: "late/test_late.py::test_in_flight",
             Prop.COLLECTED: "late/test_late.py::test_done\nlate/test_late.py::test_in_flight\nlate/test_late.py::test_never"}
    stopped.write_text(
        f'<testsuites><testsuite name="{cell}"><properties>'
        + "".join(f'<property name="{k}" value="{v}"/>'.replace("\n", "&#10;") for k, v in props.items())
        + '</properties><testcase classname="late.test_late" name="test_done" time="1"><properties>'
          '<property name="case" value="late/test_late.py::test_done"/></properties></testcase>'
          "</testsuite></testsuites>")
    reports = tmp_path / "reports"
    junit_mod.join([(FIXTURES / "junit" / "mixed.xml", None), (stopped, None)],
                       reports / "junit" / f"{cell}.xml", cell)
    results = model.read(reports)
    (info,) = results.cells
    assert info.server_version == "2.51.0" and info.interrupted == "interrupted by SIGTERM" and results.partial
    state = {case: results.get(case, cell).state for case in results.cases}
    assert state["late/test_late.py::test_done"] == State.PASSED
    assert state["late/test_late.py::test_in_flight"] == State.ERROR
    assert state["late/test_late.py::test_never"] == State.MISSING
    assert state["mixed/test_mixed.py::test_passes[http]"] == State.PASSED  # the first worker's, as it was
