"""A worker that dies loses only its case in flight: what it had not finished goes to a follow-up worker.

A worker dies of a segfault, an OOM kill or an INTERNALERROR far more often than its cases are wrong;
reporting every case it would have run as not run would be a false red. The cell runner works out
what the dead worker lost from what it left behind: its claims (``harness.claims``: the modules it took,
each with its cases), its :class:`~harness.claims.Leftover` (written at an INTERNALERROR), its progress
file (the case in flight at a hard death) and its JUnit file (what it finished, where it wrote one; a
hard death writes none, so then everything it took is run again). The case in flight becomes an error
saying the worker died during it; the rest is claimed in a follow-up worker's name, at most
:data:`MAX_REPLACEMENTS` times a cell so that a crash loop cannot stall it. Standard library only (its JUnit
through ``harness.junit``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from harness import claims, junit, layout, processes
from harness.layout import Prop
from harness.progress import CellProgress, write_json
from harness.states import State

MAX_REPLACEMENTS = 2  # follow-up workers a cell starts for dead ones
# pytest's JUnit testcase of an INTERNALERROR: the error of the case in flight says it, with its line
INTERNAL_ERROR = claims.Case("pytest::internal", "pytest::internal")


@dataclass(frozen=True)
class Lost:
    """What a dead worker did not finish: the case in flight, and the rest (claims in its name)."""

    worker: int
    how: str  # "killed by SIGKILL: <its last error line>"
    in_flight: claims.Case | None
    rest: tuple[claims.Claim, ...]
    kept: bool  # its JUnit file holds what it finished

    @property
    def rest_cases(self) -> list[claims.Case]:
        return [case for claim in self.rest for case in claim.cases]

    @property
    def nothing(self) -> bool:
        return self.in_flight is None and not self.rest


def died(code: int | None) -> bool:
    """Whether a worker's exit code means it died (a signal, INTERNALERROR, an exit pytest never makes);
    0, 1 (failures), 2 (stopped), 4 (usage) and 5 (nothing collected) are ends pytest chose."""
    return code is not None and (code < 0 or code == 3 or code > 5)


def lost_by(reports: Path, cell_id: str, folder: Path, worker: int, code: int, last_error: str) -> Lost:
    """Work out what worker ``worker`` (claims in ``folder``) lost when it ended with ``code``."""
    own = claims.of_worker(folder, worker)
    cases = {case.nodeid: case for claim in own for case in claim.cases}
    leftover = claims.Leftover.read(layout.leftover_path(reports, cell_id, worker))
    kept = layout.worker_junit_path(reports, cell_id, worker).exists()
    progress = CellProgress.read(layout.progress_path(reports, cell_id, worker))
    in_flight = leftover.in_flight if leftover else (progress.current if progress else None)
    if kept:
        unfinished = set(leftover.rest) if leftover else set()
    else:  # a hard death: its results died with it, so everything it took but the case in flight
        unfinished = set(cases) - {in_flight}
    rest = tuple(replace(claim, cases=kept_cases) for claim in own
                 if (kept_cases := tuple(c for c in claim.cases if c.nodeid in unfinished)))
    how = processes.describe_exit(code) + (f": {last_error}" if last_error else "")
    flight = cases.get(in_flight) if in_flight else None
    if in_flight and flight is None:
        flight = claims.Case(in_flight, in_flight)
    return Lost(worker=worker, how=how, in_flight=flight, rest=rest, kept=kept)


def record(reports: Path, cell: dict[str, str], lost: Lost, *, handed_to: int | None, stopped: bool = False) -> None:
    """Complete the dead worker's JUnit file (write one with the ``cell``'s suite properties where it
    has none): the case in flight is an error naming how the worker died. The rest: run by the follow-up
    ``handed_to``; else, in a cell that was stopped, not run (in its plan, without a result); else an
    error each, saying the replacements ran out. Its progress file then counts them and says it finished."""
    cell_id = cell[Prop.CELL]
    added: list[junit.Case] = []
    if lost.in_flight is not None:
        added.append(_died(lost.in_flight, f"worker {lost.worker} died during this case ({lost.how})"))
    if handed_to is None and not stopped:
        why = (f"not run: worker {lost.worker} died ({lost.how}) and the cell had started its "
               f"{MAX_REPLACEMENTS} replacement workers already")
        added += [_died(case, why) for case in lost.rest_cases]
    path = layout.worker_junit_path(reports, cell_id, lost.worker)
    replaced = [*lost.rest_cases, *([lost.in_flight, INTERNAL_ERROR] if lost.in_flight else [])]
    planned = [case.case for case in lost.rest_cases] if handed_to is None and stopped else []
    junit.complete(path, cell, added, [(case.nodeid, case.case) for case in replaced], planned)
    progress = layout.progress_path(reports, cell_id, lost.worker)
    before = CellProgress.read(progress) or CellProgress(cell=cell_id)
    counts = dict(before.counts) if lost.kept else {}  # a hard death's results are run again
    if added:
        counts[State.ERROR.value] = counts.get(State.ERROR.value, 0) + len(added)
    done = (before.done if lost.kept else 0) + len(added)
    write_json(progress, replace(before, done=done, counts=counts, current=None, finished=True).as_dict())


def _died(case: claims.Case, message: str) -> junit.Case:
    """The testcase of a case its worker did not finish."""
    return junit.worker_died_case(case.nodeid, case.case, message)
