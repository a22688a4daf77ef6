"""NodePool (the CRD model) -> PoolPolicy, and the NodePool hash that drift compares."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from provisioner.api import NodePool
from provisioner.disruption.budgets import BudgetRule
from provisioner.disruption.state import ConsolidationPolicy, PoolPolicy
from provisioner.durations import go_duration_seconds
from provisioner.nodepools import node_template
from provisioner.scheduling.model import Resources

# NodeClaim annotations the executor stamps so drift can compare hashes (Karpenter's keys;
# the version tells our hash from Karpenter's own, which is computed differently)
POOL_HASH_ANNOTATION = "karpenter.sh/nodepool-hash"
POOL_HASH_VERSION_ANNOTATION = "karpenter.sh/nodepool-hash-version"
POOL_HASH_VERSION = "ebbflow-1"


def pool_hash(pool: NodePool) -> str:
    """A stable hash of spec.template without requirements (Karpenter's NodePool.Hash()).

    Requirements are left out as Karpenter does: a node drifts on them only when its labels
    stop satisfying them, which `drift.drift_reason` checks.
    """
    template: dict[str, Any] = pool.spec.template.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    template.get("spec", {}).pop("requirements", None)
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def budget_rules(pool: NodePool) -> tuple[BudgetRule, ...]:
    rules = []
    for budget in pool.spec.disruption.budgets:
        duration = None if budget.duration is None else go_duration_seconds(budget.duration)
        reasons = None if budget.reasons is None else frozenset(r.value for r in budget.reasons)
        rules.append(BudgetRule(budget.nodes, budget.schedule, duration, reasons))
    return tuple(rules)


def pool_policy(pool: NodePool, in_use: Resources = Resources()) -> PoolPolicy:  # noqa: B008
    """What the planner needs from a NodePool; `in_use` as for `node_template`."""
    disruption = pool.spec.disruption
    return PoolPolicy(
        name=pool.metadata.name,
        template=node_template(pool, in_use),
        consolidation_policy=ConsolidationPolicy(disruption.consolidation_policy.value),
        consolidate_after=go_duration_seconds(disruption.consolidate_after),
        budgets=budget_rules(pool),
        hash=pool_hash(pool),
    )
