"""bench.results: which red results are the harness's own, and which states differ between two runs,
on two small hand-written compat.json-like dicts."""

from __future__ import annotations

import pytest

from bench import results
from bench.results import StateDiff

pytestmark = pytest.mark.fast  # no server, no venv, no container

CELL = "24.10-python-cpu-py3.11-numpy1"
OTHER = "25.01-python-cpu-py3.11-numpy1"


def row(case: str, state: str, message: str = "", cell: str = CELL, **extra: str) -> dict[str, str]:
    return {"case": case, "cell": cell, "state": state, "message": message, **extra}


IDLE = {"results": [
    row("a.py::test_ok", "passed"),
    row("a.py::test_wrong", "failed", "AssertionError: OUTPUT0 is a + b"),
    row("a.py::test_crash", "error", "harness.incell.supervise.ServerDied: the server ended", verdict="server-died"),
    row("a.py::test_known", "known-incompatible", "TimeoutError — known issue hang-24.03"),
    row("b.py::test_ok", "passed", cell=OTHER),
]}

LOADED = {"results": [
    row("a.py::test_ok", "timeout", "the case ran past its 30 s deadline", verdict="timeout"),
    row("a.py::test_wrong", "failed", "AssertionError: OUTPUT0 is a + b"),
    row("a.py::test_crash", "error", "harness.incell.supervise.ServerDied: the server ended", verdict="server-died"),
    row("a.py::test_known", "known-incompatible", "TimeoutError — known issue hang-24.03"),
    row("a.py::test_load", "error",
        'failed on setup with "harness.servers.LoadTimeout: loading \'m\' did not finish within 60 s"'),
    row("a.py::test_pytest_timeout", "timeout", "Failed: Timeout >900.0s"),
    row("a.py::test_internal", "error", "INTERNALERROR> Traceback (most recent call last):"),
    row("a.py::test_stopped", "error", "interrupted while it ran (signal)", verdict="interrupted"),
    row("b.py::test_ok", "error", "worker 1 ended with code -9 (killed by SIGKILL) before writing its JUnit file",
        cell=OTHER),
    row("b.py::test_never", "missing", "not run: the cell ended before this case ran", cell=OTHER),
]}


def test_a_server_s_own_reds_are_not_the_harness_s() -> None:
    reds = results.harness_reds(IDLE)
    assert reds.count == 0, "a wrong answer and a server that died are the server's doing"


def test_harness_reds_are_told_by_state_verdict_then_text() -> None:
    reds = results.harness_reds(LOADED, examples=3)
    causes = {(e.cell, e.case): e.cause for e in results.harness_reds(LOADED, examples=99).examples}
    assert causes == {
        (CELL, "a.py::test_ok"): "deadline",
        (CELL, "a.py::test_load"): "load-timeout",
        (CELL, "a.py::test_pytest_timeout"): "pytest-timeout",
        (CELL, "a.py::test_internal"): "internal-error",
        (CELL, "a.py::test_stopped"): "interrupted",
        (OTHER, "b.py::test_ok"): "worker-died",
        (OTHER, "b.py::test_never"): "not-run",
    }
    assert reds.count == 7 and sum(reds.by_cause.values()) == 7
    assert len(reds.examples) == 3 and reds.examples[0].message == "the case ran past its 30 s deadline"
    assert reds.as_dict()["examples"][0]["cause"] == "deadline"


def test_a_timeout_without_verdict_or_known_text_is_still_the_harness_s() -> None:
    assert results.harness_cause(row("c.py::t", "timeout", "grpc: Deadline Exceeded")) == "timeout"
    assert results.harness_cause(row("c.py::t", "passed")) is None


def test_states_compared_cell_by_cell() -> None:
    diffs = results.differing(IDLE, LOADED)
    assert StateDiff(cell=CELL, case="a.py::test_ok", idle="passed", loaded="timeout") in diffs
    assert StateDiff(cell=OTHER, case="b.py::test_ok", idle="passed", loaded="error") in diffs
    assert StateDiff(cell=OTHER, case="b.py::test_never", idle=None, loaded="missing") in diffs, \
        "a result only one run has is a difference"
    assert not {d.case for d in diffs} & {"a.py::test_wrong", "a.py::test_crash", "a.py::test_known"}
    assert len(diffs) == 7
    assert results.differing(IDLE, IDLE) == []


def test_a_run_of_chosen_cells_starts_from_their_history_only() -> None:
    """The under-load runs choose five cells: the last run's JUnit of the other cells must not be copied
    into their reports (it was, and their report counted 19 cells, 14 of them not run)."""
    from bench.run import chosen

    globs = ("*-python-cpu-py3.11-numpy1",)
    assert chosen("24.10-python-cpu-py3.11-numpy1.xml", globs)
    assert not chosen("24.10-python-cpu-py3.12-numpy1.xml", globs)
    assert not chosen("24.10-custom-cpu-py3.11-numpy1.xml", globs)
    assert chosen("24.10-custom-cpu-py3.11-numpy1.xml", ()), "no glob: every cell"


def test_a_runs_docker_cells_are_compared_with_their_local_twins() -> None:
    run = {"results": [
        {"cell": "24.10-python-cpu-py3.11", "case": "a::x", "state": "passed"},
        {"cell": "24.10-python-cpu-py3.11", "case": "a::y", "state": "passed"},
        {"cell": "24.10-python-cpu-py3.11-docker", "case": "a::x", "state": "passed"},
        {"cell": "24.10-python-cpu-py3.11-docker", "case": "a::y", "state": "not-applicable"},
        {"cell": "24.10-custom-cpu-py3.11", "case": "c::z", "state": "passed"},  # no docker twin: left out
    ]}
    local, docker = results.runner_twins(run)
    assert [(d.cell, d.case, d.idle, d.loaded) for d in results.differing(local, docker)] == [
        ("24.10-python-cpu-py3.11", "a::y", "passed", "not-applicable")]
