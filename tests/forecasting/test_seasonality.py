"""Season detection on series whose seasons are known."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.seasonality import candidate_periods, detect_periods
from tests.forecasting.synthetic import hourly, seasonal_values


@pytest.mark.parametrize(
    ("step", "length", "expected"),
    [
        (3600.0, 24 * 7 * 3, (24, 168)),  # an hour is 1 step: too short to be a season
        (3600.0, 24 * 7 * 3 - 1, (24,)),  # the week needs three whole cycles
        (300.0, 288 * 3, (12, 288)),
        (1800.0, 48 * 7 * 3, (48, 336)),
        (420.0, 10_000, (1440,)),  # 7 min divides a week into whole steps, not a day or an hour
        (86400.0, 21, (7,)),  # daily data: a weekly cycle
        (86400.0, 20, ()),
        (11.0, 10**6, ()),  # divides none of them
    ],
)
def test_candidates_come_from_the_sampling_interval(
    step: float, length: int, expected: tuple[int, ...]
) -> None:
    assert candidate_periods(step, length) == expected


def test_daily_cycle_is_found() -> None:
    assert detect_periods(hourly(seasonal_values(24 * 7 * 4))) == (24,)


def test_weekly_cycle_is_found_without_a_daily_one() -> None:
    assert detect_periods(hourly(seasonal_values(24 * 7 * 4, periods=(168,)))) == (168,)


def test_daily_and_weekly_cycles_are_both_found() -> None:
    length = 24 * 7 * 4
    weekend = 2.0 * ((np.arange(length) // 24) % 7 >= 5)
    values = seasonal_values(length, periods=(24,)) + weekend
    assert detect_periods(hourly(values)) == (24, 168)


def test_white_noise_has_no_season() -> None:
    noise = np.random.default_rng(1).normal(10, 1, 24 * 7 * 4)
    assert detect_periods(hourly(noise)) == ()


def test_a_trend_is_not_a_season() -> None:
    t = np.arange(24 * 7 * 4)
    trend = 5 + 0.05 * t + np.random.default_rng(2).normal(0, 1, len(t))
    assert detect_periods(hourly(trend)) == ()


def test_a_random_walk_is_not_a_season() -> None:
    walk = 100 + np.cumsum(np.random.default_rng(3).normal(0, 1, 24 * 7 * 4))
    assert detect_periods(hourly(walk)) == ()


def test_a_daily_cycle_on_a_trend_is_found() -> None:
    t = np.arange(24 * 7 * 4)
    assert detect_periods(hourly(seasonal_values(len(t)) + 0.05 * t)) == (24,)


def test_bursts_do_not_hide_a_daily_cycle() -> None:
    values = seasonal_values(24 * 7 * 4)
    values[::97] *= 40  # rare bursts, 40x the level
    assert detect_periods(hourly(values)) == (24,)
