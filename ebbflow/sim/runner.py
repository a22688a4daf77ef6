"""Run a scenario: the real scaling controller over the in-memory cluster, in virtual time.

The wiring is the production wiring with three adapters swapped: `MemoryCluster` for the
API server, `VirtualClock` for time, and trace-driven metric sources for the scalers. A
simulated kubelet watches Deployments and turns `/scale` changes into pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ebbflow.sim.http import HTTPRoutesFirst
from ebbflow.sim.nodes import NodeLayer, NodeResult, node_result_json
from ebbflow.sim.predictive import SimulatedPredictors
from ebbflow.sim.scenario import Scenario, Signal, Workload
from ebbflow.sim.scheduler import SimulatedScheduler
from ebbflow.sim.timeline import Timeline, TimelineRecorder
from ebbflow.sim.workload import SimulatedDeployment
from kube.memory import MemoryCluster
from kube.port import DEPLOYMENTS, SCALED_OBJECTS, Cluster
from scaler.api import ScaledObject
from scaler.clock import VirtualClock
from scaler.controller import ScalingController
from scalers import registry
from scalers.base import MetricSpec, Scaler
from scalers.cron import CronMetadata


class InjectedFault(ConnectionError):
    """A read that the scenario's `faults` make fail."""


class SimulatedScaler:
    """A trigger's metric read from its simulated workload, at the clock's now."""

    def __init__(
        self,
        spec: MetricSpec,
        deployment: SimulatedDeployment,
        signal: Signal,
        clock: VirtualClock,
        start: float,
        faults: list[tuple[float, float]],
        schedule: CronMetadata | None,
    ) -> None:
        self.spec = spec
        self._deployment = deployment
        self._signal = signal
        self._clock = clock
        self._start = start
        self._faults = faults
        self._schedule = schedule

    async def read(self) -> float:
        now = self._clock.now() - self._start
        if any(begin <= now < end for begin, end in self._faults):
            raise InjectedFault("injected fault: metric source unreachable")
        d = self._deployment
        if self._signal is Signal.BACKLOG:
            return d.backlog
        if self._signal is Signal.ARRIVAL_RATE:
            return d.arrival_rate(now)
        if self._signal is Signal.UTILIZATION:
            return d.utilization * 100.0
        assert self._schedule is not None
        return self._schedule.value_at(datetime.fromtimestamp(self._clock.now(), UTC))

    async def close(self) -> None:
        return None


class SimulatedScalers:
    """The ScalerFactory of the simulator: every trigger reads its workload."""

    def __init__(
        self, deployments: dict[str, SimulatedDeployment], clock: VirtualClock, start: float
    ) -> None:
        self._deployments = deployments
        self._clock = clock
        self._start = start

    async def __call__(self, so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        deployment = self._deployments[so.spec.scale_target_ref.name]
        workload = deployment.workload
        trigger = so.spec.triggers[index]
        faults = [(f.from_, f.to) for f in workload.spec.faults if f.trigger == name]
        schedule = None
        if workload.signals[name] is Signal.SCHEDULE:
            parsed = registry.parse_metadata(trigger.type, trigger.metadata)
            assert isinstance(parsed, CronMetadata)
            schedule = parsed
        return SimulatedScaler(
            spec, deployment, workload.signals[name], self._clock, self._start, faults, schedule
        )


class Kubelet:
    """Turns Deployment replica changes into simulated pods and reports their status."""

    def __init__(
        self,
        cluster: Cluster,
        clock: VirtualClock,
        deployments: dict[str, SimulatedDeployment],
        start: float,
        scheduler: SimulatedScheduler | None = None,
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.deployments = deployments
        self.start = start
        self.scheduler = scheduler

    async def run(self) -> None:
        _, version = await self.cluster.list(DEPLOYMENTS)
        async for event in self.cluster.watch(DEPLOYMENTS, resource_version=version):
            obj = event.object
            d = self.deployments.get(obj["metadata"]["name"])
            replicas = obj.get("spec", {}).get("replicas", 1)
            if d is None or event.type != "MODIFIED" or replicas == d.desired:
                continue
            d.scale_to(replicas, self.clock.now() - self.start)
            if self.scheduler is not None:
                await self.scheduler.sync(obj["metadata"]["name"])
            status = {"replicas": d.desired, "readyReplicas": d.ready}
            await self.cluster.patch_status(
                DEPLOYMENTS, obj["metadata"]["name"], status, obj["metadata"]["namespace"]
            )


@dataclass(frozen=True)
class WorkloadResult:
    name: str
    replica_hours: float
    baseline_replicas: int
    baseline_replica_hours: float
    slo_violation_seconds: int
    max_backlog: float
    scale_events: int
    seconds_at_zero: int
    peak_replicas: int
    under_provisioned_seconds: int = 0  # ready capacity below the arrival rate
    pending_pod_seconds: float = 0.0  # pods waiting for a node (node layer only)
    evictions: int = 0  # pods evicted by node disruption (node layer only)
    scale_history: tuple[tuple[float, int], ...] = ()  # (seconds since start, replicas)

    @property
    def savings_percent(self) -> float:
        if self.baseline_replica_hours == 0:
            return 0.0
        return 100.0 * (1.0 - self.replica_hours / self.baseline_replica_hours)


@dataclass(frozen=True)
class SimulationResult:
    scenario: str
    seed: int
    duration_seconds: float
    workloads: tuple[WorkloadResult, ...]
    controller_errors: int
    nodes: NodeResult | None = None
    timeline: Timeline | None = None  # only when asked for (`timeline_step`): cost reports


def _deployment(workload: Workload) -> dict[str, Any]:
    name = workload.so.spec.scale_target_ref.name
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": workload.so.metadata.namespace, "labels": labels},
        "spec": {
            "replicas": workload.spec.initial_replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": f"{name}:sim"}]},
            },
        },
        "status": {"replicas": workload.spec.initial_replicas},
    }


