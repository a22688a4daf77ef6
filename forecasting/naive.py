"""Seasonal naive: each value repeats the value one season earlier. The baseline of every result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecasting.errors import ModelError
from forecasting.forecast import (
    Forecast,
    ModelSpec,
    floored,
    non_negative_floor,
    normal_forecast,
)
from forecasting.series import FloatArray, Series


@dataclass(frozen=True)
class SeasonalNaive:
    """Uses the longest period of the spec (it holds the shorter ones: a week holds each day);
    with no period it is the naive forecast (the last value)."""

    spec: ModelSpec

    @property
    def season(self) -> int:
        return self.spec.periods[-1] if self.spec.periods else 1

    def fit(self, history: Series) -> FittedSeasonalNaive:
        m = self.season
        if len(history) <= m:
            raise ModelError(f"seasonal_naive: needs more than {m} values, got {len(history)}")
        values = history.values
        errors = values[m:] - values[:-m]
        return FittedSeasonalNaive(
            last_season=values[-m:].copy(),
            sigma=float(np.sqrt(np.mean(errors**2))),
            z=self.spec.z,
            floor=non_negative_floor(history),
        )


@dataclass(frozen=True, eq=False)
class FittedSeasonalNaive:
    last_season: FloatArray
    sigma: float  # RMS of the in-sample seasonal differences
    z: float
    floor: float | None

    def forecast(self, steps: int) -> Forecast:
        m = len(self.last_season)
        ahead = np.arange(steps)
        # FPP3 5.5: the h-step sd grows with the number of whole seasons ahead, sqrt(k + 1)
        seasons_ahead = ahead // m
        sd = self.sigma * np.sqrt(seasons_ahead + 1.0)
        return floored(normal_forecast(self.last_season[ahead % m], sd, self.z), self.floor)
