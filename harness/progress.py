"""What a running cell has done so far, told through one small JSON file per cell.

Two halves share the names defined here:

- :class:`ProgressRecorder`, a pytest plugin inside the cell's pytest (the cell's venv: Python 3.9 and
  up, standard library only), rewrites ``reports/progress/<cell>.json`` after every case;
- :class:`harness.run.progress_view.Progress`, in the process that runs the matrix, reads those files and
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

from harness.layout import Element, progress_dir, progress_path
from harness.states import State, case_state

__all__ = ["ProgressRecorder", "progress_path"]

DURATIONS_FILE = "durations.json"  # under the reports folder: cell id -> seconds of its last finished run

BAD = tuple(s.value for s in State if s.bad)  # what makes a cell red
# The order of a cell's counts on its line (the report's states, all of them), and their short labels.
SHOWN = tuple(s.value for s in (State.PASSED, State.FAILED, State.ERROR, State.TIMEOUT, State.MISSING,
                                State.NOT_APPLICABLE, State.KNOWN_INCOMPATIBLE, State.UNEXPECTEDLY_PASSING,
                                State.FLAKY, State.SKIPPED))
LABELS = {State.NOT_APPLICABLE.value: "n/a", State.KNOWN_INCOMPATIBLE.value: "known"}
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
        counts[State.ERROR.value] = counts.get(State.ERROR.value, 0) + len(broken)
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
    A case is its nodeid, decided at its teardown by the report's own mapping
    (:func:`harness.states.case_state`) of what pytest's JUnit writer records of its last attempt
    (:class:`_Record`). An attempt that is run again (pytest-rerunfailures' ``rerun`` outcome) is
    forgotten (``flaky`` when the last one passed).
    """

    def __init__(self, path: Path, *, cell: str, wall_clock: Any = time.time) -> None:
        self.path = path
        self.cell = cell
        self.total = 0
        self.counts: dict[str, int] = {}
        self.current: str | None = None
        self.started = float(wall_clock())
        self.finished = False
        self.broken: list[str] = []  # modules and conftest.py files that failed to import
        self._attempt: dict[str, _Record | None] = {}  # nodeid -> this attempt's record (None: run again)
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
            self._attempt[nodeid] = _Record()  # a new attempt: what an earlier one said is forgotten
        if report.outcome == _RERUN:
            self._attempt[nodeid] = None
            self._rerun.add(nodeid)
            return
        record = self._attempt.setdefault(nodeid, _Record())
        if record is None:
            return  # the rest of an attempt that is run again (rerunfailures >= 15 logs its teardown)
        record.add(report)
        if report.when == "teardown":
            del self._attempt[nodeid]
            props = {str(name): str(value) for name, value in report.user_properties}
            final = case_state(*record.first(), props, rerun=nodeid in self._rerun).value
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


class _Record:
    """The result elements pytest's JUnit writer gives an attempt's last testcase: a failed call is a
    failure, a failed setup or teardown an error, a skip (or xfail) skipped; a call's failure followed by
    a teardown's error starts a new testcase (the report reads the last one)."""

    def __init__(self) -> None:
        self.elements: list[tuple[str, str]] = []  # (element, message), in order
        self.call_failed = False

    def add(self, report: Any) -> None:
        if report.failed and report.when == "call":
            self.elements.append((Element.FAILURE, failure_message(report)))
            self.call_failed = True
        elif report.failed:
            if report.when == "teardown" and self.call_failed:
                self.elements = []
            self.elements.append((Element.ERROR, f'failed on {report.when} with "{failure_message(report)}"'))
        elif report.skipped:
            self.elements.append((Element.SKIPPED, skip_reason(report)))

    def first(self) -> tuple[str | None, str]:
        """What the report maps: the testcase's first element and its message (none: it passed)."""
        return self.elements[0] if self.elements else (None, "")


def skip_reason(report: Any) -> str:
    """As pytest's JUnit writer puts it in the message attribute (an xfail's reason, or the skip's)."""
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail).removeprefix("reason: ")
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def failure_message(report: Any) -> str:
    """The first line of the failure, as pytest's JUnit writer puts it in the message attribute."""
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)
