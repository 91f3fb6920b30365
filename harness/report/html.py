"""compat.html: one self-contained page (no network) a release manager reads at a glance.

The verdict and the changes since the baseline (regressions first) come first; then a summary per
Triton release, the cases x cells grid (columns grouped by release, rows by test file: one table per
file under one sticky header, a file laid out only when it is scrolled to) with a fixed glyph and colour
per state and the reason or first failure line on hover, every failure with its
message, server log and a link to the cell's log (a case failing alike in several cells is one entry
naming them), and each cell's environment. Everything that comes from tests, models and logs is
escaped, and clipped to the page's budget (``harness.report.budget``: under 5 MB at 100 cells x 300
cases). A filter by state, release and area (``harness.report.pagefilter``) works from disk and keeps
its view in the URL fragment; without JavaScript everything is shown.

The history (``harness.report.timeline``) is one table of the (case, cell) pairs that were not steady
over the window, each with a strip of small coloured cells (one per run, the states' colours), its
flake rate, "failing since" and "first seen"; then the duration trends, and "last seen" on each known
issue. Steady pairs are counted, not listed, and the table is capped, so the page stays light.

The grid uses plain glyphs rather than the Markdown's emoji: emoji need a colour emoji font, which
many Linux desktops and headless browsers lack, and the grid must read at a glance anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from harness.models import section as models_section
from harness.perf import section as perf_section
from harness.report.diff import KINDS, MARKS, TITLES, Change, Diff
from harness.report import budget, pagefilter
from harness.report.model import FailureGroup, area_of, by_release, failure_groups
from harness.report.results import CellInfo, Results
from harness.report.timeline import PairHistory, Timeline, largest_changes, since_text, trend_text
from harness.states import State

GLYPHS = {state.value: state.glyph for state in State}
COLOURS = {state.value: state.colour for state in State}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,DejaVu Sans,sans-serif;margin:1.2em 1.5em;color:#1f2328}
h1{font-size:1.45em;margin:0 0 .4em}h2{font-size:1.15em;margin:1.5em 0 .5em}h3{font-size:1em;margin:1.1em 0 .3em}
table{border-collapse:collapse;font-size:.88em}
th,td{border:1px solid #d0d7de;padding:.2em .45em;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
.verdict{font-size:1.05em;padding:.5em .8em;border-radius:6px;margin:.4em 0;display:inline-block}
.verdict a{color:inherit}.verdict.ok{background:#dafbe1;border:1px solid #4ac26b}
.verdict.bad{background:#ffebe9;border:1px solid #ff8182}
.partial{background:#fff8c5;border:1px solid #d4a72c;padding:.5em .8em;margin:.6em 0;border-radius:6px}
.legend{display:flex;flex-wrap:wrap;gap:.35em;margin:.6em 0;padding:0;list-style:none}
.legend li{border:1px solid #d0d7de;border-radius:4px;padding:.1em .5em;font-size:.88em}
span.g{display:inline-block;min-width:1.3em;text-align:center;font-weight:700}
.bar{display:flex;width:14em;height:.9em;border:1px solid #d0d7de;margin-top:.2em}.bar span{display:block}
.grid{overflow:auto;max-height:85vh;border:1px solid #d0d7de;display:inline-block;max-width:100%}
.grid table{font-size:.82em}
.grid th.rel{text-align:center;white-space:nowrap}
.grid th.cell{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:normal;
  padding:.4em .15em}
.grid th.file{background:#eef1f4;font-family:ui-monospace,DejaVu Sans Mono,monospace;font-weight:600;
  position:sticky;left:0}
.grid td.case{font-family:ui-monospace,DejaVu Sans Mono,monospace;white-space:nowrap;position:sticky;left:0;
  background:#fff;z-index:1;padding-left:1.2em;overflow:hidden;text-overflow:ellipsis}
td.s{text-align:center;min-width:1.7em;font-weight:700;padding:.15em .25em}td.s[class*=chg-]{position:relative}
td.s a{color:inherit;text-decoration:none;display:block}
td.chg-regression{outline:3px solid #cf222e;outline-offset:-3px}
td.chg-fixed{outline:3px solid #1a7f37;outline-offset:-3px}
td.chg-changed,td.chg-new{outline:2px dashed #0969da;outline-offset:-2px}
sup.mark{font-size:.7em;position:absolute;top:0;right:.1em;font-weight:400}
span.new{color:#0969da;font-weight:700}
.changes td.kind{white-space:nowrap}
pre{background:#f6f8fa;padding:.6em;overflow:auto;max-height:30em;font-size:.82em;border:1px solid #d0d7de}
code{font-size:.92em}small{color:#57606a}
.strip{display:inline-flex;gap:1px;vertical-align:middle}.strip i{display:inline-block;width:.55em;height:1.1em}
.strip i.none{background:#fff;outline:1px dotted #d0d7de;outline-offset:-1px}
.history td.n{text-align:right;white-space:nowrap}
/* laid out when scrolled to: the page is usable before its thousands of rows below the grid are */
section.fg,.lazy{content-visibility:auto;contain-intrinsic-size:auto 8em}
"""
HISTORY_ROWS = 500  # pairs in the history table; compat.json has every one that was not steady
TREND_ROWS = 30