WARMUP_SECONDS = 600.0


def _seed_for(seed: int, name: str) -> int:
    # zlib.crc32, not hash(): string hashing is salted per process
    return seed * 1_000_003 + zlib.crc32(name.encode())


async def simulate(
    scenario: Scenario,
    seed: int | None = None,
    progress: Callable[[float, float], None] | None = None,
    step: float = 3600.0,
    predictive: bool = True,
    timeline_step: float | None = None,
) -> SimulationResult:
    """Replay `scenario`; `progress(done, total)` is called after each `step` simulated seconds.
    `predictive=False` drives every ScaledObject reactively (its spec.predictive ignored)."""
    seed = scenario.spec.seed if seed is None else seed
    start = math.floor(scenario.start)
    # with a node layer the run begins from a settled cluster: the initial pods get their
    # nodes during a warm-up that is neither accounted nor billed
    warmup = WARMUP_SECONDS if scenario.spec.provisioning is not None else 0.0
    clock = VirtualClock(start=start - warmup)
    cluster = MemoryCluster(now=clock.now)
    deployments: dict[str, SimulatedDeployment] = {}
    for w in scenario.workloads:
        d = SimulatedDeployment(w, random.Random(_seed_for(seed, w.spec.name)))
        d.needs_binding = scenario.spec.provisioning is not None
        d.scale_to(w.spec.initial_replicas, 0.0)
        d.accounts.scale_events = 0  # the initial size is not a scale event
        d.history.clear()
        deployments[w.so.spec.scale_target_ref.name] = d
        await cluster.create(DEPLOYMENTS, _deployment(w))
        manifest = w.so.model_dump(mode="json", by_alias=True, exclude_none=True)
        manifest["apiVersion"] = SCALED_OBJECTS.api_version  # stored in our group, as KEDA's alias
        await cluster.create(SCALED_OBJECTS, manifest)

    def account(_old: float, new: float) -> None:
        for d in deployments.values():
            d.advance(new - start)

    clock.on_advance(account)
    predictors = SimulatedPredictors(scenario, clock) if predictive else None
    scalers = HTTPRoutesFirst(  # HTTPScaledObjects read the interceptor's counts (sim/http.py)
        SimulatedScalers(deployments, clock, start), deployments, lambda: clock.now() - start
    )
    controller = ScalingController(cluster, clock, scalers, predictors=predictors)
    layer = None
    if scenario.spec.provisioning is not None:
        layer = await NodeLayer.create(scenario, cluster, clock, deployments, start, seed)
    recorder = None
    if timeline_step is not None:  # after `account`: it samples accounted state
        recorder = TimelineRecorder(deployments, start, scenario.duration, timeline_step, layer)
        clock.on_advance(recorder.observe)
    kubelet = Kubelet(cluster, clock, deployments, start, layer.scheduler if layer else None)
    tasks = [
        asyncio.create_task(kubelet.run(), name="kubelet"),
        asyncio.create_task(controller.run(), name="scaling-controller"),
    ]
    if layer is not None:
        tasks += layer.start(predictors)
    try:
        done = 0.0
        while done < scenario.duration:
            done = min(done + step, scenario.duration)
            await clock.run_until(start + done)
            for task in tasks:
                if task.done():
                    task.result()  # a crashed component fails the run loudly
            if progress is not None:
                progress(done, scenario.duration)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if layer is not None:
            layer.close()
        close = getattr(cluster, "close", None)
        if close is not None:
            close()
    results = []
    for d in deployments.values():
        a = d.accounts
        baseline = math.ceil(
            d.workload.trace.peak_between(0, scenario.duration)
            / d.workload.spec.pod.capacity_per_second
        )
        hours = scenario.duration / 3600
        results.append(
            WorkloadResult(
                name=d.workload.spec.name,
                replica_hours=a.replica_seconds / 3600,
                baseline_replicas=baseline,
                baseline_replica_hours=baseline * hours,
                slo_violation_seconds=a.slo_violation_seconds,
                max_backlog=a.max_backlog,
                scale_events=a.scale_events,
                seconds_at_zero=a.seconds_at_zero,
                peak_replicas=a.peak_replicas,
                under_provisioned_seconds=a.under_provisioned_seconds,
                pending_pod_seconds=a.pending_pod_seconds,
                evictions=a.evictions,
                scale_history=tuple(d.history),
            )
        )
    return SimulationResult(
        scenario=scenario.spec.name,
        seed=seed,
        duration_seconds=scenario.duration,
        workloads=tuple(results),
        controller_errors=sum(controller.stats.errors.values()),
        nodes=layer.result(start + scenario.duration) if layer is not None else None,
        timeline=recorder.finish() if recorder is not None else None,
    )


