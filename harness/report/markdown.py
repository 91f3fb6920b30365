"""compat.md: the full report in Markdown, kept under 1 MiB (the CI job summary gets the digest of ``summary``).

Sections go in the order a release manager reads them: the counts, the changes since the baseline
(regressions first), the summary per release, the cells, the grid, the history over the last runs
(each pair that was not steady: its strip of states, flake rate, failing since, first seen; the
duration trends), the known issues (with "last seen"), the failures. Long parts sit in
``<details>`` blocks; when the whole would pass GitHub's 1 MiB job-summary limit, the least needed
sections are replaced by a pointer to compat.html, and failures are cut where the limit is reached.
"""

from __future__ import annotations

import html
from pathlib import Path

from harness.models import section as models_section
from harness.perf import section as perf_section
from harness.report import SYMBOLS
from harness.report.diff import KINDS, MARKS, TITLES, Change, Diff
from harness.report.model import by_release, failures
from harness.report.results import Results
from harness.report.timeline import PairHistory, Timeline, largest_changes, since_text, strip, trend_text
from harness.states import State

LIMIT = 1024 * 1024 - 4096  # GitHub's job summary takes at most 1 MiB
DETAIL_LINES = 40
CHANGE_ROWS = 100  # per kind of change; compat.json and compat.html have them all
TEXT = 300  # characters of a name or message in a table row
HISTORY_ROWS = 200  # pairs in the history table; compat.json has every one that was not steady
TREND_ROWS = 20  # cases in the duration trend (the largest changes)
DROP_ORDER = ("grid", "history", "your models", "speed and memory", "cells", "known issues", "other changes",
              "releases")  # first to go


def cell_text(text: str) -> str:
    """Text safe inside a Markdown table cell: HTML-escaped, pipes and newlines neutralised."""
    return html.escape(text).replace("|", "&#124;").replace("\n", " ").replace("`", "&#96;")


def _short(text: str) -> str:
    return cell_text(text if len(text) <= TEXT else text[: TEXT - 1] + "…")


def _state(value: str | None) -> str:
    return f"{SYMBOLS.get(value, '')} {value}" if value else "—"


def _change_table(changes: list[Change]) -> list[str]:
    rows = ["| case | cell | baseline | now | message |", "|---|---|---|---|---|"]
    for c in changes[:CHANGE_ROWS]:
        rows.append(f"| {_short(c.case)} | {_short(c.cell)} | {_state(c.before)} | {_state(c.after)} "
                    f"| {_short(c.message)} |")
    if len(changes) > CHANGE_ROWS:
        rows += ["", f"*{len(changes) - CHANGE_ROWS} more: see compat.html or compat.json.*"]
    return rows


def _changes(changes: Diff) -> tuple[list[str], list[str]]:
    """The regressions (always shown) and the other kinds of change (each in a closed block)."""
    regressions = changes.regressions
    head = ["## Changes since the baseline", "", f"**{cell_text(changes.summary())}**", ""]
    if regressions:
        head += [f"### {MARKS['regression']} {TITLES['regression']} ({len(regressions)})", "",
                 *_change_table(regressions), ""]
    rest = []
    for kind in KINDS[1:]:
        of_kind = changes.of(kind)
        if of_kind:
            rest += [f"<details><summary>{MARKS[kind]} {TITLES[kind]} ({len(of_kind)})</summary>", "",
                     *_change_table(of_kind), "", "</details>", ""]
    if changes.perf_changes:
        head += [f"### Speed and memory calls ({len(changes.perf_changes)})", "",
                 *(f"- {cell_text(c.line())}" for c in changes.perf_changes), ""]
    return head, rest


