"""``python -m harness report``: read the cells' results, write every format, give the verdict."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness import matrix as matrix_mod
from harness.errors import HarnessError
from harness.report import SYMBOLS, html, jsonfile, junit, markdown, model

WRITERS = {"compat.json": jsonfile.write, "compat.md": markdown.write, "compat.html": html.write,
           "junit.xml": junit.write}


def write_all(results: model.Results, reports: Path) -> list[Path]:
    """Write each format next to the cells' files, atomically (a reader never sees half a file)."""
    written = []
    for name, writer in WRITERS.items():
        path = reports / name
        tmp = path.with_name(f".{name}.tmp")
        writer(results, tmp)
        os.replace(tmp, path)
        written.append(path)
    return written


def main(*, reports: Path, plan: Path | None = None, baseline: Path | None = None,
         matrix: Path | None = None) -> int:
    """0 when no case failed or errored, 1 otherwise; a HarnessError (exit 2) when nothing can be read.

    ``matrix``: where the declared known incompatibilities come from (default: the matrix in use).
    """
    if baseline is not None:
        raise HarnessError("--baseline is not supported yet", where="--baseline", fix="leave it out")
    known = matrix_mod.load(matrix).known_failures
    results = model.read(reports, plan, known)
    for problem in results.problems:
        print(f"error: {problem}", file=sys.stderr)
    written = write_all(results, reports)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown.render(results))
    counts = results.counts()
    line = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    print(f"{len(results.cells)} cells, {len(results.cases)} cases: {line or 'nothing'}"
          + (" (partial)" if results.partial else ""))
    for result in model.failures(results)[:20]:
        print(f"  {SYMBOLS[result.state.value]} {result.cell} {result.case}: {result.first_line}")
    print("report: " + " ".join(str(p) for p in written))
    return 0 if results.ok else 1
