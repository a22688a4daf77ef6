"""Disruption candidates: managed nodes that may be disrupted, and why the others may not.

Karpenter v1 (`NewCandidate`, `ValidateNodeDisruptable`, `ValidatePodsDisruptable`): a node is
a candidate when a NodePool manages it, it is initialized, not being deleted, has no pods
nominated to it, carries no `karpenter.sh/do-not-disrupt` annotation, and its pods may be
evicted (no do-not-disrupt pod, no PDB that allows zero disruptions). Drift is "eventual":
with a terminationGracePeriod on the claim, blocking pods do not stop it (the drain waits for
them until the grace period ends).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from provisioner.disruption.pdb import eviction_blocker
from provisioner.disruption.state import ClusterState, DisruptionOptions, NodeFacts, PoolPolicy
from provisioner.scheduling.model import ExistingNode, Pod

# owners whose pods are not rescheduled elsewhere when their node goes
NOT_RESCHEDULED_OWNERS = ("DaemonSet/", "Node/")


@dataclass(frozen=True, slots=True)
class Candidate:
    node: ExistingNode
    facts: NodeFacts
    pool: PoolPolicy
    reschedulable_pods: tuple[Pod, ...]
    disruption_cost: float
    blocked_by: str | None = None  # set only for eventual disruption past a blocking pod

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def price(self) -> float:
        return self.facts.price

    @property
    def instance_type(self) -> str:
        return self.facts.instance_type

    @property
    def capacity_type(self) -> str:
        return self.facts.capacity_type

    @property
    def zone(self) -> str:
        return self.facts.zone


def is_reschedulable(pod: Pod) -> bool:
    """DaemonSet and static (node-owned) pods die with their node; the rest need a place."""
    return not (pod.owner or "").startswith(NOT_RESCHEDULED_OWNERS)


def eviction_cost(pod: Pod) -> float:
    """Karpenter's EvictionCost: 1, plus priority / 2^25, clamped to [-10, 10]."""
    return min(10.0, max(-10.0, 1.0 + pod.priority / 2**25))


def lifetime_remaining(facts: NodeFacts, now: float) -> float:
    """The share of expireAfter still ahead (1 for nodes that never expire)."""
    if not facts.expire_after:
        return 1.0
    left = facts.expire_after - (now - facts.created_at)
    return min(1.0, max(0.0, left / facts.expire_after))


def disruption_cost(pods: Sequence[Pod], facts: NodeFacts, now: float) -> float:
    """Karpenter: the eviction costs of all pods, times the lifetime still ahead."""
    return sum(eviction_cost(p) for p in pods) * lifetime_remaining(facts, now)


def consolidatable_at(facts: NodeFacts, pool: PoolPolicy) -> float | None:
    """When the node becomes Consolidatable (None: never, consolidateAfter is Never).

    Karpenter: consolidateAfter counted from the last pod event, or from initialization.
    This is also the churn guard's first rule: a node younger than consolidateAfter is never a
    consolidation candidate.
    """
    if pool.consolidate_after is None:
        return None
    start = facts.initialized_at if facts.initialized_at is not None else facts.created_at
    if facts.last_pod_event_at is not None:
        start = max(start, facts.last_pod_event_at)
    return start + pool.consolidate_after


def node_blocker(node: ExistingNode, state: ClusterState) -> str | None:
    """Why no method may touch this node, from the node alone (None: it may be a candidate)."""
    facts = state.facts.get(node.name)
    if facts is None:
        return "not managed by a NodePool"
    if facts.marked_for_deletion:
        return "already being disrupted or deleted"
    if not facts.initialized:
        return "not initialized yet"
    if facts.nominated:
        return "pending pods are nominated to it"
    if facts.pool not in state.pools:
        return f"NodePool {facts.pool!r} not found"
    if not any(t.name == facts.instance_type for t in state.instance_types):
        return f"instance type {facts.instance_type!r} is not in the catalog"
    if facts.do_not_disrupt:
        return "node is annotated karpenter.sh/do-not-disrupt"
    return None


def all_pods(state: ClusterState) -> list[Pod]:
    return [p for n in state.nodes for p in n.pods] + list(state.pending_pods)


def pod_blocker(
    node: ExistingNode,
    state: ClusterState,
    options: DisruptionOptions,
    everyone: Sequence[Pod] | None = None,
) -> str | None:
    """Why the node's pods forbid graceful eviction now, or None."""
    for pod in node.pods:
        if pod.do_not_disrupt:
            return f"pod {pod.key} is annotated karpenter.sh/do-not-disrupt"
    if options.block_controllerless_pods:
        for pod in node.pods:
            if pod.owner is None:
                return f"pod {pod.key} has no controller: evicting it would delete it for good"
    evictable = [p for p in node.pods if is_reschedulable(p)]
    pods = all_pods(state) if everyone is None else everyone
    return eviction_blocker(evictable, state.pdbs, pods, state.unhealthy_pods)


def build_candidates(
    state: ClusterState, now: float, options: DisruptionOptions, eventual: bool = False
) -> tuple[list[Candidate], dict[str, str]]:
    """The candidates, and for every other node the reason it is not one.

    `eventual`: for drift, pods that block eviction do not exclude a node whose claim has a
    terminationGracePeriod (Karpenter's EventualDisruptionClass).
    """
    everyone = all_pods(state)
    candidates: list[Candidate] = []
    reasons: dict[str, str] = {}
    for node in sorted(state.nodes, key=lambda n: n.name):
        blocked = node_blocker(node, state)
        if blocked is not None:
            reasons[node.name] = blocked
            continue
        facts = state.facts[node.name]
        pool = state.pools[facts.pool]
        by_pods = pod_blocker(node, state, options, everyone)
        if by_pods is not None and not (eventual and facts.termination_grace_period):
            reasons[node.name] = by_pods
            continue
        candidates.append(
            Candidate(
                node=node,
                facts=facts,
                pool=pool,
                reschedulable_pods=tuple(p for p in node.pods if is_reschedulable(p)),
                disruption_cost=disruption_cost(node.pods, facts, now),
                blocked_by=by_pods,
            )
        )
    return candidates, reasons
