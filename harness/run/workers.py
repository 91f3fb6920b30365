"""A cell's case modules spread over pytest workers (their JUnit files are joined by ``harness.junit``).

A python cell mostly waits: a stub takes about a second to start and to stop, a batcher waits for its
queue delay, a sequence for its idle timeout. Run one module after another and a cell takes minutes
while the CPU idles; run them in a few workers at once and the same cell takes a fraction of that.

Each worker is a pytest process of its own with a server of its own (one starts in about 0.1 s), so a
case that kills its stub or its server, counts the server's processes or reads its shared-memory
regions sees only its worker's server, and a crash costs one worker's case in flight, not the cell
(a dead worker's other cases go to a follow-up worker: ``harness.run.followup``). A
module stays whole in one worker: its models are loaded once. Workers take modules as they become
free (``harness.incell.sharing``), longest first by the last run's times (the cell's own JUnit file, else
another cell's, else the file's size).

Standard library only: the cell runner (``harness.run.cell``) uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness import junit as junit_mod
from harness.sources import case_files
from harness.spec import Share  # what one worker collects; the cell spec carries the plan

UNKNOWN_WEIGHT_S_PER_KB = 0.5  # a module never timed: about half a second per KB of cases


def targets_of(paths: Iterable[str]) -> list[str]:
    """Folders expanded to their case files; files and node ids (``file::case``) as given."""
    out: list[str] = []
    for spec in paths:
        path = Path(spec.split("::")[0])
        out += [str(f) for f in case_files(path)] if path.is_dir() and "::" not in spec else [spec]
    return out


def timings(junit_files: Iterable[Path], rootdir: Path) -> dict[Path, float]:
    """Seconds per case file from earlier JUnit files (the largest seen, as the most pessimistic)."""
    seconds: dict[Path, float] = {}
    for junit in junit_files:
        per_file: dict[Path, float] = {}
        try:
            cases = junit_mod.cases_of(junit)
        except junit_mod.Unreadable:
            continue
        for case in cases:
            if case.file:
                path = (rootdir / case.file).resolve()
                per_file[path] = per_file.get(path, 0.0) + (case.time or 0.0)
        for path, took in per_file.items():
            seconds[path] = max(seconds.get(path, 0.0), took)
    return seconds


def weight(target: str, known: dict[Path, float]) -> float:
    path = Path(target.split("::")[0]).resolve()
    if path in known:
        return known[path]
    try:
        return path.stat().st_size / 1024 * UNKNOWN_WEIGHT_S_PER_KB
    except OSError:
        return 1.0


def ordered(targets: list[str], known: dict[Path, float]) -> list[str]:
    """Longest first, so the last module a worker takes is a short one; node ids of one file stay
    together, and files of equal weight keep their given order."""
    units: dict[str, list[str]] = {}
    for target in targets:
        units.setdefault(target.split("::")[0], []).append(target)
    return [t for unit in sorted(units, key=lambda u: -weight(u, known)) for t in units[unit]]


def shares(targets: list[str], count: int, own: dict[int, tuple[str, ...]] | None = None) -> list[Share]:
    """``count`` workers (``harness.options.workers_for``: no more than case files) that each collect
    every target and take modules from the shared queue (``harness.incell.sharing``); ``own``: targets only
    one worker runs."""
    return [Share(worker=k, targets=(*targets, *(own or {}).get(k, ()))) for k in range(count)]


def exit_code(codes: list[int | None]) -> int | None:
    """The cell's pytest exit code from its workers': a stop or crash first, then failures; "no case
    collected" (5) only when no worker collected any."""
    worst = next((c for c in codes if c not in (0, 1, 5)), None)
    if worst is not None or None in codes:
        return worst
    if 1 in codes:
        return 1
    return 5 if codes and all(c == 5 for c in codes) else 0
