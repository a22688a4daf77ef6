"""Rolling-origin backtest of a model against seasonal naive on the same splits, and
`run_backtest`, the entry point of `ebbflow forecast backtest`.

The JSON document (`BacktestResult.to_json`, stable):

    {"model": "holt_winters",          the model backtested; what `auto` chose
     "period": [48, 336],              seasons detected, in steps, shortest first; [] for none
     "horizonSteps": 2,                steps ahead of each origin that are scored
     "metrics": {"mase", "smape",      the model's MASE (vs in-sample seasonal naive) and sMAPE %
                 "thetaU", "thetaO",   SPEC RG under/over-provisioning % (forecast = supply)
                 "tauU", "tauO"},      % of steps under/over-provisioned
     "baseline": {"model": "seasonal_naive", "mase", "smape"},   same origins, same scale
     "fitSeconds": 15.1}               wall seconds of every fit and forecast, validation included

Metrics that are undefined (a constant history gives MASE no scale; theta with no positive
demand) are null. Seasonal naive repeats the value one longest season earlier (one step when
there is no season); MASE is scaled on that same season, so the two MASEs compare directly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecasting.errors import ForecastError, ModelError
from forecasting.forecast import ModelSpec
from forecasting.metrics import Elasticity, elasticity, seasonal_naive_scale, smape
from forecasting.models import BASELINE, MODELS, make_model
from forecasting.origins import Clock, Progress, forecast_at, rolling_origins
from forecasting.seasonality import HOUR, detect_periods
from forecasting.selection import Selection, select_model, validation_origins
from forecasting.series import FloatArray, Series, read_series

AUTO = "auto"
MAX_ORIGINS = 20  # fits are slow: bound the origins, not the trace
TEST_FRACTION = 4  # origins spread over the last quarter of the trace


def default_horizon(step_seconds: float) -> int:
    """One hour of steps (12 at 5 min, 2 at 30 min), or 1 step when the step is an hour or
    longer: the lead time a pod or node needs is minutes, not days."""
    return max(1, round(HOUR / step_seconds))


@dataclass(frozen=True)
class Scores:
    """Accuracy over every origin: MASE averaged over origins (each scaled on its own history),
    sMAPE and elasticity pooled over every forecast step."""

    mase: float
    smape: float
    elasticity: Elasticity


def scores(
    actuals: Sequence[FloatArray], forecasts: Sequence[FloatArray], scales: Sequence[float]
) -> Scores:
    """Scores of forecasts against actuals, one array pair and MASE scale per origin."""
    errors = [float(np.mean(np.abs(a - f))) for a, f in zip(actuals, forecasts, strict=True)]
    per_origin = [e / s for e, s in zip(errors, scales, strict=True) if s > 0]
    actual, forecast = np.concatenate(actuals), np.concatenate(forecasts)
    return Scores(
        mase=float(np.mean(per_origin)) if per_origin else float("nan"),
        smape=smape(actual, forecast),
        elasticity=elasticity(demand=actual, supply=forecast),
    )


@dataclass(frozen=True)
class BacktestResult:
    model: str
    periods: tuple[int, ...]
    horizon: int
    origins: tuple[int, ...]
    scores: Scores
    baseline: Scores
    fit_seconds: float  # every fit and forecast: validation (auto), model and baseline
    selection: Selection | None  # how `auto` chose; None for a named model

    def to_json(self) -> dict[str, Any]:
        """The stable JSON of `ebbflow forecast backtest -o json`; NaN becomes null."""
        e = self.scores.elasticity
        return {
            "model": self.model,
            "period": list(self.periods),
            "horizonSteps": self.horizon,
            "metrics": {
                "mase": _number(self.scores.mase),
                "smape": _number(self.scores.smape),
                "thetaU": _number(e.theta_u),
                "thetaO": _number(e.theta_o),
                "tauU": _number(e.tau_u),
                "tauO": _number(e.tau_o),
            },
            "baseline": {
                "model": BASELINE,
                "mase": _number(self.baseline.mase),
                "smape": _number(self.baseline.smape),
            },
            "fitSeconds": round(self.fit_seconds, 3),
        }


def evaluate(
    series: Series,
    model: str = AUTO,
    horizon: int | None = None,
    quantile: float = 0.9,
    clock: Clock = time.perf_counter,
    progress: Progress | None = None,
) -> BacktestResult:
    """Backtest `model` (a registered name, or "auto") on `series` over at most MAX_ORIGINS
    rolling origins in its last quarter, seasonal naive on the same origins.

    Seasons are detected, and `auto` chooses its model, on the values before the first origin
    only: nothing the backtest scores is seen before it is forecast.
    """
    if model != AUTO and model not in MODELS:
        raise ModelError(f"unknown model {model!r}; known: {', '.join([AUTO, *MODELS])}")
    steps = default_horizon(series.step_seconds) if horizon is None else horizon
    if steps < 1:
        raise ForecastError(f"horizon must be >= 1 step, got {steps}")
    origins = rolling_origins(len(series), steps, MAX_ORIGINS, len(series) // TEST_FRACTION)
    history = series.head(origins[0])
    spec = ModelSpec(detect_periods(history), quantile)
    total = len(origins) + (
        len(validation_origins(history, spec.periods, steps)) if model == AUTO else 0
    )
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    selection = None
    if model == AUTO:
        selection = select_model(history, spec, steps, clock, tick)
        model = selection.model
    season = spec.periods[-1] if spec.periods else 1
    chosen, baseline = make_model(model, spec), make_model(BASELINE, spec)
    actuals: list[FloatArray] = []
    ours: list[FloatArray] = []
    naive: list[FloatArray] = []
    scales: list[float] = []
    seconds = selection.fit_seconds if selection else 0.0
    for origin in origins:
        actuals.append(series.values[origin : origin + steps])
        scales.append(seasonal_naive_scale(series.values[:origin], season))
        for fitted, into in ((chosen, ours), (baseline, naive)):
            forecast, took = forecast_at(fitted, series, origin, steps, clock)
            into.append(forecast.mean)
            seconds += took
        tick()
    return BacktestResult(
        model=model,
        periods=spec.periods,
        horizon=steps,
        origins=origins,
        scores=scores(actuals, ours, scales),
        baseline=scores(actuals, naive, scales),
        fit_seconds=seconds,
        selection=selection,
    )


def run_backtest(
    path: str | Path,
    column: str = "value",
    horizon: int | None = None,
    model: str = AUTO,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """`ebbflow forecast backtest --trace PATH`: read a `timestamp,value` (or `ts,value`) CSV,
    backtest `model` against seasonal naive, and return the JSON document (see
    BacktestResult.to_json). `horizon` defaults to one hour of steps (`default_horizon`);
    `progress(done, total)` is called after each origin, validation origins of `auto` included.
    Raises ForecastError (SeriesError, ModelError) with a message naming the file."""
    trace = Path(path)
    series = read_series(trace, column)
    try:
        result = evaluate(series, model, horizon, progress=progress)
    except ForecastError as exc:
        raise type(exc)(f"{trace}: {exc}") from exc
    return result.to_json()


def _number(value: float) -> float | None:
    return round(value, 4) if np.isfinite(value) else None
