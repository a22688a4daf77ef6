"""LP-guided packing of one group, then local search.

1. Drop dominated types (another type is at least as large in every resource and no dearer).
2. Solve the per-class LP relaxation (`bound.assignment_lp`, HiGHS) for the pods left; for
   each type it uses, pack the whole pods it assigns there into nodes of that type with the
   dot-product rule for vector bin packing (the class whose shape, as a fraction of the node,
   best matches the remaining room goes first); put the fractional rest into the free room of
   open nodes; re-solve for what is still left, until every pod is placed.
3. Shrink every node to the cheapest type that still holds its pods.
4. Local search (`local_search.py`) until the deadline or the round limit: empty the
   least-used nodes into the others' free room and re-pack the emptiest few nodes together.

`pattern_pack` replaces steps 1-2 with the rounded configuration LP of `columns.py` (whole-pod
node patterns), keeps this packer for the few pods the rounding leaves, then steps 3-4.
"""

from __future__ import annotations

import numpy as np

from provisioner.scheduling.bound import assignment_lp, part_members, undominated
from provisioner.scheduling.columns import pattern_roundings
from provisioner.scheduling.fit import BoolArray, IntArray
from provisioner.scheduling.groups import GroupProblem, PackedNode, how_many_fit
from provisioner.scheduling.local_search import improve, shrink


