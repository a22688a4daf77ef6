"""Knobs of the packer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PackOptions:
    """How the packer trades price, risk and time.

    `spot_interruption_penalty`: a spot offering is ranked by price x (1 + penalty x rate), rate
    being its expected monthly interruption fraction. The default 1.0 charges an interruption
    about one more hour-equivalent of the node per interrupted node-month share: a type in the
    >20% bucket costs 25% more than its price, one in the <5% bucket 2.5% more, so a spot offering
    wins while it is meaningfully cheaper than on-demand (usually 50-70%), and among spot types
    the calmer ones win near-ties. Reported prices are always the real ones.
    """

    spot_interruption_penalty: float = 1.0
    # wall-clock cap on the improvement phase (None: no cap, fully deterministic)
    time_budget_seconds: float | None = 2.0
    # how many other fitting types each NodeClaim lists for fallback on insufficient capacity
    max_alternatives: int = 20
    # local-search rounds after the LP-guided packing (0: none)
    improvement_rounds: int = 200
    # solve the lower bound (Plan.lower_bound; 0.0 when off): the dry run reports it, the
    # controllers, which plan every few seconds, do not need it
    lower_bound: bool = True
    # pack the groups of one pool that may share nodes (they differ only in type-level
    # requirements: a GPU model, the rule that keeps non-GPU pods off GPU types) as one problem,
    # each class with its own candidate mask; False: group by group, as before
    merge_groups: bool = True
    # also merge groups that differ in zone (a zone-spread class's per-zone sub-classes with the
    # unzoned pods): candidates become (zone set, type) pairs; nodes only unzoned pods use stay
    # unpinned. Cheaper plans (1,000-pod mixes, seeds 1-6, no cap: 1.3-4.0% over the bound,
    # apart 2.3-4.5%; 10,000 pods 2.1%, apart 2.7%) but about 0.5 s slower at 1,000 pods, so
    # within 2 s on a machine 1.7x slower one seed ends 5.2% over, apart 4.6% (BENCHMARKS.md)
    merge_zones: bool = False


DEFAULT_OPTIONS = PackOptions()
