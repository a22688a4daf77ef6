"""Drift and emptiness: the two methods that need no price comparison.

Karpenter v1 runs Drift, then Emptiness, then multi- and single-node consolidation
(`consolidation.py`); the first method that yields a command wins the round.
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.disruption.budgets import Reason
from provisioner.disruption.candidates import Candidate, consolidatable_at
from provisioner.disruption.command import (
    Command,
    MethodName,
    Round,
    describe_nodes,
    sort_by_cost,
)
from provisioner.disruption.drift import drift_reason
from provisioner.disruption.simulation import simulate


def consolidation_wait(candidate: Candidate, now: float) -> str | None:
    """Why consolidateAfter keeps the node (None once it is Consolidatable)."""
    at = consolidatable_at(candidate.facts, candidate.pool)
    if at is None:
        return f"NodePool {candidate.pool.name} has consolidateAfter: Never"
    if now < at:
        return (
            f"consolidatable in {at - now:.0f}s (consolidateAfter "
            f"{candidate.pool.consolidate_after:.0f}s after its last pod event)"
        )
    return None


class Emptiness:
    """Delete nodes with no reschedulable pod, past consolidateAfter, within the Empty budget."""

    name = MethodName.EMPTINESS
    reason: str = Reason.EMPTY
    eventual = False

    def __init__(self, round_: Round) -> None:
        self.round = round_

    def why_not(self, candidate: Candidate) -> str | None:
        if candidate.reschedulable_pods:
            return f"not empty ({len(candidate.reschedulable_pods)} pods)"
        return consolidation_wait(candidate, self.round.now)

    def should_disrupt(self, candidate: Candidate) -> bool:
        return self.why_not(candidate) is None

    def compute_command(
        self, candidates: Sequence[Candidate], budgets: dict[str, int]
    ) -> Command | None:
        empty = []
        for candidate in sort_by_cost(candidates):
            if budgets.get(candidate.pool.name, 0) <= 0:
                self.round.reject(
                    candidate, self.round.why_no_budget(candidate.pool.name, self.reason)
                )
                continue
            budgets[candidate.pool.name] -= 1
            empty.append(candidate)
        if not empty:
            return None
        price = sum(c.price for c in empty)
        return Command(
            method=self.name,
            reason=self.reason,
            candidates=tuple(empty),
            replacements=(),
            placements={},
            price_before=price,
            price_after=0.0,
            explanation=f"empty for consolidateAfter: delete {describe_nodes(empty)}",
            decided_at=self.round.now,
        )


class Drift:
    """Replace drifted nodes one at a time, oldest drift first, within the Drifted budget.

    Empty drifted nodes are left to emptiness (Karpenter), unless the pool's consolidateAfter
    is Never, where emptiness would never take them.
    """

    name = MethodName.DRIFT
    reason: str = Reason.DRIFTED
    eventual = True

    def __init__(self, round_: Round) -> None:
        self.round = round_

    def why_not(self, candidate: Candidate) -> str | None:
        if drift_reason(candidate.node, candidate.facts, candidate.pool) is None:
            return "not drifted"
        return None

    def should_disrupt(self, candidate: Candidate) -> bool:
        return self.why_not(candidate) is None

    def compute_command(
        self, candidates: Sequence[Candidate], budgets: dict[str, int]
    ) -> Command | None:
        def drifted_at(c: Candidate) -> tuple[float, str]:
            at = c.facts.drifted_at
            return (c.facts.created_at if at is None else at, c.name)

        for candidate in sorted(candidates, key=drifted_at):
            if not candidate.reschedulable_pods and candidate.pool.consolidate_after is not None:
                self.round.reject(candidate, "drifted and empty: left to emptiness")
                continue
            if budgets.get(candidate.pool.name, 0) <= 0:
                self.round.reject(
                    candidate, self.round.why_no_budget(candidate.pool.name, self.reason)
                )
                continue
            sim = simulate(self.round.state, [candidate], self.round.options, self.round.base)
            if not sim.all_placed:
                self.round.reject(candidate, f"drifted, but {sim.why_not_placed()}")
                continue
            budgets[candidate.pool.name] -= 1
            why = drift_reason(candidate.node, candidate.facts, candidate.pool)
            blocked = f"; drains past '{candidate.blocked_by}'" if candidate.blocked_by else ""
            return Command(
                method=self.name,
                reason=self.reason,
                candidates=(candidate,),
                replacements=sim.plan.new_nodes,
                placements=sim.placements,
                price_before=candidate.price,
                price_after=sim.plan.total_price,
                explanation=f"drifted: {why}{blocked}",
                decided_at=self.round.now,
            )
        return None
