"""The operator in virtual time: Lease hand-over without double scaling, shards, /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from ebbflow.operator.leader import LeaderElector, LeaseTiming
from ebbflow.operator.run import Operator
from ebbflow.operator.shards import shard_of
from ebbflow.settings import OperatorSettings
from kube.memory import MemoryCluster
from kube.port import DEPLOYMENTS, JOBS, SCALED_JOBS, SCALED_OBJECTS, ServerError
from scaler.api import ScaledObject
from scaler.clock import VirtualClock
from scalers.base import MetricSpec, Scaler

TIMING = LeaseTiming(lease_duration=15, renew_deadline=10, retry_period=2)


class Partition:
    """One replica's connection to the API server, which the test can cut."""

    def __init__(self, cluster: MemoryCluster) -> None:
        self.cluster = cluster
        self.cut = False

    def __getattr__(self, verb: str) -> Any:
        call = getattr(self.cluster, verb)

        async def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.cut:
                raise ServerError("apiserver unreachable")
            return await call(*args, **kwargs)

        return guarded


class Constant:
    def __init__(self, spec: MetricSpec, value: float) -> None:
        self.spec, self.value = spec, value

    async def read(self) -> float:
        return self.value

    async def close(self) -> None:
        return None


def constant(value: float) -> Callable[..., Any]:
    async def factory(so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        return Constant(spec, value)

    return factory


def settings(identity: str, **extra: Any) -> OperatorSettings:
    return OperatorSettings(
        identity=identity,
        metrics_port=0,
        metrics_host="127.0.0.1",
        lease_duration=15,
        renew_deadline=10,
        retry_period=2,
        **extra,
    )


async def seed(cluster: MemoryCluster, names: list[str]) -> None:
    for name in names:
        await cluster.create(
            DEPLOYMENTS,
            {
                "metadata": {"name": name, "namespace": "apps"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}},
                },
            },
        )
        await cluster.create(
            SCALED_OBJECTS,
            {
                "apiVersion": "ebbflow.io/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": name, "namespace": "apps"},
                "spec": {
                    "scaleTargetRef": {"name": name},
                    "pollingInterval": 5,
                    "triggers": [
                        {
                            "type": "kafka",
                            "name": "lag",
                            "metadata": {"bootstrapServers": "k:9092", "consumerGroup": name},
                        }
                    ],
                },
            },
        )


async def test_one_leader_at_a_time_and_takeover_within_the_lease() -> None:
    clock = VirtualClock(start=1_000_000)
    cluster = MemoryCluster(now=clock.now)
    leading: dict[str, list[tuple[float, bool]]] = {"a": [], "b": []}

    links = {"a": Partition(cluster), "b": Partition(cluster)}

    def elector(identity: str) -> LeaderElector:
        e = LeaderElector(links[identity], clock, "ebbflow", "ebbflow", identity, TIMING)  # type: ignore[arg-type]

        async def started() -> None:
            leading[identity].append((clock.now(), True))

        async def stopped() -> None:
            leading[identity].append((clock.now(), False))

        e.on_started, e.on_stopped = started, stopped
        return e

    a, b = elector("a"), elector("b")
    overlap: list[float] = []
    clock.on_advance(lambda old, new: overlap.append(old) if a.leading and b.leading else None)
    task_a = asyncio.create_task(a.run())
    await clock.run_until(clock.now() + 1)
    task_b = asyncio.create_task(b.run())
    await clock.run_until(clock.now() + 60)
    assert a.leading and not b.leading

    # a's API server connection breaks: its renewals fail from now on
    broken_at = clock.now()
    links["a"].cut = True
    await clock.run_until(clock.now() + 60)
    assert not a.leading and b.leading
    a_stopped = leading["a"][-1][0]
    b_started = leading["b"][-1][0]
    assert a_stopped - broken_at <= TIMING.renew_deadline + TIMING.retry_period
    assert a_stopped <= b_started, "a stepped down before b took over"
    assert b_started - broken_at <= TIMING.lease_duration + 2 * TIMING.retry_period
    assert overlap == [], "never two leaders at once"
    for task in (task_a, task_b):
        task.cancel()
    await asyncio.gather(task_a, task_b, return_exceptions=True)


async def test_standby_operator_never_scales_and_takes_over_on_shutdown() -> None:
    clock = VirtualClock(start=1_000_000)
    cluster = MemoryCluster(now=clock.now)
    await seed(cluster, ["web"])
    first = Operator(cluster, clock, constant(70), settings("first"))
    second = Operator(cluster, clock, constant(70), settings("second"))
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    run_first = asyncio.create_task(first.run(stop_first, serve_http=False))
    await clock.run_until(clock.now() + 1)
    run_second = asyncio.create_task(second.run(stop_second, serve_http=False))
    await clock.run_until(clock.now() + 120)
    assert first.controller.stats.polls > 0
    assert second.controller.stats.polls == 0, "a standby replica never polls or scales"
    assert (await cluster.get_scale(DEPLOYMENTS, "web", "apps")).replicas == 7

    stop_first.set()  # SIGTERM: it releases its Lease on the way out
    await clock.run_until(clock.now() + 1)
    await run_first
    polls_before = second.controller.stats.polls
    await clock.run_until(clock.now() + 2 * TIMING.retry_period + 5)
    assert second.controller.stats.polls > polls_before, "hand-over within a retry period"
    stop_second.set()
    await clock.run_until(clock.now() + 1)
    await run_second


