"""`model: auto`: choose by rolling-origin validation on the history itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forecasting.errors import ModelError
from forecasting.forecast import ModelSpec
from forecasting.metrics import mase
from forecasting.models import BASELINE, make_model
from forecasting.origins import Clock, forecast_at, rolling_origins
from forecasting.series import Series

VALIDATION_ORIGINS = 6


@dataclass(frozen=True)
class Selection:
    """The chosen model, each candidate's mean validation MASE (None: it failed to fit), the
    validation origins and the seconds all the fits took."""

    model: str
    scores: dict[str, float | None]
    origins: tuple[int, ...]
    fit_seconds: float


def candidates(periods: tuple[int, ...]) -> tuple[str, ...]:
    """Models worth trying: the decompositions need a season, MSTL two."""
    names = [BASELINE, "holt_winters", "sarimax_fourier"]
    if periods:
        names.append("stl")
    if len(periods) > 1:
        names.append("mstl")
    return tuple(names)


def validation_origins(history: Series, periods: tuple[int, ...], horizon: int) -> tuple[int, ...]:
    """Spread over the last longest cycle (so they see different times of day), or over
    VALIDATION_ORIGINS horizons when there is no season."""
    span = max(max(periods, default=0), VALIDATION_ORIGINS * horizon)
    return rolling_origins(len(history), horizon, VALIDATION_ORIGINS, span)


def select_model(
    history: Series,
    spec: ModelSpec,
    horizon: int,
    clock: Clock = time.perf_counter,
    tick: Callable[[], None] | None = None,
) -> Selection:
    """The candidate with the lowest mean MASE over validation origins inside `history`. A
    candidate that fails to fit at any origin drops out; the baseline never does. Ties go to
    the simpler model (the order of `candidates`). `tick` is called after each origin."""
    origins = validation_origins(history, spec.periods, horizon)
    names = candidates(spec.periods)
    errors: dict[str, list[float]] = {name: [] for name in names}
    failed: set[str] = set()
    seconds = 0.0
    season = spec.periods[-1] if spec.periods else 1
    for origin in origins:
        actual = history.values[origin : origin + horizon]
        for name in names:
            if name in failed:
                continue
            try:
                forecast, took = forecast_at(
                    make_model(name, spec), history, origin, horizon, clock
                )
            except ModelError:
                if name == BASELINE:
                    raise
                failed.add(name)
                continue
            seconds += took
            errors[name].append(mase(actual, forecast.mean, history.values[:origin], season))
        if tick is not None:
            tick()
    fitted = {name: _mean(errors[name]) for name in names if name not in failed}
    best = min(fitted, key=fitted.__getitem__)  # min keeps the first of equals
    scores = {name: fitted.get(name) for name in names}
    return Selection(best, scores, origins, seconds)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("inf")
