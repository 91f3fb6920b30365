"""``python -m harness run``: every selected cell, N at a time, then the report (what ``nox -s matrix`` does).

The scheduler starts each cell as ``python -m harness cell <id>``, a child that dies with it, and
keeps each cell's console output in ``reports/logs/<cell>.out`` (the terminal shows one line per
cell, see ``harness.progress``). It dies with its own parent too, so a SIGKILL of the top
``nox -s matrix`` ends the whole tree: scheduler -> cells -> pytest -> servers -> stubs. SIGTERM or
Ctrl-C stops every cell (each writes the JUnit file of what finished), then the partial report is
written. Cells start longest first, by the last run's durations.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from harness import PROJECT_ROOT, admission, layout, processes
from harness.compat import KW_ONLY
from harness.errors import HarnessError
from harness.run.eta import typical
from harness.matrix import Cell, Matrix
from harness.options import CELL, to_args
from harness.run.progress_view import read_durations

if TYPE_CHECKING:  # the perf runner itself is imported only by a run with --perf
    from harness.perf.runner import Plan as PerfPlan

ROOT = PROJECT_ROOT
POLL_S = 0.5


@dataclass(frozen=True, **KW_ONLY)
class RunOptions:
    """What ``nox -s matrix -- ...`` was given."""

    reports: Path
    jobs: int
    # Every cell's options but its id, resolved (``harness.options``): rendered, never read here.
    for_cells: Mapping[str, Any] = field(default_factory=dict, hash=False)
    reference: str | None = None  # models mode: the cell the others' answers must match
    matrix: Path | None = None
    verbose: bool = False
    baseline: Path | None = None
    history: Path | None = None  # the history store (default: reports/history)
    history_window: int = 20
    libraries: tuple[Path, ...] = ()  # the case libraries the cells run (their digest goes in the history)
    perf: PerfPlan | None = None  # --perf: measured after the cells, alone, before the report


@dataclass
class Running:
    cell: Cell
    proc: subprocess.Popen[bytes]
    started: float
    output: IO[bytes]


def cell_command(cell: Cell, options: RunOptions) -> list[str]:
    """``python -m harness cell <id>`` with the run's resolved options (``harness.options.to_args``)."""
    return [sys.executable, "-m", "harness", CELL, *to_args(CELL, {**options.for_cells, "id": cell.id})]


def ordered(cells: list[Cell], durations: dict[str, float]) -> list[Cell]:
    """Longest first (by the last run), so the matrix does not end waiting on one long cell."""
    expected = typical(durations)
    return sorted(cells, key=lambda c: -durations.get(c.id, expected))


def run_cells(cells: list[Cell], options: RunOptions, progress: Any) -> int:
    """Run the cells; returns 0, or 1 when a cell runner failed, or 130/143 when stopped by a signal."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    pending = ordered(cells, read_durations(options.reports))
    running: dict[str, Running] = {}
    worst = 0
    (options.reports / "logs").mkdir(parents=True, exist_ok=True)
    stop = _StopOnSignal()
    try:
        while (pending or running) and not stop.signum:
            while pending and len(running) < options.jobs and not stop.signum:
                cell = pending.pop(0)
                out = open(options.reports / "logs" / f"{cell.id}.out", "wb")  # noqa: SIM115 - closed when it ends
                proc = processes.spawn(cell_command(cell, options), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT)
                running[cell.id] = Running(cell=cell, proc=proc, started=time.monotonic(), output=out)
                progress.started(cell.id)
            time.sleep(POLL_S)
            progress.poll()
            for cell_id, job in list(running.items()):
                code = job.proc.poll()
                if code is None:
                    continue
                job.output.close()
                del running[cell_id]
                progress.finished(cell_id, code, time.monotonic() - job.started)
                if code not in (0, 1):
                    worst = 1
    finally:
        stop.restore()
        if running:
            _stop_all(list(running.values()), stop.signum or signal.SIGTERM)
            for cell_id, job in running.items():
                progress.finished(cell_id, job.proc.returncode, time.monotonic() - job.started)
    return 128 + stop.signum if stop.signum else worst


def _stop_all(jobs: list[Running], signum: int) -> None:
    """Every cell at once (each stops its pytest and server, then marks its JUnit file), bounded."""
    for job in jobs:
        if job.proc.poll() is None:
            job.proc.send_signal(signum)
    deadline = time.monotonic() + processes.CELL_STOP_GRACE
    for job in jobs:
        try:
            job.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            job.proc.kill()
            job.proc.wait()
        job.output.close()


class _StopOnSignal:
    """Turns SIGTERM and SIGINT into a flag the loop reads, so the stop is orderly."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}

    def _handle(self, signum: int, frame: object) -> None:
        self.signum = self.signum or signum

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def write_plan(reports: Path, cells: list[Cell]) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    (reports / layout.PLAN_FILE).write_text(json.dumps({"cells": [c.as_dict() for c in cells]}, indent=1))


def prepare_envs(matrix: Matrix, cells: list[Cell], say: Any = print) -> None:
    """Make the venvs of the cells that apply here before any cell starts, one at a time: a first run's
    venv creation then competes with no case for the CPUs. A venv that cannot be made is left for its
    cell to report."""
    from harness.run import cell as cell_mod

    wanted = {}
    for cell in cells:
        if cell_mod.not_applicable(matrix, cell) is None:
            wanted.setdefault((cell.triton, cell.python, cell.env, cell_mod.BACKEND_PACKAGES.get(cell.backend)), cell)
    if wanted:
        say(f"preparing {len(wanted)} cell venv(s) before the cells start")
    for cell in wanted.values():
        try:
            cell_mod.ensure_env(matrix, cell)
        except HarnessError:
            continue


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def _measure_perf(matrix: Matrix, planned: PerfPlan, reports: Path) -> int:
    """--perf, after the cells: alone on the machine, before the report that shows it. Ctrl-C or SIGTERM
    stops it (its server is stopped on the way out) and the report is still written, without it."""
    from harness.perf import runner as perf_runner

    previous = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return perf_runner.run(matrix, planned, reports)
    except _Stopped as stopped:
        print(f"perf: stopped by {signal.Signals(stopped.signum).name}; the report is written without it",
              file=sys.stderr, flush=True)
        return 128 + stopped.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(cells: list[Cell], options: RunOptions, matrix: Matrix | None = None) -> int:
    """Run, then always write the report (also after a signal: it then says it is partial)."""
    from harness import matrix as matrix_mod
    from harness.run.progress_view import Progress
    from harness.report import build

    os.environ[layout.SLOTS_ENV] = admission.Slots.create(layout.slots_path(options.reports)).env_value()
    if matrix is not None:
        prepare_envs(matrix, cells, say=lambda text: print(text, file=sys.stderr, flush=True))
    write_plan(options.reports, cells)
    known = (matrix or matrix_mod.load(options.matrix)).known_failures  # as the report's
    with Progress([c.id for c in cells], reports=options.reports, verbose=options.verbose,
                  jobs=options.jobs, known=known) as progress:
        code = run_cells(cells, options, progress)
    if options.perf is not None and code < 128:  # a stopped run is not measured
        code = _measure_perf(matrix or matrix_mod.load(options.matrix), options.perf, options.reports) or code
    report_code = build.main(reports=options.reports, baseline=options.baseline, matrix=options.matrix,
                             reference=options.reference, history_dir=options.history,
                             history_window=options.history_window, libraries=options.libraries)
    return code or report_code
