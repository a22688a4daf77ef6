"""How every statsmodels model sees its history: bounded, coarsened, and on a log scale.

- Bounded: the last FIT_CYCLES cycles of the longest season (at least MIN_FIT_POINTS values),
  so a fit costs the same at the first origin of a backtest as at the last.
- Coarsened: when that window is longer than MAX_FIT_POINTS, it is averaged over blocks of
  steps and the forecast is repeated back over each block's steps.
- Log scale: a history that never goes below zero is fitted as log1p(values) and forecast back
  with expm1. Quantiles map exactly through a monotone transform, so the interval keeps its
  coverage; the point forecast becomes the median, which is what MAE (and so MASE) rewards;
  daily cycles that scale with the level become additive, and bursts stop dragging the level.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forecasting.forecast import (
    Fitted,
    Forecast,
    Model,
    ModelSpec,
    floored,
    non_negative_floor,
)
from forecasting.series import Series

FIT_CYCLES = 4  # cycles of the longest period a seasonal fit sees
MIN_FIT_POINTS = 1_000  # and never fewer points than this (when the history has them)
MAX_FIT_POINTS = 2_016  # a week at 5 min coarsened 4x; statsmodels fits stay well under 1 s


@dataclass(frozen=True)
class FitWindow:
    """The last `length` values of the history, averaged over blocks of `factor` steps."""

    length: int
    factor: int


def fit_window(periods: tuple[int, ...], available: int) -> FitWindow:
    """The window a model with these periods fits on, out of `available` values.

    The coarsening factor is the smallest that brings the window under MAX_FIT_POINTS while
    dividing every period (so each season stays a whole number of coarse steps, >= 2).
    """
    wanted = max(FIT_CYCLES * max(periods, default=0), MIN_FIT_POINTS)
    length = min(wanted, available)
    for factor in range(1, length + 1):
        fits = math.ceil(length / factor) <= MAX_FIT_POINTS
        if fits and all(p % factor == 0 and p // factor >= 2 for p in periods):
            return FitWindow(length, factor)
    return FitWindow(min(length, MAX_FIT_POINTS), 1)


@dataclass(frozen=True)
class Windowed:
    """Fits the model `build` makes on the fit window of the history (see the module doc)."""

    build: Callable[[ModelSpec], Model]
    spec: ModelSpec

    def fit(self, history: Series) -> Fitted:
        window = fit_window(self.spec.periods, len(history))
        recent = history.tail(window.length)
        coarse = recent.coarsened(window.factor)
        floor = non_negative_floor(history)
        logged = floor is not None
        if logged:
            coarse = Series(np.log1p(coarse.values), coarse.step_seconds, coarse.start)
        periods = tuple(p // window.factor for p in self.spec.periods)
        fitted = self.build(ModelSpec(periods, self.spec.quantile)).fit(coarse)
        within_sd = 0.0
        if window.factor > 1:
            blocks = recent.tail(len(coarse) * window.factor).values.reshape(-1, window.factor)
            within_sd = float(np.sqrt(np.mean(blocks.var(axis=1))))
        return Expanded(
            fitted,
            window.factor,
            within_half_width=self.spec.z * within_sd,
            floor=floor,
            logged=logged,
        )


@dataclass(frozen=True)
class Expanded:
    """A coarse (maybe log-scale) forecast back at the series' step and scale. The interval
    widens by the spread of fine values inside a block (the coarse model forecasts block
    means); when the history never went below zero, neither does the forecast."""

    coarse: Fitted
    factor: int
    within_half_width: float
    floor: float | None
    logged: bool

    def forecast(self, steps: int) -> Forecast:
        coarse = self.coarse.forecast(math.ceil(steps / self.factor))
        if self.logged:
            coarse = Forecast(*(np.expm1(a) for a in coarse))
        mean, lower, upper = (np.repeat(a, self.factor)[:steps] for a in coarse)
        if self.factor > 1:
            extra = self.within_half_width**2
            lower = mean - np.sqrt((mean - lower) ** 2 + extra)
            upper = mean + np.sqrt((upper - mean) ** 2 + extra)
        return floored(Forecast(mean, lower, upper), self.floor)
