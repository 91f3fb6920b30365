"""The report's "Speed and memory" section, compat.json's perf block and the gate, from a real perf.json
(nox -s perf, 24.07 against 24.10's add_sub, 5 rounds, this 2-core box)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.perf import section
from harness.perf.section import PerfUnreadable

pytestmark = pytest.mark.fast

FIXTURE = Path(__file__).parent / "fixtures" / "perf" / "perf-24.07-24.10.json"


@pytest.fixture
def perf() -> dict:
    return json.loads(FIXTURE.read_text())


def test_no_perf_json_is_no_section(tmp_path: Path) -> None:
    assert section.read(tmp_path) is None and section.markdown(None) == [] and section.html_section(None) == []


def test_a_foreign_perf_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "perf.json").write_text('{"cells": []}')
    with pytest.raises(PerfUnreadable, match="nox -s perf"):
        section.read(tmp_path)


def test_the_markdown_table_leads_with_ratios_and_calls(perf: dict) -> None:
    text = "\n".join(section.markdown(perf))
    assert "## Speed and memory" in text and "Against 24.07" in text
    assert "| 24.10 | `add_sub/c1/p50` | x0.68 [0.60, 0.88] | **faster** |" in text
    assert "| 24.10 | `add_sub/c4/p99` |" in text and "| 24.07 |" not in text  # the reference is not compared


def test_the_html_has_an_svg_chart_per_ratio_metric(perf: dict, tmp_path: Path) -> None:
    out = "\n".join(section.html_section(perf))
    svg = section.chart(perf, "add_sub/c1/p50")
    ET.fromstring(svg)  # well-formed: it reads without JavaScript
    assert svg in out and out.count("<svg") == len({k for _, k, e in section.compared(perf) if "ratio" in e})


def test_the_block_and_the_gate_name_only_called_regressions(perf: dict) -> None:
    block = section.block(perf)
    assert block["reference"] == "24.07" and block["calls"]["24.10"]["add_sub/c1/p50"]["call"] == "faster"
    assert block["regressions"] == [] == section.regressions(perf)  # faster and same: nothing to gate
    perf["releases"]["24.10"]["add_sub/c1/p50"]["call"] = "slower"
    assert section.regressions(perf) == ["24.10 add_sub/c1/p50: slower than 24.07 (x0.68 [0.60, 0.88])"]


def reported(perf: dict, tmp_path: Path) -> Path:
    """A reports folder with a real JUnit file and ``perf`` as perf.json, its report written."""
    from harness.report import build, model

    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "fixtures" / "junit" / "mixed.xml", reports / "junit")
    (reports / "perf.json").write_text(json.dumps(perf))
    build.write_all(model.read(reports), reports)
    return reports


def test_the_report_shows_the_section(perf: dict, tmp_path: Path) -> None:
    reports = reported(perf, tmp_path)
    assert "## Speed and memory" in (reports / "compat.md").read_text()
    assert '<h2 id="perf">' in (reports / "compat.html").read_text()
    assert json.loads((reports / "compat.json").read_text())["perf"]["reference"] == "24.07"


def test_calls_that_changed_since_the_baseline_are_listed_worse_first(perf: dict) -> None:
    baseline = section.block(perf)  # as a baseline compat.json holds it
    assert section.call_changes(baseline, perf) == []  # the same calls: nothing changed
    perf["releases"]["24.10"]["add_sub/c4/p99"]["call"] = "slower"
    perf["releases"]["24.10"]["add_sub/c1/p90"]["call"] = "faster"
    del baseline["calls"]["24.10"]["add_sub/rss"]
    found = section.call_changes(baseline, perf)
    assert [c.line().split(" (")[0] for c in found] == [
        "24.10 add_sub/c4/p99: same → slower",  # worse first
        "24.10 add_sub/c1/p90: same → faster",
        "24.10 add_sub/rss: not measured → same"]
    assert found[0].worse and not found[1].worse
    assert section.call_changes(None, perf) == [] == section.call_changes(baseline, None)


def test_the_baseline_diff_carries_the_perf_call_changes(perf: dict, tmp_path: Path) -> None:
    from harness.report import build

    reports = reported(perf, tmp_path)
    baseline = tmp_path / "baseline.json"
    shutil.copy(reports / "compat.json", baseline)
    perf["releases"]["24.10"]["add_sub/c4/p99"]["call"] = "slower"
    (reports / "perf.json").write_text(json.dumps(perf))
    build.main(reports=reports, baseline=baseline)
    data = json.loads((reports / "compat.json").read_text())
    assert [(c["release"], c["key"], c["before"], c["after"]) for c in data["baseline"]["perf_changes"]] == [
        ("24.10", "add_sub/c4/p99", "same", "slower")]
    markdown = (reports / "compat.md").read_text()
    assert "### Speed and memory calls (1)" in markdown and "24.10 add_sub/c4/p99: same → slower" in markdown
    assert 'id="changes-perf"' in (reports / "compat.html").read_text()
