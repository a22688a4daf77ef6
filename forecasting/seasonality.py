"""Automatic seasonality: which of the hour, day and week cycles a series really has.

Method (pure numpy, fast at any period length):

1. Candidates come from the sampling interval: an hour, a day and a week expressed in steps,
   kept when the step divides the cycle, the cycle is at least `MIN_PERIOD` steps long, and the
   history holds at least `MIN_CYCLES` whole cycles.
2. Values >= 0 are compared on a log1p scale (multiplicative cycles become additive and bursts
   stop dominating the variance), after winsorizing at the 1st and 99th percentiles.
3. Candidates are tested shortest first. For a candidate `p`, the remainder (the series less
   the profiles of the periods already found, so that a daily cycle is not found again at the
   weekly lag) is detrended by a centred moving average over `p` steps. The period is kept when
   both tests pass:
   - ACF peak: the autocorrelation at lag `p` is at least `MIN_ACF` and above the
     autocorrelation at lag `p // 2` (a peak, not a trend's slow decay);
   - seasonal strength (Wang, Smith & Hyndman 2006; FPP3 section 4.3),
     `1 - var(remainder) / var(seasonal + remainder)`, at least `MIN_STRENGTH`, measured out of
     sample: the seasonal part of the odd cycles is the phase means of the even cycles and the
     other way round. In sample, `p` phase means fitted to a few cycles "explain" much of
     white noise or a random walk; out of sample they explain nothing.

Known limit: with only three or four cycles a random walk still passes at the weekly lag now
and then (2 of 60 seeded four-week hourly walks); more history removes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from forecasting.series import FloatArray, Series

HOUR, DAY, WEEK = 3_600.0, 86_400.0, 604_800.0
MIN_PERIOD = 4  # steps: a shorter "cycle" (an hour at 30 min is 2 steps) looks like noise
MIN_CYCLES = 3
MIN_ACF = 0.2
MIN_STRENGTH = 0.2

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SeasonTest:
    """The evidence for one candidate period, kept for reports and tests."""

    period: int
    acf: float
    acf_half: float
    strength: float

    @property
    def seasonal(self) -> bool:
        return self.acf >= MIN_ACF and self.acf > self.acf_half and self.strength >= MIN_STRENGTH


def candidate_periods(step_seconds: float, length: int) -> tuple[int, ...]:
    """Hour, day and week in steps that the step divides and `length` holds MIN_CYCLES times."""
    found = []
    for cycle in (HOUR, DAY, WEEK):
        steps = cycle / step_seconds
        period = round(steps)
        if abs(steps - period) > 1e-6 * steps:
            continue
        if period >= MIN_PERIOD and length >= MIN_CYCLES * period:
            found.append(period)
    return tuple(found)


def detect_periods(series: Series) -> tuple[int, ...]:
    """The seasonal periods of `series` in steps, shortest first; () when it has none."""
    tests = season_tests(series.values, candidate_periods(series.step_seconds, len(series)))
    return tuple(t.period for t in tests if t.seasonal)


def season_tests(values: FloatArray, candidates: Sequence[int]) -> list[SeasonTest]:
    """Test each candidate on what the periods found before it leave unexplained."""
    remainder = comparable(values)
    index = np.arange(len(remainder))
    tests = []
    for period in sorted(candidates):
        detrended, kept = _detrended(remainder, period)
        test = SeasonTest(
            period=period,
            acf=_autocorrelation(detrended, period),
            acf_half=_autocorrelation(detrended, period // 2),
            strength=_cross_validated_strength(detrended, index[kept], period),
        )
        tests.append(test)
        if test.seasonal:
            profile = _phase_means(detrended, index[kept], period)
            remainder = remainder - profile[index % period]
    return tests


def comparable(values: FloatArray) -> FloatArray:
    """Winsorized at the 1st/99th percentiles; on a log1p scale when no value is negative."""
    low, high = np.quantile(values, [0.01, 0.99])
    clipped = np.clip(values, low, high)
    return np.asarray(np.log1p(clipped) if low >= 0 else clipped, dtype=np.float64)


def _detrended(values: FloatArray, period: int) -> tuple[FloatArray, BoolArray]:
    """Values less their centred moving average over one period (a 2xp MA for even p), and the
    mask of the positions where that average is defined."""
    weights = np.ones(period + 1 - period % 2)
    if period % 2 == 0:
        weights[0] = weights[-1] = 0.5
    weights /= period
    trend = np.convolve(values, weights, mode="valid")
    half = (len(weights) - 1) // 2
    kept = np.zeros(len(values), dtype=bool)
    kept[half : half + len(trend)] = True
    return values[kept] - trend, kept


def _phase_means(values: FloatArray, phase: IntArray, period: int) -> FloatArray:
    slot = phase % period
    sums = np.bincount(slot, weights=values, minlength=period)
    counts = np.bincount(slot, minlength=period)
    means = np.asarray(sums / np.maximum(counts, 1), dtype=np.float64)
    return means - float(means.mean())


def _autocorrelation(values: FloatArray, lag: int) -> float:
    if lag < 1 or lag >= len(values):
        return 0.0
    centred = values - values.mean()
    energy = float(np.dot(centred, centred))
    return float(np.dot(centred[:-lag], centred[lag:]) / energy) if energy > 0 else 0.0


def _cross_validated_strength(detrended: FloatArray, index: IntArray, period: int) -> float:
    """Seasonal strength out of sample: the phase profile of the even cycles predicts the odd
    cycles and the other way round. A season repeats, so it scores near 1; noise scores <= 0,
    and so does a random walk, whose cycles each wander their own way."""
    odd = (index // period) % 2 == 1
    predicted = np.zeros(len(detrended))
    covered = np.zeros(len(detrended), dtype=bool)
    for fit, score in ((~odd, odd), (odd, ~odd)):
        slots = index[fit] % period
        counts = np.bincount(slots, minlength=period)
        means = np.bincount(slots, weights=detrended[fit], minlength=period) / np.maximum(counts, 1)
        target = index[score] % period
        predicted[score] = means[target]
        covered[score] = counts[target] > 0
    actual = detrended[covered]
    total = float(np.sum((actual - actual.mean()) ** 2)) if actual.size else 0.0
    if total == 0:
        return 0.0
    return 1 - float(np.sum((actual - predicted[covered]) ** 2)) / total
