"""compat.html's filter in a real browser: headless Chromium opens the file from disk with a filter in the URL
fragment (``#state=error&release=24.02``) and the DOM it built shows only what the filter asks for; with
no fragment, or an anchor, everything is shown. Without the filter's script every row stays shown, so
these tests fail without it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench import synthetic
from bench.report_scale import NoChromium, dump_dom
from harness.report import html, pagefilter

CELLS, CASES = 12, 40


class Shown(HTMLParser):
    """The grid's rows and header cells, the failure entries and the history rows, each with whether it is hidden.

    A grid row is one table row of a file's block (``pagefilter.GRID_FILE``): hidden where it or its block is."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []  # grid case rows: {"hidden", "cells": [(state, hidden)]}
        self.columns: list[tuple[str, bool]] = []  # (release, hidden) per grid column
        self.entries: list[tuple[dict[str, str | None], bool]] = []  # failure entries, history rows
        self.files: list[bool] = []  # whether each file's block is hidden
        self.cols: list[tuple[int, bool]] = []  # (span, hidden) of each table's col per release
        self.grid_depth = 0  # open divs inside the grid's, the grid's own counted
        self.row_hidden = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        hidden = "hidden" in a
        classes = (a.get("class") or "").split()
        if tag == "div" and (self.grid_depth or "grid" in classes):
            self.grid_depth += 1
            if pagefilter.GRID_FILE in classes:
                self.files.append(hidden)
        elif tag == "col" and self.grid_depth and "s" in classes:
            self.cols.append((int(a.get("span") or 1), hidden))
        elif tag == "th" and "cell" in classes:
            self.columns.append((a.get("data-release") or "", hidden))
        elif tag == "tr" and self.grid_depth:
            self.row_hidden = hidden or bool(self.files and self.files[-1])  # the header table comes first
        elif tag == "td" and self.grid_depth and classes[:1] == ["case"]:
            self.rows.append({"hidden": self.row_hidden, "cells": []})
        elif tag == "td" and self.grid_depth and classes[:1] == ["s"]:
            self.rows[-1]["cells"].append((classes[1], hidden))  # type: ignore[union-attr]
        elif "data-state" in a:
            self.entries.append((a, hidden))

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self.grid_depth:
            self.grid_depth -= 1


def opened(tmp_path: Path, fragment: str, page: str | None = None) -> Shown:
    path = tmp_path / "compat.html"
    path.write_text(page if page is not None else html.render(synthetic.big_results(CELLS, CASES)))
    try:
        dom = dump_dom(path, tmp_path / "profile", fragment)
    except NoChromium as exc:
        pytest.skip(str(exc))
    shown = Shown()
    shown.feed(dom)
    assert len(shown.rows) == CASES and len(shown.columns) == CELLS
    return shown


def test_a_filter_in_the_url_shows_only_its_state_and_release(tmp_path: Path) -> None:
    release = synthetic.release_of(1)
    shown = opened(tmp_path, f"state=error&release={release}")
    columns = [r == release for r, _ in shown.columns]
    assert [not hidden for _, hidden in shown.columns] == columns and 0 < sum(columns) < CELLS
    visible = [row for row in shown.rows if not row["hidden"]]
    assert 0 < len(visible) < CASES
    for row in shown.rows:
        cells = row["cells"]
        assert [not hidden for _, hidden in cells] == columns  # type: ignore[union-attr]
        has_error = any(state == "error" and keep for (state, _), keep in zip(cells, columns))  # type: ignore[arg-type]
        assert row["hidden"] == (not has_error), row
    listed = [(a, hidden) for a, hidden in shown.entries]
    assert any(not hidden for _, hidden in listed) and any(hidden for _, hidden in listed)
    for attrs, hidden in listed:
        wanted = "error" in (attrs["data-state"] or "").split() and release in (attrs["data-release"] or "").split()
        assert hidden == (not wanted), attrs


