"""compat.html at scale (harness.report.budget): 100 cells x 300 cases with 20 runs of history stay under
5 MB, every result still in the grid, the text of tests and servers clipped and the details within a budget,
worst first; each (case, state, first line) is said once with its cells. Sizes only: Chromium's time is a
bench figure (``bench/report_scale.py``), not a test. compat.json's history at 20 runs stays compact and reads
back to what the report shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import synthetic
from harness.report import budget, html, jsonfile, pagefilter, timeline
from harness.report.model import failure_groups, failures
from harness.report.results import CellInfo, Result, Results
from harness.states import State

pytestmark = pytest.mark.fast  # no server, no venv, no container


def test_the_page_of_100_cells_by_300_cases_with_20_runs_stays_under_5_mb_with_every_result() -> None:
    results = synthetic.big_results()
    past = timeline.build(synthetic.big_window(results), ["numpy2-abi"])
    page = html.render(results, past=past)
    assert len(page.encode()) < budget.PAGE_LIMIT == 5_000_000, len(page.encode())
    assert page.count('<td class="s ') == synthetic.CELLS * synthetic.CASES, "every result in the grid"
    files = {case.partition("::")[0] for case in results.cases}
    assert page.count(f'<div class="{pagefilter.GRID_FILE}" ') == len(files), "one table per file: laid out when seen"
    assert len(set(re.findall(r"<colgroup>.*?</colgroup>", page))) == 1, "each file's columns are the header's"
    groups = failure_groups(results)
    assert sum(len(g.results) for g in groups) == len(failures(results)) > 7000
    assert len(groups) < len(failures(results)) / 5, "a case failing alike in many cells is said once"
    assert page.count('<section class="fg" id="') == len(groups)
    linked = set(re.findall(r'<a href="#(f\d+)">', page))
    assert linked == {f"f{i}" for i in range(len(groups))}, "every red grid cell links to its failure"
    shown, left_out = page.count("<summary>details and server log"), page.count("left out to keep this page small")
    assert shown > 100 and left_out > 100 and shown + left_out == sum(1 for g in groups if g.results[0].details), "the budget is spent, worst first"
    worst = page.index(f'<span class="g error">{State.ERROR.glyph}</span> <code>')
    assert page.index("details and server log") > worst and page.index("left out to keep") > page.index(
        "details and server log"), "details go to the worst results first"
    for where in ('title="failed: ', "<p>"):
        assert where + synthetic.LONG not in page and where + synthetic.LONG[:100] in page, "a long first line is clipped"


def test_details_are_clipped_to_their_head_and_tail_and_stop_once_the_budget_is_spent() -> None:
    log = "head line\n" + "x" * 10_000 + "\nthe server's last words"
    shown = budget.clip_middle(log, budget.DETAIL_CHARS)
    assert shown.startswith("head line\n") and shown.endswith("the server's last words")
    assert f"… {len(log) - budget.DETAIL_CHARS:,} characters left out" in shown
    assert len(shown) < budget.DETAIL_CHARS + 100
    left = budget.Budget(left=2 * budget.DETAIL_CHARS + 500)
    assert left.take(log) is not None and left.take(log) is not None
    assert left.take(log) is None and left.take("short") is None, "once spent, none after: the order holds"
    assert budget.clip("a" * 200, 120) == "a" * 119 + "…" and budget.clip("short", 120) == "short"


def test_one_case_failing_alike_in_several_cells_is_one_entry_naming_them() -> None:
    cells = [CellInfo(id=f"24.{i:02d}-python-cpu-py3.11", axes={"triton": f"24.{i:02d}"}) for i in range(1, 4)]
    case = "area/test_a.py::test_x"
    results = Results(cells=cells, results={
        (case, cells[0].id): Result(case, cells[0].id, State.FAILED, "AssertionError: 1 != 2"),
        (case, cells[1].id): Result(case, cells[1].id, State.FAILED, "AssertionError: 1 != 2"),
        (case, cells[2].id): Result(case, cells[2].id, State.FAILED, "AssertionError: 1 != 3")})
    groups = failure_groups(results)
    assert [(g.first_line, [r.cell for r in g.results]) for g in groups] == [
        ("AssertionError: 1 != 2", [cells[0].id, cells[1].id]), ("AssertionError: 1 != 3", [cells[2].id])]
    page = html.render(results)
    assert ' data-state="failed" data-release="24.01 24.02" data-area="area"><h3>' in page
    assert "in 2 cells</h3>" in page and f"<code>{cells[0].id}</code>, <code>{cells[1].id}</code>" in page


def test_compat_json_history_of_100_cells_by_300_cases_by_20_runs_is_compact_and_reads_back(tmp_path: Path) -> None:
    results = synthetic.big_results()
    past = timeline.build(synthetic.big_window(results), ["numpy2-abi"])
    path = tmp_path / "compat.json"
    jsonfile.write(results, path, past=past)
    text = path.read_text()
    data = json.loads(text)["history"]
    assert len(text[text.index('\n "history": {'):].encode()) < 1_000_000, "6 MB as one object per pair"
    notable = past.notable()
    assert len(notable) > 10_000 and data["steady"] == synthetic.CELLS * synthetic.CASES - len(notable)
    runs = [r["id"] for r in data["runs"]]
    back = timeline.pairs_of(data)
    assert [(p["case"], p["cell"], p["states"], p["failing_since"], p["first_seen"]) for p in back] == [
        (p.case, p.cell, [s.value if s else None for s in p.states], p.failing_since and p.failing_since.run,
         p.first_seen and p.first_seen.run) for p in notable]
    assert {p["failing_since"] for p in back} <= {None, *runs}
    assert sum(1 for line in text.splitlines() if line.startswith("   [")) == len(notable), "one line a row"
