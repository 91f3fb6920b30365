"""compat.json: the machine-readable report (the shape other tools and the release diff read).

A result holds case, cell, state and message; where the harness itself judged a failure (a deadline,
a server that died, a stop of the run) also ``verdict``, a ``harness.layout.Verdict`` value.

With a baseline it also holds ``baseline``: the baseline's path, the counts per kind of change and
every changed (case, cell), regressions first.

With a history store (every report has one) it also holds ``history`` (``harness.report.timeline``):
the runs of the window, the (case, cell) pairs that were not steady over it, each with its states,
flake rate, flips, "failing since" and "first seen", the duration trends per cell and per case, and
each known issue's "last seen".
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.perf import section as perf_section
from harness.report.diff import Diff
from harness.report.results import Results
from harness.report.timeline import Timeline


def write(results: Results, path: Path, changes: Diff | None = None, past: Timeline | None = None) -> None:
    data = results.as_dict()
    if changes is not None:
        data["baseline"] = changes.as_dict()
    if past is not None:
        data["history"] = past.as_dict()
    if results.perf is not None:
        data["perf"] = perf_section.block(results.perf)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