# The grid is one table per test file under one header table, every column as wide as the header's (fixed
# layout: no table measures its cells), so a file's table off screen is neither styled nor laid out
# (content-visibility): 30,000 cells cost Chromium 1.5 s to lay out at once. Its placeholder height is
# the file's rows (--rows, which the filter keeps to the rows it shows).
COLUMN_EM = 2.3  # a state column: the glyph and the vertical cell id (em of the grid's font)
GRID_STYLE = (f".grid-width{{width:max-content}}.grid-width table{{table-layout:fixed;width:0}}"
              f".grid-width col.case{{width:calc(var(--case-chars) * .61em + 1.9em)}}"
              f".grid-width col.s{{width:{COLUMN_EM}em}}"
              f"table.{pagefilter.GRID_HEAD}{{position:sticky;top:0;z-index:2;background:#f6f8fa}}"
              f".{pagefilter.GRID_FILE}{{content-visibility:auto;contain-intrinsic-size:auto calc(var(--rows) * 1.4em)}}")


def _css() -> str:
    return STYLE + GRID_STYLE + pagefilter.STYLE + "".join(f".{k}{{background:{v}}}" for k, v in COLOURS.items())


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _chip(state: str) -> str:
    return f'<span class="g {state}">{GLYPHS[state]}</span>'


def _state(value: str | None) -> str:
    return f"{_chip(value)} {e(value)}" if value in GLYPHS else e(value or "—")


def _bar(counts: dict[str, int]) -> str:
    total = sum(counts.values()) or 1
    parts = "".join(f'<span class="{s}" style="width:{100 * n / total:.2f}%" title="{s}: {n}"></span>'
                    for s, n in counts.items() if n)
    return f'<div class="bar">{parts}</div>'


def _head(results: Results, changes: Diff | None) -> Iterable[str]:
    counts = results.counts()
    bad = sum(n for s, n in counts.items() if State(s).bad)
    cells_bad = sum(1 for c in results.cells if c.state.bad)
    yield "<h1>Triton compatibility report</h1>"
    if results.partial:
        yield ('<div class="partial"><strong>Partial report</strong>: some cells did not finish; they are shown as '
               "errors with the reason.</div>")
    verdict = (f"{State.FAILED.glyph} {bad} failing results in {cells_bad} of {len(results.cells)} cells"
               if bad else f"{State.PASSED.glyph} no failure in {len(results.cells)} cells")
    yield f'<div class="verdict {"bad" if bad else "ok"}" id="verdict">{e(verdict)}</div>'
    if changes is not None:
        regressed = bool(changes.regressions)
        yield (f'<div class="verdict {"bad" if regressed else "ok"}" id="diff-summary">'
               f'<a href="#changes">{e(changes.summary())}</a></div>')
    yield '<ul class="legend">' + "".join(
        f'<li>{_chip(s.value)} {s.value} <strong>{counts[s.value]}</strong></li>' for s in State) + "</ul>"