async def test_shards_split_objects_and_each_is_driven_once() -> None:
    clock = VirtualClock(start=1_000_000)
    cluster = MemoryCluster(now=clock.now)
    names = [f"svc-{i}" for i in range(12)]
    await seed(cluster, names)
    ops = [
        Operator(cluster, clock, constant(30), settings(f"op-{i}", shards=4, replicas=2, ordinal=i))
        for i in range(2)
    ]
    stops = [asyncio.Event() for _ in ops]
    runs = [
        asyncio.create_task(op.run(stop, serve_http=False))
        for op, stop in zip(ops, stops, strict=True)
    ]
    await clock.run_until(clock.now() + 60)
    driven = [set(op.controller.driven()) for op in ops]
    assert driven[0].isdisjoint(driven[1])
    assert driven[0] | driven[1] == {("apps", n) for n in names}
    assert [op.leases.led for op in ops] == [frozenset({0, 2}), frozenset({1, 3})]
    for name in names:
        owner = 0 if shard_of("apps", name, 4) in (0, 2) else 1
        assert ("apps", name) in driven[owner]

    stops[1].set()
    await clock.run_until(clock.now() + 1)
    await runs[1]
    await clock.run_until(clock.now() + TIMING.lease_duration + 3 * TIMING.retry_period)
    assert set(ops[0].controller.driven()) == {("apps", n) for n in names}
    stops[0].set()
    await clock.run_until(clock.now() + 1)
    await runs[0]


async def test_metrics_and_health_endpoints_over_http() -> None:
    clock = VirtualClock(start=1_000_000)
    cluster = MemoryCluster(now=clock.now)
    await seed(cluster, ["api"])
    op = Operator(cluster, clock, constant(42), settings("solo"))
    stop = asyncio.Event()
    run = asyncio.create_task(op.run(stop))
    await clock.run_until(clock.now() + 30)
    assert op.port
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{op.port}/healthz") as r:
            assert r.status == 200
        async with http.get(f"http://127.0.0.1:{op.port}/readyz") as r:
            assert r.status == 200
        async with http.get(f"http://127.0.0.1:{op.port}/metrics") as r:
            text = await r.text()
    assert (
        'keda_scaler_metrics_value{metric="lag",namespace="apps",scaledObject="api",'
        'scaler="kafka",type="scaledobject"} 42.0'
    ) in text
    assert 'keda_scaled_object_paused{namespace="apps",scaledObject="api"} 0.0' in text
    assert "ebbflow_loop_lag_seconds_count" in text
    stop.set()
    await clock.run_until(clock.now() + 1)
    await run


@pytest.mark.parametrize(("a", "b"), [("web", "apps"), ("db", "data")])
def test_shard_of_is_stable(a: str, b: str) -> None:
    assert shard_of(b, a, 8) == shard_of(b, a, 8)
    assert 0 <= shard_of(b, a, 8) < 8


async def test_scaled_jobs_run_under_the_same_lease() -> None:
    clock = VirtualClock(start=1_000_000)
    cluster = MemoryCluster(now=clock.now)
    await cluster.create(
        SCALED_JOBS,
        {
            "apiVersion": "ebbflow.io/v1alpha1",
            "kind": "ScaledJob",
            "metadata": {"name": "batch", "namespace": "apps"},
            "spec": {
                "pollingInterval": 5,
                "maxReplicaCount": 10,
                "jobTargetRef": {
                    "template": {"spec": {"containers": [{"name": "work", "image": "work"}]}}
                },
                "triggers": [
                    {
                        "type": "kafka",
                        "name": "lag",
                        "metadata": {
                            "bootstrapServers": "k:9092",
                            "consumerGroup": "batch",
                            "lagThreshold": "1",
                        },
                    }
                ],
            },
        },
    )

    async def jobs_factory(sj: Any, index: int, name: str, spec: MetricSpec) -> Scaler:
        return Constant(spec, 3)

    leader = Operator(cluster, clock, constant(0), settings("leader"), job_scalers=jobs_factory)
    standby = Operator(cluster, clock, constant(0), settings("standby"), job_scalers=jobs_factory)
    stops = [asyncio.Event(), asyncio.Event()]
    runs = [asyncio.create_task(leader.run(stops[0], serve_http=False))]
    await clock.run_until(clock.now() + 1)
    runs.append(asyncio.create_task(standby.run(stops[1], serve_http=False)))
    await clock.run_until(clock.now() + 30)
    jobs, _ = await cluster.list(JOBS, "apps")
    assert len(jobs) == 3  # queue 3, one job per message, created once: by the leader alone
    assert standby.jobs is not None and standby.jobs.stats.polls == 0
    for stop, run in zip(stops, runs, strict=True):
        stop.set()
        await clock.run_until(clock.now() + 1)
        await run
