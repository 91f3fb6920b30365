"""What a running cell has done so far, told through one small JSON file per cell.

Two halves share the names defined here:

- :class:`ProgressRecorder`, a pytest plugin inside the cell's pytest (the cell's venv: Python 3.9 and
  up, standard library only), rewrites ``reports/progress/<cell>.json`` after every case;
- :class:`harness.progress_view.Progress`, in the process that runs the matrix, reads those files and
  shows the live view or the plain lines.

A file rather than the cell's output: pytest's output stays untouched (it goes to the cell's log), and
the view can read a cell at any moment without parsing anything but JSON.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.layout import NOT_APPLICABLE_PREFIX, TIMEOUT_RE, Prop, Verdict, progress_dir, progress_path
from harness.states import State

__all__ = ["ProgressRecorder", "progress_path"]

DURATIONS_FILE = "durations.json"  # under the reports folder: cell id -> seconds of its last finished run
KNOWN_ISSUE_PROPERTY = "known_issue"  # a JUnit property: the failure is a declared known incompatibility

PASSED = State.PASSED.value
FAILED = State.FAILED.value
ERROR = State.ERROR.value
TIMEOUT = State.TIMEOUT.value
KNOWN = State.KNOWN_INCOMPATIBLE.value
FLAKY = State.FLAKY.value
SKIPPED = State.SKIPPED.value
NOT_APPLICABLE = State.NOT_APPLICABLE.value
# Worst first: a case whose phases disagree (a failed call, then a failed teardown) counts as the worst.
SEVERITY = tuple(s.value for s in State if s.value in (ERROR, TIMEOUT, FAILED, KNOWN, FLAKY, PASSED, SKIPPED,
                                                        NOT_APPLICABLE))
BAD = tuple(s for s in SEVERITY if State(s).bad)  # what makes a cell red
# The order of a cell's counts on its line, and their labels.
SHOWN = (PASSED, FAILED, ERROR, TIMEOUT, NOT_APPLICABLE, KNOWN, FLAKY, SKIPPED)
LABELS = {NOT_APPLICABLE: "n/a", KNOWN: "known"}
_RERUN = "rerun"  # pytest-rerunfailures' outcome of an attempt that is run again: not counted


def format_counts(counts: dict[str, int]) -> str:
    """``212 passed · 50 n/a · 3 known``: the non-zero counts, in a fixed order."""
    shown = [f"{counts[s]} {LABELS.get(s, s)}" for s in SHOWN if counts.get(s)]
    return " · ".join(shown)


def format_seconds(seconds: float) -> str:
    """``61 s``, ``3 min 32 s``: short enough for a line, exact enough to compare runs."""
    whole = round(seconds)
    if whole < 120:
        return f"{whole} s"
    return f"{whole // 60} min {whole % 60:02d} s"


def bad_count(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in BAD)


@dataclass(frozen=True)
class CellProgress:
    """One reading of a cell's progress file."""

    cell: str
    total: int = 0
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    current: str | None = None
    started: float = 0.0  # time.time() when the cell's pytest started
    finished: bool = False
    broken: tuple[str, ...] = ()  # modules (and conftest folders) that failed to import: an error each

    @classmethod
    def read(cls, path: Path) -> CellProgress | None:
        """The file's content, or None while there is none (it is replaced whole, never half-written)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(cell=str(data["cell"]), total=int(data["total"]), done=int(data["done"]),
                       counts={str(k): int(v) for k, v in data["counts"].items()}, current=data.get("current"),
                       started=float(data.get("started", 0.0)), finished=bool(data.get("finished")),
                       broken=tuple(str(b) for b in data.get("broken", ())))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def as_dict(self) -> dict[str, Any]:
        return {"cell": self.cell, "total": self.total, "done": self.done, "counts": dict(self.counts),
                "current": self.current, "started": self.started, "finished": self.finished,
                "broken": list(self.broken)}


def read_cell(reports: Path, cell_id: str) -> CellProgress | None:
    """A cell's progress: its workers' files added up (each worker writes its own), None before any."""
    parts = [p for p in map(CellProgress.read, sorted(progress_dir(reports, cell_id).glob("*.json"))) if p is not None]
    if not parts:
        return None
    counts: dict[str, int] = {}
    for part in parts:
        for state, n in part.counts.items():
            counts[state] = counts.get(state, 0) + n
    # Every worker collects the whole cell (and takes a share of it): the total is one worker's, and a
    # module that fails to import fails in each of them, an error once.
    broken = tuple(sorted({b for p in parts for b in p.broken}))
    if broken:
        counts[ERROR] = counts.get(ERROR, 0) + len(broken)
    return CellProgress(cell=cell_id, total=max(p.total for p in parts), done=sum(p.done for p in parts),
                        counts=counts, current=next((p.current for p in parts if p.current), None),
                        started=min(p.started for p in parts), finished=all(p.finished for p in parts),
                        broken=broken)


def clear_cell(reports: Path, cell_id: str) -> None:
    """Forget a cell's progress files (an earlier run's would show that run's counts)."""
    for path in progress_dir(reports, cell_id).glob("*.json"):
        path.unlink(missing_ok=True)


