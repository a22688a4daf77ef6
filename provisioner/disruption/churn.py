"""Churn figures from the record of node removals: how soon replacements go again, flapping.

The bound the disruption controller promises: a node launched as a replacement is never
removed by consolidation within its pool's consolidateAfter + the validation period (it is
not Consolidatable before consolidateAfter, and a command waits the validation period), and
consolidation never flaps A -> B -> A (a replacement is always strictly cheaper, and the
churn guard keeps a recently removed shape out of replacements).

A flap is a one-for-one replacement that puts back the shape its node replaced: the same pods
moved A -> B -> A. A merge (B and another node -> one A) is counted apart, as a shape
return: it moves other pods too and always removes a node, so it cannot cycle.
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
    parent: dict[str, Removal] = {}
    for r in removals:
        for child in r.replaced_by:
            parent[child] = r
    lifetimes: list[float] = []
    too_soon = flaps = returns = 0
    for r in removals:
        before = parent.get(r.node)
        if before is None or r.method not in CONSOLIDATION_METHODS:
            continue
        lived = r.at - r.created_at
        lifetimes.append(lived)
        if lived < bounds.get(r.pool, 0.0):
            too_soon += 1
        if before.instance_type in r.replacement_types:
            if r.command_nodes == 1 and len(r.replaced_by) == 1:
                flaps += 1
            else:
                returns += 1
    return Churn(
        removals=len(removals),
        replacements=len(parent),
        min_replacement_lifetime=min(lifetimes) if lifetimes else None,
        replaced_too_soon=too_soon,
        flaps=flaps,
        shape_returns=returns,
    )