def result_json(result: SimulationResult) -> dict[str, Any]:
    """The JSON contract of `ebbflow simulate -o json` (documented in README)."""

    def rounded(x: float) -> float:
        return round(x, 3)

    workloads = [
        {
            "name": w.name,
            "replicaHours": rounded(w.replica_hours),
            "baseline": {
                "replicas": w.baseline_replicas,
                "replicaHours": rounded(w.baseline_replica_hours),
            },
            "savingsPercent": rounded(w.savings_percent),
            "sloViolationSeconds": w.slo_violation_seconds,
            "maxBacklog": rounded(w.max_backlog),
            "scaleEvents": w.scale_events,
            "secondsAtZero": w.seconds_at_zero,
            "peakReplicas": w.peak_replicas,
            "tauU": rounded(100.0 * w.under_provisioned_seconds / result.duration_seconds),
            "pendingPodSeconds": rounded(w.pending_pod_seconds),
            "evictions": w.evictions,
        }
        for w in result.workloads
    ]
    replica_hours = sum(w.replica_hours for w in result.workloads)
    baseline_hours = sum(w.baseline_replica_hours for w in result.workloads)
    total = {
        "replicaHours": rounded(replica_hours),
        "baseline": {"replicaHours": rounded(baseline_hours)},
        "savingsPercent": rounded(
            100.0 * (1 - replica_hours / baseline_hours) if baseline_hours else 0.0
        ),
        "sloViolationSeconds": sum(w.slo_violation_seconds for w in result.workloads),
        "maxBacklog": rounded(max(w.max_backlog for w in result.workloads)),
        "scaleEvents": sum(w.scale_events for w in result.workloads),
        "secondsAtZero": sum(w.seconds_at_zero for w in result.workloads),
        "tauU": rounded(
            100.0
            * sum(w.under_provisioned_seconds for w in result.workloads)
            / (result.duration_seconds * len(result.workloads))
        ),
    }
    data: dict[str, Any] = {
        "scenario": result.scenario,
        "seed": result.seed,
        "durationSeconds": result.duration_seconds,
        "controllerErrors": result.controller_errors,
        "workloads": workloads,
        "total": total,
    }
    if result.nodes is not None:
        data["nodes"] = node_result_json(result.nodes)
    return data
