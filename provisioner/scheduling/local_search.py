"""Local search over a complete packing of one group; never returns a dearer packing.

Nodes are held as arrays (type, pods per class, usage: one row per node), so a move is a few
numpy operations over all nodes instead of a Python loop over them:

1. shrink: every node moves to the cheapest type that holds its pods;
2. empty one of the least-used nodes into the free room of the others (first fit, node order);
3. re-pack the emptiest 2, 4 or 8 nodes together (by the packer passed in) when that is cheaper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from provisioner.scheduling.fit import IntArray
from provisioner.scheduling.groups import GroupProblem, PackedNode

HUGE = 1 << 40
VICTIMS = 8  # least-used nodes tried for emptying per round
REPACK_SIZES = (2, 4, 8)

# pods per class -> nodes holding them, or None when the packer cannot place them all
Repack = Callable[[IntArray], list[PackedNode] | None]


@dataclass
class NodeArrays:
    """A packing as arrays: type (N,), pods per class (N, K), usage (N, 4)."""

    types: IntArray
    counts: IntArray
    used: IntArray

    @classmethod
    def of(cls, problem: GroupProblem, nodes: list[PackedNode]) -> NodeArrays:
        k_n = len(problem.counts)
        return cls(
            np.array([n.type for n in nodes], dtype=np.int64),
            np.array([n.counts for n in nodes], dtype=np.int64).reshape(-1, k_n),
            np.array([n.used for n in nodes], dtype=np.int64).reshape(-1, 4),
        )

    def nodes(self) -> list[PackedNode]:
        return [
            PackedNode(int(t), c.copy(), u.copy())
            for t, c, u in zip(self.types.tolist(), self.counts, self.used, strict=True)
        ]

    def without(self, drop: IntArray) -> NodeArrays:
        keep = np.ones(len(self.types), dtype=bool)
        keep[drop] = False
        return NodeArrays(self.types[keep], self.counts[keep], self.used[keep])


def cheapest_types(
    problem: GroupProblem, shortlist: IntArray, used: IntArray, counts: IntArray
) -> IntArray:
    """Per node (rows of `used` and `counts`), the cheapest of the `shortlist` types that holds
    it and that its classes allow (-1: none).

    With `shortlist` the undominated types this is the cheapest of all types: a dominated type
    that holds the pods has a no dearer dominating type that holds them too (and that allows
    every class the dominated one allows)."""
    alloc = problem.alloc[shortlist]
    fits = np.all(alloc[None, :, :] >= used[:, None, :], axis=2)
    if problem.allowed is not None:
        fits &= problem.admitting(counts, shortlist)
    prices = np.where(fits, problem.price[shortlist][None, :], np.inf)
    best = np.argmin(prices, axis=1)
    out: IntArray = np.where(fits.any(axis=1), shortlist[best], -1)
    return out


def shrink(problem: GroupProblem, shortlist: IntArray, nodes: list[PackedNode]) -> None:
    """Move every node to the cheapest type that holds its pods, when that is cheaper."""
    if not nodes:
        return
    used = np.array([n.used for n in nodes], dtype=np.int64)
    counts = np.array([n.counts for n in nodes], dtype=np.int64)
    cheapest = cheapest_types(problem, shortlist, used, counts)
    for node, t in zip(nodes, cheapest.tolist(), strict=True):
        if t >= 0 and problem.price[t] < problem.price[node.type]:
            node.type = t


def _shrunk(problem: GroupProblem, shortlist: IntArray, packing: NodeArrays) -> None:
    if not len(packing.types):
        return
    cheapest = cheapest_types(problem, shortlist, packing.used, packing.counts)
    safe = np.where(cheapest >= 0, cheapest, packing.types)
    better = problem.price[safe] < problem.price[packing.types]
    packing.types = np.where(better, safe, packing.types)


def _utilisation(problem: GroupProblem, packing: NodeArrays) -> IntArray:
    """Node indices, least used first (largest share of any resource)."""
    alloc = problem.alloc[packing.types].astype(np.float64)
    share = np.where(alloc > 0, packing.used / np.where(alloc > 0, alloc, 1.0), 0.0)
    order: IntArray = np.argsort(share.max(axis=1), kind="stable")
    return order


def _emptied(problem: GroupProblem, packing: NodeArrays, victim: int) -> NodeArrays | None:
    """The packing with nodes[victim]'s pods moved into the other nodes' free room (first fit
    in node order, class by class), victim removed; None if they do not all fit."""
    p = problem
    counts = packing.counts.copy()
    used = packing.used.copy()
    room = p.alloc[packing.types] - used
    has_conflicts = p.conflicts.any()
    for k in np.flatnonzero(counts[victim]).tolist():
        need = int(counts[victim, k])
        d = p.demand[k]
        positive = d > 0
        fit = (room[:, positive] // d[positive]).min(axis=1) if positive.any() else HUGE
        fit = np.minimum(fit, p.caps[k] - counts[:, k])
        if has_conflicts and p.conflicts[k].any():
            fit = np.where((counts[:, p.conflicts[k]] > 0).any(axis=1), 0, fit)
        fit = np.where(p.fits[k, packing.types], np.maximum(fit, 0), 0)
        fit[victim] = 0
        before = np.cumsum(fit) - fit
        take = np.clip(need - before, 0, fit)
        if int(take.sum()) < need:
            return None
        counts[:, k] += take
        step = take[:, None] * d[None, :]
        used += step
        room -= step
    counts[victim] = 0
    return NodeArrays(packing.types, counts, used).without(np.array([victim]))


def improve(
    problem: GroupProblem,
    shortlist: IntArray,
    nodes: list[PackedNode],
    repack: Repack,
    deadline: float | None,
    rounds: int,
) -> list[PackedNode]:
    """Local search over a complete packing (see the module docstring); never dearer."""

    def out_of_time() -> bool:
        return deadline is not None and time.perf_counter() > deadline

    packing = NodeArrays.of(problem, nodes)
    changed_any = False
    for _ in range(rounds):
        if out_of_time() or len(packing.types) < 2:
            break
        changed = False
        order = _utilisation(problem, packing)
        for victim in order[:VICTIMS].tolist():
            emptied = _emptied(problem, packing, victim)
            if emptied is not None:
                packing = emptied
                _shrunk(problem, shortlist, packing)
                changed = True
                break
        if not changed:
            for size in REPACK_SIZES:
                if out_of_time() or size > len(packing.types):
                    break
                order = _utilisation(problem, packing)
                chosen = order[:size]
                fresh = repack(packing.counts[chosen].sum(axis=0))
                if fresh is None:
                    continue
                shrink(problem, shortlist, fresh)
                before = float(problem.price[packing.types[chosen]].sum())
                if float(sum(problem.price[n.type] for n in fresh)) < before - 1e-9:
                    rest = packing.without(chosen)
                    new = NodeArrays.of(problem, fresh)
                    packing = NodeArrays(
                        np.concatenate([rest.types, new.types]),
                        np.vstack([rest.counts, new.counts]),
                        np.vstack([rest.used, new.used]),
                    )
                    changed = True
                    break
        if not changed:
            break
        changed_any = True
    return packing.nodes() if changed_any else nodes
