"""Decompose, then forecast: STL (one season) and MSTL (several), with the seasonally adjusted
series forecast by a damped-trend ETS and each season carried forward from its last cycle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.forecasting.stl import STLForecast
from statsmodels.tsa.seasonal import MSTL

from forecasting.errors import ModelError
from forecasting.forecast import Fitted, Forecast, ModelSpec
from forecasting.series import FloatArray, Series
from forecasting.smoothing import FittedStatsmodels, fit_damped_ets, quiet_fit

REMAINDER = {"error": "add", "trend": "add", "damped_trend": True}  # ETS(A,Ad,N)
# Local-constant seasonal smoothing: statsmodels' default, a local line, extrapolates the last
# cycles' drift into the cycle carried forward (nyc_taxi around the holidays: MASE 1.9 vs 0.72)
SEASONAL_DEG = 0


@dataclass(frozen=True)
class Stl:
    """statsmodels' STLForecast on the longest period (it holds the shorter ones), with an
    ETS(A,Ad,N) remainder; without a period, that ETS on the series itself."""

    spec: ModelSpec

    def fit(self, history: Series) -> Fitted:
        if not self.spec.periods:
            return fit_damped_ets(history.values, self.spec.z, "stl")
        model = STLForecast(
            pd.Series(history.values),
            ETSModel,
            model_kwargs=REMAINDER,
            period=self.spec.periods[-1],
            seasonal_deg=SEASONAL_DEG,
        )
        return FittedStatsmodels(quiet_fit("stl", model.fit), len(history), self.spec.z)


@dataclass(frozen=True)
class Mstl:
    """MSTL over every period of the spec (daily and weekly together), the adjusted series
    (trend + remainder) forecast by ETS(A,Ad,N), each seasonal component repeated from its
    last cycle; the interval is the ETS one (the seasons are taken as known)."""

    spec: ModelSpec

    def fit(self, history: Series) -> Fitted:
        if not self.spec.periods:
            return fit_damped_ets(history.values, self.spec.z, "mstl")
        # statsmodels' MSTL silently drops a period of half the history or more
        longest = self.spec.periods[-1]
        if len(history) <= 2 * longest:
            raise ModelError(f"mstl: needs {2 * longest + 1} values, got {len(history)}")
        decomposition = quiet_fit(
            "mstl",
            MSTL(
                pd.Series(history.values),
                periods=self.spec.periods,
                stl_kwargs={"seasonal_deg": SEASONAL_DEG},
            ).fit,
        )
        seasonal = np.asarray(decomposition.seasonal, dtype=np.float64).reshape(len(history), -1)
        adjusted = history.values - seasonal.sum(axis=1)
        return FittedMstl(
            adjusted=fit_damped_ets(adjusted, self.spec.z, "mstl"),
            last_cycles=tuple(seasonal[-m:, i].copy() for i, m in enumerate(self.spec.periods)),
        )


@dataclass(frozen=True, eq=False)
class FittedMstl:
    adjusted: FittedStatsmodels
    last_cycles: tuple[FloatArray, ...]

    def forecast(self, steps: int) -> Forecast:
        ahead = np.arange(steps)
        season = sum((cycle[ahead % len(cycle)] for cycle in self.last_cycles), np.zeros(steps))
        mean, lower, upper = self.adjusted.forecast(steps)
        return Forecast(mean + season, lower + season, upper + season)
