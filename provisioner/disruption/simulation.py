"""Re-simulation against the scheduling core: where would a candidate's pods go?

Karpenter's SimulateScheduling: the candidates' reschedulable pods are pending, the other
nodes (minus the candidates and the nodes being deleted) are existing capacity, and the
NodePools may launch new nodes. Pods already pending, and the pods of nodes being deleted,
take their room first (`reserve`): a consolidation never counts on room they are about to use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from provisioner.disruption.candidates import Candidate, is_reschedulable
from provisioner.disruption.state import ClusterState, DisruptionOptions
from provisioner.scheduling.model import ExistingNode, Plan, Pod
from provisioner.scheduling.packer import plan

NEW_NODE_PREFIX = "<new-node-"  # placements on a replacement read "<new-node-0>"


@dataclass(frozen=True, slots=True)
class Simulation:
    plan: Plan
    evicted: tuple[Pod, ...]  # the candidates' pods that need a new place

    @property
    def placements(self) -> dict[str, str]:
        """Pod key -> the existing node it goes to, or "<new-node-i>" for a new node."""
        out = dict(self.plan.bindings)
        for i, node in enumerate(self.plan.new_nodes):
            for pod in node.pods:
                out[pod.key] = f"{NEW_NODE_PREFIX}{i}>"
        return out

    @property
    def all_placed(self) -> bool:
        placed = self.placements
        return not self.plan.unschedulable and all(p.key in placed for p in self.evicted)

    def why_not_placed(self) -> str:
        if not self.plan.unschedulable:
            missing = [p.key for p in self.evicted if p.key not in self.placements]
            return f"pods {', '.join(missing)} have no place" if missing else ""
        first = self.plan.unschedulable[0]
        more = len(self.plan.unschedulable) - 1
        tail = f" (and {more} more)" if more else ""
        return f"pod {first.pod.key} would have no place: {first.reason}{tail}"


def reserve(state: ClusterState, options: DisruptionOptions) -> list[ExistingNode]:
    """The nodes a simulation may use, with pending pods and deleting nodes' pods bound first,
    then the pods a forecast expects soon (`ClusterState.expected_pods`) in the room left."""
    deleting = {n for n, f in state.facts.items() if f.marked_for_deletion}
    nodes = [n for n in state.nodes if n.name not in deleting]
    waiting = list(state.pending_pods) + [
        p for n in state.nodes if n.name in deleting for p in n.pods if is_reschedulable(p)
    ]
    nodes = _bind_into(state, nodes, waiting, options)
    return _bind_into(state, nodes, list(state.expected_pods), options)


def _bind_into(
    state: ClusterState, nodes: list[ExistingNode], pods: list[Pod], options: DisruptionOptions
) -> list[ExistingNode]:
    """`nodes` with as many of `pods` bound to them as fit (the rest would need new nodes)."""
    if not pods:
        return nodes
    templates = [p.template for p in state.pools.values()]
    result = plan(pods, templates, state.instance_types, nodes, options.pack)
    if not result.bindings:
        return nodes
    by_key = {p.key: p for p in pods}
    extra: dict[str, list[Pod]] = {}
    for key, node in result.bindings.items():
        extra.setdefault(node, []).append(by_key[key])
    return [replace(n, pods=n.pods + tuple(extra.get(n.name, ()))) for n in nodes]


def simulate(
    state: ClusterState,
    candidates: Sequence[Candidate],
    options: DisruptionOptions,
    base: Sequence[ExistingNode] | None = None,
) -> Simulation:
    """Where the candidates' pods would go if the candidates were gone."""
    removed = {c.name for c in candidates}
    nodes = reserve(state, options) if base is None else base
    others = [n for n in nodes if n.name not in removed]
    # the pending and expected pods `reserve` bound to a candidate need a place as well
    own = {p.key for c in candidates for p in c.node.pods}
    reserved = [p for n in nodes if n.name in removed for p in n.pods if p.key not in own]
    pods = tuple(p for c in candidates for p in c.reschedulable_pods) + tuple(reserved)
    if not pods:
        return Simulation(Plan((), {}, (), 0.0), ())
    templates = [p.template for p in state.pools.values()]
    return Simulation(plan(pods, templates, state.instance_types, others, options.pack), pods)


def offering_price(
    types: Mapping[str, tuple[tuple[str, str, float, bool], ...]],
    instance_type: str,
    zone: str | None,
    capacity_type: str,
) -> float | None:
    """The cheapest available price of a type in a zone (any zone: None) and capacity type."""
    prices = [
        price
        for z, ct, price, available in types.get(instance_type, ())
        if available and ct == capacity_type and (zone is None or z == zone)
    ]
    return min(prices) if prices else None


def offering_table(state: ClusterState) -> dict[str, tuple[tuple[str, str, float, bool], ...]]:
    return {
        t.name: tuple((o.zone, o.capacity_type, o.price, o.available) for o in t.offerings)
        for t in state.instance_types
    }
