"""The predictor: refits on the Clock's schedule, falls back on failed or stale fits, fits off
the event loop in the operator and inline in virtual time; spec.predictive's defaults."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from forecasting.errors import SeriesError
from forecasting.policy import Reason
from forecasting.series import Series
from scaler.api import ScaledObject
from scaler.clock import VirtualClock
from scaler.manifests import validation_context
from scaler.predictive import (
    InlineExecutor,
    PredictiveConfigError,
    Predictor,
    PredictorConfig,
    ThreadExecutor,
    default_lead_time,
    predictor_config,
)

HOUR = 3600.0
T0 = 1_700_006_400.0  # a whole hour


def daily(at: float) -> float:
    """Demand with a daily cycle: 40 +- 30 requests/s."""
    return 40.0 + 30.0 * np.sin(2 * np.pi * at / 86_400)


class SyntheticHistory:
    """A HistorySource over `daily`, recording each query; raises while `failing`."""

    def __init__(self) -> None:
        self.queries: list[tuple[float, float, float]] = []
        self.failing = False

    async def fetch(self, start: float, end: float, step: float) -> Series:
        self.queries.append((start, end, step))
        if self.failing:
            raise SeriesError("prometheus: connection refused")
        first = np.ceil(start / step) * step
        times = np.arange(first, end - step + 1e-9, step)
        return Series(np.array([daily(t) for t in times]), step, float(first))


def config(**changes: Any) -> PredictorConfig:
    fields: dict[str, Any] = {
        "model": "holt_winters",
        "quantile": 0.9,
        "lookback": 7 * 86_400.0,
        "refit_interval": HOUR,
        "step": HOUR,
        "lead_time": 90.0,
        "target_per_replica": 10.0,
        "min_replicas": 1,
        "max_replicas": 50,
        "reactive_reads_metric": False,
    }
    fields.update(changes)
    return PredictorConfig(**fields)


def predictor(clock: VirtualClock, history: SyntheticHistory, **changes: Any) -> Predictor:
    return Predictor("work/api", config(**changes), history, clock, InlineExecutor())


async def test_refits_on_the_clock_schedule_with_history_up_to_now() -> None:
    clock, history = VirtualClock(start=T0), SyntheticHistory()
    p = predictor(clock, history)
    p.start()
    await clock.run_until(T0 + 3 * HOUR)
    await p.stop()
    assert [end for _, end, _ in history.queries] == [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert all(end - start == 7 * 86_400 for start, end, _ in history.queries)
    assert p.fits == 4
    assert p.fit.snapshot is not None
    assert p.fit.snapshot.made_at <= T0 + 3 * HOUR, "the fit saw nothing after now"
    assert p.fit.snapshot.periods == (24,), "the daily cycle, in hourly steps"


async def test_forecast_replicas_follow_the_forecast_and_its_quantile() -> None:
    clock, history = VirtualClock(start=T0), SyntheticHistory()
    p = predictor(clock, history)
    await p.refit()
    at = T0 + 2 * HOUR
    wanted = p.forecast_replicas(at)
    assert wanted is not None
    # the 0.9 quantile of a clean cycle: at least what the demand needs, not much more
    assert np.ceil(daily(at) / 10) <= wanted <= np.ceil(daily(at) / 10) + 2


async def test_failed_fit_falls_back_to_reactive_until_a_refit_succeeds() -> None:
    clock, history = VirtualClock(start=T0), SyntheticHistory()
    p = predictor(clock, history)
    await p.refit()
    assert p.decide(reactive=1, current=1, now=clock.now()).reason is Reason.FORECAST
    history.failing = True
    await p.refit()
    result = p.decide(reactive=1, current=1, now=clock.now())
    assert (result.desired, result.reason) == (1, Reason.FAILED)
    assert "connection refused" in result.message
    assert p.forecast_replicas(clock.now() + 60) is None
    history.failing = False
    await p.refit()
    assert p.decide(reactive=1, current=1, now=clock.now()).reason is Reason.FORECAST


async def test_a_fit_older_than_two_refit_intervals_is_not_acted_on() -> None:
    clock, history = VirtualClock(start=T0), SyntheticHistory()
    p = predictor(clock, history)
    await p.refit()  # and no refits after it: the schedule is stopped
    await clock.run_until(T0 + 2 * HOUR + 60)
    result = p.decide(reactive=2, current=5, now=clock.now())
    assert (result.desired, result.reason) == (2, Reason.STALE)
    assert p.forecast_replicas(clock.now() + 60) is None


async def test_operator_fits_run_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    assert await ThreadExecutor()(threading.get_ident) != loop_thread
    assert await InlineExecutor()(threading.get_ident) == loop_thread


def scaled_object(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> ScaledObject:
    manifest = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "api", "namespace": "work", "annotations": annotations or {}},
        "spec": {
            "scaleTargetRef": {"name": "api"},
            "pollingInterval": 15,
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "rps",
                    "metadata": {
                        "serverAddress": "http://prometheus:9090",
                        "query": "sum(rate(http_requests_total[1m]))",
                        "threshold": "8",
                    },
                },
                {
                    "type": "cpu",
                    "name": "cpu",
                    "metricType": "Utilization",
                    "metadata": {"value": "60"},
                },
            ],
            **spec,
        },
    }
    return ScaledObject.model_validate(manifest, context=validation_context())


def test_defaults_come_from_the_trigger_and_the_measured_start_up() -> None:
    so = scaled_object({}, {"ebbflow.io/predictive": "true"})
    c = predictor_config(so, pod_startup=40, node_launch=75)
    assert c.target_per_replica == 8  # the trigger's threshold
    assert c.lead_time == default_lead_time(40, 75, 15) == 130  # start-up + node + one poll
    assert (c.model, c.quantile, c.refit_interval, c.max_age) == ("auto", 0.9, HOUR, 2 * HOUR)
    assert c.reactive_reads_metric, "the history is the trigger's own query"
    assert c.horizon_steps * c.step >= c.max_age + c.lead_time


def test_explicit_settings_win_over_defaults() -> None:
    so = scaled_object(
        {"predictive": {"leadTime": "2m", "targetPerReplica": 5, "query": "sum(x)", "step": "1m"}}
    )
    c = predictor_config(so, pod_startup=40, node_launch=0)
    assert (c.lead_time, c.target_per_replica, c.step) == (120, 5, 60)
    assert not c.reactive_reads_metric, "a query of its own is not what the trigger reads"


def test_a_cpu_trigger_needs_a_target_per_replica() -> None:
    so = scaled_object({"predictive": {"trigger": "cpu"}})
    with pytest.raises(PredictiveConfigError, match=r"spec\.predictive\.targetPerReplica"):
        predictor_config(so, pod_startup=30, node_launch=0)


def test_disabled_spec_wins_over_the_annotation() -> None:
    so = scaled_object({"predictive": {"enabled": False}}, {"ebbflow.io/predictive": "true"})
    assert so.predictive is None
    assert scaled_object({}).predictive is None


async def test_stop_cancels_the_refit_task() -> None:
    clock, history = VirtualClock(start=T0), SyntheticHistory()
    p = predictor(clock, history)
    p.start()
    await clock.run_until(T0 + 1)
    await p.stop()
    await clock.run_until(T0 + 5 * HOUR)
    assert p.fits == 1
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("predictor/")]