def _changes(changes: Diff, anchors: dict[tuple[str, str], str]) -> Iterable[str]:
    yield '<h2 id="changes">Changes since the baseline</h2>'
    yield f"<p>Baseline: <code>{e(changes.baseline.path)}</code></p>"
    if not changes.changes:
        yield "<p>No (case, cell) changed.</p>"
    for kind in KINDS:
        of_kind = changes.of(kind)
        if not of_kind:
            continue
        opened = " open" if kind in ("regression", "fixed") else ""
        yield (f'<details{opened} id="changes-{kind}"><summary><strong>{TITLES[kind]}</strong> '
               f"({len(of_kind)})</summary>")
        yield ('<table class="changes"><tr><th>case</th><th>cell</th><th>baseline</th><th>now</th>'
               "<th>message</th></tr>")
        for c in of_kind:
            case = e(c.case)
            if (c.case, c.cell) in anchors:
                case = f'<a href="#{anchors[(c.case, c.cell)]}">{case}</a>'
            yield (f'<tr class="{kind}"><td><code>{case}</code></td><td><code>{e(c.cell)}</code></td>'
                   f"<td class=\"kind\">{_state(c.before)}</td><td class=\"kind\">{_state(c.after)}</td>"
                   f"<td>{e(c.message)}</td></tr>")
        yield "</table></details>"
    if changes.perf_changes:
        yield (f'<details open id="changes-perf"><summary><strong>Speed and memory calls</strong> '
               f"({len(changes.perf_changes)})</summary>")
        yield '<table class="changes"><tr><th>release</th><th>metric</th><th>baseline</th><th>now</th><th>change</th></tr>'
        for c in changes.perf_changes:
            yield (f'<tr class="{"regression" if c.worse else "changed"}"><td>{e(c.release)}</td><td><code>{e(c.key)}</code>'
                   f"</td><td>{e(c.before or 'not measured')}</td><td>{e(c.after)}</td><td>{e(c.change)}</td></tr>")
        yield "</table></details>"


def _releases(results: Results) -> Iterable[str]:
    rows = by_release(results)
    shown = [s.value for s in State if any(c[s.value] for _, _, c in rows)]
    yield "<h2>By Triton release</h2>"
    yield ("<table><tr><th>Triton</th><th>server</th><th>cells</th><th>results</th>"
           + "".join(f"<th>{_chip(s)} {s}</th>" for s in shown) + "</tr>")
    for name, cells, c in rows:
        yield (f"<tr><td><strong>{e(name)}</strong></td><td>{e(_versions(cells))}</td><td>{len(cells)}</td>"
               f"<td>{_bar(c)}</td>" + "".join(f"<td>{c[s]}</td>" for s in shown) + "</tr>")
    yield "</table>"


def _grid(results: Results, changes: Diff | None, anchors: dict[tuple[str, str], str]) -> Iterable[str]:
    releases = by_release(results)
    cells = [info for _, infos, _ in releases for info in infos]
    columns = _columns(releases)
    names = [case.rpartition("::")[2] for case in results.cases]
    widest = max((len(name) for name in names), default=4) + (2 if changes is not None else 0)  # room for a + mark
    yield '<h2 id="grid">Cases x cells</h2>'
    yield (f'<div class="grid"><div class="grid-width" style="--case-chars:{widest}">'
           f'<table class="{pagefilter.GRID_HEAD}">{columns}<thead><tr><th rowspan="2">case</th>')
    for name, infos, _ in releases:
        yield (f'<th class="rel" colspan="{len(infos)}" data-release="{e(name)}">Triton {e(name)}<br>'
               f"<small>{e(_versions(infos))}</small></th>")
    yield "</tr><tr>"
    for info in cells:
        label = info.id.removeprefix(f"{info.axes.get('triton')}-") if info.axes.get("triton") else info.id
        version = info.server_version or "not started"
        new = changes is not None and changes.is_new(cell=info.id)
        title = f"{info.id} (server {version})" + (": a new cell since the baseline" if new else "")
        mark = f'<span class="new">{MARKS["new"]}</span> ' if new else ""
        yield (f'<th class="cell" title="{e(title)}" data-release="{e(info.axes.get("triton") or "?")}">'
               f"{mark}{e(label)}</th>")
    yield "</tr></thead></table>"
    for file, cases in _by_file(results.cases):
        yield (f'<div class="{pagefilter.GRID_FILE}" style="--rows:{len(cases) + 1}"><table>{columns}<tbody>'
               f'<tr class="file" data-area="{e(area_of(cases[0]))}"><th class="file" colspan="{len(cells) + 1}">'
               f'{e(file or "(no file)")}</th></tr>')
        for case in cases:
            new = changes is not None and changes.is_new(case=case)
            mark = f'<span class="new" title="a new case since the baseline">{MARKS["new"]}</span> ' if new else ""
            yield (f'<tr><td class="case" title="{e(case)}">{mark}{e(case.rpartition("::")[2])}</td>'
                   + "".join(_grid_cell(results, changes, anchors, case, info.id) for info in cells) + "</tr>")
        yield "</tbody></table></div>"
    yield "</div></div>"
    if changes is not None:
        yield ('<p class="marks">Marked since the baseline: '
               + " · ".join(f"{MARKS[k]} {k}" for k in KINDS[:-1])
               + f" ({MARKS['new']} on a column or row: a new cell or case; removed ones are listed above).</p>")


