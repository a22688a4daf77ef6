"""Baselines computed from a timeline's demand: what the same demand would cost otherwise.

- static peak: every workload at the replicas its peak demand needs, all the time, packed by
  the provisioner's packer onto on-demand nodes of the same NodePools.
- clairvoyant lower bound: at every sample exactly `ceil(peak demand / capacity per pod)`
  replicas, started instantly, packed perfectly: the LP relaxation of the packing
  (`Plan.lower_bound`), spot allowed where the NodePools allow it. No real system with the
  same SLO pays less.
- on-demand re-priced (live clusters): the same nodes, each at its type's on-demand price.
  (From a simulation, on-demand-only and reactive-only are re-runs: `ebbflow.report.simulated`.)

Pods are packed by their requests. A pod that requests GPUs tolerates the GPU taint, as
Kubernetes' ExtendedResourceToleration admission plugin makes it; node selectors are not
kept, which can only lower these baselines (savings against them are conservative).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ebbflow.report.costmodel import sample_seconds
from ebbflow.sim.timeline import Timeline, WorkloadInfo
from provisioner.scheduling.model import (
    CAPACITY_TYPE,
    ON_DEMAND,
    InstanceType,
    NodeTemplate,
    Operator,
    Pod,
    Requirement,
    Resources,
    Toleration,
)
from provisioner.scheduling.packer import plan

GPU_TAINT = "nvidia.com/gpu"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Baseline:
    key: str  # static-peak | reactive-only | on-demand-only | clairvoyant
    title: str
    description: str
    costs: tuple[float, ...]  # per sample of the timeline
    slo_attainment: float | None  # None: not measured
    note: str = ""

    @property
    def cost(self) -> float:
        return sum(self.costs)


def packing_pods(info: WorkloadInfo, replicas: int) -> list[Pod]:
    """`replicas` pods of a workload as the packer sees them (requests only)."""
    r = info.requests
    requests = Resources(round(r.cpu), round(r.memory), round(r.gpu), 1)
    tolerations = (Toleration(key=GPU_TAINT, operator="Exists"),) if r.gpu > 0 else ()
    return [
        Pod(f"{info.name}-{i}", info.namespace, requests, tolerations=tolerations)
        for i in range(replicas)
    ]


def on_demand(template: NodeTemplate) -> NodeTemplate:
    from ebbflow.sim.provisioning import on_demand_only

    return on_demand_only(template)


def default_templates() -> list[NodeTemplate]:
    """Without NodePools: any on-demand type of the catalog (the per-pod price fallback)."""
    return [NodeTemplate("default", (Requirement(CAPACITY_TYPE, Operator.IN, (ON_DEMAND,)),))]


def pod_prices(
    timeline: Timeline, templates: Sequence[NodeTemplate], types: Sequence[InstanceType]
) -> dict[str, float]:
    """Price per pod-hour of each workload where there are no nodes: the LP bound of packing
    one pod, i.e. the cheapest type's price times the pod's dominant share of it."""
    return {
        w.name: plan(packing_pods(w, 1), templates, types).lower_bound for w in timeline.workloads
    }


def demand_replicas(info: WorkloadInfo, demand: float | None) -> int | None:
    if demand is None or not info.capacity_per_pod:
        return None
    return math.ceil(demand / info.capacity_per_pod - 1e-9)


class Pricing:
    """Prices sets of pods: packed on nodes, or per pod where the timeline has no nodes."""

    def __init__(
        self,
        timeline: Timeline,
        templates: Sequence[NodeTemplate],
        types: Sequence[InstanceType],
        prices: Mapping[str, float] | None = None,
    ) -> None:
        self.infos = {w.name: w for w in timeline.workloads}
        self.templates = list(templates)
        self.types = list(types)
        self.prices = prices  # per pod-hour: no node layer
        self._bounds: dict[tuple[tuple[str, int], ...], float] = {}

    def _pods(self, counts: Mapping[str, int]) -> list[Pod]:
        return [p for name, n in counts.items() for p in packing_pods(self.infos[name], n)]

    def packed(self, counts: Mapping[str, int]) -> tuple[float, dict[str, int]]:
        """Price per hour of on-demand nodes for `counts`, and the nodes by type."""
        if self.prices is not None:
            return sum(n * self.prices[name] for name, n in counts.items()), {}
        result = plan(self._pods(counts), [on_demand(t) for t in self.templates], self.types)
        if result.unschedulable:
            reason = result.unschedulable[0].reason
            raise ValueError(f"static baseline: a pod fits no NodePool: {reason}")
        nodes: dict[str, int] = {}
        for n in result.new_nodes:
            nodes[n.instance_type] = nodes.get(n.instance_type, 0) + 1
        return result.total_price, dict(sorted(nodes.items()))

    def bound(self, counts: Mapping[str, int]) -> float:
        """The LP lower bound on the price per hour of nodes for `counts` (cached)."""
        key = tuple(sorted((k, v) for k, v in counts.items() if v))
        if key not in self._bounds:
            if not key:
                self._bounds[key] = 0.0
            elif self.prices is not None:
                self._bounds[key] = sum(n * self.prices[name] for name, n in key)
            else:
                self._bounds[key] = plan(
                    self._pods(dict(key)), self.templates, self.types
                ).lower_bound
        return self._bounds[key]


def static_peak(
    timeline: Timeline, pricing: Pricing
) -> tuple[Baseline, dict[str, int], dict[str, int]]:
    """The static baseline, the replicas it runs per workload, and its nodes by type."""
    replicas: dict[str, int] = {}
    by_demand = True
    for info in timeline.workloads:
        demands = [s.workloads[info.name].demand for s in timeline.samples]
        peak = max((d for d in demands if d is not None), default=None)
        n = demand_replicas(info, peak)
        if n is None:  # no demand series: the most replicas the cluster ran
            by_demand = False
            n = max((s.workloads[info.name].replicas for s in timeline.samples), default=0)
        replicas[info.name] = n
    price, nodes = pricing.packed(replicas)
    costs = tuple(price * sample_seconds(timeline, s.time) / 3600 for s in timeline.samples)
    how = "the replicas its peak demand needs" if by_demand else "its most replicas observed"
    baseline = Baseline(
        "static-peak",
        "Static, sized for the peak",
        f"Fixed replicas (each workload at {how}) on on-demand nodes, always on.",
        costs,
        1.0 if by_demand else None,
        "SLO met by construction: capacity at every second covers the peak demand."
        if by_demand
        else "SLO not measured: no demand series.",
    )
    return baseline, replicas, nodes


def clairvoyant(
    timeline: Timeline, pricing: Pricing, progress: Progress | None = None
) -> Baseline | None:
    """The clairvoyant lower bound, or None without demand and capacity for every workload."""
    costs: list[float] = []
    total = len(timeline.samples)
    for i, sample in enumerate(timeline.samples):
        counts: dict[str, int] = {}
        for info in timeline.workloads:
            n = demand_replicas(info, sample.workloads[info.name].demand)
            if n is None:
                return None
            counts[info.name] = n
        costs.append(pricing.bound(counts) * sample_seconds(timeline, sample.time) / 3600)
        if progress is not None:
            progress(i + 1, total)
    return Baseline(
        "clairvoyant",
        "Clairvoyant lower bound",
        "Perfect foresight: at every sample exactly the replicas the demand needs, "
        "instant start-up, and perfect (fractional) packing on the cheapest offerings.",
        tuple(costs),
        1.0,
        "SLO met by construction; no real system pays less for this demand.",
    )


def on_demand_repriced(
    timeline: Timeline, types: Sequence[InstanceType], slo: float | None
) -> Baseline:
    """The nodes the cluster ran, each at its type's on-demand price (live clusters)."""
    prices: dict[str, float] = {}
    for t in types:
        offers = [o.price for o in t.offerings if o.capacity_type == ON_DEMAND]
        if offers:
            prices[t.name] = min(offers)
    costs = []
    for sample in timeline.samples:
        seconds = sample_seconds(timeline, sample.time)
        hourly = 0.0
        for name in sample.nodes:
            node = timeline.nodes[name]
            hourly += prices.get(node.instance_type, node.price_per_hour)
        costs.append(hourly * seconds / 3600)
    return Baseline(
        "on-demand-only",
        "On-demand only (re-priced)",
        "The same nodes at the same times, each at its type's on-demand price: what the "
        "cluster would have paid without spot.",
        tuple(costs),
        slo,
        "The same nodes, so the same SLO; a re-run would also avoid spot interruptions.",
    )
