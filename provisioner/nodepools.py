"""NodePool (the CRD model) -> NodeTemplate (the scheduling core's plain data). Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from provisioner.api import NodePool, Taint
from provisioner.quantity import count, cpu_millicores, memory_bytes
from provisioner.scheduling.model import (
    NODEPOOL,
    NodeTemplate,
    Operator,
    Requirement,
    Resources,
    TaintEffect,
)
from provisioner.scheduling.model import Taint as PlainTaint

# a limit dimension the pool leaves unset: large enough never to bind, small enough to add
UNLIMITED = 1 << 62


def node_template(pool: NodePool, in_use: Resources = Resources()) -> NodeTemplate:  # noqa: B008
    """What `pool` contributes to a new node; `in_use` is its existing nodes' capacity."""
    spec = pool.spec.template.spec
    name = pool.metadata.name
    return NodeTemplate(
        pool=name,
        requirements=tuple(
            Requirement(r.key, Operator(r.operator.value), tuple(r.values), r.min_values)
            for r in spec.requirements
        ),
        # Karpenter labels every node with its pool (NodeClaimTemplate: karpenter.sh/nodepool)
        labels={**pool.spec.template.metadata.labels, NODEPOOL: name},
        taints=tuple(_taint(t) for t in spec.taints),
        startup_taints=tuple(_taint(t) for t in spec.startup_taints),
        weight=pool.spec.weight or 0,
        limits=pool_limits(pool.spec.limits),
        in_use=in_use,
    )


def pool_limits(limits: Mapping[str, str | int | float]) -> Resources | None:
    """spec.limits as Resources; None when the pool sets none, UNLIMITED for unset dimensions.

    cpu, memory, nvidia.com/gpu and pods are kept; other resources (ephemeral-storage,
    limits.nodes) have no dimension in the scheduling core and are ignored.
    """
    if not limits:
        return None

    def get(key: str, parse: Callable[[str | int | float], int]) -> int:
        value = limits.get(key)
        return UNLIMITED if value is None else parse(value)

    return Resources(
        cpu=get("cpu", cpu_millicores),
        memory=get("memory", memory_bytes),
        gpu=get("nvidia.com/gpu", count),
        pods=get("pods", count),
    )


def _taint(taint: Taint) -> PlainTaint:
    return PlainTaint(taint.key, TaintEffect(taint.effect.value), taint.value)
