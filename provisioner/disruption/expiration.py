"""Expiration: nodes past their claim's expireAfter are deleted, forcefully (Karpenter v1).

In v1 expiration is no disruption method: it ignores budgets, do-not-disrupt and whether the
pods have a place (the drain still goes through the eviction API, so PDBs hold it back until
terminationGracePeriod). We still simulate the pods so the executor can launch their new
nodes ahead of the drain and show where they go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from provisioner.disruption.candidates import Candidate, disruption_cost, is_reschedulable
from provisioner.disruption.command import EXPIRED, Command, MethodName
from provisioner.disruption.simulation import reserve, simulate
from provisioner.disruption.state import ClusterState, DisruptionOptions


def expires_at(state: ClusterState, name: str) -> float | None:
    facts = state.facts.get(name)
    if facts is None or facts.expire_after is None:
        return None
    return facts.created_at + facts.expire_after


def expired_commands(state: ClusterState, now: float, options: DisruptionOptions) -> list[Command]:
    """One forceful delete per expired node, oldest first."""
    expired: list[Candidate] = []
    for node in state.nodes:
        facts = state.facts.get(node.name)
        at = expires_at(state, node.name)
        if facts is None or at is None or now < at or facts.marked_for_deletion:
            continue
        pool = state.pools.get(facts.pool)
        if pool is None:
            continue
        expired.append(
            Candidate(
                node=node,
                facts=facts,
                pool=pool,
                reschedulable_pods=tuple(p for p in node.pods if is_reschedulable(p)),
                disruption_cost=disruption_cost(node.pods, facts, now),
            )
        )
    expired.sort(key=lambda c: (c.facts.created_at, c.name))
    commands: list[Command] = []
    base = reserve(state, options)
    gone: set[str] = set()
    for candidate in expired:
        others = [n for n in base if n.name not in gone]
        sim = simulate(state, [candidate], options, others)
        gone.add(candidate.name)
        # later expirations must not count on room this one's pods take
        taken = {pod.key for pod in sim.evicted}
        placed = sim.placements
        base = [
            replace(n, pods=n.pods + tuple(p for p in sim.evicted if placed.get(p.key) == n.name))
            if any(placed.get(k) == n.name for k in taken)
            else n
            for n in base
        ]
        unplaced = "" if sim.all_placed else f"; {sim.why_not_placed()}"
        age = now - candidate.facts.created_at
        commands.append(
            Command(
                method=MethodName.EXPIRATION,
                reason=EXPIRED,
                candidates=(candidate,),
                replacements=sim.plan.new_nodes,
                placements=placed,
                price_before=candidate.price,
                price_after=sim.plan.total_price,
                explanation=(
                    f"expired: {age:.0f}s old, expireAfter {candidate.facts.expire_after:.0f}s"
                    f"{unplaced}"
                ),
                decided_at=now,
                forceful=True,
            )
        )
    return commands


def expired_names(commands: Sequence[Command]) -> set[str]:
    return {name for c in commands for name in c.nodes}
