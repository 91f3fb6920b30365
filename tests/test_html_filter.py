"""compat.html's filter in a real browser: headless Chromium opens the file from disk with a filter in the URL
fragment (``#state=error&release=24.02``) and the DOM it built shows only what the filter asks for; with
no fragment, or an anchor, everything is shown. Without the filter's script every row stays shown, so
these tests fail without it."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench import synthetic
from bench.report_scale import NoChromium, dump_dom
from harness.report import html

CELLS, CASES = 12, 40


class Shown(HTMLParser):
    """The grid's rows and header cells, the failure entries and the history rows, each with whether it is hidden."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []  # grid case rows: {"hidden", "cells": [(state, hidden)]}
        self.columns: list[tuple[str, bool]] = []  # (release, hidden) per grid column
        self.entries: list[tuple[dict[str, str | None], bool]] = []  # failure entries, history rows
        self.in_grid = False
        self.row_hidden = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        hidden = "hidden" in a
        classes = (a.get("class") or "").split()
        if tag == "div" and "grid" in classes:
            self.in_grid = True
        elif tag == "th" and "cell" in classes:
            self.columns.append((a.get("data-release") or "", hidden))
        elif tag == "tr" and self.in_grid:
            self.row_hidden = hidden
        elif tag == "td" and self.in_grid and classes == ["case"]:
            self.rows.append({"hidden": self.row_hidden, "cells": []})
        elif tag == "td" and self.in_grid and classes[:1] == ["s"]:
            self.rows[-1]["cells"].append((classes[1], hidden))  # type: ignore[union-attr]
        elif "data-state" in a:
            self.entries.append((a, hidden))

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self.in_grid = False  # the grid's div holds no other div


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
