"""A simulation's timeline: workloads and nodes sampled at a fixed step, for cost reports.

Sample k describes the interval [k * step, (k + 1) * step) seconds after the start: the state
right after the events at its start (replicas, ready, pending pods, which node holds which
workload's requests) and the peak demand within it. Nodes are taken from the provisioner's
ledger (billed from launch to termination), so a node that is launching is present. The
same shape comes from a live cluster's Prometheus (`ebbflow.report.prometheus`), so one cost
model serves both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ebbflow.sim.nodes import NodeLayer
    from ebbflow.sim.workload import SimulatedDeployment

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Amounts:
    """Requests or allocatable: cpu in millicores, memory in bytes, GPUs."""

    cpu: float = 0.0
    memory: float = 0.0
    gpu: float = 0.0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(self.cpu + other.cpu, self.memory + other.memory, self.gpu + other.gpu)

    def times(self, n: float) -> Amounts:
        return Amounts(self.cpu * n, self.memory * n, self.gpu * n)


@dataclass(frozen=True)
class WorkloadInfo:
    """What does not change about a workload during the timeline."""

    name: str
    namespace: str
    labels: Mapping[str, str]  # the ScaledObject's (or Deployment's) labels: the team is one
    requests: Amounts  # per pod
    capacity_per_pod: float | None = None  # arrivals a ready pod serves per second, if known

    def team(self, label: str) -> str:
        return self.labels.get(label) or UNLABELLED


UNLABELLED = "(no team label)"


@dataclass(frozen=True)
class NodeInfo:
    name: str
    pool: str
    instance_type: str
    capacity_type: str  # spot | on-demand
    zone: str
    price_per_hour: float
    allocatable: Amounts


@dataclass(frozen=True)
class WorkloadState:
    replicas: int  # pods that cost: starting, ready or shutting down
    ready: int
    pending: int  # waiting for a node
    desired: int
    demand: float | None = None  # peak arrivals per second in the sample's interval
    slo_violation_seconds: float | None = None  # cumulative since the start


@dataclass(frozen=True)
class Sample:
    time: float  # seconds since the timeline's start
    workloads: Mapping[str, WorkloadState]
    # node name -> workload name -> what that workload's pods request on the node
    nodes: Mapping[str, Mapping[str, Amounts]]


@dataclass(frozen=True)
class Timeline:
    start: float  # epoch seconds
    step: float
    duration: float
    workloads: tuple[WorkloadInfo, ...]
    nodes: Mapping[str, NodeInfo]
    samples: tuple[Sample, ...]
    source: str = "simulation"
    exact_node_cost: float | None = None  # the per-second bill, where known (simulation)
    # per workload with an SLO: seconds judged, and seconds that broke it over the whole run
    slo_seconds: Mapping[str, float] = field(default_factory=dict)
    slo_violations: Mapping[str, float] = field(default_factory=dict)

    def workload(self, name: str) -> WorkloadInfo:
        return next(w for w in self.workloads if w.name == name)


class TimelineRecorder:
    """Samples the simulator's deployments and node layer on the virtual clock's advances."""

    def __init__(
        self,
        deployments: Mapping[str, SimulatedDeployment],
        start: float,
        duration: float,
        step: float,
        layer: NodeLayer | None = None,
    ) -> None:
        if step <= 0:
            raise ValueError(f"timeline step must be positive, got {step:g}")
        self.deployments = deployments
        self.start = start
        self.duration = duration
        self.step = step
        self.layer = layer
        self.samples: list[Sample] = []
        self._next = 0.0
        self._requests = {name: _pod_requests(d, layer) for name, d in deployments.items()}

    def observe(self, old: float, new: float) -> None:
        """A clock observer: state holds from `old` until `new`, so sample every due time in
        [old, new). Register it after the deployments' accounting."""
        while self._next < min(new - self.start, self.duration):
            if self._next >= old - self.start:
                self.samples.append(self._sample(self._next))
            self._next += self.step

    def finish(self) -> Timeline:
        """The timeline, with samples up to the end even where the clock did not move."""
        while self._next < self.duration:
            self.samples.append(self._sample(self._next))
            self._next += self.step
        infos = tuple(
            WorkloadInfo(
                name=d.workload.spec.name,
                namespace=d.workload.so.metadata.namespace,
                labels=dict(d.workload.so.metadata.labels or {}),
                requests=self._requests[name],
                capacity_per_pod=d.workload.spec.pod.capacity_per_second,
            )
            for name, d in self.deployments.items()
        )
        nodes: dict[str, NodeInfo] = {}
        exact = None
        if self.layer is not None:
            types = {t.name: t for t in self.layer.controller.instance_types}
            for r in self.layer.controller.ledger.values():
                alloc = types[r.instance_type].allocatable
                nodes[r.claim] = NodeInfo(
                    r.claim,
                    r.pool,
                    r.instance_type,
                    r.capacity_type,
                    r.zone,
                    r.price,
                    Amounts(alloc.cpu, alloc.memory, alloc.gpu),
                )
            exact = self.layer.controller.node_cost(self.start + self.duration)
        return Timeline(
            start=self.start,
            step=self.step,
            duration=self.duration,
            workloads=infos,
            nodes=nodes,
            samples=tuple(self.samples),
            exact_node_cost=exact,
            slo_seconds={d.workload.spec.name: self.duration for d in self.deployments.values()},
            slo_violations={
                d.workload.spec.name: float(d.accounts.slo_violation_seconds)
                for d in self.deployments.values()
            },
        )

    def _sample(self, t: float) -> Sample:
        states: dict[str, WorkloadState] = {}
        by_deployment: dict[str, str] = {}
        for name, d in self.deployments.items():
            w = d.workload
            by_deployment[name] = w.spec.name
            end = min(t + self.step, self.duration)
            states[w.spec.name] = WorkloadState(
                replicas=d.pods,
                ready=d.ready,
                pending=d.pending,
                desired=d.desired,
                demand=w.trace.peak_between(t, end),
                slo_violation_seconds=float(d.accounts.slo_violation_seconds),
            )
        nodes: dict[str, dict[str, Amounts]] = {}
        if self.layer is not None:
            now = self.start + t
            for r in self.layer.controller.ledger.values():
                if r.launched_at <= now and (r.terminated_at is None or now < r.terminated_at):
                    nodes[r.claim] = {}
            for name, bound in self.layer.scheduler.bound.items():
                for _pod, node in bound:
                    held = nodes.setdefault(node, {})
                    workload = by_deployment[name]
                    held[workload] = held.get(workload, Amounts()) + self._requests[name]
        return Sample(t, states, nodes)


