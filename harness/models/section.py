"""The report's "Your models" section: model x cell, each check's state, and what made a check red.

Built from the report's results (the ``models/`` cases), so it shows exactly the states of the grid;
the config drift shown as information comes from the config-drift check's details.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from harness.models import CHECKS, split_case
from harness.models.compare import DRIFT_PREFIX

TITLE = "Your models"


def table(results: Any) -> tuple[list[str], list[str], dict[tuple[str, str], list[Any]]]:
    """(models, cell ids, (model, cell) -> its results in check order)."""
    by_model: dict[tuple[str, str], list[Any]] = {}
    for (case, cell), result in results.results.items():
        parts = split_case(case)
        if parts:
            by_model.setdefault((parts[0], cell), []).append(result)
    order = {check: i for i, check in enumerate(CHECKS)}

    def key(result: Any) -> tuple[int, str]:
        check = split_case(result.case)[1]  # type: ignore[index]
        return order.get(check.split("[")[0], len(order)), check

    for found in by_model.values():
        found.sort(key=key)
    models = sorted({m for m, _ in by_model})
    cells = [c.id for c in results.cells if any((m, c.id) in by_model for m in models)]
    return models, cells, by_model


def _red(results: list[Any]) -> list[Any]:
    return [r for r in results if r.state.bad]


def _drift(results: list[Any]) -> str:
    return next((r.details for r in results if r.details.startswith(DRIFT_PREFIX) and not r.state.bad), "")


def markdown(results: Any, symbols: dict[str, str], escape: Callable[[str], str]) -> list[str]:
    models, cells, by_model = table(results)
    if not models:
        return []
    lines = [f"## {TITLE}", "", "Each entry: one symbol per check, in the order "
             + ", ".join(f"`{c}`" for c in CHECKS) + " (answers and conforms once per protocol).", "",
             "| model | " + " | ".join(f"`{escape(c)}`" for c in cells) + " |", "|---|" + "---|" * len(cells)]
    notes = []
    for model in models:
        row = []
        for cell in cells:
            found = by_model.get((model, cell), [])
            row.append("".join(symbols.get(r.state.value, "?") for r in found) or "—")
            for r in _red(found):
                notes.append(f"- `{escape(model)}` {escape(split_case(r.case)[1])} in `{escape(cell)}`: "  # type: ignore[index]
                             f"{escape(r.first_line)}")
            drift = _drift(found)
            if drift:
                notes.append(f"- `{escape(model)}` in `{escape(cell)}` (information): {escape(drift[:400])}")
        lines.append(f"| `{escape(model)}` | " + " | ".join(row) + " |")
    return [*lines, "", *notes, ""]


def html_section(results: Any, chip: Callable[[str], str]) -> list[str]:
    models, cells, by_model = table(results)
    if not models:
        return []
    e = html.escape
    out = [f'<h2 id="models">{TITLE}</h2>', "<p>Per model and cell, each check: "
           + ", ".join(f"<code>{c}</code>" for c in CHECKS) + " (answers and conforms once per protocol). Hover for the check.</p>",
           '<table class="grid"><tr><th>model</th>' + "".join(f"<th>{e(c)}</th>" for c in cells) + "</tr>"]
    notes = []
    for model in models:
        tds = []
        for cell in cells:
            found = by_model.get((model, cell), [])
            chips = "".join(f'<span title="{e(split_case(r.case)[1])}: {e(r.state.value)}">{chip(r.state.value)}'  # type: ignore[index]
                            "</span>" for r in found)
            tds.append(f"<td>{chips or '—'}</td>")
            for r in _red(found):
                notes.append(f"<li><code>{e(model)}</code> {e(split_case(r.case)[1])} in <code>{e(cell)}</code>: "  # type: ignore[index]
                             f"{e(r.first_line)}</li>")
            drift = _drift(found)
            if drift:
                notes.append(f"<li><code>{e(model)}</code> in <code>{e(cell)}</code> (information): {e(drift)}</li>")
        out.append(f"<tr><th><code>{e(model)}</code></th>" + "".join(tds) + "</tr>")
    out.append("</table>")
    if notes:
        out += ["<ul>", *notes, "</ul>"]
    return out
