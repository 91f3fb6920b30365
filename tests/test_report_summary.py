"""The job summary's digest (harness.report.summary): small at any size, and it names what needs acting on."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bench.synthetic import CELLS, LONG, big_results, cell_id
from conftest import FIXTURES
from harness.report import build, diff, markdown, summary
from harness.report.results import Results
from harness.states import State

pytestmark = pytest.mark.fast  # no server, no venv, no container

GITHUB = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/triton-matrix", "GITHUB_RUN_ID": "42"}


def baseline_of(results: Results) -> diff.Baseline:
    """Everything passed in the baseline, but the known issue had already occurred in the even cells."""
    states = {}
    for (case, cell), r in results.results.items():
        was_known = r.state == State.KNOWN_INCOMPATIBLE and int(cell[-3:]) % 2 == 0
        states[(case, cell)] = (State.KNOWN_INCOMPATIBLE.value if was_known else State.PASSED.value, "")
    return diff.Baseline(path="baseline/compat.json", partial=False, states=states)


def test_the_digest_of_100_cells_by_300_cases_stays_under_100_kb_and_names_what_to_act_on() -> None:
    results = big_results()
    changes = diff.compare(baseline_of(results), results)
    text = summary.render(results, changes, link=summary.artifact_link(GITHUB))
    size = len(text.encode())
    assert size < 100_000, size
    assert len(markdown.render(results, changes).encode()) > 10 * size, "the full Markdown is what it replaces"

    counts = results.counts()
    red = sum(counts[s.value] for s in State if s.bad)
    assert red > 4000
    assert text.startswith(f"# Triton compatibility: {red} red, {len(changes.regressions)} newly failing\n")
    header, _, values = text.split("The full report:")[1].split("\n")[2:5]
    assert dict(zip(re.findall(r"[\w-]+(?= \|)", header), map(int, re.findall(r"\d+", values)))) == {
        k: n for k, n in counts.items() if n}
    assert "> **Partial report**" in text
    assert "[the `compat-report` artifact](https://github.com/acme/triton-matrix/actions/runs/42#artifacts)" in text

    regressions = len(changes.regressions)
    assert f"REGRESSION: {regressions} newly failing since baseline/compat.json" in text
    assert f"### ▼ Regressions ({regressions})" in text and f"*and {regressions - 30} more: see compat.html.*" in text
    assert f"## ❌ Red results ({red})" in text and f"*and {red - 30} more: see compat.html.*" in text
    worst = next(c.cell for c in changes.regressions if c.after == State.ERROR.value)
    assert f"| 💥 error | `{worst}` |" in text, "the worst state first"
    assert "`" + cell_id(CELLS - 1) + "` 300" in text, "the red count per cell"
    unexpected = counts[State.UNEXPECTEDLY_PASSING.value]
    assert f"## ❗ Unexpectedly passing ({unexpected})" in text and f"*and {unexpected - 15} more" in text

    occurred = results.known_issues[0].occurred
    new = [r for r in occurred if int(r.cell[-3:]) % 2 == 1]
    assert 0 < len(new) < len(occurred)
    assert f"## 🔶 New known-issue occurrences ({len(new)})" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| [`numpy2-abi`](https://example.com/issue/1) |")]
    assert len(rows) == 15
    assert all(int(r.split("-c")[1][:3]) % 2 == 1 for r in rows), "only where it had not occurred before"
    assert f"`{cell_id(CELLS - 1)}`: ❓ missing: the cell left no JUnit file" in text
    assert "second line" not in text and LONG not in text, "first lines, clipped"


def test_without_a_baseline_or_github_the_digest_points_to_the_files() -> None:
    results = big_results()
    text = summary.render(results, None, link=summary.artifact_link({}))
    assert summary.artifact_link({"GITHUB_SERVER_URL": "https://github.com"}) is None
    assert "compat.html, compat.md and compat.json in the reports folder" in text
    assert "Since the baseline" not in text
    assert f"## 🔶 Known-issue occurrences ({len(results.known_issues[0].occurred)})" in text
    assert len(text.encode()) < 100_000


def test_the_report_appends_the_digest_to_the_job_summary_and_keeps_compat_md(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    shutil.copy(FIXTURES / "junit" / "mixed.xml", reports / "junit" / "24.10-python-cpu-py3.11.xml")
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("an earlier step's summary\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    for key, value in GITHUB.items():
        monkeypatch.setenv(key, value)
    assert build.main(reports=reports) == 1
    written = step_summary.read_text()
    assert written.startswith("an earlier step's summary\n# Triton compatibility: ")
    assert "https://github.com/acme/triton-matrix/actions/runs/42#artifacts" in written
    assert "## ❌ Red results (" in written
    assert "## Cases" not in written, "not the full Markdown"
    assert "## Cases" in (reports / "compat.md").read_text(), "the full Markdown stays a file"


def test_the_workflow_uploads_the_artifact_the_digest_names() -> None:
    import yaml

    workflow = yaml.safe_load((Path(__file__).parent.parent / ".github" / "workflows" / "matrix.yml").read_text())
    names = [s["with"]["name"] for s in workflow["jobs"]["report"]["steps"]
             if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert names == [summary.ARTIFACT]
