"""``python -m harness report``: read the cells' results, write every format, give the verdict.

With ``--baseline`` (a previous compat.json) every format also shows what changed since then, and the
last line printed is the one-line verdict against it. In CI (``$GITHUB_STEP_SUMMARY`` set) the job
summary gets a digest of under 100 KB (``summary``), not the full Markdown.

Every report also stores this run in the history store (``history``, ``--history``) and reads the last
``--history-window`` runs of it: every format then shows since when and how often (``timeline``), and
the digest what changed since the last run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from harness import matrix as matrix_mod
from harness.models import compare as models_compare
from harness.report import SYMBOLS, diff, history, html, jsonfile, junit, markdown, model, summary, timeline
from harness.report.results import Results

Writer = Callable[[Results, Path, "diff.Diff | None", "timeline.Timeline | None"], None]
WRITERS: dict[str, Writer] = {
    "compat.json": jsonfile.write, "compat.md": markdown.write, "compat.html": html.write,
    "junit.xml": lambda results, path, changes, past: junit.write(results, path),
}


def write_all(results: Results, reports: Path, changes: diff.Diff | None = None,
              past: timeline.Timeline | None = None) -> list[Path]:
    """Write each format next to the cells' files, atomically (a reader never sees half a file)."""
    written = []
    for name, writer in WRITERS.items():
        path = reports / name
        tmp = path.with_name(f".{name}.tmp")
        writer(results, tmp, changes, past)
        os.replace(tmp, path)
        written.append(path)
    return written


def remember(results: Results, *, folder: Path, window: int, matrix: Path,
             libraries: Sequence[Path] = ()) -> timeline.Timeline:
    """Store this run in the history store and read the window that ends with it."""
    run = history.from_results(results, now=datetime.now(timezone.utc), revision=history.git_revision(),
                               matrix=history.file_digest(matrix), library=history.library_digest(libraries))
    kept = history.record(folder, run, window)
    return timeline.build(kept, (issue.id for issue in results.known_issues), window)


def main(*, reports: Path, plan: Path | None = None, baseline: Path | None = None,
         matrix: Path | None = None, reference: str | None = None, history_dir: Path | None = None,
         history_window: int = history.DEFAULT_WINDOW, libraries: Sequence[Path] = ()) -> int:
    """0 when no case failed or errored (so none regressed), 1 otherwise; a HarnessError (exit 2) when
    nothing can be read or the baseline is not a report.

    ``matrix``: where the declared known incompatibilities come from (default: the matrix in use).
    ``baseline``: a previous compat.json (read before anything is written: it may be reports/compat.json).
    ``history_dir``: the history store (default ``reports/history``); ``libraries``: the case libraries
    the run ran (their digest is stored with the run; unknown to a report step run alone).
    """
    loaded = matrix_mod.load(matrix)
    base = diff.load(baseline) if baseline is not None else None
    models_compare.write(reports, reference=reference, tolerance=loaded.tolerance)  # models mode: vs reference
    results = model.read(reports, plan, loaded.known_failures)
    changes = diff.compare(base, results) if base is not None else None
    for problem in results.problems:
        print(f"error: {problem}", file=sys.stderr)
    for note in results.notes:
        print(f"note: {note}", file=sys.stderr)
    past = remember(results, folder=history.folder_of(reports, history_dir), window=history_window,
                    matrix=loaded.path, libraries=libraries)
    written = write_all(results, reports, changes, past)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:  # CI: a digest on the run's page; the full Markdown stays compat.md
        summary.write(results, Path(step_summary), changes, link=summary.artifact_link(os.environ), past=past)
    counts = results.counts()
    line = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    print(f"{len(results.cells)} cells, {len(results.cases)} cases: {line or 'nothing'}"
          + (" (partial)" if results.partial else ""))
    for result in model.failures(results)[:20]:
        print(f"  {SYMBOLS[result.state.value]} {result.cell} {result.case}: {result.first_line}")
    print("report: " + " ".join(str(p) for p in written))
    if past.previous is not None:
        print(f"history: {len(past.runs)} runs (since {past.runs[0].label}); "
              + diff.compare(timeline.baseline_of(past.previous), results).summary())
    if changes is not None:
        for change in changes.regressions[:20]:
            print(f"  {diff.MARKS['regression']} {change.cell} {change.case}: {change.before} -> {change.after}"
                  + (f": {change.message}" if change.message else ""))
        print(changes.summary())
    return 0 if results.ok and not (changes and changes.regressions) else 1
