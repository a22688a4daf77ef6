"""Forecast accuracy and elasticity metrics: pure functions over arrays.

- MASE (Hyndman & Koehler 2006): mean absolute error over the mean absolute in-sample error of
  the seasonal naive forecast at season m; below 1 beats that naive forecast in-sample.
- sMAPE, in percent: mean of 2|f - a| / (|a| + |f|); a point where both are 0 counts 0
  (a perfect forecast of nothing), so the range is [0, 200].
- SPEC RG elasticity (Herbst, Kounev, Reussner 2013; SPEC RG Cloud "Ready for Rain?" 2016),
  with the forecast as supply s_t and the actual value as demand d_t:
  theta_u = mean of max(d - s, 0) / d x 100 (under-provisioning accuracy, %),
  theta_o = mean of max(s - d, 0) / d x 100 (over-provisioning accuracy, %),
  tau_u = % of steps with s < d, tau_o = % of steps with s > d (timeshare).
  Rule for d <= 0: those steps are left out of theta (a relative shortfall of zero demand is
  undefined) but counted in tau; theta is NaN when no step has d > 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecasting.series import FloatArray


def seasonal_naive_scale(history: FloatArray, season: int) -> float:
    """Mean absolute in-sample error of the seasonal naive forecast: MASE's denominator."""
    if len(history) <= season:
        raise ValueError(f"MASE scale needs more than {season} values, got {len(history)}")
    return float(np.mean(np.abs(history[season:] - history[:-season])))


def mase(actual: FloatArray, forecast: FloatArray, history: FloatArray, season: int) -> float:
    """MASE of `forecast` against `actual`, scaled on `history`; NaN when the history is
    constant at that season (the scale is 0 and MASE undefined)."""
    scale = seasonal_naive_scale(history, season)
    error = float(np.mean(np.abs(actual - forecast)))
    return error / scale if scale > 0 else float("nan")


def smape(actual: FloatArray, forecast: FloatArray) -> float:
    """Symmetric MAPE in percent, [0, 200]; 0/0 points count 0."""
    size = np.abs(actual) + np.abs(forecast)
    safe = np.where(size > 0, size, 1.0)
    terms = np.where(size > 0, 2 * np.abs(forecast - actual) / safe, 0.0)
    return float(100 * np.mean(terms))


@dataclass(frozen=True)
class Elasticity:
    """SPEC RG provisioning accuracy (theta) and timeshare (tau), all in percent."""

    theta_u: float
    theta_o: float
    tau_u: float
    tau_o: float


def elasticity(demand: FloatArray, supply: FloatArray) -> Elasticity:
    """Elasticity of `supply` against `demand`, equally spaced steps (see the module doc)."""
    if demand.shape != supply.shape or demand.size == 0:
        raise ValueError("demand and supply must be non-empty arrays of the same shape")
    positive = demand > 0
    if positive.any():
        d, s = demand[positive], supply[positive]
        theta_u = float(100 * np.mean(np.maximum(d - s, 0) / d))
        theta_o = float(100 * np.mean(np.maximum(s - d, 0) / d))
    else:
        theta_u = theta_o = float("nan")
    return Elasticity(
        theta_u=theta_u,
        theta_o=theta_o,
        tau_u=float(100 * np.mean(supply < demand)),
        tau_o=float(100 * np.mean(supply > demand)),
    )
