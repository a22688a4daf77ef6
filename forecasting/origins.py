"""Rolling origins: where a backtest cuts the series, and one timed forecast from a cut."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from forecasting.errors import ModelError, SeriesError
from forecasting.forecast import Forecast, Model
from forecasting.series import Series

Clock = Callable[[], float]  # seconds, monotonic (time.perf_counter in production)
Progress = Callable[[int, int], None]  # (origins done, origins in all)

MIN_HISTORY = 50  # values before the first origin


def rolling_origins(length: int, horizon: int, count: int, span: int) -> tuple[int, ...]:
    """Up to `count` origins spread evenly over the last `span` steps that still leave
    `horizon` values after them, never leaving fewer than MIN_HISTORY values before them. An
    origin `o` fits on values[:o] and is scored on values[o:o + horizon]."""
    last = length - horizon
    first = max(last - span, MIN_HISTORY)
    if first > last:
        raise SeriesError(
            f"needs at least {MIN_HISTORY + horizon} values for a {horizon}-step horizon, "
            f"got {length}"
        )
    count = min(count, last - first + 1)
    return tuple(sorted({round(x) for x in np.linspace(first, last, count)}))


def origin_time(series: Series, origin: int) -> str:
    """The time of the first forecast value of an origin, ISO 8601 UTC, for messages."""
    when = datetime.fromtimestamp(series.start + origin * series.step_seconds, tz=UTC)
    return when.isoformat().replace("+00:00", "Z")


def forecast_at(
    model: Model, series: Series, origin: int, horizon: int, clock: Clock
) -> tuple[Forecast, float]:
    """Fit on the values before `origin` and forecast `horizon` steps; with the seconds taken."""
    began = clock()
    try:
        forecast = model.fit(series.head(origin)).forecast(horizon)
    except ModelError as exc:
        raise ModelError(f"{exc} (origin {origin_time(series, origin)})") from exc
    if not all(np.isfinite(a).all() for a in forecast):
        raise ModelError(f"forecast is not finite (origin {origin_time(series, origin)})")
    return forecast, clock() - began
