"""The job summary: a digest of the report a release manager reads on the run's page, under 100 KB.

GitHub shows ``$GITHUB_STEP_SUMMARY`` on the run's page and takes at most 1 MiB; the full Markdown
(compat.md) is 1 MB at 19 cells and nobody reads that as a summary. The digest holds what needs acting
on: the counts by state, what changed since the baseline and since the last run of the history store
(regressions first), the red and the unexpectedly-passing results (each red one with "failing since"),
the known issues that occurred where they had not, the cells that did not finish, and a link to the
full report. Every list is capped ("and N more"), so its size does not grow
with the matrix; the full report stays in compat.html, compat.md and compat.json.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from harness.report import SYMBOLS
from harness.report.diff import KINDS, MARKS, TITLES, Change, Diff, compare
from harness.report.markdown import cell_text
from harness.report.results import Result, Results
from harness.report.timeline import Timeline, baseline_of, since_text
from harness.states import State

LIMIT = 100_000  # bytes: the digest's promise (GitHub's own cap is 1 MiB)
ARTIFACT = "compat-report"  # the name the workflow uploads the full report under
ROWS = {"regression": 30, "fixed": 15, "red": 30, "unexpected": 15, "known issue": 15, "cells": 40}
CASE_CHARS = 160  # a case or cell name in a row
MESSAGE_CHARS = 120  # a message's first line in a row
RED = tuple(s for s in State if s.bad)


def _clip(text: str, limit: int) -> str:
    return cell_text(text if len(text) <= limit else text[: limit - 1] + "…")


def _state(value: str | None) -> str:
    return f"{SYMBOLS.get(value, '')} {value}" if value else "—"


def _more(total: int, shown: int, where: str = "compat.html") -> list[str]:
    return ["", f"*and {total - shown} more: see {where}.*"] if total > shown else []


def artifact_link(env: Mapping[str, str]) -> str | None:
    """The run's artifacts on GitHub (where compat-report is), from the variables every job has."""
    server, repository, run = (env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if not (server and repository and run):
        return None
    return f"{server.rstrip('/')}/{repository}/actions/runs/{run}#artifacts"


def _counts(results: Results) -> list[str]:
    counts = results.counts()
    shown = [s for s in State if counts[s.value]]
    if not shown:
        return ["No result was read.", ""]
    return ["| " + " | ".join(f"{s.symbol} {s.value}" for s in shown) + " |", "|" + "---:|" * len(shown),
            "| " + " | ".join(str(counts[s.value]) for s in shown) + " |", ""]


def _change_rows(changes: list[Change], limit: int) -> list[str]:
    rows = ["| cell | case | baseline | now | message |", "|---|---|---|---|---|"]
    rows += [f"| `{_clip(c.cell, CASE_CHARS)}` | {_clip(c.case, CASE_CHARS)} | {_state(c.before)} | {_state(c.after)} "
             f"| {_clip(c.message, MESSAGE_CHARS)} |" for c in changes[:limit]]
    return rows + _more(len(changes), limit)


def _changes(changes: Diff, title: str = "Since the baseline") -> list[str]:
    lines = [f"## {title}", "", f"**{cell_text(changes.summary())}**", ""]
    for kind in ("regression", "fixed"):
        of_kind = changes.of(kind)
        if of_kind:
            lines += [f"### {MARKS[kind]} {TITLES[kind]} ({len(of_kind)})", "", *_change_rows(of_kind, ROWS[kind]), ""]
    rest = [f"{MARKS[k]} {len(changes.of(k))} {TITLES[k].lower()}" for k in KINDS[2:] if changes.of(k)]
    if rest:
        lines += ["Also " + ", ".join(rest) + " (compat.html lists them).", ""]
    return lines


def _since_last_run(results: Results, past: Timeline | None) -> list[str]:
    """What changed since the run before this one in the history store (none before it: nothing)."""
    if past is None or past.previous is None:
        return []
    return _changes(compare(baseline_of(past.previous), results), f"Since the last run ({past.previous.label})")


def _result_rows(found: list[Result], limit: int, past: Timeline | None = None) -> list[str]:
    if past is None:
        rows = ["| state | cell | case | message |", "|---|---|---|---|"]
        rows += [f"| {_state(r.state.value)} | `{_clip(r.cell, CASE_CHARS)}` | {_clip(r.case, CASE_CHARS)} "
                 f"| {_clip(r.first_line, MESSAGE_CHARS)} |" for r in found[:limit]]
        return rows + _more(len(found), limit)
    rows = ["| state | cell | case | message | failing since |", "|---|---|---|---|---|"]
    for r in found[:limit]:
        pair = past.pairs.get((r.case, r.cell))
        when = since_text(pair.failing_since, past) if pair is not None else ""
        rows.append(f"| {_state(r.state.value)} | `{_clip(r.cell, CASE_CHARS)}` | {_clip(r.case, CASE_CHARS)} "
                    f"| {_clip(r.first_line, MESSAGE_CHARS)} | {cell_text(when)} |")
    return rows + _more(len(found), limit)


def _red(results: Results, past: Timeline | None = None) -> list[str]:
    red = sorted((r for r in results.results.values() if r.state.bad), key=lambda r: (r.state.rank, r.cell, r.case))
    if not red:
        return []
    by_cell = Counter(r.cell for r in red)
    worst = sorted(by_cell.items(), key=lambda item: (-item[1], item[0]))
    lines = [f"## {State.FAILED.symbol} Red results ({len(red)})", ""]
    if len(by_cell) > 1:
        lines += ["Per cell: " + ", ".join(f"`{_clip(cell, CASE_CHARS)}` {n}" for cell, n in worst[: ROWS["cells"]])
                  + (f", and {len(worst) - ROWS['cells']} more cells" if len(worst) > ROWS["cells"] else ""), ""]
    return lines + _result_rows(red, ROWS["red"], past) + [""]


def _unexpected(results: Results) -> list[str]:
    found = sorted((r for r in results.results.values() if r.state == State.UNEXPECTEDLY_PASSING),
                   key=lambda r: (r.cell, r.case))
    if not found:
        return []
    return [f"## {State.UNEXPECTEDLY_PASSING.symbol} Unexpectedly passing ({len(found)})", "",
            "A declared known issue did not occur: check whether it is fixed, then narrow or drop its entry.", "",
            *_result_rows(found, ROWS["unexpected"]), ""]


def _new_known_issues(results: Results, changes: Diff | None) -> list[str]:
    """Occurrences of a known issue where it did not occur in the baseline (every one, without a baseline)."""
    occurred = [(issue, r) for issue in results.known_issues for r in issue.occurred]
    if changes is not None:
        known = State.KNOWN_INCOMPATIBLE.value
        occurred = [(issue, r) for issue, r in occurred
                    if (c := changes.pairs.get((r.case, r.cell))) is not None and c.before != known]
    if not occurred:
        return []
    title = "New known-issue occurrences" if changes is not None else "Known-issue occurrences"
    lines = [f"## {State.KNOWN_INCOMPATIBLE.symbol} {title} ({len(occurred)})", "",
             "| issue | cell | case | observed |", "|---|---|---|---|"]
    limit = ROWS["known issue"]
    for issue, r in occurred[:limit]:
        name = f"[`{_clip(issue.id, CASE_CHARS)}`]({cell_text(issue.link)})" if issue.link else f"`{_clip(issue.id, CASE_CHARS)}`"
        lines.append(f"| {name} | `{_clip(r.cell, CASE_CHARS)}` | {_clip(r.case, CASE_CHARS)} "
                     f"| {_clip(r.observed, MESSAGE_CHARS)} |")
    return lines + _more(len(occurred), limit) + [""]


def _unfinished_cells(results: Results) -> list[str]:
    cells = [c for c in results.cells if c.problem or c.interrupted or c.state == State.MISSING]
    if not cells:
        return []
    lines = [f"## Cells that did not finish ({len(cells)})", ""]
    for info in cells[: ROWS["cells"]]:
        why = info.problem or info.interrupted or "left no JUnit file"
        lines.append(f"- `{_clip(info.id, CASE_CHARS)}`: {_state(info.state.value)}: {_clip(why, MESSAGE_CHARS)}")
    return lines + _more(len(cells), ROWS["cells"]) + [""]


def render(results: Results, changes: Diff | None = None, link: str | None = None,
           past: Timeline | None = None) -> str:
    """The digest, in Markdown, at most :data:`LIMIT` bytes."""
    red = sum(1 for r in results.results.values() if r.state.bad)
    verdict = (f"{red} red" if red else "nothing red") + (
        f", {len(changes.regressions)} newly failing" if changes is not None and changes.regressions else "")
    lines = [f"# Triton compatibility: {verdict}", "",
             f"{len(results.cells)} cells, {len(results.cases)} cases."]
    if results.partial:
        lines += ["", "> [!WARNING]", "> **Partial report**: some cells did not finish (see below)."]
    where = (f"[the `{ARTIFACT}` artifact]({link}) (compat.html, compat.md, compat.json)" if link
             else "compat.html, compat.md and compat.json in the reports folder")
    lines += ["", f"The full report: {where}.", "", *_counts(results)]
    if changes is not None:
        lines += _changes(changes)
    lines += _since_last_run(results, past)
    lines += _red(results, past) + _unexpected(results) + _new_known_issues(results, changes)
    lines += _unfinished_cells(results)
    text = "\n".join(lines) + "\n"
    data = text.encode()
    if len(data) > LIMIT:  # the caps keep it far below; this only guards the promise
        cut = data[: LIMIT - 200].decode(errors="ignore").rsplit("\n", 1)[0]
        text = cut + "\n\n*The digest is cut here to stay under 100 KB: see the full report.*\n"
    return text


def write(results: Results, path: Path, changes: Diff | None = None, link: str | None = None,
          past: Timeline | None = None) -> None:
    """Append the digest to ``path`` (``$GITHUB_STEP_SUMMARY`` is shared by the job's steps)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(render(results, changes, link, past))
