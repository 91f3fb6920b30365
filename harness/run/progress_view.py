"""The matrix run as it happens: a live view on a terminal, plain lines in CI.

The scheduler (``python -m harness run``) drives it from its one thread, nothing polls by itself::

    with Progress(cell_ids, reports=reports, jobs=jobs) as progress:
        ...                                      # before spawning a child:
        progress.started(cell_id)
        ...                                      # while waiting for children, about every 0.5 s:
        progress.poll()
        ...                                      # when a child exited:
        progress.finished(cell_id, exit_code, elapsed_s)

Each finished cell is one line (``✓ 24.10-python-cpu-py3.11  212 passed · 50 n/a · 3 known  61 s``);
a not-applicable cell only with ``verbose``. On a terminal a rich table shows the running cells
(cases done / total, failures, elapsed, current case) and the ETA; elsewhere a heartbeat line every
``heartbeat_s`` names what runs. On exit the total line is printed and the finished cells' durations
are saved to ``reports/durations.json`` for the next run's ETA (``harness.run.eta``).

A finished cell's line and the total line count what the report will: the cell's JUnit file read by
the report's own model (``harness.report.column``), missing cases included. A running cell's numbers
come from its progress files, classified by the same mapping (``harness.states.case_state``).

Plain mode needs the standard library only (the report's reader reads JUnit through ``harness.junit``);
rich is imported for the live view alone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TextIO

from harness.run import eta
from harness.matrix.known_issues import KnownIssue
from harness.progress import (
    DURATIONS_FILE,
    CellProgress,
    bad_count,
    clear_cell,
    format_counts,
    format_seconds,
    read_cell,
    write_json,
)
from harness.states import State

if TYPE_CHECKING:
    from harness.report.column import Column

GREEN, RED, NOT_APPLICABLE_SYMBOL, HEARTBEAT_SYMBOL = "✓", "✗", "–", "…"
SYMBOL_STYLES = {GREEN: "bold green", RED: "bold red", NOT_APPLICABLE_SYMBOL: "dim"}  # on a terminal
SIGNALLED = (130, -2, -15)  # a cell stopped by SIGINT or SIGTERM (as a shell or Popen reports it)


@dataclass(frozen=True)
class CellOutcome:
    """A finished cell, as its line shows it: its column of the report, and what else went wrong."""

    cell: str
    elapsed_s: float
    column: Column
    collected: int = 0  # the cases its pytest collected (its progress files)
    problem: str | None = None  # why it is red beyond its counts: an error, an interruption, an exit code
    exit_code: int = 0

    @property
    def not_applicable(self) -> str | None:
        return self.column.not_applicable

    def counts(self, cases: Collection[str] = ()) -> dict[str, int]:
        """As the report will count the cell, its rows being ``cases`` and its own."""
        return self.column.counts(cases, self.collected)

    def red(self, cases: Collection[str] = ()) -> bool:
        if self.not_applicable is not None:
            return False
        return bool(self.problem) or self.column.state.bad or bad_count(self.counts(cases)) > 0


@dataclass
class _Running:
    started_at: float  # on the view's clock
    progress: CellProgress | None = None


def outcome_of(reports: Path, cell_id: str, exit_code: int, elapsed_s: float,
               known: tuple[KnownIssue, ...] = ()) -> CellOutcome:
    """A finished cell from its JUnit file (the report's reading) and its progress files' case total.

    The exit code alone says little (2 is a bad command line for ``python -m harness`` and an
    interrupted run for pytest): it is shown only where nothing else explains it.
    """
    from harness.report.column import Column, read_column  # the report's reader, not a second one

    try:
        column = read_column(reports, cell_id, known)
    except Exception as exc:  # noqa: BLE001 - one cell's odd file must not stop the run; the report says more
        column = Column(cell_id, state=State.ERROR, fill=State.ERROR, level=f"its JUnit file could not be read: {exc}")
    progress = read_cell(reports, cell_id)
    interrupted = column.interrupted is not None or exit_code in SIGNALLED
    problems = []
    if column.error is not None:
        problems.append(f"error: {column.error}")
    if interrupted:
        problems.append("interrupted")
    elif not column.junit and column.error is None:
        problems.append("no JUnit file")
    if exit_code not in (0, 1) and not interrupted and column.error is None:
        problems.append(f"exit code {exit_code}")
    return CellOutcome(cell_id, elapsed_s, column, collected=progress.total if progress else 0,
                       problem=" · ".join(problems) or None, exit_code=exit_code)


def cases_text(progress: CellProgress | None) -> str:
    """``12/265``; before pytest runs (the venv is being made) ``starting``, while it collects ``collecting``."""
    if progress is None:
        return "starting"
    if progress.total == 0 and not progress.finished:
        return "collecting"
    return f"{progress.done}/{progress.total}"


def read_durations(reports: Path) -> dict[str, float]:
    try:
        data = json.loads((reports / DURATIONS_FILE).read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


class Progress:
    """The view of one matrix run; a context manager, driven by the scheduler's thread (not thread-safe).

    ``live``: None -> a rich live view when ``stream`` is a terminal and ``$CI`` is unset, else plain
    lines. ``console``: a rich Console to render to (tests); by default one on ``stream``. ``known``:
    the known issues the report is given (the matrix's), so a finished cell counts as there.
    """

    def __init__(self, cells: list[str], *, reports: Path, jobs: int = 1, live: bool | None = None,
                 verbose: bool = False, heartbeat_s: float = 30.0, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, console: Any = None,
                 known: tuple[KnownIssue, ...] = ()) -> None:
        self.cells = list(cells)
        self.reports = reports
        self.jobs = max(1, jobs)
        self.stream = stream if stream is not None else sys.stderr
        self.live = (self.stream.isatty() and not os.environ.get("CI")) if live is None else live
        self.verbose = verbose
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.history = read_durations(reports)
        self.known = known
        self.running: dict[str, _Running] = {}
        self.outcomes: dict[str, CellOutcome] = {}
        self._width = max((len(c) for c in self.cells), default=0)
        self._console = console
        self._live: Any = None
        self._began = self._last_beat = 0.0

    # -- the scheduler's calls

    def __enter__(self) -> Self:
        for cell in self.cells:  # a file left by an earlier run would show that run's counts
            clear_cell(self.reports, cell)
        self._began = self._last_beat = self.clock()
        if self.live:
            try:
                self._start_live()
            except ImportError:  # rich not installed where the matrix runs: the plain lines still work
                self.live = False
        if not self.live:
            self._print(self.heartbeat())
        return self

    def started(self, cell_id: str) -> None:
        self.running[cell_id] = _Running(started_at=self.clock())
        self._refresh()

    def poll(self) -> None:
        """Re-read the running cells' progress files; in plain mode, the heartbeat when it is due."""
        for cell_id, running in self.running.items():
            running.progress = read_cell(self.reports, cell_id) or running.progress
        now = self.clock()
        if not self.live and now - self._last_beat >= self.heartbeat_s:
            self._last_beat = now
            self._print(self.heartbeat())
        self._refresh()

    def finished(self, cell_id: str, exit_code: int, elapsed_s: float) -> CellOutcome:
        """Print the cell's line (a not-applicable cell's only when verbose); returns what it showed."""
        self.running.pop(cell_id, None)
        outcome = outcome_of(self.reports, cell_id, exit_code, elapsed_s, self.known)
        self.outcomes[cell_id] = outcome
        if outcome.not_applicable is None or self.verbose:
            self._print(self.line(outcome, self.cases()))
        self._refresh()
        return outcome

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.save_durations()
        self._print(self.total_line(interrupted=exc_type is not None))

    # -- what it shows

    def cases(self) -> set[str]:
        """The report's rows so far: every case a finished cell's JUnit file names."""
        return {case for o in self.outcomes.values() for case in o.column.states}

    def line(self, outcome: CellOutcome, cases: Collection[str] = ()) -> str:
        cell = outcome.cell.ljust(self._width)
        if outcome.not_applicable is not None:
            return f"{NOT_APPLICABLE_SYMBOL} {cell}  not applicable: {outcome.not_applicable}"
        parts = [p for p in (format_counts(outcome.counts(cases)), outcome.problem) if p]
        what = " · ".join(parts) or "no cases"
        return f"{RED if outcome.red(cases) else GREEN} {cell}  {what}  {format_seconds(outcome.elapsed_s)}"

    def total_line(self, *, interrupted: bool = False) -> str:
        """The finished cells, counted as the report will (every cell's column has every cell's cases)."""
        finished, cases = list(self.outcomes.values()), self.cases()
        red = sum(o.red(cases) for o in finished)
        not_applicable = sum(o.not_applicable is not None for o in finished)
        counts: dict[str, int] = {}
        for outcome in finished:
            for state, n in outcome.counts(cases).items():
                counts[state] = counts.get(state, 0) + n
        noun = "cell" if len(self.cells) == 1 else "cells"
        cells = f"{len(finished)} {noun}" if len(finished) == len(self.cells) else \
            f"{len(finished)} of {len(self.cells)} {noun}"
        what = [f"{'interrupted: ' if interrupted else ''}{cells}", f"{red} red", f"{not_applicable} not applicable"]
        symbol = RED if red or interrupted or len(finished) < len(self.cells) else GREEN
        return (f"{symbol} {', '.join(what)}  {format_counts(counts) or 'no cases'}  "
                f"{format_seconds(self.clock() - self._began)}")

    def heartbeat(self) -> str:
        running = ", ".join(self._running_text(c, r) for c, r in self.running.items())
        eta = self.eta_s()
        return (f"{HEARTBEAT_SYMBOL} {len(self.outcomes)}/{len(self.cells)} cells done"
                + (f" · running {running}" if running else "")
                + (f" · ETA {format_seconds(eta)}" if eta is not None else ""))

    def eta_s(self) -> float | None:
        """Seconds until the run ends: the last run's durations at this run's pace (``harness.run.eta``)."""
        now = self.clock()
        ran = {c: o.elapsed_s for c, o in self.outcomes.items() if o.exit_code in (0, 1) and o.not_applicable is None}
        return eta.eta_s(eta.RunState(
            history=self.history, finished=ran, jobs=self.jobs,
            running={c: now - r.started_at for c, r in self.running.items()},
            done_share={c: r.progress.done / r.progress.total for c, r in self.running.items()
                        if r.progress is not None and r.progress.total > 0},
            pending=tuple(c for c in self.cells if c not in self.outcomes and c not in self.running)))

    def save_durations(self) -> None:
        """Keep each cell's last finished run (an interrupted cell's time says nothing of a whole one)."""
        done = {c: round(o.elapsed_s, 1) for c, o in self.outcomes.items() if o.exit_code in (0, 1)}
        if done:
            write_json(self.reports / DURATIONS_FILE, {**read_durations(self.reports), **done})

    def _running_text(self, cell: str, running: _Running) -> str:
        progress, elapsed = running.progress, format_seconds(self.clock() - running.started_at)
        bad = bad_count(progress.counts) if progress else 0
        return f"{cell} ({cases_text(progress)}{f', {bad} failed' if bad else ''}, {elapsed})"

    # -- output

    def _print(self, text: str) -> None:
        if self._console is not None:  # above the live table while it shows; rich knows the terminal
            from rich.text import Text

            styled = Text(text)
            styled.stylize(SYMBOL_STYLES.get(text[:1], ""), 0, 1)
            self._console.print(styled, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = self._console or Console(file=self.stream)
        self._live = Live(self._table(), console=self._console, auto_refresh=False, transient=True,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._table(), refresh=True)

    def _table(self) -> Any:
        from rich.table import Table
        from rich.text import Text  # not markup: case ids hold brackets (test_x[http])

        eta = self.eta_s()
        table = Table(title=f"{len(self.outcomes)}/{len(self.cells)} cells done"
                      + (f" · ETA {format_seconds(eta)}" if eta is not None else ""),
                      title_justify="left", box=None, pad_edge=False)
        # The current case, often long, gets what the fixed columns leave.
        for name, justify, width in (("cell", "left", self._width), ("cases", "right", 9), ("failed", "right", 6),
                                     ("elapsed", "right", 10), ("current case", "left", None)):
            table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                             min_width=width, ratio=None if width else 1)
        for cell, running in self.running.items():
            progress = running.progress
            bad = bad_count(progress.counts) if progress else 0
            table.add_row(Text(cell), cases_text(progress),
                          str(bad) if bad else "", format_seconds(self.clock() - running.started_at),
                          Text((progress.current or "") if progress else ""), style="red" if bad else None)
        return table
