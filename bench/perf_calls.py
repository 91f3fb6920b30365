"""How far nox -s perf's calls can be trusted on this machine: an A/A run, where every call is false, and a
planted slowdown and leak, which every comparison must call.

A comparison is one subject against the reference, over all its metrics. ``comparisons`` subjects are
measured in one interleaved run (the reference and its copies share each round's machine): the A/A
run's copies are the reference release again (24.10's python py3.11 cell, add_sub); the planted run's
are 24.10 against 24.07 with tests/fixtures/perf/library's ``planted`` model, which sleeps 2 ms more and
keeps 1 MB per request on 24.10 only. Both use matrix.toml's [perf] settings otherwise.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import matrix
from harness.errors import HarnessError
from harness.perf import analyzer, runner

ROOT = Path(__file__).resolve().parent.parent
PLANTED = ROOT / "tests" / "fixtures" / "perf" / "library"
AA_RELEASE, PLANTED_REFERENCE, PLANTED_RELEASE = "24.10", "24.07", "24.10"
CELL = "{release}-python-cpu-py3.11-numpy1"
SLOWDOWN_KEY, LEAK_KEY = "planted/c1/p50", "planted/rss_growth"


def _subject(m: matrix.Matrix, release: str, label: str) -> runner.Subject:
    (found,) = runner.subjects(m, m.select([CELL.format(release=release)]))
    return dataclasses.replace(found, label=label)


def _called(figures: dict[str, Any]) -> list[str]:
    """The metrics of one comparison that were called (anything but 'same')."""
    return sorted(key for key, entry in figures.items() if entry.get("call") not in (None, "same"))


def perf_calls(comparisons: int = 10) -> dict[str, object]:
    """``perf_aa_false_calls`` (comparisons of the A/A run with any metric called: the target is 0),
    ``perf_planted_detected`` (comparisons that called the planted slowdown), ``perf_planted_leak_detected``
    (that called the planted leak); each run's wall time and calls. None where no perf_analyzer starts here."""
    try:
        found = analyzer.find((ROOT / ".nox" / "perf",))
    except HarnessError as exc:
        print(f"perf calls: not measured: {exc}", flush=True)
        return {"perf_aa_false_calls": None, "perf_planted_detected": None, "perf_planted_leak_detected": None,
                "perf_calls_skipped": str(exc)}
    m = matrix.load()
    copies = [f"copy{i}" for i in range(1, comparisons + 1)]
    out: dict[str, Any] = {"perf_calls": {"comparisons": comparisons, "settings": m.perf.to_dict(),
                                          "analyzer": found.version}}
    with tempfile.TemporaryDirectory() as tmp:
        aa = [_subject(m, AA_RELEASE, AA_RELEASE)] + [_subject(m, AA_RELEASE, f"{AA_RELEASE}-{c}") for c in copies]
        started = time.monotonic()
        results = runner.measure_subjects(aa, dataclasses.replace(m.perf, models=("add_sub",), reference=AA_RELEASE),
                                          Path(tmp) / "aa", found, [ROOT / "cases"])
        called = {label: _called(figures) for label, figures in results["releases"].items() if label != AA_RELEASE}
        false = sum(1 for keys in called.values() if keys)
        out["perf_aa_false_calls"] = false
        out["perf_calls"]["aa"] = {"wall_s": round(time.monotonic() - started, 1), "called": called,
                                   "load": [results["machine"]["load_before"], results["machine"]["load_after"]]}
        print(f"perf A/A: {false} of {comparisons} comparisons called a change "
              f"({sum(map(len, called.values()))} metrics)", flush=True)

        planted = [_subject(m, PLANTED_REFERENCE, PLANTED_REFERENCE)] + [
            _subject(m, PLANTED_RELEASE, f"{PLANTED_RELEASE}-{c}") for c in copies]
        started = time.monotonic()
        results = runner.measure_subjects(planted, dataclasses.replace(m.perf, models=("planted",),
                                                                       reference=PLANTED_REFERENCE),
                                          Path(tmp) / "planted", found, [PLANTED])
        compared = {label: figures for label, figures in results["releases"].items() if label != PLANTED_REFERENCE}
        slow = sum(1 for figures in compared.values() if figures[SLOWDOWN_KEY].get("call") == "slower")
        leak = sum(1 for figures in compared.values() if figures[LEAK_KEY].get("call") == "more")
        out["perf_planted_detected"], out["perf_planted_leak_detected"] = slow, leak
        out["perf_calls"]["planted"] = {
            "wall_s": round(time.monotonic() - started, 1),
            "load": [results["machine"]["load_before"], results["machine"]["load_after"]],
            "slowdown": {label: figures[SLOWDOWN_KEY].get("ratio") for label, figures in compared.items()},
            "leak_mb_per_1k": {label: figures[LEAK_KEY].get("difference") for label, figures in compared.items()}}
        print(f"perf planted: the 2 ms slowdown called in {slow} of {comparisons}, the 1 MB leak in {leak} of "
              f"{comparisons}", flush=True)
    return out
