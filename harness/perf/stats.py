"""Medians with bootstrap intervals over rounds, and the call rule: a change is called only when the
whole interval of the ratio lies beyond the threshold.

Absolute figures from a shared 2-core box are noise; what a round-to-round interval of a ratio clears is
not. The bootstrap is seeded, so the same samples always give the same interval and the same call.
Standard library only (the scheduler's side may run without numpy).
"""

from __future__ import annotations

import enum
import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from harness.errors import HarnessError

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 21  # fixed: a report made twice from the same rounds says the same thing
DEFAULT_THRESHOLD = 0.10
MIN_ROUNDS = 2  # a bootstrap over one round says nothing


class TooFewRounds(HarnessError):
    """A median's interval was asked of fewer rounds than it needs."""


@dataclass(frozen=True)
class Interval:
    """A point estimate (the median) and its confidence interval."""

    median: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class Call(enum.Enum):
    """A release against the reference, for one metric: worse and better in that metric's sense."""

    WORSE = "worse"
    BETTER = "better"
    SAME = "same"


@dataclass(frozen=True)
class Direction:
    """Which way is worse for a metric, and the words a call is shown with (``slower``, ``more``)."""

    higher_is_worse: bool
    worse_word: str
    better_word: str

    def word(self, call: Call) -> str:
        return {Call.WORSE: self.worse_word, Call.BETTER: self.better_word, Call.SAME: "same"}[call]


LATENCY = Direction(higher_is_worse=True, worse_word="slower", better_word="faster")
THROUGHPUT = Direction(higher_is_worse=False, worse_word="slower", better_word="faster")
MEMORY = Direction(higher_is_worse=True, worse_word="more", better_word="less")


def _checked(samples: Sequence[float], what: str) -> list[float]:
    values = [float(s) for s in samples]
    if len(values) < MIN_ROUNDS:
        raise TooFewRounds(f"{len(values)} round(s) of {what}", fix=f"measure at least {MIN_ROUNDS} rounds")
    return values


def _percentiles(values: list[float], confidence: float) -> tuple[float, float]:
    values.sort()
    tail = (1.0 - confidence) / 2.0
    last = len(values) - 1
    return values[round(tail * last)], values[round((1.0 - tail) * last)]


def _resampled_median(rng: random.Random, values: list[float]) -> float:
    return statistics.median(rng.choices(values, k=len(values)))


def median_interval(samples: Sequence[float], *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                    seed: int = SEED) -> Interval:
    """The median of the rounds with its percentile-bootstrap interval."""
    values = _checked(samples, "a metric")
    rng = random.Random(seed)
    low, high = _percentiles([_resampled_median(rng, values) for _ in range(resamples)], confidence)
    return Interval(statistics.median(values), low, high)


def ratio_interval(candidate: Sequence[float], reference: Sequence[float], *, confidence: float = CONFIDENCE,
                   resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """median(candidate) / median(reference), with an interval from resampling both sides' rounds."""
    cand, ref = _checked(candidate, "the candidate"), _checked(reference, "the reference")
    if statistics.median(ref) == 0 or min(ref) <= 0:
        raise HarnessError("the reference's rounds are not all positive: a ratio to them means nothing",
                           fix="compare a metric that is positive in every round")
    rng = random.Random(seed)
    ratios = [_resampled_median(rng, cand) / _resampled_median(rng, ref) for _ in range(resamples)]
    low, high = _percentiles(ratios, confidence)
    return Interval(statistics.median(cand) / statistics.median(ref), low, high)


def difference_interval(candidate: Sequence[float], reference: Sequence[float], *,
                        confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """median(candidate) - median(reference), for a metric near zero where a ratio means nothing
    (memory growth per 1,000 requests)."""
    cand, ref = _checked(candidate, "the candidate"), _checked(reference, "the reference")
    rng = random.Random(seed)
    low, high = _percentiles([_resampled_median(rng, cand) - _resampled_median(rng, ref)
                              for _ in range(resamples)], confidence)
    return Interval(statistics.median(cand) - statistics.median(ref), low, high)


def call_difference(difference: Interval, direction: Direction, threshold: float) -> Call:
    """The call rule on a difference: beyond ``threshold`` (in the metric's own unit) on one side, wholly."""
    above, below = difference.low > threshold, difference.high < -threshold
    if not (above or below):
        return Call.SAME
    return Call.WORSE if above == direction.higher_is_worse else Call.BETTER


def call(ratio: Interval, direction: Direction, threshold: float = DEFAULT_THRESHOLD) -> Call:
    """WORSE or BETTER only when the whole interval lies beyond ``threshold`` (a fraction: 0.10 is 10%)."""
    above, below = ratio.low > 1.0 + threshold, ratio.high < 1.0 - threshold
    if not (above or below):
        return Call.SAME
    return Call.WORSE if above == direction.higher_is_worse else Call.BETTER


def compare(candidate: Sequence[float], reference: Sequence[float], direction: Direction,
            threshold: float = DEFAULT_THRESHOLD) -> tuple[Interval, Call]:
    """The ratio interval of two releases' rounds and its call."""
    ratio = ratio_interval(candidate, reference)
    return ratio, call(ratio, direction, threshold)
