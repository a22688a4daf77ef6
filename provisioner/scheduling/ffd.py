"""The baseline: Karpenter's first-fit decreasing, counted by class instead of pod by pod.

Karpenter sorts pods by cpu then memory, largest first, and puts each on the first in-flight
NodeClaim where *some* remaining type still fits, else opens a new one with every type; at
launch each NodeClaim takes the cheapest type that fits its pods. Adding a class's pods to a
node in one step (as many as the roomiest remaining type takes) gives the same placement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from provisioner.scheduling.fit import BoolArray, IntArray
from provisioner.scheduling.groups import GroupProblem, PackedNode, how_many_fit
from provisioner.scheduling.model import ExistingNode, InstanceType, NodeTemplate, Plan, Pod
from provisioner.scheduling.options import DEFAULT_OPTIONS, PackOptions


class _OpenNode:
    __slots__ = ("counts", "mask", "room", "used")

    def __init__(self, problem: GroupProblem, mask: BoolArray) -> None:
        self.counts: IntArray = np.zeros(len(problem.counts), dtype=np.int64)
        self.used: IntArray = np.zeros(4, dtype=np.int64)
        self.mask = mask
        self.room: IntArray = problem.alloc[mask].max(axis=0)


def _add(problem: GroupProblem, node: _OpenNode, k: int, limit: int) -> int:
    """Put up to `limit` pods of class k on the node; returns how many went."""
    if limit <= 0 or np.any(problem.demand[k] > node.room):
        return 0
    if problem.conflicts[k, node.counts > 0].any():
        return 0
    limit = min(limit, int(problem.caps[k] - node.counts[k]))
    if limit <= 0:
        return 0
    admits = node.mask & problem.fits[k]  # the class's own candidate mask
    index = np.flatnonzero(admits)
    per_type = how_many_fit(problem.alloc[index], node.used, problem.demand[k])
    count = min(limit, int(per_type.max(initial=0)))
    while count > 0:
        used = node.used + problem.demand[k] * count
        mask = admits & np.all(problem.alloc >= used, axis=1)
        if not problem.min_values or problem.keeps_min_values(mask):
            node.used = used
            node.mask = mask
            node.counts[k] += count
            node.room = problem.alloc[mask].max(axis=0) - used
            return count
        count //= 2  # minValues: shrink until enough distinct values remain
    return 0


def ffd_pack(problem: GroupProblem, deadline: float | None = None) -> list[PackedNode]:
    """Karpenter's FFD over the group; each node ends on its cheapest fitting type."""
    del deadline  # FFD is one pass
    order = sorted(
        range(len(problem.counts)),
        key=lambda k: (-int(problem.demand[k, 0]), -int(problem.demand[k, 1]), k),
    )
    fits = problem.fits
    open_nodes: list[_OpenNode] = []
    for k in order:
        left = int(problem.counts[k])
        for node in open_nodes:
            if left == 0:
                break
            left -= _add(problem, node, k, left)
        while left > 0:
            mask = fits[k].copy()
            if not mask.any():
                raise ValueError("class fits no candidate type")  # filtered before packing
            node = _OpenNode(problem, mask)
            went = _add(problem, node, k, left)
            if went == 0:
                raise ValueError("class cannot be placed on an empty node")
            open_nodes.append(node)
            left -= went
    out = []
    for node in open_nodes:
        choice = np.where(node.mask, problem.price, np.inf)
        out.append(PackedNode(int(np.argmin(choice)), node.counts, node.used))
    return out


def plan_ffd(
    pods: Iterable[Pod],
    templates: Sequence[NodeTemplate],
    instance_types: Sequence[InstanceType],
    existing_nodes: Sequence[ExistingNode] = (),
    options: PackOptions = DEFAULT_OPTIONS,
) -> Plan:
    """The FFD baseline plan: same constraints and pool choice as `plan`, FFD packing only."""
    from provisioner.scheduling.scheduler import schedule

    return schedule(pods, templates, instance_types, existing_nodes, options, ffd_pack)
