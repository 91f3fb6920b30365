"""The statistics of harness.perf: known samples give known calls; noise alone is never called."""

from __future__ import annotations

import random

import pytest

from harness.perf import stats
from harness.perf.stats import LATENCY, MEMORY, THROUGHPUT, Call, Interval

pytestmark = pytest.mark.fast

BASE = [10.0, 10.2, 9.9, 10.1, 10.0]


def test_the_median_interval_holds_the_median_and_is_reproducible() -> None:
    first = stats.median_interval(BASE)
    assert first.median == 10.0 and first.low <= 10.0 <= first.high
    assert 9.9 <= first.low and first.high <= 10.2
    assert stats.median_interval(BASE) == first  # seeded


def test_a_clear_slowdown_is_called_slower() -> None:
    slow = [x * 1.3 for x in BASE]
    ratio, verdict = stats.compare(slow, BASE, LATENCY)
    assert ratio.low > 1.1 and verdict is Call.WORSE and LATENCY.word(verdict) == "slower"


def test_less_throughput_is_slower_and_more_is_faster() -> None:
    assert stats.compare([x * 0.7 for x in BASE], BASE, THROUGHPUT)[1] is Call.WORSE
    assert THROUGHPUT.word(stats.compare([x * 1.3 for x in BASE], BASE, THROUGHPUT)[1]) == "faster"
    assert MEMORY.word(stats.compare([x * 1.5 for x in BASE], BASE, MEMORY)[1]) == "more"


def test_a_change_inside_the_threshold_is_the_same() -> None:
    ratio, verdict = stats.compare([x * 1.05 for x in BASE], BASE, LATENCY)
    assert verdict is Call.SAME and ratio.median == pytest.approx(1.05)


def test_an_interval_that_straddles_the_threshold_is_the_same() -> None:
    assert stats.call(Interval(1.3, 1.05, 1.5), LATENCY) is Call.SAME  # the median alone would be called
    assert stats.call(Interval(1.3, 1.11, 1.5), LATENCY) is Call.WORSE
    assert stats.call(Interval(1.3, 1.11, 1.5), LATENCY, threshold=0.2) is Call.SAME  # per-metric threshold
    assert stats.call(Interval(0.7, 0.6, 0.89), LATENCY) is Call.BETTER


def test_wide_noise_hides_a_median_shift() -> None:
    noisy = [5.0, 15.0, 10.0, 30.0, 8.0]
    assert stats.compare([x * 1.2 for x in noisy], noisy, LATENCY)[1] is Call.SAME


def test_an_aa_comparison_with_noise_is_never_called() -> None:
    """The same release against itself: 5% noise, 5 rounds, 200 comparisons, none called."""
    rng = random.Random(7)
    calls = []
    for _ in range(200):
        a = [10.0 * rng.lognormvariate(0, 0.05) for _ in range(5)]
        b = [10.0 * rng.lognormvariate(0, 0.05) for _ in range(5)]
        calls.append(stats.compare(a, b, LATENCY)[1])
    assert calls.count(Call.SAME) == 200


def test_a_planted_slowdown_under_the_same_noise_is_called() -> None:
    rng = random.Random(8)
    calls = [stats.compare([13.0 * rng.lognormvariate(0, 0.05) for _ in range(5)],
                           [10.0 * rng.lognormvariate(0, 0.05) for _ in range(5)], LATENCY)[1]
             for _ in range(50)]
    assert calls.count(Call.WORSE) == 50


def test_too_few_rounds_and_a_zero_reference_are_errors() -> None:
    with pytest.raises(stats.TooFewRounds):
        stats.median_interval([1.0])
    with pytest.raises(stats.HarnessError):
        stats.ratio_interval(BASE, [0.0, 0.0, 1.0])


def test_memory_growth_is_called_on_its_difference_not_a_ratio() -> None:
    """Near zero, a ratio calls noise (0.01 vs 0.025 MB per 1,000 requests is x0.4): the difference does not."""
    tiny, tinier = [0.029, 0.02, 0.018, 0.025, 0.025], [0.014, 0.011, 0.006, 0.012, 0.006]
    assert stats.compare(tinier, tiny, MEMORY)[1] is Call.BETTER  # what a ratio would say
    assert stats.call_difference(stats.difference_interval(tinier, tiny), MEMORY, 1.0) is Call.SAME
    leak = [1000.0 + x for x in tiny]  # 1 MB per request: 1000 MB per 1,000 requests
    assert stats.call_difference(stats.difference_interval(leak, tiny), MEMORY, 1.0) is Call.WORSE