def _columns(releases: list[tuple[str, list[CellInfo], dict[str, int]]]) -> str:
    """The grid's columns, the same in its header and in every file's table: one ``col`` per release, in the
    header's order (the filter hides a hidden release's), its columns wide enough for the release's header."""
    cols = []
    for name, infos, _ in releases:
        wide = _release_em(name, infos) / len(infos)
        width = f' style="width:{wide:.2f}em"' if wide > COLUMN_EM else ""
        cols.append(f'<col class="s" span="{len(infos)}"{width}>')
    return f'<colgroup><col class="case">{"".join(cols)}</colgroup>'


def _release_em(name: str, infos: list[CellInfo]) -> float:
    """About how wide a release's header is, in em of the grid's font: "Triton 24.10" over its server versions."""
    return max(len(f"Triton {name}") * .65, len(_versions(infos)) * .55) + 1


def _versions(infos: list[CellInfo]) -> str:
    return ", ".join(sorted({i.server_version for i in infos if i.server_version})) or "not started"


def _by_file(cases: list[str]) -> list[tuple[str, list[str]]]:
    """The cases in their order, grouped by test file: one table of the grid each."""
    files: list[tuple[str, list[str]]] = []
    for case in cases:
        file = case.rpartition("::")[0]
        if not files or files[-1][0] != file:
            files.append((file, []))
        files[-1][1].append(case)
    return files


def _grid_cell(results: Results, changes: Diff | None, anchors: dict[tuple[str, str], str], case: str,
               cell: str) -> str:
    r = results.get(case, cell)
    state = r.state.value
    title = f"{state}: {budget.clip(r.first_line, budget.TITLE_CHARS)}" if r.first_line else ""
    change: Change | None = changes.mark(case, cell) if changes else None
    classes = f"s {state}"
    mark = ""
    if change is not None:
        classes += f" chg-{change.kind}"
        title = (title or state) + (f" [{change.kind} since the baseline: was {change.before}]" if change.before
                                    else " [new]")
        mark = f'<sup class="mark">{MARKS[change.kind]}</sup>'
    inner = GLYPHS[state]
    if (case, cell) in anchors:
        inner = f'<a href="#{anchors[(case, cell)]}">{inner}</a>'
    hover = f' title="{e(title)}"' if title else ""  # a plain state needs none: the glyph and colour say it
    return f'<td class="{classes}"{hover}>{inner}{mark}</td>'


def _strip(pair: PairHistory) -> str:
    text = " ".join(GLYPHS[s.value] if s is not None else "·" for s in pair.states)
    parts = "".join(f'<i class="{s.value if s is not None else "none"}"></i>' for s in pair.states)
    return f'<span class="strip" title="oldest first: {e(text)}">{parts}</span>'


