"""The cost model: what nodes cost, sample by sample, and who it is charged to.

PURE: timeline in, allocations out.

- A node present at a sample is billed for the sample's interval at its offering's price
  (spot or on-demand): `price_per_hour x seconds / 3600`. The interval is the step, or what
  is left of the period for the last sample.
- Each workload on the node is charged its share of the node: the largest of its requested
  fractions of the node's allocatable cpu, memory and GPUs (a GPU share counts only where the
  workload requests GPUs), the dominant-resource rule OpenCost applies to requests. Shares
  that would add up to more than the whole node are scaled down to add up to exactly one.
- What no workload requests is idle capacity, reported as its own line, never spread.

Without nodes (a scenario without a `provisioning` section) pods are priced per pod:
`pod_prices` gives each workload's price per pod-hour (see `ebbflow.report.baselines`), and
there is no idle line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ebbflow.sim.timeline import Amounts, NodeInfo, Timeline

IDLE = "(idle capacity)"


@dataclass(frozen=True)
class SampleCost:
    """One sample's bill: the nodes' cost, split between workloads and idle capacity."""

    time: float  # seconds since the timeline's start
    seconds: float  # length of the interval billed
    node_cost: float
    by_workload: Mapping[str, float]
    idle: float


def node_shares(node: NodeInfo, held: Mapping[str, Amounts]) -> dict[str, float]:
    """Each workload's share of `node`: its dominant requested fraction, scaled to fit."""
    alloc = node.allocatable
    shares: dict[str, float] = {}
    for name, req in held.items():
        fractions = [
            req.cpu / alloc.cpu if alloc.cpu else 0.0,
            req.memory / alloc.memory if alloc.memory else 0.0,
        ]
        if req.gpu > 0 and alloc.gpu:
            fractions.append(req.gpu / alloc.gpu)
        shares[name] = min(1.0, max(fractions))
    total = sum(shares.values())
    if total > 1.0:  # cpu-heavy and memory-heavy tenants together: the node is fully used
        shares = {name: s / total for name, s in shares.items()}
    return shares


def sample_seconds(timeline: Timeline, time: float) -> float:
    return max(0.0, min(timeline.step, timeline.duration - time))


def allocate(timeline: Timeline, pod_prices: Mapping[str, float] | None = None) -> list[SampleCost]:
    """The bill of every sample of `timeline`."""
    costs: list[SampleCost] = []
    for sample in timeline.samples:
        seconds = sample_seconds(timeline, sample.time)
        by_workload = dict.fromkeys((w.name for w in timeline.workloads), 0.0)
        node_cost = idle = 0.0
        for node_name, held in sample.nodes.items():
            node = timeline.nodes[node_name]
            cost = node.price_per_hour * seconds / 3600
            node_cost += cost
            shares = node_shares(node, held)
            for name, share in shares.items():
                by_workload[name] = by_workload.get(name, 0.0) + cost * share
            idle += cost * (1.0 - sum(shares.values()))
        if not timeline.nodes and pod_prices:
            for name, state in sample.workloads.items():
                by_workload[name] = state.replicas * pod_prices.get(name, 0.0) * seconds / 3600
            node_cost = sum(by_workload.values())
        costs.append(SampleCost(sample.time, seconds, node_cost, by_workload, idle))
    return costs


def replica_seconds(timeline: Timeline) -> dict[str, float]:
    """Pod-seconds per workload, at the timeline's resolution."""
    total: dict[str, float] = {w.name: 0.0 for w in timeline.workloads}
    for sample in timeline.samples:
        seconds = sample_seconds(timeline, sample.time)
        for name, state in sample.workloads.items():
            total[name] = total.get(name, 0.0) + state.replicas * seconds
    return total


def slo_attainment(timeline: Timeline, workloads: list[str] | None = None) -> float | None:
    """The fraction of judged seconds that kept the SLO, over `workloads` (default: all);
    None where no SLO was measured."""
    names = workloads if workloads is not None else list(timeline.slo_seconds)
    judged = sum(timeline.slo_seconds.get(n, 0.0) for n in names)
    if judged <= 0:
        return None
    broken = sum(timeline.slo_violations.get(n, 0.0) for n in names)
    return max(0.0, 1.0 - broken / judged)
