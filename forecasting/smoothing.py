"""Exponential smoothing: Holt-Winters for one season, and the damped-trend ETS that forecasts
what a seasonal decomposition leaves (forecasting/decomposition.py)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from forecasting.errors import ModelError
from forecasting.forecast import Forecast, ModelSpec, normal_forecast
from forecasting.series import FloatArray, Series


def quiet_fit(name: str, fit: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a statsmodels fit with its convergence chatter silenced (the estimate is still
    usable and the backtest judges it); a failure becomes a ModelError naming the model."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            return fit(*args, **kwargs)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise ModelError(f"{name}: cannot fit: {exc}") from exc


def prediction_forecast(prediction: Any, z: float) -> Forecast:
    """A statsmodels PredictionResults as a Forecast (normal interval from var_pred_mean)."""
    mean = np.asarray(prediction.predicted_mean, dtype=np.float64)
    sd = np.sqrt(np.asarray(prediction.var_pred_mean, dtype=np.float64))
    return normal_forecast(mean, sd, z)


@dataclass(frozen=True, eq=False)
class FittedStatsmodels:
    """Any statsmodels result whose `get_prediction(start, end)` forecasts out of sample."""

    result: Any
    observed: int  # length of the fitted history: the first index out of sample
    z: float

    def forecast(self, steps: int) -> Forecast:
        prediction = self.result.get_prediction(start=self.observed, end=self.observed + steps - 1)
        return prediction_forecast(prediction, self.z)


def fit_damped_ets(values: FloatArray, z: float, name: str) -> FittedStatsmodels:
    """ETS(A,Ad,N): additive errors, damped additive trend, no season (fast at any length)."""
    # ETSModel's prediction needs a pandas index (numpy input breaks get_prediction)
    model = ETSModel(pd.Series(values), error="add", trend="add", damped_trend=True)
    return FittedStatsmodels(quiet_fit(name, model.fit, disp=False), len(values), z)


@dataclass(frozen=True)
class HoltWinters:
    """Additive Holt-Winters with a damped trend on the longest period of the spec; Holt's damped
    trend when there is none. Seasonal states start from a heuristic decomposition rather than
    being estimated, so a 336-step season fits in a fraction of a second."""

    spec: ModelSpec

    def fit(self, history: Series) -> FittedHoltWinters:
        values = history.values
        m = self.spec.periods[-1] if self.spec.periods else None
        if m is not None and len(values) < 2 * m + 10:
            raise ModelError(f"holt_winters: needs {2 * m + 10} values, got {len(values)}")
        model = ExponentialSmoothing(
            values,
            trend="add",
            damped_trend=True,
            seasonal="add" if m else None,
            seasonal_periods=m,
            initialization_method="heuristic" if m else "estimated",
        )
        # no brute-force grid for the starting parameters: it cost most of the fit's time and
        # gave the same optimum on the example traces (bench/forecast_backtest.py)
        result = quiet_fit("holt_winters", model.fit, use_brute=False)
        params = result.params
        alpha = float(params["smoothing_level"])
        return FittedHoltWinters(
            result=result,
            alpha=alpha,
            # statsmodels' beta is beta*, the innovations form uses alpha * beta*
            beta=alpha * float(params["smoothing_trend"]),
            gamma=float(params["smoothing_seasonal"]) if m else 0.0,
            phi=float(params["damping_trend"]),
            season=m or 0,
            sigma2=float(np.mean(np.asarray(result.resid, dtype=np.float64) ** 2)),
            z=self.spec.z,
        )


@dataclass(frozen=True, eq=False)
class FittedHoltWinters:
    result: Any
    alpha: float
    beta: float
    gamma: float
    phi: float
    season: int
    sigma2: float
    z: float

    def forecast(self, steps: int) -> Forecast:
        mean = np.asarray(self.result.forecast(steps), dtype=np.float64)
        return normal_forecast(mean, np.sqrt(self.variance(steps)), self.z)

    def variance(self, steps: int) -> FloatArray:
        """h-step forecast variance of ETS(A,Ad,A) (Hyndman et al. 2008, ch. 6):
        sigma² (1 + sum_{j<h} c_j²), c_j = alpha + beta (phi + ... + phi^j) + gamma [m | j]."""
        j = np.arange(1, steps, dtype=np.float64)
        damped_sum = np.cumsum(self.phi**j)
        seasonal = (j % self.season == 0) if self.season else np.zeros_like(j, dtype=bool)
        c = self.alpha + self.beta * damped_sum + self.gamma * seasonal
        return self.sigma2 * (1 + np.concatenate([[0.0], np.cumsum(c**2)]))