def _history(past: Timeline, anchors: dict[tuple[str, str], str], releases: dict[str, str]) -> Iterable[str]:
    notable = past.notable()
    yield f'<h2 id="history">History: the last {len(past.runs)} runs</h2>'
    yield (f"<p>From {e(past.runs[0].label)} to this run ({e(past.runs[-1].label)}), oldest first. "
           f"{len(past.pairs) - len(notable)} (case, cell) pairs had the same state in every run and are not "
           "listed.</p>")
    if notable:
        yield ('<div class="lazy"><table class="history"><tr><th>case</th><th>cell</th><th>runs</th><th>flake rate</th>'
               '<th>flips</th>'
               "<th>failing since</th><th>first seen</th></tr>")
        for pair in notable[:HISTORY_ROWS]:
            anchor = anchors.get((pair.case, pair.cell))
            case = f'<a href="#{anchor}">{e(pair.case)}</a>' if anchor else e(pair.case)
            rate = f"{pair.flake_rate:.0%} ({pair.flaky}/{pair.ran})" if pair.flaky else "0%"
            seen = [s.value for s in pair.states if s is not None]  # the filter: a state it had in some run
            filtered = pagefilter.data(seen, [releases.get(pair.cell, "?")], area_of(pair.case))
            yield (f"<tr{filtered}><td><code>{case}</code></td><td><code>{e(pair.cell)}</code></td><td>{_strip(pair)}</td>"
                   f'<td class="n">{rate}</td><td class="n">{pair.flips}</td>'
                   f"<td>{e(since_text(pair.failing_since, past))}</td>"
                   f"<td>{e(since_text(pair.first_seen, past))}</td></tr>")
        yield "</table></div>"
        if len(notable) > HISTORY_ROWS:
            yield f"<p>{len(notable) - HISTORY_ROWS} more: see compat.json.</p>"
    cells = [t for t in past.cells if t.median is not None]
    if cells:
        yield ("<details><summary>Duration per cell: this run against the median of the earlier runs</summary>"
               '<table class="history"><tr><th>cell</th><th>this run</th><th>median</th><th>ratio</th></tr>')
        yield from (f'<tr><td><code>{e(t.name)}</code></td><td class="n">{t.last:.1f} s</td>'
                    f'<td class="n">{t.median:.1f} s</td><td class="n">{trend_text(t)}</td></tr>' for t in cells)
        yield "</table></details>"
    cases = largest_changes(past.cases)
    if cases:
        yield ("<details><summary>Duration per case (mean over its cells): the largest changes</summary>"
               '<table class="history"><tr><th>case</th><th>this run</th><th>median</th><th>ratio</th></tr>')
        yield from (f'<tr><td><code>{e(t.name)}</code></td><td class="n">{t.last:.2f} s</td>'
                    f'<td class="n">{t.median:.2f} s</td><td class="n">{trend_text(t)}</td></tr>'
                    for t in cases[:TREND_ROWS])
        yield "</table></details>"


def _failures(results: Results, groups: list[FailureGroup], anchors: dict[tuple[str, str], str],
              releases: dict[str, str]) -> Iterable[str]:
    """Each (case, state, first line) once, with the cells it happened in; details within the page's budget."""
    if not groups:
        return
    yield '<h2 id="failures">Failures and notable results</h2>'
    infos = {c.id: c for c in results.cells}
    left = budget.Budget()
    for group in groups:
        first = group.results[0]
        anchor = anchors[(first.case, first.cell)]
        cells = [r.cell for r in group.results]
        filtered = pagefilter.data([group.state.value], [releases.get(c, "?") for c in cells], area_of(group.case))
        log = infos[first.cell].log if first.cell in infos else None
        if len(cells) == 1:
            where = f"in <code>{e(first.cell)}</code>" + (f' · <a href="{e(log)}">cell log</a>' if log else "")
        else:
            where = f"in {len(cells)} cells"
        yield (f'<section class="fg" id="{anchor}"{filtered}><h3>{_chip(group.state.value)} <code>{e(group.case)}</code> '
               f"{where}</h3><p>{e(budget.clip(group.first_line, budget.LINE_CHARS))}</p>")
        if len(cells) > 1:
            yield "<p><small>" + ", ".join(f"<code>{e(c)}</code>" for c in cells) + "</small></p>"
        if first.details:
            shown = left.take(first.details)
            of = f" of <code>{e(first.cell)}</code>" if len(cells) > 1 else ""
            if shown is not None:
                yield f"<details><summary>details and server log{of}</summary><pre>{e(shown)}</pre></details>"
            else:
                junit = infos[first.cell].junit if first.cell in infos else None
                named = f'<a href="{e(junit)}">the cell\'s JUnit file</a>' if junit else "the cell's JUnit file"
                yield f"<p><small>Details{of} left out to keep this page small: {named} has them.</small></p>"
        yield "</section>"


