"""Kubernetes manifests (Node, PodDisruptionBudget) -> the planner's plain data. Pure.

For the dry run and any adapter that holds manifests as dicts; errors name the field path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from provisioner.api import NodePool
from provisioner.disruption.pdb import PdbState
from provisioner.disruption.pools import (
    POOL_HASH_ANNOTATION,
    POOL_HASH_VERSION,
    POOL_HASH_VERSION_ANNOTATION,
    pool_policy,
)
from provisioner.disruption.state import DO_NOT_DISRUPT, ClusterState, NodeFacts
from provisioner.durations import go_duration_seconds
from provisioner.scheduling.model import (
    CAPACITY_TYPE,
    INSTANCE_TYPE,
    NODEPOOL,
    ON_DEMAND,
    ZONE,
    ExistingNode,
    InstanceType,
    LabelSelector,
    Operator,
    Requirement,
)

INITIALIZED = "karpenter.sh/initialized"
DISRUPTED_TAINT = "karpenter.sh/disrupted"


def timestamp(value: object, path: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (`2024-05-01T10:00:00Z`)."""
    if not isinstance(value, str):
        raise ValueError(f"{path}: must be an RFC 3339 time, got {value!r}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"{path}: must be an RFC 3339 time, got {value!r}") from None


def node_price(types: Sequence[InstanceType], name: str, zone: str, capacity_type: str) -> float:
    """The node's hourly price from the catalog (its zone's offering, else the cheapest)."""
    itype = next((t for t in types if t.name == name), None)
    if itype is None:
        return 0.0
    same = [o.price for o in itype.offerings if o.capacity_type == capacity_type]
    here = [o.price for o in itype.offerings if o.capacity_type == capacity_type and o.zone == zone]
    return min(here or same or [0.0])


def node_facts(
    doc: Mapping[str, Any],
    pools: Mapping[str, NodePool],
    types: Sequence[InstanceType],
    default_created_at: float,
) -> NodeFacts | None:
    """Facts of a Node that a NodePool manages (label karpenter.sh/nodepool), else None.

    expireAfter and terminationGracePeriod come from the pool's template (a NodeClaim copies
    them); the pool hash from the node's annotation when it is ours (hash version).
    """
    meta = doc.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    pool_name = labels.get(NODEPOOL)
    if not pool_name:
        return None
    name = meta.get("name", "")
    created = meta.get("creationTimestamp")
    created_at = (
        default_created_at if created is None else timestamp(created, "metadata.creationTimestamp")
    )
    capacity_type = labels.get(CAPACITY_TYPE, ON_DEMAND)
    zone = labels.get(ZONE, "")
    instance_type = labels.get(INSTANCE_TYPE, "")
    taints = (doc.get("spec") or {}).get("taints") or []
    pool = pools.get(pool_name)
    expire_after = grace = None
    if pool is not None:
        template = pool.spec.template.spec
        expire_after = go_duration_seconds(template.expire_after)
        if template.termination_grace_period:
            grace = go_duration_seconds(template.termination_grace_period)
    ours = annotations.get(POOL_HASH_VERSION_ANNOTATION) == POOL_HASH_VERSION
    return NodeFacts(
        claim=name,
        pool=pool_name,
        instance_type=instance_type,
        capacity_type=capacity_type,
        zone=zone,
        price=node_price(types, instance_type, zone, capacity_type),
        created_at=created_at,
        initialized=labels.get(INITIALIZED, "true") == "true",
        do_not_disrupt=annotations.get(DO_NOT_DISRUPT) == "true",
        expire_after=expire_after,
        termination_grace_period=grace,
        pool_hash=annotations.get(POOL_HASH_ANNOTATION) if ours else None,
        marked_for_deletion=bool(meta.get("deletionTimestamp"))
        or any(t.get("key") == DISRUPTED_TAINT for t in taints if isinstance(t, Mapping)),
    )


def _int_or_percent(value: object, path: str) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{path}: must be an integer or a percentage, got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError(f"{path}: must be an integer or a percentage such as 50%, got {value!r}")


def _label_selector(value: object, path: str) -> LabelSelector | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: must be a label selector")
    labels = value.get("matchLabels") or {}
    exprs = []
    for i, expr in enumerate(value.get("matchExpressions") or []):
        where = f"{path}.matchExpressions[{i}]"
        try:
            op = Operator(expr.get("operator"))
        except ValueError:
            raise ValueError(
                f"{where}.operator: must be In, NotIn, Exists or DoesNotExist"
            ) from None
        exprs.append(Requirement(str(expr.get("key", "")), op, tuple(expr.get("values") or ())))
    return LabelSelector(tuple(sorted((str(k), str(v)) for k, v in labels.items())), tuple(exprs))


def pdb_from_manifest(doc: Mapping[str, Any]) -> PdbState:
    """A policy/v1 PodDisruptionBudget; raises ValueError naming the field."""
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    status = doc.get("status") or {}
    if not meta.get("name"):
        raise ValueError("metadata.name: required")
    min_available = _int_or_percent(spec.get("minAvailable"), "spec.minAvailable")
    max_unavailable = _int_or_percent(spec.get("maxUnavailable"), "spec.maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        raise ValueError("spec: minAvailable and maxUnavailable are mutually exclusive")
    allowed = status.get("disruptionsAllowed")
    return PdbState(
        name=str(meta["name"]),
        namespace=str(meta.get("namespace") or "default"),
        selector=_label_selector(spec.get("selector"), "spec.selector"),
        min_available=min_available,
        max_unavailable=max_unavailable,
        always_allow_unhealthy=spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow",
        status_disruptions_allowed=allowed if isinstance(allowed, int) else None,
    )


def cluster_state(
    node_docs: Sequence[Mapping[str, Any]],
    nodes: Sequence[ExistingNode],
    pools: Sequence[NodePool],
    types: Sequence[InstanceType],
    pdbs: Sequence[PdbState],
    now: float,
) -> ClusterState:
    """The planner's state from Node manifests (and their ExistingNode shapes) and NodePools."""
    by_pool = {p.metadata.name: p for p in pools}
    facts: dict[str, NodeFacts] = {}
    for doc in node_docs:
        name = (doc.get("metadata") or {}).get("name", "")
        found = node_facts(doc, by_pool, types, now)
        if found is not None:
            facts[name] = found
    priced = tuple(replace(n, price=facts[n.name].price) if n.name in facts else n for n in nodes)
    return ClusterState(
        nodes=priced,
        facts=facts,
        pools={name: pool_policy(pool) for name, pool in by_pool.items()},
        instance_types=tuple(types),
        pdbs=tuple(pdbs),
    )
