"""compat.html: one self-contained page (no network) a release manager reads at a glance.

A summary per Triton release, then the cases x cells grid with a fixed symbol and colour per state
(the reason on hover), then every failure with its message, the server log of the case and a link to
the cell's log, then each cell's environment. Everything that comes from tests, models and logs is
escaped.
"""

from __future__ import annotations

import html
from pathlib import Path

from harness.report import SYMBOLS
from harness.report.model import Results, State, by_release, failures

COLOURS = {
    "passed": "#d4f4dd",
    "failed": "#ffd6d6",
    "error": "#ffb3b3",
    "skipped": "#eeeeee",
    "not-applicable": "#f7f7f7",
    "missing": "#fff2b3",
    "timeout": "#ffc9a8",
    "known-incompatible": "#ffe8c2",
    "unexpectedly-passing": "#e0d4ff",
}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th.cell{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:normal}
td.s{text-align:center;min-width:1.6em}
.partial{background:#fff2b3;border:1px solid #e0c000;padding:.6em;margin:1em 0}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:30em;font-size:.85em}
code{font-size:.9em} .legend span{margin-right:1.2em}
""" + "".join(f"td.{k}{{background:{v}}}" for k, v in COLOURS.items())


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render(results: Results) -> str:
    bad = failures(results)
    anchors = {(r.case, r.cell): f"f{i}" for i, r in enumerate(bad)}
    counts = results.counts()
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>Triton compatibility report</title>", f"<style>{STYLE}</style></head><body>",
           "<h1>Triton compatibility report</h1>"]
    if results.partial:
        out.append('<div class="partial"><b>Partial report</b>: some cells did not finish; they are shown as '
                   "errors with the reason.</div>")
    out.append('<p class="legend">' + "".join(
        f"<span>{SYMBOLS[s.value]} {s.value}: {counts[s.value]}</span>" for s in State) + "</p>")

    out += ["<h2>By Triton release</h2>", "<table><tr><th>Triton</th><th>server</th><th>cells</th>"
            + "".join(f"<th>{SYMBOLS[s.value]} {s.value}</th>" for s in State) + "</tr>"]
    for name, cells, c in by_release(results):
        versions = sorted({i.server_version for i in cells if i.server_version}) or ["not started"]
        out.append(f"<tr><td>{e(name)}</td><td>{e(', '.join(versions))}</td><td>{len(cells)}</td>"
                   + "".join(f"<td>{c[s.value]}</td>" for s in State) + "</tr>")
    out.append("</table>")

    out += ["<h2>Cases x cells</h2>", "<table><tr><th>case</th>"]
    for info in results.cells:
        version = info.server_version or "not started"
        out.append(f'<th class="cell" title="{e(info.id)} (server {e(version)})">{e(info.id)}<br>'
                   f"<small>{e(version)}</small></th>")
    out.append("</tr>")
    for case in results.cases:
        out.append(f"<tr><td><code>{e(case)}</code></td>")
        for info in results.cells:
            r = results.get(case, info.id)
            symbol = SYMBOLS[r.state.value]
            title = f"{r.state.value}: {r.first_line}" if r.first_line else r.state.value
            inner = f'<a href="#{anchors[(case, info.id)]}">{symbol}</a>' if (case, info.id) in anchors else symbol
            out.append(f'<td class="s {r.state.value}" title="{e(title)}">{inner}</td>')
        out.append("</tr>")
    out.append("</table>")

    if bad:
        out.append("<h2>Failures</h2>")
        logs = {c.id: c.log for c in results.cells}
        for r in bad:
            log = logs.get(r.cell)
            link = f' · <a href="{e(log)}">server log</a>' if log else ""
            out.append(f'<h3 id="{anchors[(r.case, r.cell)]}">{SYMBOLS[r.state.value]} <code>{e(r.case)}</code> '
                       f"in <code>{e(r.cell)}</code>{link}</h3><p>{e(r.first_line)}</p>")
            if r.details:
                out.append(f"<details><summary>details and server log</summary><pre>{e(r.details)}</pre></details>")

    out += ["<h2>Cells</h2>", "<table><tr><th>cell</th><th>state</th><th>server (live)</th><th>expected</th>"
            "<th>Python</th><th>runner</th><th>packages</th><th>files</th></tr>"]
    for info in results.cells:
        files = " ".join(f'<a href="{e(p)}">{e(Path(p).suffix[1:])}</a>' for p in (info.junit, info.log) if p)
        problem = f"<br><small>{e(info.problem)}</small>" if info.problem else ""
        out.append(
            f"<tr><td><code>{e(info.id)}</code>{problem}</td>"
            f'<td class="{info.state.value}">{SYMBOLS[info.state.value]} {info.state.value}</td>'
            f"<td>{e(info.server_version or 'not started')}</td><td>{e(info.expected_server_version or '')}</td>"
            f"<td>{e(info.axes.get('python') or '')}</td><td>{e(info.axes.get('runner') or '')}</td>"
            f"<td><small>{e(info.packages)}</small></td><td>{files}</td></tr>"
        )
    out += ["</table>", "</body></html>"]
    return "\n".join(out) + "\n"


def write(results: Results, path: Path) -> None:
    path.write_text(render(results), encoding="utf-8")
