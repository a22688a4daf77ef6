"""The dry run's JSON: what would be disrupted now and why, and why the rest is left alone."""

from __future__ import annotations

from typing import Any

from provisioner.disruption.planner import DisruptionPlan


def disruption_json(plan: DisruptionPlan) -> dict[str, Any]:
    """`ebbflow provision plan --disruption -o json` (a stable contract, see README)."""
    return {
        "disruptions": [
            {
                "method": c.method.value,
                "nodes": list(c.nodes),
                "replacements": [
                    {
                        "nodePool": r.pool,
                        "instanceType": r.instance_type,
                        "capacityType": r.capacity_type,
                        "zone": r.zone,
                        "pricePerHour": round(r.price, 6),
                        "alternatives": list(r.alternatives),
                    }
                    for r in c.replacements
                ],
                "savingsPerHour": round(c.savings_per_hour, 6),
                "reason": c.explanation,
            }
            for c in plan.commands
        ],
        "notCandidates": [
            {"node": node, "reason": reason} for node, reason in plan.not_candidates.items()
        ],
    }
