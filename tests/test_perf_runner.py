"""The runner's pieces that need no server: CPU halves, the metric of a key, the process tree's RSS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.perf import memory, runner

pytestmark = pytest.mark.fast


def test_server_and_analyzer_get_separate_cpu_halves() -> None:
    assert runner.split_cpus({0, 1}) == ({1}, {0})
    assert runner.split_cpus({0, 1, 2, 3}) == ({2, 3}, {0, 1})
    assert runner.split_cpus({3}) == (None, None)  # one CPU: nothing to pin apart


def test_pinned_sets_and_restores_this_process_affinity() -> None:
    before = os.sched_getaffinity(0)
    one = {min(before)}
    with runner.pinned(one):
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
