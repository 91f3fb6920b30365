"""nox -s perf end to end: two releases' models measured by a real perf_analyzer against real servers.

Needs a perf_analyzer that starts here: nox -s perf's venv has one (tritonclient 2.51.0 with
nvidia-cuda-runtime-cu12; the tests' own venv has a newer tritonclient, whose perf_analyzer needs glibc 2.38),
and libb64-0d from the system; ``$TRITON_MATRIX_PERF_ANALYZER`` may point at another. .ci/run prepares both
(``nox -s perf --install-only``); skipped with the reason locally, a failure in CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT, require, run_harness
from harness.errors import HarnessError
from harness.perf import analyzer

RELEASES = ("24.07", "24.10")
PERF_VENV = ROOT / ".nox" / "perf"  # nox -s perf's
PLANTED = Path(__file__).parent / "fixtures" / "perf" / "library"
PERF = """
[perf]
models = ["{model}"]
concurrency = [1, 2]
rounds = 5
requests = 100
"""


def usable_analyzer() -> analyzer.Analyzer:
    try:
        return analyzer.find((PERF_VENV,))
    except HarnessError as exc:
        require(False, f"no usable perf_analyzer: {exc} (nox -s perf --install-only makes {PERF_VENV})")
        raise


def matrix_with_perf(tmp_path: Path, model: str) -> Path:
    """The default matrix with a quick [perf] over ``model``."""
    text = (ROOT / "matrix.toml").read_text(encoding="utf-8")
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(text[:text.index("\n[perf]")] + PERF.format(model=model), encoding="utf-8")
    return matrix


def run_perf(tmp_path: Path, model: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """``python -m harness perf`` over RELEASES' python py3.11 cells with ``model``; its output and perf.json."""
    found = usable_analyzer()
    matrix = matrix_with_perf(tmp_path, model)
    cells = [arg for release in RELEASES for arg in ("--cell", f"{release}-python-cpu-py3.11-*")]
    done = run_harness("perf", "--matrix", str(matrix), "--reports", str(tmp_path / "reports"), *cells, *extra,
                       env={analyzer.PATH_ENV: str(found.binary)}, timeout=900)
    path = tmp_path / "reports" / "perf.json"
    assert path.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(path.read_text())
    assert results["analyzer"]["version"] == found.version
    return done, results


def test_two_releases_add_sub_are_measured_and_compared(tmp_path: Path) -> None:
    done, results = run_perf(tmp_path, "add_sub")
    assert done.returncode == 0, done.stderr[-2000:]
    assert results["reference"] == "24.07" and set(results["releases"]) == set(RELEASES)
    for release in RELEASES:
        figures = results["releases"][release]
        for key in ("start", "add_sub/load", "add_sub/c1/throughput", "add_sub/c2/p99", "add_sub/rss",
                    "add_sub/rss_growth", "add_sub/c1/queue", "add_sub/c1/compute"):
            assert len(figures[key]["rounds"]) == 5, (release, key)
        assert figures["add_sub/rss"]["median"]["median"] > 20  # MB: a server and its stub
        assert figures["add_sub/c1/throughput"]["median"]["low"] > 0
    newer = results["releases"]["24.10"]
    assert newer["add_sub/c1/p50"]["call"] in {"slower", "faster", "same"}
    ratio = newer["add_sub/c1/p50"]["ratio"]
    assert ratio["low"] <= ratio["median"] <= ratio["high"]
    # add_sub keeps nothing per request: its memory growth is never called more (a planted leak is, below)
    assert newer["add_sub/rss_growth"]["call"] in {"less", "same"} and "difference" in newer["add_sub/rss_growth"]
    assert "perf: 24.10:" in done.stdout


def test_a_planted_2ms_slowdown_and_1mb_leak_are_called_and_gated(tmp_path: Path) -> None:
    """planted sleeps 2 ms more and keeps 1 MB per request on 24.10 only (its config, rendered per release)."""
    done, results = run_perf(tmp_path, "planted", "--cases", str(PLANTED), "--perf-gate")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    newer, older = results["releases"]["24.10"], results["releases"]["24.07"]
    assert newer["planted/c1/p50"]["call"] == "slower", newer["planted/c1/p50"]
    assert newer["planted/c1/throughput"]["call"] == "slower"
    assert newer["planted/rss_growth"]["call"] == "more", newer["planted/rss_growth"]
    assert newer["planted/rss_growth"]["median"]["median"] > 500  # MB per 1,000 requests: about 1,000 kept
    assert older["planted/rss_growth"]["median"]["median"] < 1.0
    assert "regression: 24.10 planted/c1/p50: slower than 24.07" in done.stdout
    assert "regression: 24.10 planted/rss_growth: more than 24.07" in done.stdout


def test_a_matrix_run_with_perf_measures_after_its_cells_and_reports_it(tmp_path: Path) -> None:
    """``nox -s matrix -- --perf``: the cells run, then [perf]'s models on the run's cells it names, then the
    report shows both."""
    found = usable_analyzer()
    library = tmp_path / "lib"
    shutil.copytree(ROOT / "cases" / "basics", library / "basics", ignore=shutil.ignore_patterns("__pycache__"))
    reports = tmp_path / "reports"
    done = run_harness("run", "--matrix", str(matrix_with_perf(tmp_path, "add_sub")), "--reports", str(reports),
                       "--cases", str(library), "--perf", "--cell", "24.10-python-cpu-py3.11-*",
                       "--cell", "24.10-custom-*", env={analyzer.PATH_ENV: str(found.binary)}, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "perf: 24.10: the reference" in done.stdout
    perf = json.loads((reports / "perf.json").read_text())
    assert perf["cells"] == {"24.10": "24.10-python-cpu-py3.11-numpy1"}  # the custom cell is not one [perf] names
    compat = json.loads((reports / "compat.json").read_text())
    assert compat["perf"]["reference"] == "24.10" and len(compat["cells"]) == 2
    assert "## Speed and memory" in (reports / "compat.md").read_text()
