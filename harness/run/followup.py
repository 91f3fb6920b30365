"""The cell runner's follow-up workers: a replacement for each dead worker, then one retry worker.

While the cell's workers run, each that dies is replaced (``harness.run.requeue``: the replacement runs
what the dead one left, the case in flight apart, and takes modules nobody took yet). Once all have
ended, the cases that timed out under load run once more, alone (``harness.run.retry``). Both are
:meth:`harness.run.pool.Pool.follow_up`: a worker started with cases claimed in its name. Both wait within
the cell's one deadline: ``subprocess.TimeoutExpired`` reaches the cell runner, which stops them.
Standard library only.
"""

from __future__ import annotations

from pathlib import Path

from harness import claims, junit, layout
from harness.run import requeue
from harness.run import retry
from harness.layout import Prop
from harness.run.pool import Pool, Worker

RETRY_WHY = "runs the cases that timed out under load again, alone"
STOPPED = 2  # pytest's exit code of an interrupted session


def replace_dead(pool: Pool, reports: Path, cell: dict[str, str], deadline: float, counted: dict[int, int]) -> None:
    """Wait for every worker (follow-ups included); replace each that died, at most
    :data:`requeue.MAX_REPLACEMENTS` times, and not once a worker was stopped (``-x``, a signal).
    ``cell``: the cell's suite properties (its id under ``cell``); ``counted`` gets dead worker -> the
    exit code it now counts as (its JUnit file completed: 1 where it holds a failure, such as the error
    of its case in flight)."""
    replacements = 0
    while True:
        ended = pool.next_ended(deadline)
        if ended is None:
            return
        if ended.followup == RETRY_WHY or not requeue.died(ended.code):
            continue
        assert ended.code is not None
        pool.end_orphans()  # its server died with it; its stubs were handed to the cell runner
        lost = requeue.lost_by(reports, cell[Prop.CELL], ended.claims, ended.index, ended.code, ended.last_error)
        # Alone, it may have left modules nobody took: a follow-up takes them even where it lost nothing.
        wanted = bool(lost.rest) or not pool.running()
        handed_to = None
        stopped = stopped_any(pool)
        if wanted and not stopped and replacements < requeue.MAX_REPLACEMENTS:
            replacements += 1
            handed_to = pool.follow_up(list(lost.rest), ended.claims, ended.share.targets,
                                       f"replaces worker {ended.index}, which died ({lost.how})").index
        if lost.nothing and not lost.kept and handed_to is None:
            continue  # nothing known of it and nobody after it: the cell says the worker was lost
        requeue.record(reports, cell, lost, handed_to=handed_to, stopped=stopped)
        counted[ended.index] = failed(ended.junit(reports, cell[Prop.CELL]))


def retry_alone(pool: Pool, reports: Path, cell_id: str, deadline: float, counted: dict[int, int]) -> None:
    """Run the cases that timed out under load once more in one fresh worker, alone, and put its
    results in place of the first attempts (in the workers' JUnit files, before they are joined);
    ``counted`` gets worker -> the exit code it counts as, for each whose results changed."""
    firsts = [w for w in pool.workers if w.followup != RETRY_WHY]
    if stopped_any(pool):
        return
    evidence: dict[str, str] = {}
    for worker in firsts:
        evidence.update(retry.candidates(worker.junit(reports, cell_id)))
    known = [claim for folder in dict.fromkeys(w.claims for w in firsts) for claim in claims.read_all(folder)]
    handed = retry.claims_for(evidence, known)
    if not handed:
        return
    root = Path(pool.launch.rootdir)
    targets = tuple(dict.fromkeys(str(root / case.nodeid) for claim in handed for case in claim.cases))
    folder = layout.followup_claims_path(reports, cell_id, len(pool.workers))
    again: Worker = pool.follow_up(handed, folder, targets, RETRY_WHY, extra=retry.RERUNS)
    while pool.next_ended(deadline) is not None:
        pass
    changed: dict[str, tuple[str, str]] = {}
    for worker in firsts:
        moved = junit.replace_cases(worker.junit(reports, cell_id), again.junit(reports, cell_id), evidence)
        if moved:
            counted[worker.index] = failed(worker.junit(reports, cell_id))
        changed.update(moved)
    retry.amend_progress(layout.progress_path(reports, cell_id, again.index), cell_id, changed)


def stopped_any(pool: Pool) -> bool:
    """Whether a worker of the cell was stopped (pytest's exit code 2): the cell does not go on."""
    return any(w.code == STOPPED for w in pool.workers)


def failed(junit_file: Path) -> int:
    """pytest's exit code for a worker's JUnit file: 1 where a case failed (not a known issue), else 0."""
    try:
        cases = junit.cases_of(junit_file)
    except junit.Unreadable:
        return 1
    return int(any(case.failed and Prop.KNOWN_ISSUE not in case.props for case in cases))
