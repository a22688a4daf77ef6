"""One scheduled fit of the predictive policy: history in, a quantile forecast out. Pure CPU.

The predictor (scaler/predictive.py) runs `fit_snapshot` in an executor: it detects the seasons
of the history, chooses the model when asked for `auto` (or reuses an earlier choice), fits it
and keeps the upper quantile of the next `horizon_steps` steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecasting.errors import ModelError
from forecasting.forecast import ModelSpec
from forecasting.models import MODELS, make_model
from forecasting.policy import ForecastSnapshot
from forecasting.seasonality import detect_periods
from forecasting.selection import select_model
from forecasting.series import Series

AUTO = "auto"
MIN_HISTORY = 24  # values: fewer, and no model has anything to learn


@dataclass(frozen=True)
class FitRequest:
    """What to fit: `model` ("auto" or a registered name), the quantile kept, the steps ahead,
    and for `auto` an earlier choice to reuse (None: choose now)."""

    model: str
    quantile: float
    horizon_steps: int
    chosen: str | None = None

    def __post_init__(self) -> None:
        if self.model != AUTO and self.model not in MODELS:
            raise ModelError(f"unknown model {self.model!r}; known: {', '.join([AUTO, *MODELS])}")
        if self.horizon_steps < 1:
            raise ValueError(f"horizon_steps must be >= 1, got {self.horizon_steps}")


def fit_snapshot(history: Series, request: FitRequest) -> ForecastSnapshot:
    """Fit on `history` and forecast `request.horizon_steps` steps after its end; raises
    ModelError when the history is too short or the model cannot fit it."""
    if len(history) < MIN_HISTORY:
        raise ModelError(f"needs at least {MIN_HISTORY} values of history, got {len(history)}")
    periods = detect_periods(history)
    spec = ModelSpec(periods, request.quantile)
    name = request.model
    if name == AUTO:
        name = request.chosen or select_model(history, spec, request.horizon_steps).model
    forecast = make_model(name, spec).fit(history).forecast(request.horizon_steps)
    upper = np.asarray(forecast.upper, dtype=np.float64)
    if not (np.isfinite(upper).all() and np.isfinite(forecast.mean).all()):
        raise ModelError(f"{name}: forecast is not finite")
    return ForecastSnapshot(
        made_at=history.start + len(history) * history.step_seconds,
        step_seconds=history.step_seconds,
        values=tuple(float(v) for v in upper),
        median=tuple(float(v) for v in np.asarray(forecast.mean, dtype=np.float64)),
        quantile=request.quantile,
        model=name,
        periods=periods,
    )
