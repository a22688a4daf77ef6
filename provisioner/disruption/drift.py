"""Drift: a node no longer matches what its NodePool (or NodeClass) would launch today."""

from __future__ import annotations

from provisioner.disruption.state import NodeFacts, PoolPolicy
from provisioner.scheduling.model import ExistingNode
from provisioner.scheduling.requirements import reqs_of


def drift_reason(node: ExistingNode, facts: NodeFacts, pool: PoolPolicy) -> str | None:
    """Why the node drifted, in words, or None (Karpenter's three drift checks).

    1. the cloud provider / NodeClass says so (`facts.drifted`: AMI, subnets, security groups);
    2. the NodePool's spec.template changed (hash differs from the claim's);
    3. the node's labels no longer satisfy the NodePool's requirements (keys the node has).
    """
    if facts.drifted:
        return facts.drift_reason or "NodeClass drifted"
    if facts.pool_hash is not None and pool.hash is not None and facts.pool_hash != pool.hash:
        return f"NodePool {pool.name} spec.template changed"
    reqs = reqs_of(pool.template.requirements)
    for key in sorted(reqs):
        if key in node.labels and not reqs[key].admits_label(node.labels[key]):
            return (
                f"NodePool {pool.name} requirement {reqs[key].describe()} no longer met "
                f"({key}={node.labels[key]})"
            )
    return None
