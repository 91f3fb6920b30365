"""matrix.toml's [perf]: defaults, a full table, and each bad value as one line naming the key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import matrix
from harness.compat import tomllib
from harness.errors import HarnessError
from harness.matrix.settings import PerfSettings

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parent.parent


def parsed(perf: dict[str, Any] | None) -> matrix.Matrix:
    """The repository's matrix with ``perf`` as its [perf] table (None: without one)."""
    data = tomllib.loads((ROOT / "matrix.toml").read_text(encoding="utf-8"))
    data.pop("perf", None)
    if perf is not None:
        data["perf"] = perf
    return matrix.parse(data, ROOT / "matrix.toml")


def test_no_perf_table_gives_the_defaults() -> None:
    perf = parsed(None).perf
    assert perf == PerfSettings() and perf.models == ("add_sub",) and perf.rounds >= 5
    assert perf.concurrency[0] == 1 and len(perf.concurrency) == 2 and perf.threshold("p50") == 0.10
    assert perf.threshold("rss_growth") == 1.0


def test_a_full_table_is_read() -> None:
    perf = parsed({"models": "add_sub", "cells": ["24.*-python-cpu-py3.11-*"], "concurrency": [4, 1, 4],
                   "rounds": 7, "requests": 200, "protocol": "grpc",
                   "reference": "24.03", "thresholds": {"p99": 0.25, "rss_growth": 0.5}}).perf
    assert perf.models == ("add_sub",) and perf.concurrency == (1, 4) and perf.rounds == 7
    assert perf.protocol == "grpc" and perf.reference == "24.03"
    assert perf.threshold("p99") == 0.25 and perf.threshold("throughput") == 0.10
    assert perf.threshold("rss_growth") == 0.5  # MB per 1,000 requests, not a fraction


@pytest.mark.parametrize(("table", "key", "fix"), [
    ({"rounds": 3}, "perf.rounds", "rounds = 5"),
    ({"concurrency": []}, "perf.concurrency", "[1, 4]"),
    ({"concurrency": [0, 2]}, "perf.concurrency", "[1, 4]"),
    ({"reference": "22.01"}, "perf.reference", "use one of"),
    ({"protocol": "tcp"}, "perf.protocol", "http, grpc"),
    ({"thresholds": {"p42": 0.1}}, "perf.thresholds.p42", "use one of"),
    ({"thresholds": {"p50": 10}}, "perf.thresholds.p50", "(10%)"),
    ({"speed": 1}, "perf.speed", "use one of"),
    ({"thresholds": {"rss_growth": 0}}, "perf.thresholds.rss_growth", "rss_growth = 1.0"),
])
def test_a_bad_value_names_its_key_and_the_fix(table: dict[str, Any], key: str, fix: str) -> None:
    with pytest.raises(HarnessError) as err:
        parsed(table)
    message = str(err.value)
    assert f"matrix.toml: {key}" in message and fix in message and "\n" not in message
