"""compat.md: the grid in Markdown, small enough for a CI job summary (kept under 1 MiB)."""

from __future__ import annotations

import html
from pathlib import Path

from harness.report import SYMBOLS
from harness.report.model import Results, State, by_release, failures

LIMIT = 1024 * 1024 - 4096  # GitHub's job summary takes at most 1 MiB
DETAIL_LINES = 40


def cell_text(text: str) -> str:
    """Text safe inside a Markdown table cell: HTML-escaped, pipes and newlines neutralised."""
    return html.escape(text).replace("|", "&#124;").replace("\n", " ").replace("`", "&#96;")


def render(results: Results) -> str:
    out: list[str] = ["# Triton compatibility report", ""]
    if results.partial:
        out += ["> [!WARNING]", "> **Partial report**: some cells did not finish (see below).", ""]
    counts = results.counts()
    out.append(" · ".join(f"{SYMBOLS[s.value]} {s.value} {counts[s.value]}" for s in State if counts[s.value]))
    out += ["", "| Triton | cells | " + " | ".join(s.value for s in State) + " |",
            "|---|---|" + "---|" * len(State)]
    for name, cells, c in by_release(results):
        out.append(f"| {cell_text(name)} | {len(cells)} | " + " | ".join(str(c[s.value]) for s in State) + " |")
    out += ["", "## Cells", "", "| cell | server | Python | runner | state |", "|---|---|---|---|---|"]
    for info in results.cells:
        version = info.server_version or "not started"
        out.append(f"| `{cell_text(info.id)}` | {cell_text(version)} | {cell_text(info.axes.get('python') or '')} "
                   f"| {cell_text(info.axes.get('runner') or '')} | {SYMBOLS[info.state.value]} {info.state.value} |")
    grid = ["| case | " + " | ".join(cell_text(c.id) for c in results.cells) + " |",
            "|---|" + "---|" * len(results.cells)]
    for case in results.cases:
        row = [SYMBOLS[results.get(case, c.id).state.value] for c in results.cells]
        grid.append(f"| {cell_text(case)} | " + " | ".join(row) + " |")
    out += ["", "## Cases", "", "<details open><summary>cases x cells</summary>", "", *grid, "", "</details>"]
    head = "\n".join(out) + "\n"
    if len(head.encode()) > LIMIT:  # a huge grid: keep the summaries, point to the HTML
        head = "\n".join(out[: out.index("## Cases")]) + "\n\n*The grid is too large for Markdown: see compat.html.*\n"
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


def write(results: Results, path: Path) -> None:
    path.write_text(render(results), encoding="utf-8")