def _grid(results: Results, changes: Diff | None) -> list[str]:
    new = MARKS["new"]
    heads = [(f"{new} " if changes and changes.is_new(cell=c.id) else "") + cell_text(c.id) for c in results.cells]
    grid = ["| case | " + " | ".join(heads) + " |", "|---|" + "---|" * len(results.cells)]
    for case in results.cases:
        name = (f"{new} " if changes and changes.is_new(case=case) else "") + cell_text(case)
        row = []
        for c in results.cells:
            symbol = SYMBOLS[results.get(case, c.id).state.value]
            change = changes.mark(case, c.id) if changes else None
            row.append(f"{symbol}<sup>{MARKS[change.kind]}</sup>" if change else symbol)
        grid.append(f"| {name} | " + " | ".join(row) + " |")
    legend = " · ".join(f"{SYMBOLS[s.value]} {s.value}" for s in State)
    if changes:
        legend += (" · since the baseline: " + ", ".join(f"{MARKS[k]} {k}" for k in KINDS[:-1])
                   + f" ({new} before a cell or case: all of it is new)")
    return ["## Cases", "", "<details open><summary>cases x cells</summary>", "", legend, "", *grid, "",
            "</details>", ""]


def _pair_row(pair: PairHistory, past: Timeline) -> str:
    rate = f"{pair.flake_rate:.0%} ({pair.flaky}/{pair.ran})" if pair.flaky else "0%"
    return (f"| {_short(pair.case)} | `{cell_text(pair.cell)}` | {strip(pair, SYMBOLS)} | {rate} | {pair.flips} "
            f"| {cell_text(since_text(pair.failing_since, past))} | {cell_text(since_text(pair.first_seen, past))} |")


def _history(past: Timeline | None) -> list[str]:
    """The window of stored runs: the pairs that were not steady, and the duration trends."""
    if past is None:
        return []
    notable = past.notable()
    steady = len(past.pairs) - len(notable)
    lines = ["## History", "",
             f"The last {len(past.runs)} runs, from {cell_text(past.runs[0].label)} to this run "
             f"({cell_text(past.runs[-1].label)}); runs oldest first, · where a run did not have the case. "
             f"{steady} (case, cell) pairs had the same state in every run and are not listed.", ""]
    if notable:
        lines += ["| case | cell | runs | flake rate | flips | failing since | first seen |",
                  "|---|---|---|---|---|---|---|", *(_pair_row(p, past) for p in notable[:HISTORY_ROWS])]
        if len(notable) > HISTORY_ROWS:
            lines += ["", f"*{len(notable) - HISTORY_ROWS} more: see compat.html or compat.json.*"]
        lines.append("")
    cells = [t for t in past.cells if t.median is not None]
    if cells:
        lines += ["<details><summary>duration per cell: this run against the median of the earlier runs"
                  "</summary>", "", "| cell | this run | median | ratio |", "|---|---:|---:|---:|"]
        lines += [f"| `{cell_text(t.name)}` | {t.last:.1f} s | {t.median:.1f} s | {trend_text(t)} |" for t in cells]
        lines += ["", "</details>", ""]
    cases = largest_changes(past.cases)
    if cases:
        lines += ["<details><summary>duration per case (mean over its cells): the largest changes</summary>", "",
                  "| case | this run | median | ratio |", "|---|---:|---:|---:|"]
        lines += [f"| {_short(t.name)} | {t.last:.2f} s | {t.median:.2f} s | {trend_text(t)} |"
                  for t in cases[:TREND_ROWS]]
        lines += ["", "</details>", ""]
    return lines


def _known_issues(results: Results, past: Timeline | None = None) -> list[str]:
    """Each declared known issue, where it occurred (what was seen) and where it did not, and when last seen."""
    if not results.known_issues:
        return []
    lines = ["## Known issues", ""]
    for issue in results.known_issues:
        link = f" ([upstream]({cell_text(issue.link)}))" if issue.link else ""
        seen = past.issues.get(issue.id) if past is not None else None
        absent = len(issue.absent) + len(issue.quiet_cells)
        summary = f"<details><summary>occurred in {len(issue.occurred)} results, did not occur in {absent}</summary>"
        lines += [f"### `{cell_text(issue.id)}`", "", f"{cell_text(issue.reason)}{link}", ""]
        if seen is not None and past is not None:
            last = since_text(seen.last_seen, past) or f"not in the last {len(past.runs)} runs"
            lines += [f"Last seen: {cell_text(last)}; in {seen.runs} of the last {len(past.runs)} runs.", ""]
        lines += [summary, "",
                  "| where | cell | case | observed |", "|---|---|---|---|"]
        lines += [f"| {SYMBOLS[State.KNOWN_INCOMPATIBLE.value]} occurred | `{cell_text(r.cell)}` | {_short(r.case)} "
                  f"| {_short(r.observed)} |" for r in issue.occurred]
        lines += [f"| {SYMBOLS[State.UNEXPECTEDLY_PASSING.value]} did not occur | `{cell_text(r.cell)}` "
                  f"| {_short(r.case)} | passed |" for r in issue.absent]
        lines += [f"| {SYMBOLS[State.UNEXPECTEDLY_PASSING.value]} did not occur | `{cell_text(c)}` | (no case) | |"
                  for c in issue.quiet_cells]
        lines += ["", "</details>", ""]
    return lines


