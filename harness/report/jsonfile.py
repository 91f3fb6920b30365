"""compat.json: the machine-readable report (the shape other tools and the release diff read).

A result holds case, cell, state and message; where the harness itself judged a failure (a deadline,
a server that died, a stop of the run) also ``verdict``, a ``harness.layout.Verdict`` value.

With a baseline it also holds ``baseline``: the baseline's path, the counts per kind of change and
every changed (case, cell), regressions first.

With a history store (every report has one) it also holds ``history`` (``harness.report.timeline``):
the runs of the window, the (case, cell) pairs that were not steady over it, one row each (its states
as one letter per run, flake rate, flips, "failing since" and "first seen"), the duration trends per
cell and per case, and each known issue's "last seen". ``timeline.pairs_of`` reads the rows back.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.perf import section as perf_section
from harness.report.diff import Diff
from harness.report.results import Results
from harness.report.timeline import Timeline

ROWS = "\u0000history rows\u0000"  # where the history's rows go, each on one line


def write(results: Results, path: Path, changes: Diff | None = None, past: Timeline | None = None) -> None:
    data = results.as_dict()
    if changes is not None:
        data["baseline"] = changes.as_dict()
    rows: list[object] = []
    if past is not None:
        data["history"] = past.as_dict()
        rows, data["history"]["results"] = data["history"]["results"], [ROWS]
    if results.perf is not None:
        data["perf"] = perf_section.block(results.perf)
    text = json.dumps(data, indent=1, ensure_ascii=False)
    if rows:  # one line per row: indented, a row of 7 values would take 9 lines
        text = text.replace(json.dumps(ROWS), ",\n   ".join(json.dumps(r, ensure_ascii=False) for r in rows), 1)
    elif past is not None:
        text = text.replace(json.dumps(ROWS), "", 1)
    path.write_text(text + "\n", encoding="utf-8")
