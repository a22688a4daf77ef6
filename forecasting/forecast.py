"""The one small interface every model implements: fit a history, forecast with an interval."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple, Protocol

import numpy as np

from forecasting.series import FloatArray, Series


class Forecast(NamedTuple):
    """Point forecast and a central prediction interval, one value per step ahead."""

    mean: FloatArray
    lower: FloatArray  # the (1 - quantile) quantile of the predictive distribution
    upper: FloatArray  # the `quantile` quantile


class Fitted(Protocol):
    def forecast(self, steps: int) -> Forecast:
        """The next `steps` values after the end of the history the model was fitted on."""
        ...


class Model(Protocol):
    def fit(self, history: Series) -> Fitted:
        """Fit on `history`; raises ModelError when it cannot."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """What every model is built from: the seasonal periods (in steps of the series it will fit,
    shortest first; empty for none) and the quantile of the interval's upper bound."""

    periods: tuple[int, ...] = ()
    quantile: float = 0.9

    def __post_init__(self) -> None:
        if not 0.5 < self.quantile < 1:
            raise ValueError(f"quantile must be in (0.5, 1), got {self.quantile}")
        if any(p < 2 for p in self.periods) or list(self.periods) != sorted(set(self.periods)):
            raise ValueError(f"periods must be distinct, ascending and >= 2, got {self.periods}")

    @property
    def z(self) -> float:
        """The standard normal quantile at `quantile`."""
        return NormalDist().inv_cdf(self.quantile)

    @property
    def alpha(self) -> float:
        """statsmodels' `alpha`: the probability outside the central interval."""
        return 2 * (1 - self.quantile)


def normal_forecast(mean: FloatArray, sd: FloatArray, z: float) -> Forecast:
    """A symmetric interval of `z` standard deviations around `mean`."""
    mean = np.asarray(mean, dtype=np.float64)
    half = z * np.asarray(sd, dtype=np.float64)
    return Forecast(mean, mean - half, mean + half)


def non_negative_floor(history: Series) -> float | None:
    """0 when the history never went below it (demand is not negative), else no floor."""
    return 0.0 if float(history.values.min()) >= 0 else None


def floored(forecast: Forecast, floor: float | None) -> Forecast:
    """The forecast with every value raised to `floor` (unchanged for None)."""
    if floor is None:
        return forecast
    return Forecast(*(np.maximum(values, floor) for values in forecast))
