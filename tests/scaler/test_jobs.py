"""The ScaledJob controller against the in-memory cluster, in virtual time.

Jobs do not run by themselves here: tests start and finish them by patching their status
(and create their Pods where a test needs Pods).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from kube.memory import MemoryCluster
from kube.port import EVENTS, JOBS, JSON, PODS, SCALED_JOBS, Kind, TemporaryError
from scaler.api import ScaledJob
from scaler.clock import VirtualClock
from scaler.controller import rfc3339
from scaler.jobs import ScaledJobController
from scalers.base import MetricSpec, Scaler

NS = "work"
LABEL = "scaledjob.keda.sh/name"


class TestCluster(MemoryCluster):
    """MemoryCluster that records deletions and fails to list the Jobs of `broken` names."""

    __test__ = False

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(now=clock.now)
        self.broken: set[str] = set()
        self.deleted: list[tuple[str, str]] = []

    async def list(
        self, kind: Kind, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[JSON], str]:
        if kind == JOBS and label_selector in {f"{LABEL}={name}" for name in self.broken}:
            raise TemporaryError("etcdserver: request timed out")
        return await super().list(kind, namespace, label_selector)

    async def delete(self, kind: Kind, name: str, namespace: str | None = None) -> None:
        self.deleted.append((kind.kind, name))
        await super().delete(kind, name, namespace)


class QueueScaler:
    """A trigger whose queue length the test sets; an exception in its place is raised."""

    def __init__(self, spec: MetricSpec, queues: dict[str, float | Exception], key: str) -> None:
        self.spec = spec
        self._queues = queues
        self._key = key
        self.closed = False

    async def read(self) -> float:
        value = self._queues[self._key]
        if isinstance(value, Exception):
            raise value
        return value

    async def close(self) -> None:
        self.closed = True


class World:
    def __init__(self) -> None:
        self.clock = VirtualClock(start=1_700_000_000)
        self.cluster = TestCluster(self.clock)
        self.queues: dict[str, float | Exception] = {}
        self.scalers: list[QueueScaler] = []
        self.controller = ScaledJobController(self.cluster, self.clock, self.factory)

    async def factory(self, sj: ScaledJob, index: int, name: str, spec: MetricSpec) -> Scaler:
        self.scalers.append(QueueScaler(spec, self.queues, sj.metadata.name))
        return self.scalers[-1]

    async def advance(self, seconds: float) -> None:
        await self.clock.run_until(self.clock.now() + seconds)

    async def jobs(self, name: str) -> list[JSON]:
        items, _ = await self.cluster.list(JOBS, NS, f"{LABEL}={name}")
        return items

    async def unfinished(self, name: str) -> list[JSON]:
        return [j for j in await self.jobs(name) if not (j.get("status") or {}).get("conditions")]

    async def finish(self, job: JSON, kind: str = "Complete", ago: float = 0) -> None:
        at = rfc3339(self.clock.now() - ago)
        status: JSON = {"conditions": [{"type": kind, "status": "True", "lastTransitionTime": at}]}
        if kind == "Complete":
            status["completionTime"] = at
        await self.cluster.patch_status(JOBS, job["metadata"]["name"], status, NS)

    async def start(self, job: JSON) -> None:
        await self.cluster.patch_status(
            JOBS, job["metadata"]["name"], {"active": 1, "ready": 1}, NS
        )

    async def pod_for(self, job: JSON, conditions: tuple[str, ...] = ()) -> str:
        name = f"{job['metadata']['name']}-pod"
        labels = {LABEL: job["metadata"]["labels"][LABEL], "job-name": job["metadata"]["name"]}
        status = {
            "phase": "Running",
            "conditions": [{"type": c, "status": "True"} for c in conditions],
        }
        pod = {"metadata": {"name": name, "namespace": NS, "labels": labels}, "status": status}
        await self.cluster.create(PODS, pod)
        return name

    async def status(self, name: str) -> JSON:
        return dict((await self.cluster.get(SCALED_JOBS, name, NS)).get("status") or {})

    async def conditions(self, name: str) -> dict[str, str]:
        return {c["type"]: c["status"] for c in (await self.status(name))["conditions"]}

    async def events(self, name: str) -> list[tuple[str, str]]:
        items, _ = await self.cluster.list(EVENTS, NS)
        return [(e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == name]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    world = World()
    yield world
    world.cluster.close()


@asynccontextmanager
async def running(world: World) -> AsyncIterator[ScaledJobController]:
    task = asyncio.create_task(world.controller.run())
    try:
        yield world.controller
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert all(s.closed for s in world.scalers), "scalers are closed on shutdown"


def scaled_job(name: str, **spec: Any) -> JSON:
    return {
        "apiVersion": "ebbflow.io/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {"name": name, "namespace": NS, "labels": {"team": "data"}},
        "spec": {
            "jobTargetRef": {
                "parallelism": 1,
                "completions": 1,
                "activeDeadlineSeconds": 600,
                "backoffLimit": 4,
                "template": {"spec": {"containers": [{"name": "worker", "image": "worker:1"}]}},
            },
            "pollingInterval": 30,
            "triggers": [
                {
                    "type": "rabbitmq",
                    "metadata": {
                        "host": "amqp://rabbitmq:5672/",
                        "queueName": name,
                        "mode": "QueueLength",
                        "value": "1",
                    },
                }
            ],
            **spec,
        },
    }


async def test_jobs_are_created_for_a_queue_and_unfinished_ones_counted(world: World) -> None:
    sj = await world.cluster.create(SCALED_JOBS, scaled_job("orders"))
    foreign: JSON = {"metadata": {"name": "stray", "namespace": NS, "labels": {LABEL: "orders"}}}
    foreign["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "ScaledJob",
            "name": "orders",
            "uid": "old",
            "controller": True,
        }
    ]
    await world.cluster.create(JOBS, foreign)  # left by an earlier ScaledJob of that name
    world.queues["orders"] = 3.0
    async with running(world) as controller:
        await world.advance(10)
        jobs = [j for j in await world.jobs("orders") if j["metadata"]["name"] != "stray"]
        assert len(jobs) == 3
        job = jobs[0]
        meta = job["metadata"]
        assert meta["name"].startswith("orders-") and meta["generateName"] == "orders-"
        assert meta["labels"][LABEL] == "orders" and meta["labels"]["team"] == "data"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "ebbflow"
        assert meta["annotations"]["scaledjob.keda.sh/generation"] == "1"
        owner = meta["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "ScaledJob",
            sj["metadata"]["uid"],
            True,
        )
        spec = job["spec"]
        assert (spec["parallelism"], spec["completions"]) == (1, 1)
        assert (spec["activeDeadlineSeconds"], spec["backoffLimit"]) == (600, 4)
        assert spec["template"]["metadata"]["labels"] == {LABEL: "orders"}
        assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"
        assert await world.events("orders") == [("KEDAJobsCreated", "Created 3 jobs")]
        assert await world.conditions("orders") == {
            "Ready": "True",
            "Active": "True",
            "Paused": "False",
        }
        assert (await world.status("orders"))["lastActiveTime"] == "2023-11-14T22:13:20Z"

        await world.advance(30)  # 3 unfinished Jobs serve a queue of 3: nothing new
        assert len(await world.unfinished("orders")) == 4  # with the stray
        world.queues["orders"] = 5.0
        await world.advance(30)
        assert len(await world.jobs("orders")) == 6  # 5 - 3 unfinished = 2 more
        for job in jobs[:2]:
            await world.finish(job)
        await world.advance(30)  # 3 unfinished of ours: 2 more
        assert len(await world.jobs("orders")) == 8
        assert controller.stats.jobs_created == 7
        decision = controller.last_decision(NS, "orders")
        assert decision is not None and decision.new_jobs == 2


async def test_history_limits_prune_the_oldest_finished_jobs(world: World) -> None:
    await world.cluster.create(
        SCALED_JOBS, scaled_job("etl", successfulJobsHistoryLimit=1, failedJobsHistoryLimit=1)
    )
    world.queues["etl"] = 5.0
    async with running(world):
        await world.advance(10)
        old_ok, new_ok, old_bad, new_bad, busy = await world.jobs("etl")
        world.queues["etl"] = 0.0
        await world.finish(old_ok, ago=300)
        await world.finish(new_ok, ago=60)
        await world.finish(old_bad, "Failed", ago=300)
        await world.finish(new_bad, "Failed", ago=60)
        pod = await world.pod_for(old_ok)
        await world.advance(30)
        left = {j["metadata"]["name"] for j in await world.jobs("etl")}
        assert left == {j["metadata"]["name"] for j in (new_ok, new_bad, busy)}
        # background propagation: the Job goes first, then its Pods
        assert world.cluster.deleted[:2] == [("Job", old_ok["metadata"]["name"]), ("Pod", pod)]


async def test_failing_trigger_creates_nothing_and_is_reported(world: World) -> None:
    await world.cluster.create(SCALED_JOBS, scaled_job("feed"))
    world.queues["feed"] = ConnectionError("rabbitmq unreachable")
    async with running(world) as controller:
        await world.advance(100)  # polls at 0, 30, 60, 90
        assert await world.jobs("feed") == []
        assert controller.stats.trigger_failures["work/feed/0"] == 4
        assert await world.conditions("feed") == {
            "Ready": "False",
            "Active": "False",
            "Paused": "False",
        }
        reasons = [reason for reason, _ in await world.events("feed")]
        assert reasons == ["KEDAScalerFailed"]  # once per failure streak, not per poll
        world.queues["feed"] = 2.0
        await world.advance(30)
        assert len(await world.jobs("feed")) == 2
        assert (await world.conditions("feed"))["Ready"] == "True"


@pytest.mark.parametrize(
    ("strategy", "started", "first", "second"),
    [
        ({"strategy": "default"}, True, 3, 0),
        ({"strategy": "default"}, False, 3, 0),
        (
            {
                "strategy": "custom",
                "customScalingQueueLengthDeduction": 1,
                "customScalingRunningJobPercentage": "0.5",
            },
            True,
            2,  # min(3 - 1 - 0, 10)
            1,  # min(3 - 1 - int(2 * 0.5), 10)
        ),
        ({"strategy": "accurate"}, True, 3, 3),  # the queue excludes what is being processed
        ({"strategy": "accurate"}, False, 3, 0),  # 3 - 3 pending
        ({"strategy": "eager"}, True, 3, 3),  # min(10 - 3 - 0, 3)
        ({"strategy": "eager"}, False, 3, 3),  # min(10 - 3 - 3, 3)
    ],
)
async def test_scaling_strategies_end_to_end(
    world: World, strategy: JSON, started: bool, first: int, second: int
) -> None:
    manifest = scaled_job("batch", maxReplicaCount=10, scalingStrategy=strategy)
    await world.cluster.create(SCALED_JOBS, manifest)
    world.queues["batch"] = 3.0  # the queue still counts the messages being worked on
    async with running(world):
        await world.advance(10)
        jobs = await world.jobs("batch")
        assert len(jobs) == first
        if started:
            for job in jobs:
                await world.start(job)
        await world.advance(30)
        assert len(await world.jobs("batch")) == first + second


async def test_pending_pod_conditions_are_read_from_the_pods(world: World) -> None:
    strategy = {"strategy": "accurate", "pendingPodConditions": ["Ready", "PodScheduled"]}
    await world.cluster.create(SCALED_JOBS, scaled_job("render", scalingStrategy=strategy))
    world.queues["render"] = 2.0
    async with running(world):
        await world.advance(10)
        ready, waiting = await world.jobs("render")
        await world.pod_for(ready, ("Ready", "PodScheduled"))
        await world.pod_for(waiting, ("PodScheduled",))
        await world.advance(30)  # accurate: 2 - 1 pending = 1 more
        assert len(await world.jobs("render")) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"metadata": {"value": "ten"}},
            'spec.triggers[0].metadata.value: must be a positive number, got "ten"',
        ),
        (
            {"metricType": "AverageValue"},
            'spec.triggers[0].metricType: cannot be set in a ScaledJob trigger, got "AverageValue"',
        ),
    ],
)
async def test_invalid_scaled_job_is_reported_and_not_run(
    world: World, change: JSON, message: str
) -> None:
    bad = scaled_job("typo")
    trigger = bad["spec"]["triggers"][0]
    trigger["metadata"].update(change.pop("metadata", {}))
    trigger.update(change)
    await world.cluster.create(SCALED_JOBS, bad)
    world.queues["typo"] = 50.0
    async with running(world) as controller:
        await world.advance(60)
        assert controller.driven() == []
    assert await world.jobs("typo") == []
    ready = (await world.status("typo"))["conditions"][0]
    assert (ready["type"], ready["status"], ready["message"]) == ("Ready", "False", message)
    assert await world.events("typo") == [("ScaledJobCheckFailed", message)]


async def test_one_broken_scaled_job_never_stops_another(world: World) -> None:
    await world.cluster.create(SCALED_JOBS, scaled_job("good"))
    await world.cluster.create(SCALED_JOBS, scaled_job("broken"))
    world.cluster.broken.add("broken")
    world.queues.update(good=2.0, broken=2.0)
    async with running(world) as controller:
        await world.advance(600)
    assert len(await world.jobs("good")) == 2
    errors = controller.stats.errors["work/broken"]
    assert 5 <= errors <= 10, errors  # 1+2+4+...s backoff within 600 s, not 600 tries


@pytest.mark.parametrize(
    ("rollout", "kept", "created"),
    [
        ({}, False, 2),
        ({"rollout": {"strategy": "default", "propagationPolicy": "foreground"}}, False, 2),
        ({"rollout": {"strategy": "gradual"}}, True, 1),
        ({"rolloutStrategy": "gradual"}, True, 1),  # the deprecated field
    ],
)
async def test_rollout_on_spec_change(
    world: World, rollout: JSON, kept: bool, created: int
) -> None:
    await world.cluster.create(SCALED_JOBS, scaled_job("web", **rollout))
    world.queues["web"] = 2.0
    async with running(world):
        await world.advance(10)
        done, busy = await world.jobs("web")
        await world.finish(done)
        pod = await world.pod_for(busy)
        new_template = {"spec": {"containers": [{"name": "worker", "image": "worker:2"}]}}
        patch = {"spec": {"jobTargetRef": {"template": new_template}}}
        await world.cluster.patch(SCALED_JOBS, "web", patch, NS)
        await world.advance(1)  # the new spec polls at once
        jobs = await world.jobs("web")
        names = {j["metadata"]["name"] for j in jobs}
        assert done["metadata"]["name"] in names  # history stays
        assert (busy["metadata"]["name"] in names) is kept
        generation = "scaledjob.keda.sh/generation"
        newer = [j for j in jobs if j["metadata"]["annotations"][generation] == "2"]
        assert len(newer) == created
        assert newer[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "worker:2"
        if not kept:
            foreground = rollout.get("rollout", {}).get("propagationPolicy") == "foreground"
            order = [("Pod", pod), ("Job", busy["metadata"]["name"])]
            assert world.cluster.deleted == (order if foreground else order[::-1])


async def test_min_replica_count_and_the_paused_annotation(world: World) -> None:
    await world.cluster.create(SCALED_JOBS, scaled_job("warm", minReplicaCount=2))
    world.queues["warm"] = 0.0
    async with running(world):
        await world.advance(10)
        assert len(await world.jobs("warm")) == 2  # kept warm with an empty queue
        assert (await world.conditions("warm"))["Active"] == "True"
        annotations = {"autoscaling.keda.sh/paused": "true"}
        await world.cluster.patch(
            SCALED_JOBS, "warm", {"metadata": {"annotations": annotations}}, NS
        )
        world.queues["warm"] = 10.0
        await world.advance(60)
        assert len(await world.jobs("warm")) == 2
        assert (await world.conditions("warm"))["Paused"] == "True"
        annotations["autoscaling.keda.sh/paused"] = "false"
        await world.cluster.patch(
            SCALED_JOBS, "warm", {"metadata": {"annotations": annotations}}, NS
        )
        await world.advance(1)
        assert len(await world.jobs("warm")) == 12  # 10 - (2 unfinished - 2 minimum)
        assert (await world.conditions("warm"))["Paused"] == "False"
