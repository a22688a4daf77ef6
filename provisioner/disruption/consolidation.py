"""Multi- and single-node consolidation: remove nodes, or replace them by one cheaper node.

Karpenter v1 (`consolidation.go`): simulate without the candidates; every pod must find a
place; no new node means delete; more than one new node means no; one new node must be
strictly cheaper than the candidates together, keeping only the cheaper instance types as
options. All-spot candidates replaced by spot need the SpotToSpotConsolidation gate and, for
a single node, at least 15 cheaper spot types, of which only the 15 cheapest are kept (so the
launched type is never immediately consolidated again). Multi-node drops options of a type
being removed unless cheaper than that node (`filterOutSameType`).

Churn guard (ours): a replacement never uses an instance type that consolidation removed from
the same pool less than consolidateAfter + the validation period ago
(`ClusterState.recently_replaced`), which stops A -> B -> A flapping between two shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from provisioner.disruption.budgets import Reason
from provisioner.disruption.candidates import Candidate
from provisioner.disruption.command import (
    Command,
    MethodName,
    Round,
    describe_nodes,
    sort_by_cost,
)
from provisioner.disruption.methods import consolidation_wait
from provisioner.disruption.simulation import Simulation, offering_price, simulate
from provisioner.disruption.state import ConsolidationPolicy
from provisioner.scheduling.model import INSTANCE_TYPE, SPOT, NewNode, Operator, Requirement


def recently_replaced(round_: Round, pool: str, instance_type: str) -> bool:
    """The churn guard: was this shape removed by consolidation in this pool too recently?"""
    at = round_.state.recently_replaced.get((pool, instance_type))
    if at is None:
        return False
    policy = round_.state.pools.get(pool)
    after = (policy.consolidate_after if policy else 0.0) or 0.0
    return round_.now - at < after + round_.options.validation_period


def cheaper_replacement(
    round_: Round, new: NewNode, candidates: Sequence[Candidate]
) -> tuple[NewNode | None, str]:
    """`new` narrowed to the types that make the replacement worth it, or why none do."""
    before = sum(c.price for c in candidates)
    priced: list[tuple[float, str]] = []
    for name in dict.fromkeys((new.instance_type, *new.alternatives)):
        price = offering_price(round_.offerings, name, new.zone, new.capacity_type)
        if price is not None:
            priced.append((price, name))
    priced.sort()
    options = [(p, n) for p, n in priced if p < before]
    if not options:
        return None, f"no cheaper replacement than ${before:.4f}/hour"
    guarded = [(p, n) for p, n in options if not recently_replaced(round_, new.pool, n)]
    if not guarded:
        return None, "the cheaper types were removed from this pool too recently (churn guard)"
    options = guarded
    if len(candidates) > 1:
        # filterOutSameType: keeping one of the nodes beats replacing it with its own type
        same = [c.price for c in candidates if any(n == c.instance_type for _, n in options)]
        if same:
            options = [(p, n) for p, n in options if p < min(same)]
            if not options:
                return None, "the replacement would be one of the removed nodes' own types"
    spot_to_spot = new.capacity_type == SPOT and all(c.capacity_type == SPOT for c in candidates)
    if spot_to_spot:
        if not round_.options.spot_to_spot:
            return None, "spot-to-spot consolidation is disabled"
        if len(candidates) == 1:
            wanted = round_.options.min_spot_to_spot_types
            if len(options) < wanted:
                return None, (
                    f"spot-to-spot needs {wanted} cheaper spot types, only {len(options)} fit"
                )
            options = options[:wanted]
    price, chosen = options[0]
    names = tuple(n for _, n in options)
    requirements = (
        *(r for r in new.requirements if r.key != INSTANCE_TYPE),
        Requirement(INSTANCE_TYPE, Operator.IN, names),
    )
    narrowed = replace(
        new,
        instance_type=chosen,
        price=price,
        alternatives=names[1:],
        requirements=requirements,
    )
    return narrowed, ""


def compute_consolidation(
    round_: Round, method: MethodName, candidates: Sequence[Candidate]
) -> tuple[Command | None, str, Simulation | None]:
    """A delete or replace command for these candidates together, or why not."""
    sim = simulate(round_.state, candidates, round_.options, round_.base)
    if not sim.all_placed:
        return None, sim.why_not_placed(), sim
    before = sum(c.price for c in candidates)
    nodes = describe_nodes(candidates)
    if not sim.plan.new_nodes:
        cmd = Command(
            method=method,
            reason=Reason.UNDERUTILIZED,
            candidates=tuple(candidates),
            replacements=(),
            placements=sim.placements,
            price_before=before,
            price_after=0.0,
            explanation=f"underutilized: its pods fit on other nodes; delete {nodes}",
            decided_at=round_.now,
        )
        return cmd, "", sim
    if len(sim.plan.new_nodes) > 1:
        return None, f"its pods would need {len(sim.plan.new_nodes)} new nodes", sim
    new, why = cheaper_replacement(round_, sim.plan.new_nodes[0], candidates)
    if new is None:
        return None, why, sim
    cmd = Command(
        method=method,
        reason=Reason.UNDERUTILIZED,
        candidates=tuple(candidates),
        replacements=(new,),
        placements=sim.placements,
        price_before=before,
        price_after=new.price,
        explanation=(
            f"underutilized: replace {nodes} (${before:.4f}/hour) with one "
            f"{new.capacity_type} {new.instance_type} (${new.price:.4f}/hour)"
        ),
        decided_at=round_.now,
    )
    return cmd, "", sim


class _Consolidation:
    reason: str = Reason.UNDERUTILIZED
    eventual = False

    def __init__(self, round_: Round) -> None:
        self.round = round_

    def why_not(self, candidate: Candidate) -> str | None:
        policy = candidate.pool.consolidation_policy
        if policy is not ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED:
            return f"NodePool {candidate.pool.name} has consolidationPolicy {policy.value}"
        return consolidation_wait(candidate, self.round.now)

    def should_disrupt(self, candidate: Candidate) -> bool:
        return self.why_not(candidate) is None


class MultiNodeConsolidation(_Consolidation):
    """The largest prefix (by disruption cost, >= 2 nodes) that can go for <= 1 new node."""

    name = MethodName.MULTI_NODE

    def compute_command(
        self, candidates: Sequence[Candidate], budgets: dict[str, int]
    ) -> Command | None:
        allowed: list[Candidate] = []
        for candidate in sort_by_cost(candidates):
            if budgets.get(candidate.pool.name, 0) <= 0:
                continue
            budgets[candidate.pool.name] -= 1
            allowed.append(candidate)
        allowed = allowed[: self.round.options.max_multi_node_candidates]
        if len(allowed) < 2:
            return None
        # binary search on the prefix length, as Karpenter's firstNConsolidationOption
        low, high = 1, len(allowed) - 1
        best: Command | None = None
        while low <= high:
            mid = (low + high) // 2
            cmd, _, _ = compute_consolidation(self.round, self.name, allowed[: mid + 1])
            if cmd is not None:
                best, low = cmd, mid + 1
            else:
                high = mid - 1
        return best


class SingleNodeConsolidation(_Consolidation):
    """The first node (cheapest to disrupt, pools interleaved) that can go or be replaced."""

    name = MethodName.SINGLE_NODE

    def compute_command(
        self, candidates: Sequence[Candidate], budgets: dict[str, int]
    ) -> Command | None:
        for candidate in interleave_pools(sort_by_cost(candidates)):
            if not candidate.reschedulable_pods:
                continue  # empty nodes are emptiness's, under its own budget
            if budgets.get(candidate.pool.name, 0) <= 0:
                self.round.reject(
                    candidate, self.round.why_no_budget(candidate.pool.name, self.reason)
                )
                continue
            cmd, why, _ = compute_consolidation(self.round, self.name, [candidate])
            if cmd is not None:
                budgets[candidate.pool.name] -= 1
                return cmd
            self.round.reject(candidate, why)
        return None


def interleave_pools(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Round-robin over pools, each in its own order (Karpenter's shuffleCandidates)."""
    by_pool: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_pool.setdefault(c.pool.name, []).append(c)
    out: list[Candidate] = []
    depth = max((len(v) for v in by_pool.values()), default=0)
    for i in range(depth):
        for pool in sorted(by_pool):
            if i < len(by_pool[pool]):
                out.append(by_pool[pool][i])
    return out