def _known_issues(results: Results, anchors: dict[tuple[str, str], str],
                  past: Timeline | None = None) -> Iterable[str]:
    """Each declared known issue: why, its link, when last seen, where it occurred (what was seen), where not."""
    if not results.known_issues:
        return
    yield '<h2 id="known-issues">Known issues</h2>'
    for issue in results.known_issues:
        link = f' · <a href="{e(issue.link)}">upstream</a>' if issue.link else ""
        yield (f'<h3 id="issue-{e(issue.id)}"><code>{e(issue.id)}</code></h3>'
               f"<p>{e(issue.reason)}{link}<br><small>cases: {e(', '.join(issue.cases))}</small></p>")
        seen = past.issues.get(issue.id) if past is not None else None
        if seen is not None and past is not None:
            last = since_text(seen.last_seen, past) or f"not in the last {len(past.runs)} runs"
            yield f'<p class="last-seen">Last seen: {e(last)}; in {seen.runs} of the last {len(past.runs)} runs.</p>'
        yield (f"<p>occurred in {len(issue.occurred)} results; declared in {len(issue.declared_cells)} cells</p>"
               "<table><tr><th>where</th><th>cell</th><th>case</th><th>observed</th></tr>")
        seen: dict[tuple[str, str], list[str]] = {}  # (case, what was seen) -> its cells: each said once
        for r in issue.occurred:
            seen.setdefault((r.case, r.observed), []).append(r.cell)
        for (case_id, observed), cells in seen.items():
            anchor = anchors.get((case_id, cells[0]))
            case = f'<a href="#{anchor}">{e(case_id)}</a>' if anchor else e(case_id)
            yield ('<tr><td class="known-incompatible">occurred</td><td>'
                   + ", ".join(f"<code>{e(cell)}</code>" for cell in cells)
                   + f"</td><td>{case}</td><td>{e(budget.clip(observed, budget.LINE_CHARS))}</td></tr>")
        for r in issue.absent:
            yield (f'<tr><td class="unexpectedly-passing">did not occur (passed)</td><td><code>{e(r.cell)}</code>'
                   f"</td><td>{e(r.case)}</td><td></td></tr>")
        for cell in issue.quiet_cells:
            yield (f'<tr><td class="unexpectedly-passing">did not occur in this cell</td><td><code>{e(cell)}'
                   "</code></td><td></td><td></td></tr>")
        yield "</table>"


def _cells(results: Results) -> Iterable[str]:
    yield '<h2 id="cells">Cells</h2>'
    yield ("<table><tr><th>cell</th><th>state</th><th>server (live)</th><th>expected</th><th>backend</th>"
           "<th>instance</th><th>Python</th><th>runner</th><th>packages</th><th>files</th></tr>")
    for info in results.cells:
        files = " ".join(f'<a href="{e(p)}">{e(Path(p).suffix[1:])}</a>' for p in (info.junit, info.log) if p)
        problem = f"<br><small>{e(info.problem)}</small>" if info.problem else ""
        axes = info.axes
        yield (f"<tr><td><code>{e(info.id)}</code>{problem}</td>"
               f'<td class="{info.state.value}">{GLYPHS[info.state.value]} {info.state.value}</td>'
               f"<td>{e(info.server_version or 'not started')}</td><td>{e(info.expected_server_version or '')}</td>"
               f"<td>{e(axes.get('backend') or '')}</td><td>{e(axes.get('instance_kind') or '')}</td>"
               f"<td>{e(axes.get('python') or '')}</td><td>{e(axes.get('runner') or '')}</td>"
               f"<td><small>{e(info.packages)}</small></td><td>{files}</td></tr>")
    yield "</table>"


def render(results: Results, changes: Diff | None = None, past: Timeline | None = None) -> str:
    groups = failure_groups(results)
    anchors = {(r.case, r.cell): f"f{i}" for i, group in enumerate(groups) for r in group.results}
    releases = {c.id: c.axes.get("triton") or "?" for c in results.cells}
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width,initial-scale=1">',
           "<title>Triton compatibility report</title>", f"<style>{_css()}</style></head><body>"]
    out += _head(results, changes)
    counts = results.counts()
    earlier = {s for pair in past.notable()[:HISTORY_ROWS] for s in pair.states} if past is not None else set()
    out.append(pagefilter.form([s.value for s in State if counts[s.value] or s in earlier],
                               [name for name, _, _ in by_release(results)], sorted({area_of(case) for case in results.cases})))
    if changes is not None:
        out += _changes(changes, anchors)
    out += _releases(results)
    out += _grid(results, changes, anchors)
    if past is not None:
        out += _history(past, anchors, releases)
    out += models_section.html_section(results, _chip)  # models mode
    out += perf_section.html_section(results.perf)  # nox -s perf
    out += _failures(results, groups, anchors, releases)
    out += _known_issues(results, anchors, past)
    out += _cells(results)
    out.append(pagefilter.script())
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write(results: Results, path: Path, changes: Diff | None = None, past: Timeline | None = None) -> None:
    path.write_text(render(results, changes, past), encoding="utf-8")
