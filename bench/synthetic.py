"""A large synthetic run, for the report's size and speed at scale: 100 cells x 300 cases, and a window of
20 stored runs of it.

The tests hold the report's writers to their budgets with it (the job summary's digest under 100 KB, the
HTML under 5 MB, compat.json's history compact) and ``nox -s bench`` measures the HTML's size and
Chromium's time to show it (``bench/report_scale.py``). Deterministic: the same numbers every call.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from harness.report.history import Entry, Run, Window, from_results
from harness.report.results import CellInfo, IssueSummary, Result, Results
from harness.states import State

CELLS, CASES, RUNS = 100, 300, 20
LONG = "AssertionError: " + "the output tensor differs from the expected one at index 17; " * 12
# What a red result's details hold in a real report: the failure's text and the server log of the case.
DETAILS = "".join(f"I1205 03:00:{i % 60:02d}.123456 1 server.cc:{i}] a line of the server log of the case\n"
                  for i in range(30))
RELEASES = 12
START = datetime(2026, 11, 1, 3, 0, tzinfo=timezone.utc)


def release_of(i: int) -> str:
    return f"24.{i % RELEASES + 1:02d}"


def cell_id(i: int) -> str:
    return f"{release_of(i)}-python-{'gpu' if i % 2 else 'cpu'}-py3.{i % 4 + 9}-numpy{i % 2 + 1}-c{i:03d}"


def case_id(j: int) -> str:
    return f"area{j % 10}/test_module_{j // 10}.py::test_a_case_with_a_fairly_long_descriptive_name_{j}[grpc-fp32-{j}]"


def state_of(i: int, j: int) -> State:
    if i == CELLS - 1:
        return State.MISSING  # a cell that left nothing
    if (i + j) % 7 == 0:
        return State.FAILED
    if (i * j) % 31 == 1:
        return State.ERROR
    if j % 23 == 0:
        return State.KNOWN_INCOMPATIBLE
    if j % 41 == 0:
        return State.UNEXPECTEDLY_PASSING
    return State.PASSED


def cell_info(i: int) -> CellInfo:
    axes: dict[str, str | None] = {"triton": release_of(i), "backend": "python", "instance_kind": "gpu" if i % 2 else "cpu",
                                   "python": f"3.{i % 4 + 9}", "env": f"numpy{i % 2 + 1}", "runner": "local"}
    return CellInfo(id=cell_id(i), axes=axes, server_version=f"2.{40 + i % RELEASES}.0", state=State.FAILED,
                    junit=f"junit/{cell_id(i)}.xml", log=f"logs/{cell_id(i)}.log")


def big_results(cells: int = CELLS, cases: int = CASES) -> Results:
    """``cells`` x ``cases``, a seventh of them red with a long message and a server log, the last cell missing."""
    infos = [cell_info(i) for i in range(cells)]
    infos[-1].state, infos[-1].problem = State.MISSING, "the cell left no JUnit file"
    results, issue = {}, IssueSummary(id="numpy2-abi", reason="numpy 2 ABI", link="https://example.com/issue/1")
    for i in range(cells):
        for j in range(cases):
            state = state_of(i, j)
            result = Result(case=case_id(j), cell=cell_id(i), state=state,
                            message=LONG + "\nsecond line" if state.bad else "", observed=LONG,
                            details=LONG + "\n" + DETAILS if state.bad else "", time=0.5 + (i * j) % 13 / 10)
            results[(result.case, result.cell)] = result
            if state == State.KNOWN_INCOMPATIBLE:
                issue.occurred.append(result)
    return Results(cells=infos, results=results, partial=True, known_issues=[issue])


def unsteady(i: int, j: int, run: int) -> State | None:
    """A pair's state in an earlier run where it differed from now (None: the same as now): one pair in 5 varies."""
    if (i + 3 * j) % 5:
        return None
    if (i + 3 * j + run) % 11 == 0:
        return State.FLAKY
    if (2 * i + j + run) % 17 == 0:
        return State.FAILED
    return None


def big_window(results: Results, runs: int = RUNS) -> Window:
    """``runs`` stored runs, one a day, ending with ``results``: 10,268 pairs not steady."""
    now = from_results(results, now=START + timedelta(days=runs - 1), revision=f"{runs - 1:040x}", matrix="m",
                       library="l")
    index = {cell_id(i): i for i in range(len(results.cells))}
    cases = {case: j for j, case in enumerate(results.cases)}
    stored = []
    for n in range(runs - 1):
        entries = {}
        for (case, cell), entry in now.entries.items():
            other = unsteady(index[cell], cases[case], n) if entry.state != State.MISSING else None
            entries[(case, cell)] = Entry(other, "0badc0de", entry.duration * 1.1) if other else entry
        when = START + timedelta(days=n)
        stored.append(Run(id=f"{when:%Y%m%dT%H%M%S.%fZ}-{n:06x}", time=when, revision=f"{n:040x}", matrix="m",
                          library="l", partial=False, entries=entries, issues={"numpy2-abi": 3} if n % 2 else {}))
    return Window(runs=(*stored, now))