def write_json(path: Path, data: object) -> None:
    """Replace ``path`` whole (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


class ProgressRecorder:
    """pytest plugin: counts each case once, by its final state, into the cell's progress file.

    Register it with
    ``config.pluginmanager.register(ProgressRecorder(progress_path(reports, cell, worker), cell=cell))``.
    A case is its nodeid; its state is the worst of its phases (setup, call, teardown), decided at its
    teardown. An attempt that is run again (pytest-rerunfailures' ``rerun`` outcome) is forgotten and
    the case is counted by its last attempt (``flaky`` when that one passed).
    """

    def __init__(self, path: Path, *, cell: str, wall_clock: Any = time.time) -> None:
        self.path = path
        self.cell = cell
        self.total = 0
        self.counts: dict[str, int] = {}
        self.current: str | None = None
        self.started = float(wall_clock())
        self.finished = False
        self.broken: list[str] = []
        self._attempt: dict[str, str] = {}  # nodeid -> worst state of its phases so far, this attempt
        self._rerun: set[str] = set()
        self._done: set[str] = set()
        self._write()

    def pytest_collection_finish(self, session: Any) -> None:
        self.total = len(session.items)
        self._write()

    def pytest_collectreport(self, report: Any) -> None:
        """A module or conftest.py that failed to import is an error of the cell, not a case of it."""
        if report.failed and report.nodeid not in self.broken:
            self.broken.append(report.nodeid)
            self._write()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.current = nodeid  # set here, not at the setup report: a case's setup (model loads) takes time
        self._write()

    def pytest_runtest_logreport(self, report: Any) -> None:
        nodeid = report.nodeid
        if nodeid in self._done:
            return
        if report.when == "setup":
            self._attempt.pop(nodeid, None)  # a new attempt: what an earlier one said is forgotten
        if report.outcome == "rerun":
            self._attempt[nodeid] = _RERUN
            self._rerun.add(nodeid)
            return
        if self._attempt.get(nodeid) == _RERUN:
            return  # the rest of an attempt that is run again (rerunfailures >= 15 logs its teardown)
        state = state_of(report)
        if state is not None:
            self._attempt[nodeid] = worst(self._attempt.get(nodeid), state)
        if report.when == "teardown":
            final = self._attempt.pop(nodeid, PASSED)
            if final == PASSED and nodeid in self._rerun:
                final = FLAKY
            self._done.add(nodeid)
            self.counts[final] = self.counts.get(final, 0) + 1
            self.current = None
            self._write()

    def pytest_sessionfinish(self) -> None:
        self.finished = True
        self.current = None
        self._write()

    def snapshot(self) -> CellProgress:
        return CellProgress(cell=self.cell, total=self.total, done=len(self._done), counts=dict(self.counts),
                            current=self.current, started=self.started, finished=self.finished,
                            broken=tuple(self.broken))

    def _write(self) -> None:
        write_json(self.path, self.snapshot().as_dict())


def state_of(report: Any) -> str | None:
    """The state one phase's report gives its case, or None where the phase says nothing (a passed
    setup or teardown)."""
    if report.passed:
        return PASSED if report.when == "call" else None
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return KNOWN  # pytest's xfail: declared, like a known incompatibility
        return NOT_APPLICABLE if skip_reason(report).startswith(NOT_APPLICABLE_PREFIX) else SKIPPED
    if any(name == KNOWN_ISSUE_PROPERTY for name, _ in report.user_properties):
        return KNOWN
    if (Prop.VERDICT, Verdict.TIMEOUT) in report.user_properties or TIMEOUT_RE.search(failure_message(report)):
        return TIMEOUT
    return FAILED if report.when == "call" else ERROR  # as pytest's JUnit: setup/teardown fail as errors


def skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def failure_message(report: Any) -> str:
    """The first line of the failure, as pytest's JUnit writer puts it in the message attribute."""
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)


def worst(a: str | None, b: str) -> str:
    return b if a is None or SEVERITY.index(b) < SEVERITY.index(a) else a
