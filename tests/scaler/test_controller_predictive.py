"""The scaling controller with spec.predictive, over the in-memory cluster in virtual time: the
forecast raises the reactive decision, never lowers it, and a failed or stale fit leaves the
reactive decision alone, saying so in the Predictive condition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from forecasting.errors import SeriesError
from forecasting.series import Series
from kube.memory import MemoryCluster
from kube.port import DEPLOYMENTS, SCALED_OBJECTS
from scaler.api import ScaledObject
from scaler.clock import VirtualClock
from scaler.controller import ScalingController
from scaler.predictive import InlineExecutor, Predictor, predictor_config
from scalers.base import MetricSpec, Scaler

T0 = 1_700_006_400.0
HOUR = 3600.0


class LevelHistory:
    """History at a level (requests/s) with a little noise; raises while `failing`, never
    answers while `hanging` (a server that accepts and stalls)."""

    def __init__(self, level: float) -> None:
        self.level = level
        self.failing = False
        self.hanging = False
        self.rng = np.random.default_rng(0)

    async def fetch(self, start: float, end: float, step: float) -> Series:
        if self.failing:
            raise SeriesError("prometheus: connection refused")
        if self.hanging:
            await asyncio.Event().wait()
        count = int((end - start) // step)
        values = self.level + self.rng.normal(0, 0.5, count)
        return Series(values, step, end - count * step)


class Predictors:
    def __init__(self, clock: VirtualClock, history: LevelHistory) -> None:
        self.clock, self.history = clock, history
        self.built: list[Predictor] = []

    async def __call__(self, so: ScaledObject) -> Predictor:
        config = predictor_config(so, pod_startup=30, node_launch=0)
        p = Predictor(so.metadata.name, config, self.history, self.clock, InlineExecutor())
        self.built.append(p)
        return p


class Reading:
    def __init__(self, spec: MetricSpec, value: Callable[[], float]) -> None:
        self.spec, self._value = spec, value

    async def read(self) -> float:
        return self._value()

    async def close(self) -> None:
        return None


def manifest(predictive: dict[str, Any] | None, annotations: dict[str, str] | None = None) -> Any:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": "api"},
        "pollingInterval": 15,
        "minReplicaCount": 1,
        "maxReplicaCount": 40,
        "triggers": [
            {
                "type": "prometheus",
                "name": "rps",
                "metadata": {
                    "serverAddress": "http://prometheus:9090",
                    "query": "sum(rate(http_requests_total[1m]))",
                    "threshold": "8",
                },
            }
        ],
    }
    if predictive is not None:
        spec["predictive"] = predictive
    return {  # stored in our group, as KEDA's alias is
        "apiVersion": "ebbflow.io/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "api", "namespace": "work", "annotations": annotations or {}},
        "spec": spec,
    }


# a query of its own: the forecast holds through its steps (see forecasting/policy.py)
PREDICTIVE = {"model": "holt_winters", "lookback": "1d", "step": "5m", "query": "sum(demand)"}


@pytest.fixture
async def world() -> AsyncIterator[tuple[MemoryCluster, VirtualClock]]:
    clock = VirtualClock(start=T0)
    cluster = MemoryCluster(now=clock.now)
    await cluster.create(
        DEPLOYMENTS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "work"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}}},
        },
    )
    yield cluster, clock
    cluster.close()


@asynccontextmanager
async def controller(
    cluster: MemoryCluster, clock: VirtualClock, predictors: Predictors | None, rps: float
) -> AsyncIterator[None]:
    """A controller running while the block advances the clock; the trigger reads `rps`."""

    async def factory(so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        return Reading(spec, lambda: rps)

    task = asyncio.create_task(
        ScalingController(cluster, clock, factory, predictors=predictors).run()
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def run(
    cluster: MemoryCluster,
    clock: VirtualClock,
    predictors: Predictors | None,
    rps: float,
    seconds: float,
) -> None:
    async with controller(cluster, clock, predictors, rps):
        await clock.run_until(clock.now() + seconds)


async def replicas(cluster: MemoryCluster) -> int:
    return (await cluster.get_scale(DEPLOYMENTS, "api", "work")).replicas


async def predictive_condition(cluster: MemoryCluster) -> dict[str, Any]:
    so = await cluster.get(SCALED_OBJECTS, "api", "work")
    [found] = [c for c in so["status"]["conditions"] if c["type"] == "Predictive"]
    return dict(found)


async def test_forecast_raises_the_reactive_decision(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    await cluster.create(SCALED_OBJECTS, manifest(PREDICTIVE))
    predictors = Predictors(clock, LevelHistory(200.0))
    await run(cluster, clock, predictors, 40.0, 60)
    # reactive: ceil(40 / 8) = 5; the forecast's 0.9 quantile of ~200/s needs 26
    assert await replicas(cluster) == 26
    condition = await predictive_condition(cluster)
    assert (condition["status"], condition["reason"]) == ("True", "ForecastInUse")
    assert "holt_winters" in condition["message"]


async def test_forecast_never_scales_in(world: tuple[MemoryCluster, VirtualClock]) -> None:
    cluster, clock = world
    await cluster.create(SCALED_OBJECTS, manifest(PREDICTIVE))
    predictors = Predictors(clock, LevelHistory(8.0))  # the forecast needs 2
    await run(cluster, clock, predictors, 80.0, 60)
    assert await replicas(cluster) == 10, "the reactive 80 / 8 stands"


async def test_failed_fit_leaves_exactly_the_reactive_decision(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    await cluster.create(SCALED_OBJECTS, manifest({**PREDICTIVE, "refitInterval": "10m"}))
    history = LevelHistory(200.0)
    predictors = Predictors(clock, history)
    async with controller(cluster, clock, predictors, 40.0):
        await clock.run_until(T0 + 60)
        assert await replicas(cluster) == 26
        history.failing = True
        # the refit at 10 min fails: from then on the reactive 5, after the scale-down window
        await clock.run_until(T0 + 10 * 60 + 301)
        assert await replicas(cluster) == 5
    condition = await predictive_condition(cluster)
    assert (condition["status"], condition["reason"]) == ("False", "FailedFit")
    assert "connection refused" in condition["message"]


async def test_stale_forecast_is_not_acted_on(world: tuple[MemoryCluster, VirtualClock]) -> None:
    cluster, clock = world
    await cluster.create(SCALED_OBJECTS, manifest({**PREDICTIVE, "refitInterval": "10m"}))
    history = LevelHistory(200.0)
    predictors = Predictors(clock, history)
    async with controller(cluster, clock, predictors, 40.0):
        await clock.run_until(T0 + 60)
        assert await replicas(cluster) == 26
        history.hanging = True  # the refit at 10 min never returns: the fit ages
        await clock.run_until(T0 + 20 * 60 - 15)
        assert await replicas(cluster) == 26, "fresh until two refit intervals"
        await clock.run_until(T0 + 20 * 60 + 301)
        assert await replicas(cluster) == 5
    condition = await predictive_condition(cluster)
    assert (condition["status"], condition["reason"]) == ("False", "StaleForecast")


async def test_annotation_turns_predictive_with_the_defaults(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    await cluster.create(SCALED_OBJECTS, manifest(None, {"ebbflow.io/predictive": "true"}))
    history = LevelHistory(200.0)
    history.failing = True  # no fit needed to see it driven: `auto` on 7 days is slow
    predictors = Predictors(clock, history)
    await run(cluster, clock, predictors, 40.0, 60)
    [built] = predictors.built
    assert (built.config.model, built.config.lookback) == ("auto", 7 * 86_400)
    assert built.failures == 1
    assert await replicas(cluster) == 5
    assert (await predictive_condition(cluster))["reason"] == "FailedFit"


async def test_reactive_objects_get_no_predictor(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    await cluster.create(SCALED_OBJECTS, manifest(None))
    predictors = Predictors(clock, LevelHistory(200.0))
    await run(cluster, clock, predictors, 40.0, 60)
    assert predictors.built == []
    assert await replicas(cluster) == 5
    so = await cluster.get(SCALED_OBJECTS, "api", "work")
    assert "Predictive" not in {c["type"] for c in so["status"]["conditions"]}
