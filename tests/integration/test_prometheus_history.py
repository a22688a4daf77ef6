"""The predictor's history from a real Prometheus (backfilled with promtool): range queries
through prometheus-api-client in a worker thread, and a fit on what they return."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np
import pytest

from forecasting.errors import SeriesError
from scaler.clock import VirtualClock
from scaler.history import PrometheusHistory
from scaler.predictive import Predictor, PredictorConfig, ThreadExecutor
from tests.integration.prometheus_server import Series, running_prometheus

END = int(time.time()) // 3600 * 3600  # a whole hour: the range steps fall on it
HISTORY = 6 * 3600


def demand(age: int) -> float:
    """Requests/s with an hourly cycle: 50 +- 20."""
    return 50.0 + 20.0 * math.sin(2 * math.pi * (END - age) / 3600)


SERIES = [
    Series("http_requests_rate", {"pod": "a"}, lambda age: demand(age) / 2),
    Series("http_requests_rate", {"pod": "b"}, lambda age: demand(age) / 2),
]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("history"), SERIES, END, HISTORY) as url:
        yield url


async def test_range_query_gives_the_history_on_the_step_grid(prometheus: str) -> None:
    history = PrometheusHistory(prometheus, "sum(http_requests_rate)")
    series = await history.fetch(END - 3600, END + 30, 60)
    assert len(series) == 61 and series.step_seconds == 60
    # sample k at END - 3600 + 60 k closes the step [t_k - 60, t_k): the series starts a step
    # before the first sample, and its last step ends at END
    assert series.start == END - 3600 - 60
    assert series.start + len(series) * 60 == END
    expected = [demand(3600 - 60 * k) for k in range(61)]
    np.testing.assert_allclose(series.values, expected, rtol=1e-9)


async def test_a_query_of_several_series_must_be_aggregated(prometheus: str) -> None:
    history = PrometheusHistory(prometheus, "http_requests_rate")
    with pytest.raises(SeriesError, match=r"returned 2 series; aggregate it to one \(sum"):
        await history.fetch(END - 600, END, 60)


async def test_no_history_is_an_error_not_zeros(prometheus: str) -> None:
    history = PrometheusHistory(prometheus, "sum(nothing_here)")
    with pytest.raises(SeriesError, match="no history"):
        await history.fetch(END - 600, END, 60)


async def test_unreachable_server_fails_the_fit_not_the_loop() -> None:
    clock = VirtualClock(start=END)
    dead = PrometheusHistory("http://127.0.0.1:9", "sum(x)", timeout=2)
    p = Predictor("work/api", config(), dead, clock, ThreadExecutor())
    fit = await p.refit()
    assert fit.failed and fit.error is not None
    assert p.decide(reactive=3, current=3, now=END).desired == 3


def config() -> PredictorConfig:
    return PredictorConfig(
        model="holt_winters",
        quantile=0.9,
        lookback=HISTORY - 600,
        refit_interval=600,
        step=60,
        lead_time=120,
        target_per_replica=10,
        min_replicas=1,
        max_replicas=20,
        reactive_reads_metric=False,
    )


async def test_predictor_fits_the_prometheus_history_off_the_loop(prometheus: str) -> None:
    clock = VirtualClock(start=END)
    history = PrometheusHistory(prometheus, "sum(http_requests_rate)")
    p = Predictor("work/api", config(), history, clock, ThreadExecutor())
    fit = await p.refit()
    assert fit.error is None and fit.snapshot is not None
    assert fit.snapshot.periods == (60,), "the hourly cycle, in one-minute steps"
    at = END + 15 * 60  # a quarter past: the cycle's peak, 70/s
    wanted = p.forecast_replicas(at)
    assert wanted is not None
    assert math.ceil(demand(-15 * 60) / 10) <= wanted <= math.ceil(demand(-15 * 60) / 10) + 1