class _Packing:
    """Mutable state: pods left per class, nodes so far."""

    def __init__(self, problem: GroupProblem, allowed: BoolArray) -> None:
        self.p = problem
        self.allowed = allowed
        self.left: IntArray = problem.counts.copy()
        self.nodes: list[PackedNode] = []

    def fill(self, t: int, pool: IntArray, start: PackedNode | None = None) -> PackedNode:
        """A node of type t (a new one, or `start` topped up) filled from `pool` (taken from
        it) by the dot-product rule."""
        p = self.p
        a = p.alloc[t].astype(np.float64)
        a_safe = np.where(a > 0, a, 1.0)
        node = PackedNode(t, np.zeros(len(p.counts), np.int64), np.zeros(4, np.int64))
        if start is not None:
            node = PackedNode(t, start.counts.copy(), start.used.copy())
        shape = p.demand / a_safe  # each class as a fraction of this node
        while True:
            room = p.alloc[t] - node.used
            live = (pool > 0) & np.all(p.demand <= room, axis=1) & (node.counts < p.caps)
            live &= p.fits[:, t]
            present = node.counts > 0
            if present.any():
                live &= ~p.conflicts[:, present].any(axis=1)
            if not live.any():
                return node
            score = np.where(live, shape[:, :3] @ (room[:3] / a_safe[:3]), -1.0)
            k = int(np.argmax(score))
            fit = int(how_many_fit(p.alloc[t : t + 1], node.used, p.demand[k])[0])
            fit = min(fit, int(p.caps[k] - node.counts[k]), int(pool[k]))
            step = max(1, fit // 8)
            node.counts[k] += step
            node.used = node.used + p.demand[k] * step
            pool[k] -= step

    def top_up(self, node: PackedNode, pool: IntArray) -> None:
        """Fill the node's leftover room from `pool` (taken from it)."""
        extra = self.fill(node.type, pool, node)
        node.counts, node.used = extra.counts, extra.used

    def into_room(self) -> None:
        """Put what is left into the free room of the nodes already open, largest pods first."""
        p = self.p
        if not self.nodes:
            return
        for k in np.argsort(-p.demand[:, 0], kind="stable"):
            for node in self.nodes:
                if self.left[k] == 0:
                    break
                n = min(int(self.left[k]), _room_ok(p, node, int(k)))
                if n:
                    node.counts[k] += n
                    node.used = node.used + p.demand[k] * n
                    self.left[k] -= n

    def run(self) -> None:
        p = self.p
        allowed = self.allowed.copy()
        while self.left.any():
            usable = p.fits & allowed[None, :]
            solved = assignment_lp(p.demand, self.left, p.caps, p.alloc, p.price, usable)
            if solved is None:
                return
            whole = np.floor(solved.pods + 1e-6).astype(np.int64)
            progress = False
            self.left -= whole.sum(axis=1)
            # largest types first: their leftover room is topped up with the small pods
            order = [
                int(t) for t in np.lexsort((-p.alloc[:, 1], -p.alloc[:, 0])) if solved.nodes[t] > 0
            ]
            for t in order:
                pool = whole[:, t]
                # the LP's average node of this type, rounded down, fits: start nodes from it
                pattern = np.floor(solved.pods[:, t] / max(solved.nodes[t], 1.0)).astype(np.int64)
                present = pattern > 0
                if p.conflicts[np.ix_(present, present)].any():
                    pattern[:] = 0
                for _ in range(int(np.floor(solved.nodes[t] + 1e-6))):
                    start = np.minimum(pattern, pool)
                    if not start.any():
                        break
                    pool -= start
                    seed = PackedNode(t, start, p.demand_of(start))
                    node = self.fill(t, pool, seed)
                    self.top_up(node, self.left)
                    for later in order:
                        if later != t and whole[:, later].any():
                            self.top_up(node, whole[:, later])
                    self.nodes.append(node)
                    progress = True
                while pool.any():
                    node = self.fill(int(t), pool)
                    if not node.counts.any():
                        break
                    # top up from the pods the LP left fractional, then from later types' shares
                    self.top_up(node, self.left)
                    for later in order:
                        if later != t and whole[:, later].any():
                            self.top_up(node, whole[:, later])
                    self.nodes.append(node)
                    progress = True
            self.left += whole.sum(axis=1)
            self.into_room()
            if progress or not self.left.any():
                continue
            # what is left is less than one node of any type: one node for as much as fits
            t_all = p.cheapest_fitting(self.left @ p.demand, self.left)
            t = t_all if t_all is not None and allowed[t_all] else int(np.argmax(solved.nodes))
            node = self.fill(t, self.left)
            if not node.counts.any():
                allowed[t] = False
                if not allowed.any():
                    return
                continue
            self.nodes.append(node)


def _room_ok(problem: GroupProblem, node: PackedNode, k: int) -> int:
    """How many pods of class k may join `node` (room, cap, conflicts)."""
    present = node.counts > 0
    if problem.conflicts[k, present].any() or not problem.fits[k, node.type]:
        return 0
    fit = int(
        how_many_fit(problem.alloc[node.type : node.type + 1], node.used, problem.demand[k])[0]
    )
    return max(0, min(fit, int(problem.caps[k] - node.counts[k])))


def _sub_problem(problem: GroupProblem, counts: IntArray) -> GroupProblem:
    return GroupProblem(
        demand=problem.demand,
        counts=counts,
        caps=problem.caps,
        conflicts=problem.conflicts,
        alloc=problem.alloc,
        price=problem.price,
        allowed=problem.allowed,
        _fits=problem.fits,
    )


def _packed(problem: GroupProblem, allowed: BoolArray, counts: IntArray) -> list[PackedNode] | None:
    """`counts` pods packed LP-guided; None when some cannot be placed."""
    packing = _Packing(_sub_problem(problem, counts), allowed)
    packing.run()
    return None if packing.left.any() else packing.nodes


def _price(problem: GroupProblem, nodes: list[PackedNode]) -> float:
    return float(sum(problem.price[n.type] for n in nodes))


def _shortlist(problem: GroupProblem) -> tuple[BoolArray, IntArray]:
    """Undominated types some pod fits: as a mask and as indices."""
    member = None if problem.allowed is None else part_members(problem.allowed)
    allowed = undominated(problem.alloc, problem.price, member) & problem.fits.any(axis=0)
    return allowed, np.flatnonzero(allowed)


def lp_pack(
    problem: GroupProblem, deadline: float | None = None, rounds: int = 200
) -> list[PackedNode] | None:
    """LP-guided packing and local search; None when it cannot place every pod."""
    if problem.min_values:
        return None  # minValues needs FFD's per-node type bookkeeping
    allowed, shortlist = _shortlist(problem)
    nodes = _packed(problem, allowed, problem.counts.copy())
    if nodes is None:
        return None
    shrink(problem, shortlist, nodes)
    return improve(
        problem, shortlist, nodes, lambda c: _packed(problem, allowed, c), deadline, rounds
    )


def pattern_pack(
    problem: GroupProblem, deadline: float | None = None, rounds: int = 200
) -> list[PackedNode] | None:
    """Nodes from the rounded configuration LP (`columns.py`), the pods each rounding leaves
    packed LP-guided, shrunk and improved by local search; the cheapest. None when no rounding
    places every pod."""
    if problem.min_values:
        return None  # minValues needs FFD's per-node type bookkeeping
    allowed, shortlist = _shortlist(problem)
    best: list[PackedNode] | None = None
    for nodes, left in pattern_roundings(problem, shortlist, deadline):
        if left.any():
            rest = _packed(problem, allowed, left)
            if rest is None:
                continue
            nodes = nodes + rest
        shrink(problem, shortlist, nodes)
        nodes = improve(
            problem, shortlist, nodes, lambda c: _packed(problem, allowed, c), deadline, rounds
        )
        if best is None or _price(problem, nodes) < _price(problem, best) - 1e-9:
            best = nodes
    return best