def _pod_requests(d: SimulatedDeployment, layer: NodeLayer | None) -> Amounts:
    from ebbflow.sim.scheduler import pod_manifest
    from provisioner.scheduling.pods import pod_from_manifest

    name = d.workload.so.spec.scale_target_ref.name
    if layer is not None:
        r = layer.scheduler.template(name).requests
    else:
        r = pod_from_manifest(pod_manifest(d, f"{name}-template")).requests
    return Amounts(r.cpu, r.memory, r.gpu)


# --- JSON: the `timeline` of a report's result file (README: "ebbflow report") -------------


def _amounts_json(a: Amounts) -> dict[str, float]:
    return {"cpu": a.cpu, "memory": a.memory, "gpu": a.gpu}


def _amounts(data: Mapping[str, Any]) -> Amounts:
    return Amounts(float(data["cpu"]), float(data["memory"]), float(data.get("gpu", 0)))


def timeline_json(t: Timeline) -> dict[str, Any]:
    """The timeline as JSON: static facts once, then one compact record per sample."""
    return {
        "version": FORMAT_VERSION,
        "source": t.source,
        "start": t.start,
        "step": t.step,
        "durationSeconds": t.duration,
        "exactNodeCost": t.exact_node_cost,
        "sloSeconds": dict(t.slo_seconds),
        "sloViolations": dict(t.slo_violations),
        "workloads": [
            {
                "name": w.name,
                "namespace": w.namespace,
                "labels": dict(w.labels),
                "requests": _amounts_json(w.requests),
                "capacityPerPod": w.capacity_per_pod,
            }
            for w in t.workloads
        ],
        "nodes": [
            {
                "name": n.name,
                "pool": n.pool,
                "instanceType": n.instance_type,
                "capacityType": n.capacity_type,
                "zone": n.zone,
                "pricePerHour": n.price_per_hour,
                "allocatable": _amounts_json(n.allocatable),
            }
            for n in t.nodes.values()
        ],
        "samples": [
            {
                "t": s.time,
                "workloads": {
                    name: [
                        w.replicas,
                        w.ready,
                        w.pending,
                        w.desired,
                        w.demand,
                        w.slo_violation_seconds,
                    ]
                    for name, w in s.workloads.items()
                },
                "nodes": {
                    node: {name: _amounts_json(a) for name, a in held.items()}
                    for node, held in s.nodes.items()
                },
            }
            for s in t.samples
        ],
    }


class TimelineFormatError(ValueError):
    """A timeline JSON that cannot be read; the message names the field."""


def timeline_from_json(data: Mapping[str, Any]) -> Timeline:
    """The inverse of `timeline_json`."""
    if data.get("version") != FORMAT_VERSION:
        raise TimelineFormatError(
            f"timeline.version: expected {FORMAT_VERSION}, got {data.get('version')!r}"
        )
    try:
        workloads = tuple(
            WorkloadInfo(
                w["name"],
                w["namespace"],
                dict(w.get("labels") or {}),
                _amounts(w["requests"]),
                w.get("capacityPerPod"),
            )
            for w in data["workloads"]
        )
        nodes = {
            n["name"]: NodeInfo(
                n["name"],
                n["pool"],
                n["instanceType"],
                n["capacityType"],
                n["zone"],
                float(n["pricePerHour"]),
                _amounts(n["allocatable"]),
            )
            for n in data["nodes"]
        }
        samples = tuple(
            Sample(
                float(s["t"]),
                {name: _state(v) for name, v in s["workloads"].items()},
                {
                    node: {name: _amounts(a) for name, a in held.items()}
                    for node, held in s["nodes"].items()
                },
            )
            for s in data["samples"]
        )
        return Timeline(
            start=float(data["start"]),
            step=float(data["step"]),
            duration=float(data["durationSeconds"]),
            workloads=workloads,
            nodes=nodes,
            samples=samples,
            source=str(data.get("source", "simulation")),
            exact_node_cost=data.get("exactNodeCost"),
            slo_seconds={k: float(v) for k, v in (data.get("sloSeconds") or {}).items()},
            slo_violations={k: float(v) for k, v in (data.get("sloViolations") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TimelineFormatError(f"timeline: malformed ({type(exc).__name__}: {exc})") from None


def _state(v: Sequence[Any]) -> WorkloadState:
    replicas, ready, pending, desired, demand, slo = v
    return WorkloadState(
        int(replicas),
        int(ready),
        int(pending),
        int(desired),
        None if demand is None else float(demand),
        None if slo is None else float(slo),
    )


def sample_count(duration: float, step: float) -> int:
    return math.ceil(duration / step)
