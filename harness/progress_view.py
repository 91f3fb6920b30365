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
are saved to ``reports/durations.json`` for the next run's ETA.

ETA, deliberately simple: every unfinished cell is expected to take what it took last time (a cell
never run: the median of the known ones); a running cell's own elapsed time is taken off its share
(not below zero); the sum is divided by ``jobs``. No history at all: no ETA.

Plain mode needs the standard library only; rich is imported for the live view alone.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TextIO

from harness.layout import CELL_CASE, NOT_APPLICABLE_PREFIX
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

GREEN, RED, NOT_APPLICABLE_SYMBOL, HEARTBEAT_SYMBOL = "✓", "✗", "–", "…"
SYMBOL_STYLES = {GREEN: "bold green", RED: "bold red", NOT_APPLICABLE_SYMBOL: "dim"}  # on a terminal
SIGNALLED = (130, -2, -15)  # a cell stopped by SIGINT or SIGTERM (as a shell or Popen reports it)


@dataclass(frozen=True)
class CellOutcome:
    """A finished cell, as its line shows it."""

    cell: str
    elapsed_s: float
    counts: dict[str, int] = field(default_factory=dict)
    not_applicable: str | None = None  # the reason, for a cell that did not apply here
    problem: str | None = None  # why it is red beyond its counts: an error, cases not run, an exit code
    note: str | None = None  # shown, not red
    exit_code: int = 0

    @property
    def red(self) -> bool:
        return self.not_applicable is None and (bool(self.problem) or bad_count(self.counts) > 0)


@dataclass
class _Running:
    started_at: float  # on the view's clock
    progress: CellProgress | None = None


@dataclass(frozen=True)
class JUnitStatus:
    """What the cell runner wrote into a cell's JUnit file beyond its cases: a cell-level outcome
    (testcase ``<cell>``: not applicable, or an error) and the ``interrupted`` suite property."""

    not_applicable: str | None = None
    error: str | None = None
    interrupted: str | None = None

    @classmethod
    def read(cls, junit: Path) -> JUnitStatus:
        try:
            root = ET.parse(junit).getroot()
        except (ET.ParseError, OSError):
            return cls()
        interrupted = next((p.get("value", "") for p in root.iter("property") if p.get("name") == "interrupted"),
                           None)
        for case in root.iter("testcase"):
            if case.get("name") != CELL_CASE:
                continue
            skipped, error = case.find("skipped"), case.find("error")
            if skipped is not None:
                return cls(not_applicable=skipped.get("message", "").removeprefix(NOT_APPLICABLE_PREFIX))
            if error is not None:
                lines = (error.get("message") or "").strip().splitlines()
                return cls(error=lines[0] if lines else "", interrupted=interrupted)
        return cls(interrupted=interrupted)


def outcome_of(reports: Path, cell_id: str, exit_code: int, elapsed_s: float) -> CellOutcome:
    """A finished cell from its last progress file and what the cell runner wrote into its JUnit file.

    The exit code alone says little (2 is a bad command line for ``python -m harness`` and an
    interrupted run for pytest): it is shown only where nothing else explains a red cell.
    """
    final = read_cell(reports, cell_id)
    status = JUnitStatus.read(reports / "junit" / f"{cell_id}.xml")
    counts = dict(final.counts) if final else {}
    if status.not_applicable is not None and not counts:
        return CellOutcome(cell_id, elapsed_s, not_applicable=status.not_applicable, exit_code=exit_code)
    not_run = final.total - final.done if final else 0
    problem = None
    if status.error is not None:
        problem = f"error: {status.error}"
    elif status.interrupted is not None or exit_code in SIGNALLED:
        problem = "interrupted" + (f", {not_run} not run" if not_run else "")
    elif not_run:
        problem = f"{not_run} not run"
    elif exit_code not in (0, 1) or (exit_code == 1 and final is None):
        problem = f"exit code {exit_code}"
    note = "no progress file" if final is None and not problem else None
    return CellOutcome(cell_id, elapsed_s, counts, problem=problem, note=note, exit_code=exit_code)


def cases_text(progress: CellProgress | None) -> str:
    """``12/265``; before pytest runs (the venv is being made) ``starting``, while it collects ``collecting``."""
    if progress is None:
        return "starting"
    if progress.total == 0 and not progress.finished:
        return "collecting"
    return f"{progress.done}/{progress.total}"


def typical(durations: dict[str, float]) -> float:
    """What a cell never run is expected to take: the median of the known ones (0 without any)."""
    return statistics.median(durations.values()) if durations else 0.0


def read_durations(reports: Path) -> dict[str, float]:
    try:
        data = json.loads((reports / DURATIONS_FILE).read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


class Progress:
    """The view of one matrix run; a context manager, driven by the scheduler's thread (not thread-safe).

    ``live``: None -> a rich live view when ``stream`` is a terminal and ``$CI`` is unset, else plain
    lines. ``console``: a rich Console to render to (tests); by default one on ``stream``.
    """

    def __init__(self, cells: list[str], *, reports: Path, jobs: int = 1, live: bool | None = None,
                 verbose: bool = False, heartbeat_s: float = 30.0, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, console: Any = None) -> None:
        self.cells = list(cells)
        self.reports = reports
        self.jobs = max(1, jobs)
        self.stream = stream if stream is not None else sys.stderr
        self.live = (self.stream.isatty() and not os.environ.get("CI")) if live is None else live
        self.verbose = verbose
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.history = read_durations(reports)
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
        outcome = outcome_of(self.reports, cell_id, exit_code, elapsed_s)
        self.outcomes[cell_id] = outcome
        if outcome.not_applicable is None or self.verbose:
            self._print(self.line(outcome))
        self._refresh()
        return outcome

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.save_durations()
        self._print(self.total_line(interrupted=exc_type is not None))

    # -- what it shows

    def line(self, outcome: CellOutcome) -> str:
        cell = outcome.cell.ljust(self._width)
        if outcome.not_applicable is not None:
            return f"{NOT_APPLICABLE_SYMBOL} {cell}  not applicable: {outcome.not_applicable}"
        parts = [p for p in (format_counts(outcome.counts), outcome.problem, outcome.note) if p]
        what = " · ".join(parts) or "no cases"
        return f"{RED if outcome.red else GREEN} {cell}  {what}  {format_seconds(outcome.elapsed_s)}"

    def total_line(self, *, interrupted: bool = False) -> str:
        finished = list(self.outcomes.values())
        red = sum(o.red for o in finished)
        not_applicable = sum(o.not_applicable is not None for o in finished)
        counts: dict[str, int] = {}
        for outcome in finished:
            for state, n in outcome.counts.items():
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
        """Seconds until the run ends, from the last run's durations (see the module's docstring)."""
        if not self.history:
            return None
        median = typical(self.history)
        now = self.clock()
        left = 0.0
        for cell in self.cells:
            if cell in self.outcomes:
                continue
            expected = self.history.get(cell, median)
            running = self.running.get(cell)
            left += max(expected - (now - running.started_at), 0.0) if running else expected
        return left / self.jobs

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