def render(results: Results, changes: Diff | None = None, past: Timeline | None = None) -> str:
    sections: list[tuple[str, list[str]]] = []
    top = ["# Triton compatibility report", ""]
    if results.partial:
        top += ["> [!WARNING]", "> **Partial report**: some cells did not finish (see below).", ""]
    counts = results.counts()
    top += [" · ".join(f"{SYMBOLS[s.value]} {s.value} {counts[s.value]}" for s in State if counts[s.value]), ""]
    sections.append(("top", top))
    if changes is not None:
        head, rest = _changes(changes)
        sections += [("changes", head), ("other changes", rest)]
    releases = ["## By Triton release", "", "| Triton | cells | " + " | ".join(s.value for s in State) + " |",
                "|---|---|" + "---|" * len(State)]
    for name, cells, c in by_release(results):
        releases.append(f"| {cell_text(name)} | {len(cells)} | "
                        + " | ".join(str(c[s.value]) for s in State) + " |")
    sections.append(("releases", [*releases, ""]))
    cells = ["## Cells", "", "<details><summary>each cell's server, Python and packages</summary>", "",
             "| cell | server | Python | runner | state | packages |", "|---|---|---|---|---|---|"]
    for info in results.cells:
        version = info.server_version or "not started"
        cells.append(f"| `{cell_text(info.id)}` | {cell_text(version)} | {cell_text(info.axes.get('python') or '')} "
                     f"| {cell_text(info.axes.get('runner') or '')} | {SYMBOLS[info.state.value]} {info.state.value} "
                     f"| {_short(info.packages)} |")
    sections.append(("cells", [*cells, "", "</details>", ""]))
    sections.append(("grid", _grid(results, changes)))
    sections.append(("your models", models_section.markdown(results, SYMBOLS, cell_text)))  # models mode
    sections.append(("speed and memory", perf_section.markdown(results.perf, cell_text)))  # nox -s perf
    sections.append(("history", _history(past)))
    sections.append(("known issues", _known_issues(results, past)))

    texts = {name: "\n".join(lines) + "\n" for name, lines in sections}
    for name in DROP_ORDER:  # a huge matrix: keep the verdict, point to the HTML for the rest
        if sum(len(t.encode()) for t in texts.values()) <= LIMIT:
            break
        if name in texts:
            texts[name] = f"\n*The {name} section is too large for Markdown: see compat.html.*\n\n"
    head = "".join(texts.values())
    parts = [head]
    size = len(head.encode())
    bad = failures(results)
    if bad:
        parts.append("\n## Failures\n\n")
    for i, result in enumerate(bad):
        lines = result.details.splitlines()[-DETAIL_LINES:] if result.details else []
        block = (f"<details><summary>{SYMBOLS[result.state.value]} <code>{html.escape(result.case)}</code> "
                 f"in <code>{html.escape(result.cell)}</code>: {html.escape(result.first_line)}</summary>\n\n")
        if lines:
            block += "<pre>\n" + html.escape("\n".join(lines)) + "\n</pre>\n"
        block += "\n</details>\n"
        if size + len(block.encode()) > LIMIT:
            parts.append(f"\n*{len(bad) - i} more failures are left out to stay under 1 MiB: see compat.html.*\n")
            break
        parts.append(block)
        size += len(block.encode())
    return "".join(parts)


def write(results: Results, path: Path, changes: Diff | None = None, past: Timeline | None = None) -> None:
    path.write_text(render(results, changes, past), encoding="utf-8")
