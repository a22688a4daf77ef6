"""A disruption decision and the round context the methods share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Protocol

from provisioner.disruption.budgets import budget_mapping, why_blocked
from provisioner.disruption.candidates import Candidate
from provisioner.disruption.simulation import offering_table, reserve
from provisioner.disruption.state import ClusterState, DisruptionOptions
from provisioner.scheduling.model import ExistingNode, NewNode

EXPIRED = "Expired"  # the reason of forceful expiration (not a budget reason)


class MethodName(StrEnum):
    EXPIRATION = "expiration"
    DRIFT = "drift"
    EMPTINESS = "emptiness"
    MULTI_NODE = "multi-node-consolidation"
    SINGLE_NODE = "single-node-consolidation"


class Decision(StrEnum):
    DELETE = "delete"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class Command:
    """Remove `candidates`; launch `replacements` first (and wait for them to be Ready).

    `placements`: pod key -> existing node name, or "<new-node-i>" (index in replacements),
    from the simulation that proved every evicted pod has a place. `forceful`: expiration,
    which goes ahead whatever budgets, do-not-disrupt and placements say (Karpenter v1); its
    drain still honours PDBs through the eviction API until terminationGracePeriod.
    """

    method: MethodName
    reason: str  # the budget reason (Underutilized, Empty, Drifted) or Expired
    candidates: tuple[Candidate, ...]
    replacements: tuple[NewNode, ...]
    placements: Mapping[str, str]
    price_before: float
    price_after: float
    explanation: str
    decided_at: float
    forceful: bool = False

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.candidates)

    @property
    def decision(self) -> Decision:
        return Decision.REPLACE if self.replacements else Decision.DELETE

    @property
    def savings_per_hour(self) -> float:
        return self.price_before - self.price_after

    @property
    def needs_validation(self) -> bool:
        """Consolidation and emptiness wait the validation period and re-check (Karpenter)."""
        return self.method in (
            MethodName.EMPTINESS,
            MethodName.MULTI_NODE,
            MethodName.SINGLE_NODE,
        )


@dataclass
class Round:
    """What every method of one planning round reads: the state, `now`, the knobs."""

    state: ClusterState
    now: float
    options: DisruptionOptions
    rejected: dict[str, str] = field(default_factory=dict)  # node -> why a method passed it

    @cached_property
    def base(self) -> list[ExistingNode]:
        return reserve(self.state, self.options)

    @cached_property
    def offerings(self) -> dict[str, tuple[tuple[str, str, float, bool], ...]]:
        return offering_table(self.state)

    @cached_property
    def pool_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Per pool: initialized managed nodes, and those already disrupting (Karpenter)."""
        totals: dict[str, int] = {}
        disrupting: dict[str, int] = {}
        for node in self.state.nodes:
            facts = self.state.facts.get(node.name)
            if facts is None or not facts.initialized:
                continue
            totals[facts.pool] = totals.get(facts.pool, 0) + 1
            if not node.ready or facts.marked_for_deletion:
                disrupting[facts.pool] = disrupting.get(facts.pool, 0) + 1
        return totals, disrupting

    def budgets(self, reason: str) -> dict[str, int]:
        totals, disrupting = self.pool_counts
        rules = {name: pool.budgets for name, pool in self.state.pools.items()}
        return budget_mapping(rules, totals, disrupting, reason, self.now)

    def why_no_budget(self, pool: str, reason: str) -> str:
        totals, disrupting = self.pool_counts
        rules = self.state.pools[pool].budgets
        return why_blocked(rules, totals.get(pool, 0), disrupting.get(pool, 0), reason, self.now)

    def reject(self, candidate: Candidate, why: str) -> None:
        self.rejected.setdefault(candidate.name, why)


class Method(Protocol):
    """One disruption method (Karpenter's Method interface)."""

    name: MethodName
    reason: str
    eventual: bool  # blocking pods do not exclude nodes with a terminationGracePeriod

    def why_not(self, candidate: Candidate) -> str | None:
        """Why this method leaves the candidate alone, in words; None when it may act."""
        ...

    def should_disrupt(self, candidate: Candidate) -> bool: ...

    def compute_command(
        self, candidates: Sequence[Candidate], budgets: dict[str, int]
    ) -> Command | None:
        """The command to execute now, or None; `budgets` is decremented as it is used."""
        ...


def sort_by_cost(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.disruption_cost, c.name))


def describe_nodes(candidates: Sequence[Candidate]) -> str:
    return ", ".join(f"{c.name}/{c.instance_type}/{c.capacity_type}" for c in candidates)
