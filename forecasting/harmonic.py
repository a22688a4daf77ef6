"""Dynamic harmonic regression: SARIMAX with Fourier terms for the seasons and ARIMA errors.

A seasonal SARIMAX at a 48-step or longer season takes minutes to fit; K sine/cosine pairs
per season cost the same whatever the season's length (FPP3 section 12.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from statsmodels.tsa.statespace.sarimax import SARIMAX

from forecasting.forecast import Forecast, ModelSpec
from forecasting.series import FloatArray, Series
from forecasting.smoothing import prediction_forecast, quiet_fit

MAX_HARMONICS = 3  # per season: more slowed fits without helping on the NAB traces


def fourier_terms(
    first: int, count: int, periods: tuple[int, ...], harmonics: int = MAX_HARMONICS
) -> FloatArray | None:
    """Columns sin(2πkt/m), cos(2πkt/m) for k = 1..min(m // 2, MAX_HARMONICS), t = first..;
    None without periods. The sine at k = m / 2 is dropped: it is zero at every integer t."""
    if not periods:
        return None
    t = np.arange(first, first + count, dtype=np.float64)
    columns = []
    for m in periods:
        for k in range(1, min(m // 2, harmonics) + 1):
            angle = 2 * np.pi * k * t / m
            if 2 * k != m:
                columns.append(np.sin(angle))
            columns.append(np.cos(angle))
    return np.column_stack(columns)


@dataclass(frozen=True)
class SarimaxFourier:
    """ARIMA(2,1,1) errors around Fourier terms of every period; plain ARIMA without one."""

    spec: ModelSpec
    order: tuple[int, int, int] = (2, 1, 1)  # differenced: the level follows the latest values
    harmonics: int = MAX_HARMONICS

    def fit(self, history: Series) -> FittedSarimaxFourier:
        exog = fourier_terms(0, len(history), self.spec.periods, self.harmonics)
        model = SARIMAX(
            history.values,
            exog=exog,
            order=self.order,
            trend="c" if self.order[1] == 0 else "n",
            concentrate_scale=True,
        )
        result = quiet_fit("sarimax_fourier", model.fit, disp=False)
        return FittedSarimaxFourier(
            result, len(history), self.spec.periods, self.harmonics, self.spec.z
        )


@dataclass(frozen=True, eq=False)
class FittedSarimaxFourier:
    result: Any
    observed: int
    periods: tuple[int, ...]
    harmonics: int
    z: float

    def forecast(self, steps: int) -> Forecast:
        exog = fourier_terms(self.observed, steps, self.periods, self.harmonics)
        return prediction_forecast(self.result.get_forecast(steps, exog=exog), self.z)