def test_an_area_filter_and_an_anchor_keep_to_what_they_say(tmp_path: Path) -> None:
    shown = opened(tmp_path, "area=area3")
    assert not any(hidden for _, hidden in shown.columns)
    visible = {i for i, row in enumerate(shown.rows) if not row["hidden"]}
    cases = synthetic.big_results(CELLS, CASES).cases
    assert visible == {i for i, case in enumerate(cases) if case.startswith("area3/")}
    everything = opened(tmp_path, "failures")  # an anchor, not a filter
    assert not any(row["hidden"] for row in everything.rows) and not any(h for _, h in everything.entries)


def test_without_the_script_the_same_link_shows_everything(tmp_path: Path) -> None:
    page = html.render(synthetic.big_results(CELLS, CASES))
    script = page.index("<script>")
    shown = opened(tmp_path, "state=error", page[:script] + page[page.index("</script>") + 9:])
    assert not any(row["hidden"] for row in shown.rows) and not any(h for _, h in shown.entries)
    assert '<form id="filter" hidden>' in page, "the form shows only where the script runs"


# After the load event: how far (px) each shown state cell of the first and the last file's first shown row is
# from its column's header cell; the last file is scrolled to first, so it is laid out.
ALIGNMENT_PROBE = """<script>addEventListener('load', () => {
const heads = [...document.querySelectorAll('table.%(head)s th.cell')].filter(th => !th.hidden);
const files = [...document.querySelectorAll('.%(file)s')].filter(file => !file.hidden);
const off = [];
for (const file of [files[files.length - 1], files[0]]) {
  file.scrollIntoView();
  const row = [...file.querySelector('table').rows].slice(1).find(tr => !tr.hidden);
  [...row.cells].slice(1).filter(td => !td.hidden).forEach((td, i) => {
    off.push(Math.abs(td.getBoundingClientRect().left - heads[i].getBoundingClientRect().left));
    off.push(Math.abs(td.getBoundingClientRect().width - heads[i].getBoundingClientRect().width));
  });
}
const out = document.createElement('output'); out.id = 'probe-off'; out.textContent = `${off.length} ${Math.max(...off)}`;
document.body.append(out);
})</script>""" % {"head": pagefilter.GRID_HEAD, "file": pagefilter.GRID_FILE}


@pytest.mark.parametrize("fragment", ["", "release=24.02,24.03&area=area2"])
def test_each_files_table_lines_up_with_the_grids_header(tmp_path: Path, fragment: str) -> None:
    page = html.render(synthetic.big_results(CELLS, CASES))
    shown = opened(tmp_path, fragment, page + ALIGNMENT_PROBE)
    columns = sum(1 for _, hidden in shown.columns if not hidden)
    releases = {"24.02", "24.03"} if fragment else {synthetic.release_of(i) for i in range(CELLS)}
    assert columns == sum(1 for i in range(CELLS) if synthetic.release_of(i) in releases) > 1
    tables = [shown.cols[i:i + synthetic.RELEASES] for i in range(0, len(shown.cols), synthetic.RELEASES)]
    assert len(tables) == len(shown.files) + 1 and all(cols == tables[0] for cols in tables), "the header's and each file's"
    assert sum(span for span, hidden in tables[0] if not hidden) == columns, "a hidden release's col is hidden"
    dom = dump_dom(tmp_path / "compat.html", tmp_path / "profile", fragment)
    found = re.search(r'<output id="probe-off">(\d+) ([\d.]+)</output>', dom)
    assert found is not None, "the probe ran"
    assert int(found.group(1)) == 2 * 2 * columns and float(found.group(2)) < 1, "each cell under its column's header"


def test_a_file_without_a_row_to_show_is_hidden_whole(tmp_path: Path) -> None:
    shown = opened(tmp_path, "area=area3")
    cases = synthetic.big_results(CELLS, CASES).cases
    files = sorted({case.partition("::")[0] for case in cases}, key=[c.partition("::")[0] for c in cases].index)
    assert [hidden for hidden in shown.files] == [not file.startswith("area3/") for file in files]
