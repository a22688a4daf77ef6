"""Churn figures from the record of node removals: how soon replacements go again, flapping.

The bound the disruption controller promises: a node launched as a replacement is never
removed by consolidation within its pool's consolidateAfter + the validation period (it is
not Consolidatable before consolidateAfter, and a command waits the validation period), and
consolidation never flaps A -> B -> A (a replacement is always strictly cheaper, and the
churn guard keeps a recently removed shape out of replacements).

A flap is two one-for-one replacements in a row that put back the first shape: the same pods
moved A -> B -> A. A return to a shape through a merge (A and X -> B, then B -> A; or B and X
-> A) is counted apart, as a shape return: a merge always removes a node, so it cannot cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provisioner.disruption.command import MethodName

CONSOLIDATION_METHODS = frozenset(
    {MethodName.EMPTINESS, MethodName.MULTI_NODE, MethodName.SINGLE_NODE}
)
INTERRUPTION = "interruption"  # the method name recorded for a spot interruption


@dataclass(frozen=True, slots=True)
class Removal:
    """One node removed: when, what it was, by which method, and what was launched for it."""

    at: float
    node: str
    pool: str
    instance_type: str
    capacity_type: str
    method: str  # a MethodName value, or "interruption"
    created_at: float
    replaced_by: tuple[str, ...] = ()  # the replacement nodes launched for its command
    replacement_types: tuple[str, ...] = ()
    command_nodes: int = 1  # how many nodes its command removed together


@dataclass(frozen=True, slots=True)
class Churn:
    removals: int
    replacements: int  # nodes launched by disruption commands
    # a replacement's life from launch to its own removal by consolidation (None: none went)
    min_replacement_lifetime: float | None
    replaced_too_soon: int  # such removals inside the pool's bound (must be 0)
    flaps: int  # A -> B -> A, one for one: a replacement replaced back by its predecessor's type
    shape_returns: int  # a replacement merged with others into its predecessor's type


def churn(removals: Sequence[Removal], bounds: Mapping[str, float]) -> Churn:
    """The churn figures; `bounds`: pool -> consolidateAfter + validation period, seconds."""
    parents: dict[str, list[Removal]] = {}
    for r in removals:
        for child in r.replaced_by:
            parents.setdefault(child, []).append(r)
    lifetimes: list[float] = []
    too_soon = flaps = returns = 0
    for r in removals:
        before = parents.get(r.node)
        if before is None or r.method not in CONSOLIDATION_METHODS:
            continue
        lived = r.at - r.created_at
        lifetimes.append(lived)
        if lived < bounds.get(r.pool, 0.0):
            too_soon += 1
        if any(b.instance_type in r.replacement_types for b in before):
            if _one_for_one(r) and len(before) == 1 and _one_for_one(before[0]):
                flaps += 1
            else:
                returns += 1
    return Churn(
        removals=len(removals),
        replacements=len(parents),
        min_replacement_lifetime=min(lifetimes) if lifetimes else None,
        replaced_too_soon=too_soon,
        flaps=flaps,
        shape_returns=returns,
    )


def _one_for_one(r: Removal) -> bool:
    return r.command_nodes == 1 and len(r.replaced_by) == 1
