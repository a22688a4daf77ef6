"""The scaling controller against the in-memory cluster, in virtual time (the simulator's path)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kube.memory import MemoryCluster
from kube.port import DEPLOYMENTS, EVENTS, SCALED_OBJECTS
from scaler.api import ScaledObject
from scaler.clock import VirtualClock
from scaler.controller import ScalingController
from scalers.base import MetricSpec, Scaler


class ScriptedScaler:
    """A metric source whose value is a function of time; it raises where that function does."""

    def __init__(self, spec: MetricSpec, value: Callable[[float], float]) -> None:
        self.spec = spec
        self._value = value
        self.closed = False

    async def read(self) -> float:
        return self._value(clock_now())

    async def close(self) -> None:
        self.closed = True


_clock: list[VirtualClock] = []


def clock_now() -> float:
    return _clock[0].now()


def so_manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ebbflow.io/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": "work"},
        "spec": {
            "scaleTargetRef": {"name": name},
            "pollingInterval": 30,
            "cooldownPeriod": 120,
            "triggers": [
                {
                    "type": "kafka",
                    "name": "lag",
                    "metadata": {
                        "bootstrapServers": "kafka:9092",
                        "consumerGroup": name,
                        "lagThreshold": "10",
                    },
                }
            ],
            **spec,
        },
    }


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "work"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}},
        },
    }


@pytest.fixture
async def world() -> AsyncIterator[tuple[MemoryCluster, VirtualClock]]:
    clock = VirtualClock(start=1_700_000_000)
    _clock[:] = [clock]
    cluster = MemoryCluster(now=clock.now)
    yield cluster, clock
    cluster.close()


async def run_controller(
    cluster: MemoryCluster,
    clock: VirtualClock,
    values: dict[str, Callable[[float], float]],
    seconds: float,
) -> ScalingController:
    scalers: list[ScriptedScaler] = []

    async def factory(so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        scaler = ScriptedScaler(spec, values[so.metadata.name])
        scalers.append(scaler)
        return scaler

    controller = ScalingController(cluster, clock, factory)
    task = asyncio.create_task(controller.run())
    await clock.run_until(clock.now() + seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert all(s.closed for s in scalers), "scalers are closed on shutdown"
    return controller


async def events_of(cluster: MemoryCluster, name: str) -> list[tuple[str, str]]:
    items, _ = await cluster.list(EVENTS, "work")
    return [(e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == name]


async def test_controller_scales_writes_status_and_events(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    t0 = clock.now()
    await cluster.create(DEPLOYMENTS, deployment("orders", 0))
    await cluster.create(SCALED_OBJECTS, so_manifest("orders"))
    # lag 95 for five minutes, then nothing
    await run_controller(cluster, clock, {"orders": lambda t: 95.0 if t < t0 + 300 else 0.0}, 200)

    scale = await cluster.get_scale(DEPLOYMENTS, "orders", "work")
    assert scale.replicas == 10  # woke from 0 straight to ceil(95 / 10)
    so = await cluster.get(SCALED_OBJECTS, "orders", "work")
    conditions = {c["type"]: c["status"] for c in so["status"]["conditions"]}
    assert conditions == {"Ready": "True", "Active": "True", "Fallback": "False", "Paused": "False"}
    assert so["status"]["health"]["s0-kafka-orders"] == {"numberOfFailures": 0, "status": "Happy"}
    assert so["status"]["lastActiveTime"] == "2023-11-14T22:16:20Z"  # the poll at t0 + 180 s
    assert (await events_of(cluster, "orders")) == [
        ("KEDAScaleTargetActivated", "Scaled apps/v1.Deployment work/orders from 0 to 10"),
    ]

    # the metric drops at t0+300; cooldown 120 s after the last active poll -> zero
    await run_controller(cluster, clock, {"orders": lambda t: 95.0 if t < t0 + 300 else 0.0}, 400)
    assert (await cluster.get_scale(DEPLOYMENTS, "orders", "work")).replicas == 0
    so = await cluster.get(SCALED_OBJECTS, "orders", "work")
    assert {c["type"]: c["status"] for c in so["status"]["conditions"]}["Active"] == "False"
    assert (await events_of(cluster, "orders"))[-1] == (
        "KEDAScaleTargetDeactivated",
        "Scaled apps/v1.Deployment work/orders from 10 to 0",
    )


async def test_failing_trigger_goes_to_fallback_never_to_zero(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    t0 = clock.now()
    await cluster.create(DEPLOYMENTS, deployment("feed", 0))
    await cluster.create(
        SCALED_OBJECTS, so_manifest("feed", fallback={"failureThreshold": 2, "replicas": 4})
    )

    def lag(t: float) -> float:
        if t >= t0 + 100:
            raise ConnectionError("broker unreachable")
        return 35.0

    seen: list[int] = []

    async def watch_scale() -> None:
        async for event in cluster.watch(DEPLOYMENTS, "work"):
            seen.append(event.object["spec"]["replicas"])

    watcher = asyncio.create_task(watch_scale())
    await run_controller(cluster, clock, {"feed": lag}, 1000)
    watcher.cancel()

    assert seen[0] == 4  # woke to ceil(35 / 10)
    assert 0 not in seen, "a failing trigger never scales to zero"
    assert (await cluster.get_scale(DEPLOYMENTS, "feed", "work")).replicas == 4
    so = await cluster.get(SCALED_OBJECTS, "feed", "work")
    conditions = {c["type"]: c["status"] for c in so["status"]["conditions"]}
    assert conditions["Fallback"] == "True"
    assert so["status"]["health"]["s0-kafka-feed"]["status"] == "Failing"
    reasons = [r for r, _ in await events_of(cluster, "feed")]
    assert reasons.count("KEDAScalerFailed") == 1  # once per failure streak, not per poll


async def test_one_broken_object_never_stops_the_others(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    await cluster.create(DEPLOYMENTS, deployment("good", 1))
    await cluster.create(SCALED_OBJECTS, so_manifest("good"))
    await cluster.create(SCALED_OBJECTS, so_manifest("orphan"))  # its Deployment does not exist
    controller = await run_controller(
        cluster, clock, {"good": lambda t: 50.0, "orphan": lambda t: 50.0}, 600
    )
    assert (await cluster.get_scale(DEPLOYMENTS, "good", "work")).replicas == 5
    # get_scale on a missing Deployment fails each poll; retried with growing backoff
    errors = controller.stats.errors["work/orphan"]
    assert 5 <= errors <= 10, errors  # 1+2+4+...s backoff within 600 s, not 600 tries


async def test_invalid_scaled_object_is_reported_not_run(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    bad = so_manifest("typo")
    bad["spec"]["triggers"][0]["metadata"]["lagThreshold"] = "ten"
    await cluster.create(DEPLOYMENTS, deployment("typo", 2))
    await cluster.create(SCALED_OBJECTS, bad)
    controller = await run_controller(cluster, clock, {"typo": lambda t: 500.0}, 120)
    assert controller.driven() == []
    assert (await cluster.get_scale(DEPLOYMENTS, "typo", "work")).replicas == 2
    so = await cluster.get(SCALED_OBJECTS, "typo", "work")
    ready = so["status"]["conditions"][0]
    assert (ready["type"], ready["status"]) == ("Ready", "False")
    assert (
        ready["message"]
        == 'spec.triggers[0].metadata.lagThreshold: must be a positive number, got "ten"'
    )


async def test_spec_change_is_picked_up_and_delete_stops_driving(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    await cluster.create(DEPLOYMENTS, deployment("web", 1))
    await cluster.create(SCALED_OBJECTS, so_manifest("web"))
    scalers: list[ScriptedScaler] = []

    async def factory(so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        scalers.append(ScriptedScaler(spec, lambda t: 200.0))
        return scalers[-1]

    controller = ScalingController(cluster, clock, factory)
    task = asyncio.create_task(controller.run())
    try:
        await clock.run_until(clock.now() + 10)
        assert (await cluster.get_scale(DEPLOYMENTS, "web", "work")).replicas == 5  # max(2, 1+4)
        await cluster.patch(SCALED_OBJECTS, "web", {"spec": {"maxReplicaCount": 3}}, "work")
        await clock.run_until(clock.now() + 60)
        assert (await cluster.get_scale(DEPLOYMENTS, "web", "work")).replicas == 3
        assert scalers[0].closed and not scalers[1].closed  # rebuilt on the spec change
        await cluster.delete(SCALED_OBJECTS, "web", "work")
        await clock.run_until(clock.now() + 60)
        assert controller.driven() == []
        assert scalers[1].closed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_deleted_object_restores_the_original_count_when_asked(
    world: tuple[MemoryCluster, VirtualClock],
) -> None:
    cluster, clock = world
    await cluster.create(DEPLOYMENTS, deployment("restore", 3))
    await cluster.create(DEPLOYMENTS, deployment("keep", 3))
    await cluster.create(
        SCALED_OBJECTS, so_manifest("restore", advanced={"restoreToOriginalReplicaCount": True})
    )
    await cluster.create(SCALED_OBJECTS, so_manifest("keep"))

    async def factory(so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        return ScriptedScaler(spec, lambda t: 90.0)

    controller = ScalingController(cluster, clock, factory)
    task = asyncio.create_task(controller.run())
    try:
        await clock.run_until(clock.now() + 60)
        assert (await cluster.get_scale(DEPLOYMENTS, "restore", "work")).replicas == 9
        status = (await cluster.get(SCALED_OBJECTS, "restore", "work"))["status"]
        assert status["originalReplicaCount"] == 3
        for name in ("restore", "keep"):
            await cluster.delete(SCALED_OBJECTS, name, "work")
        await clock.run_until(clock.now() + 5)
        assert (await cluster.get_scale(DEPLOYMENTS, "restore", "work")).replicas == 3
        assert (await cluster.get_scale(DEPLOYMENTS, "keep", "work")).replicas == 9
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # shutting down is not deleting: nothing was restored by the cancel above
    assert (await cluster.get_scale(DEPLOYMENTS, "keep", "work")).replicas == 9
