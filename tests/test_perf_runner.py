"""The runner's pieces that need no server: CPU halves, the metric of a key, the process tree's RSS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness import processes
from harness.perf import memory, runner

pytestmark = pytest.mark.fast


def test_server_and_analyzer_get_separate_cpu_halves() -> None:
    assert runner.split_cpus({0, 1}) == ({1}, {0})
    assert runner.split_cpus({0, 1, 2, 3}) == ({2, 3}, {0, 1})
    assert runner.split_cpus({3}) == (None, None)  # one CPU: nothing to pin apart


def test_pinned_sets_and_restores_this_process_affinity() -> None:
    before = os.sched_getaffinity(0)
    one = {min(before)}
    with processes.pinned(one):
        assert os.sched_getaffinity(0) == one
    assert os.sched_getaffinity(0) == before


def test_a_key_names_its_metric() -> None:
    assert runner.metric_of("add_sub/c4/p99") == "p99" and runner.metric_of("start") == "start"
    assert set(runner.DIRECTIONS) >= {"throughput", "p50", "p99", "start", "load", "rss", "rss_growth"}


def test_the_tree_rss_counts_the_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(64 << 20); time.sleep(30)"])
    try:
        for _ in range(100):
            if memory.rss_bytes(child.pid) > 60 << 20:
                break
            __import__("time").sleep(0.05)
        assert child.pid in memory.tree(os.getpid())
        assert memory.tree_rss(os.getpid()) >= memory.rss_bytes(os.getpid()) + (60 << 20)
    finally:
        child.kill()
        child.wait()
    assert memory.rss_bytes(child.pid) == 0


def _matrix_run(tmp_path, *args: str, env: dict[str, str] | None = None):
    from conftest import ROOT, run_harness

    return run_harness("run", "--matrix", str(ROOT / "matrix.toml"), "--reports", str(tmp_path / "reports"), "--perf",
                       *args, env=env, timeout=120)


def test_a_run_with_perf_and_none_of_its_cells_is_one_line_before_any_cell(tmp_path) -> None:
    done = _matrix_run(tmp_path, "--cell", "24.10-custom-*")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "none of this run's cells is one [perf] measures" in done.stderr
    assert "--cell" in done.stderr and not (tmp_path / "reports" / "junit").exists()  # nothing started


def test_a_run_with_perf_and_a_perf_analyzer_that_does_not_start_is_one_line_before_any_cell(tmp_path) -> None:
    from harness.perf import analyzer

    broken = tmp_path / "perf_analyzer"
    broken.write_text("#!/bin/sh\necho 'perf_analyzer: cannot start' >&2\nexit 127\n")
    broken.chmod(0o755)
    done = _matrix_run(tmp_path, "--cell", "24.10-python-cpu-py3.11-*", env={analyzer.PATH_ENV: str(broken)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and str(broken) in done.stderr, done.stderr
    assert not (tmp_path / "reports" / "junit").exists()


def test_the_runs_cells_that_perf_names_are_the_ones_measured() -> None:
    from conftest import ROOT
    from harness import matrix

    m = matrix.load(ROOT / "matrix.toml")
    run_cells = m.select(["24.07-*", "24.10-custom-*"])
    analyzer_found = runner.analyzer_mod.find  # the plan checks one starts: stand one in
    try:
        runner.analyzer_mod.find = lambda *a, **k: "an analyzer"  # type: ignore[assignment]
        planned = runner.for_run(m, run_cells, [], gate=True)
    finally:
        runner.analyzer_mod.find = analyzer_found  # type: ignore[assignment]
    assert [c.id for c in planned.cells] == ["24.07-python-cpu-py3.11-numpy1"] and planned.gate
    assert planned.case_roots == (runner.CASES,)
