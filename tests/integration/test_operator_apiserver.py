"""The operator over HTTP: kubernetes_asyncio (kube/client.py) against the API emulator.

Real time, real sockets: each wait is for an observed change (a watch event on the cluster)
with a deadline, never a sleep for timing. The fault switches inject what real API servers
do under load: 429 with Retry-After, 500s, 409 conflicts, dropped watches and 410 Gone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ebbflow.operator.run import Operator
from ebbflow.settings import OperatorSettings
from kube.apiserver.serve import RunningServer, serve, write_kubeconfig
from kube.client import KubeClient
from kube.memory import MemoryCluster
from kube.port import DEPLOYMENTS, EVENTS, SCALED_OBJECTS
from scaler.api import ScaledObject
from scaler.clock import RealClock
from scalers.base import MetricSpec, Scaler


class Metric:
    """A metric source the test turns up, down, or into failures."""

    def __init__(self, value: float) -> None:
        self.value: float | None = value

    def factory(self) -> Callable[..., Any]:
        metric = self

        class Reader:
            def __init__(self, spec: MetricSpec) -> None:
                self.spec = spec

            async def read(self) -> float:
                if metric.value is None:
                    raise ConnectionError("queue unreachable")
                return metric.value

            async def close(self) -> None:
                return None

        async def build(so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
            return Reader(spec)

        return build


@pytest.fixture
async def api() -> AsyncIterator[tuple[MemoryCluster, RunningServer]]:
    cluster = MemoryCluster(now=time.time)
    running = await serve(cluster, bookmark_interval=0.2)
    yield cluster, running
    await running.close()
    cluster.close()


@pytest.fixture
async def client(
    api: tuple[MemoryCluster, RunningServer], tmp_path: Path
) -> AsyncIterator[KubeClient]:
    _, running = api
    config = write_kubeconfig(tmp_path / "kubeconfig", running.url)
    kube = await KubeClient.from_kubeconfig(str(config))
    kube.backoff = 0.05  # retries of injected 5xx stay quick
    yield kube
    await kube.close()


async def seed(kube: KubeClient, name: str, replicas: int = 0, **spec: Any) -> None:
    await kube.create(
        DEPLOYMENTS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "main", "image": name}]},
                },
            },
        },
    )
    await kube.create(
        SCALED_OBJECTS,
        {
            "apiVersion": "ebbflow.io/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "scaleTargetRef": {"name": name},
                "pollingInterval": 1,
                "cooldownPeriod": 2,
                "triggers": [
                    {
                        "type": "kafka",
                        "name": "lag",
                        "metadata": {"bootstrapServers": "kafka:9092", "consumerGroup": name},
                    }
                ],
                **spec,
            },
        },
    )


async def replicas_become(cluster: MemoryCluster, name: str, want: int, within: float = 15) -> None:
    """Wait for a Deployment's spec.replicas to equal `want`, by watching the cluster."""
    async with asyncio.timeout(within):
        if (await cluster.get_scale(DEPLOYMENTS, name, "default")).replicas == want:
            return
        async for event in cluster.watch(DEPLOYMENTS, "default"):
            if (
                event.object["metadata"]["name"] == name
                and event.object["spec"]["replicas"] == want
            ):
                return


async def status_when(
    cluster: MemoryCluster, name: str, holds: Callable[[dict[str, Any]], bool], within: float = 10
) -> dict[str, Any]:
    """The ScaledObject's status once `holds(status)`, by watching the cluster."""
    async with asyncio.timeout(within):
        current = (await cluster.get(SCALED_OBJECTS, name, "default")).get("status") or {}
        if holds(current):
            return current
        async for event in cluster.watch(SCALED_OBJECTS, "default"):
            status = event.object.get("status") or {}
            if event.object["metadata"]["name"] == name and holds(status):
                return status
    raise AssertionError("unreachable")


def settings() -> OperatorSettings:
    return OperatorSettings(
        identity="it",
        metrics_port=0,
        metrics_host="127.0.0.1",
        lease_duration=3,
        renew_deadline=2,
        retry_period=0.2,
    )


async def start(
    kube: KubeClient, metric: Metric
) -> tuple[Operator, asyncio.Event, asyncio.Task[None]]:
    operator = Operator(kube, RealClock(), metric.factory(), settings())
    stop = asyncio.Event()
    return operator, stop, asyncio.create_task(operator.run(stop, serve_http=False))


async def finish(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    async with asyncio.timeout(10):
        await task


async def test_operator_scales_a_deployment_through_the_api(
    api: tuple[MemoryCluster, RunningServer], client: KubeClient
) -> None:
    cluster, _ = api
    await seed(client, "orders")
    metric = Metric(70)
    operator, stop, task = await start(client, metric)
    await replicas_become(cluster, "orders", 7)

    status = await status_when(cluster, "orders", lambda s: "conditions" in s)
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "True" and conditions["Active"] == "True"
    events, _ = await client.list(EVENTS, "default")
    assert any(e["reason"] == "KEDAScaleTargetActivated" for e in events)

    metric.value = None  # the source fails: hold, never zero

    # failing for three polls, longer than cooldownPeriod (2 s): still no zero
    await status_when(
        cluster, "orders", lambda s: s["health"]["s0-kafka-orders"]["numberOfFailures"] >= 3
    )
    assert (await cluster.get_scale(DEPLOYMENTS, "orders", "default")).replicas == 7
    metric.value = 0.0  # recovered and idle: cools down to zero after cooldownPeriod
    await replicas_become(cluster, "orders", 0)
    await finish(stop, task)
    assert operator.controller.stats.errors == {}


async def test_throttling_server_errors_and_conflicts_lose_no_update(
    api: tuple[MemoryCluster, RunningServer], client: KubeClient
) -> None:
    cluster, running = api
    await seed(client, "feed")
    # the first scale patch is throttled with Retry-After, then the server errors twice,
    # then a conflict: the update still lands
    running.faults.http_status(
        "/apis/apps/v1/namespaces/default/deployments/feed/scale", 429, retry_after=1
    )
    running.faults.http_status("get", 500, times=2)
    metric = Metric(45)
    operator, stop, task = await start(client, metric)
    await replicas_become(cluster, "feed", 5)
    running.faults.http_status(
        "/apis/apps/v1/namespaces/default/deployments/feed/scale", 409, times=3
    )  # a conflict storm: three polls in a row lose the race, the update still lands
    metric.value = 95
    await replicas_become(cluster, "feed", 10)
    await finish(stop, task)
    assert sum(operator.controller.stats.errors.values()) >= 3  # each 409 failed one poll


async def test_dropped_and_expired_watches_are_resumed(
    api: tuple[MemoryCluster, RunningServer], client: KubeClient
) -> None:
    cluster, running = api
    await seed(client, "first")
    metric = Metric(30)
    operator, stop, task = await start(client, metric)
    await replicas_become(cluster, "first", 3)
    running.faults.drop_watches()
    running.faults.expire_next_watch()
    await seed(client, "second")  # created while the watch is down: picked up after re-list
    await replicas_become(cluster, "second", 3)
    await finish(stop, task)
    assert set(operator.controller.driven()) == set()  # stopped cleanly
