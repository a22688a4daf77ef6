"""Rolling-origin backtests and the `ebbflow forecast backtest` entry point."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from forecasting.backtest import (
    MAX_ORIGINS,
    BacktestResult,
    default_horizon,
    evaluate,
    run_backtest,
    scores,
)
from forecasting.errors import ForecastError, ModelError, SeriesError
from forecasting.origins import MIN_HISTORY, rolling_origins
from forecasting.series import Series
from tests.forecasting.synthetic import HOURLY, hourly, seasonal_values


def trace_csv(values: np.ndarray, step: int = 3600, start: int = 1_400_000_400) -> str:
    rows = (f"{start + i * step},{v:.4f}" for i, v in enumerate(values))
    return "ts,value\n" + "\n".join(rows) + "\n"


def ticking_clock(step: float = 0.5) -> Callable[[], float]:
    """A clock that advances `step` seconds on every read: fit seconds become countable."""
    counter = itertools.count()
    return lambda: next(counter) * step


@pytest.mark.parametrize(
    ("step", "horizon"), [(300.0, 12), (1800.0, 2), (60.0, 60), (3600.0, 1), (86400.0, 1)]
)
def test_default_horizon_is_one_hour_of_steps(step: float, horizon: int) -> None:
    assert default_horizon(step) == horizon


def test_origins_spread_over_the_span_and_leave_a_horizon() -> None:
    origins = rolling_origins(length=1000, horizon=10, count=5, span=200)
    assert origins == (790, 840, 890, 940, 990)
    assert rolling_origins(length=MIN_HISTORY + 3, horizon=1, count=20, span=500) == (
        MIN_HISTORY,
        MIN_HISTORY + 1,
        MIN_HISTORY + 2,
    )


def test_too_short_a_series_is_an_error_that_says_how_long() -> None:
    with pytest.raises(SeriesError, match="needs at least 62 values for a 12-step horizon"):
        rolling_origins(length=61, horizon=12, count=20, span=100)


def test_scores_pool_points_and_average_mase_over_origins() -> None:
    actuals = [np.array([10.0, 10.0]), np.array([20.0, 0.0])]
    forecasts = [np.array([12.0, 10.0]), np.array([20.0, 1.0])]
    result = scores(actuals, forecasts, scales=[1.0, 0.5])
    assert result.mase == pytest.approx((1.0 / 1.0 + 0.5 / 0.5) / 2)
    assert result.smape == pytest.approx(100 * (2 * 2 / 22 + 0 + 0 + 2) / 4)
    assert result.elasticity.theta_o == pytest.approx(100 * (0.2 + 0 + 0) / 3)
    assert result.elasticity.tau_o == pytest.approx(50.0)


def test_named_model_beats_seasonal_naive_on_a_noisy_cycle() -> None:
    series = hourly(seasonal_values(24 * 14, noise=1.0, seed=4))
    result = evaluate(series, "holt_winters", clock=ticking_clock())
    assert result.periods == (24,)
    assert result.horizon == 1
    assert len(result.origins) == MAX_ORIGINS
    assert result.origins[0] >= 24 * 14 * 3 // 4 - 1  # the last quarter only
    assert result.selection is None
    assert result.scores.mase < result.baseline.mase
    # two fits per origin (model and baseline), each read the clock twice
    assert result.fit_seconds == pytest.approx(MAX_ORIGINS * 2 * 0.5)


def test_auto_chooses_on_the_history_before_the_first_origin() -> None:
    series = hourly(seasonal_values(24 * 14, noise=1.0, seed=5))
    seen: list[tuple[int, int]] = []
    result = evaluate(series, "auto", progress=lambda done, total: seen.append((done, total)))
    assert result.selection is not None
    assert result.model == result.selection.model
    assert max(result.selection.origins) + result.horizon <= result.origins[0]
    assert set(result.selection.scores) >= {"seasonal_naive", "holt_winters", "stl"}
    total = len(result.selection.origins) + len(result.origins)
    assert seen == [(done, total) for done in range(1, total + 1)]


def test_a_named_model_that_is_not_registered_is_refused() -> None:
    with pytest.raises(ModelError, match="unknown model 'arima'; known: auto, seasonal_naive"):
        evaluate(hourly(seasonal_values(200)), "arima")


def test_run_backtest_returns_the_documented_json(write_trace: Callable[..., Path]) -> None:
    path = write_trace(trace_csv(seasonal_values(24 * 12, noise=0.8, seed=6)))
    calls: list[tuple[int, int]] = []
    document = run_backtest(path, progress=lambda done, total: calls.append((done, total)))
    json.dumps(document, allow_nan=False)  # valid JSON: no NaN
    assert set(document) == {
        "model",
        "period",
        "horizonSteps",
        "metrics",
        "baseline",
        "fitSeconds",
    }
    assert set(document["metrics"]) == {"mase", "smape", "thetaU", "thetaO", "tauU", "tauO"}
    assert set(document["baseline"]) == {"model", "mase", "smape"}
    assert document["baseline"]["model"] == "seasonal_naive"
    assert document["period"] == [24]
    assert document["horizonSteps"] == 1
    assert document["model"] in {"seasonal_naive", "holt_winters", "stl", "sarimax_fourier"}
    assert document["metrics"]["tauU"] + document["metrics"]["tauO"] <= 100
    assert document["fitSeconds"] > 0
    assert calls[-1][0] == calls[-1][1]


def test_run_backtest_reads_iso_times_another_column_and_a_horizon(
    write_trace: Callable[..., Path],
) -> None:
    values = seasonal_values(24 * 12, seed=7)
    rows = [
        f"2015-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z,{v},{2 * v}" for i, v in enumerate(values)
    ]
    path = write_trace("timestamp,value,doubled\n" + "\n".join(rows) + "\n")
    document = run_backtest(path, column="doubled", horizon=6, model="seasonal_naive")
    assert document["model"] == "seasonal_naive"
    assert document["horizonSteps"] == 6
    assert document["metrics"]["mase"] == document["baseline"]["mase"]


def test_run_backtest_errors_name_the_file_and_line(write_trace: Callable[..., Path]) -> None:
    path = write_trace("ts,value\n0,1\n3600,oops\n")
    with pytest.raises(SeriesError, match=r"trace\.csv:line 3: value: not a number: 'oops'"):
        run_backtest(path)


def test_run_backtest_errors_on_a_short_trace_name_the_file(
    write_trace: Callable[..., Path],
) -> None:
    path = write_trace(trace_csv(np.ones(20)))
    with pytest.raises(SeriesError) as caught:
        run_backtest(path)
    assert str(caught.value).startswith(f"{path}: needs at least")


def test_run_backtest_refuses_an_unknown_model_naming_the_file(
    write_trace: Callable[..., Path],
) -> None:
    path = write_trace(trace_csv(seasonal_values(100)))
    with pytest.raises(ModelError, match=r"trace\.csv: unknown model 'neural'"):
        run_backtest(path, model="neural")


@pytest.mark.parametrize("horizon", [0, -3])
def test_run_backtest_refuses_a_horizon_below_one_step(
    write_trace: Callable[..., Path], horizon: int
) -> None:
    path = write_trace(trace_csv(seasonal_values(100)))
    with pytest.raises(
        ForecastError, match=rf"trace\.csv: horizon must be >= 1 step, got {horizon}"
    ):
        run_backtest(path, horizon=horizon)


def test_to_json_turns_undefined_metrics_into_null() -> None:
    series = Series(np.full(200, 5.0), HOURLY)  # constant: MASE's scale is 0
    document = evaluate(series, "seasonal_naive").to_json()
    assert document["metrics"]["mase"] is None
    assert document["metrics"]["smape"] == 0.0
    assert isinstance(evaluate(series, "seasonal_naive"), BacktestResult)
