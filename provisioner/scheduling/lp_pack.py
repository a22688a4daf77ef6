"""LP-guided packing of one group, then local search.

1. Cut the problem down (`reduced.py`): dominated candidates out, identical classes merged.
2. Solve the per-class LP relaxation (`bound.assignment_lp`, HiGHS) for the pods left; for
   each type it uses, pack the whole pods it assigns there into nodes of that type with the
   dot-product rule for vector bin packing (the class whose shape, as a fraction of the node,
   best matches the remaining room goes first); put the fractional rest into the free room of
   open nodes; re-solve for what is still left, until every pod is placed.
3. Shrink every node to the cheapest type that still holds its pods.
4. Local search (`local_search.py`) until the deadline or the round limit: empty the
   least-used nodes into the others' free room and re-pack the emptiest few nodes together.

`pattern_pack` replaces step 2 with the rounded configuration LP of `columns.py` (whole-pod
node patterns), keeps this packer for the pods the rounding leaves, then steps 3-4; small
groups with few classes also get the integer program over the patterns found, the cheaper of
the two kept. The `*_reduced` forms take a problem step 1 has already cut down (`packer.py`
reduces once for both).
"""

from __future__ import annotations

import time

import numpy as np

from provisioner.scheduling.bound import assignment_lp
from provisioner.scheduling.columns import SMALL_CLASSES, SMALL_PODS, ColumnGeneration
from provisioner.scheduling.fit import BoolArray, IntArray
from provisioner.scheduling.groups import GroupProblem, PackedNode, how_many_fit, price_of
from provisioner.scheduling.local_search import improve, shrink
from provisioner.scheduling.reduced import reduce_problem

# the round-up rules of the dives tried (`ColumnGeneration.round_up`), each while time allows:
# the most-bought pattern, then the one whose pods are most still left (1,000 pods, seeds 1-6:
# the better of the two up to 0.4% cheaper than the first alone; small groups: the first only,
# the second gained 0.06% for 30% more time)
DIVES = (False, True)


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
                # the LP's average node of this type, rounded down, should fit: start nodes from it
                pattern = np.floor(solved.pods[:, t] / max(solved.nodes[t], 1.0)).astype(np.int64)
                present = pattern > 0
                # HiGHS meets the LP within its tolerance: check the rounded node in integers
                overfull = np.any(p.demand_of(pattern) > p.alloc[t])
                if overfull or p.conflicts[np.ix_(present, present)].any():
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


def _finished(
    problem: GroupProblem, nodes: list[PackedNode], deadline: float | None, rounds: int
) -> list[PackedNode]:
    """Nodes shrunk and improved by local search (every candidate of a reduced problem is
    undominated: the shortlist is all of them)."""
    allowed = np.ones(len(problem.price), dtype=bool)
    shortlist = np.arange(len(problem.price))
    shrink(problem, shortlist, nodes)
    return improve(
        problem, shortlist, nodes, lambda c: _packed(problem, allowed, c), deadline, rounds
    )


def lp_pack_reduced(
    problem: GroupProblem, deadline: float | None = None, rounds: int = 200
) -> list[PackedNode] | None:
    """`lp_pack` on a problem `reduced.py` has already cut down."""
    nodes = _packed(problem, np.ones(len(problem.price), dtype=bool), problem.counts.copy())
    return None if nodes is None else _finished(problem, nodes, deadline, rounds)


def pattern_pack_reduced(
    problem: GroupProblem, deadline: float | None = None, rounds: int = 200
) -> list[PackedNode] | None:
    """`pattern_pack` on a problem `reduced.py` has already cut down."""
    allowed = np.ones(len(problem.price), dtype=bool)
    generation = ColumnGeneration(problem, np.arange(len(problem.price)), deadline)
    first = generation.first_solution()
    best: list[PackedNode] | None = None
    spent = 0.0
    small = problem.counts.sum() <= SMALL_PODS
    for usable in DIVES[:1] if small else DIVES:
        started = time.perf_counter()
        if best is not None and deadline is not None and started + spent > deadline:
            break  # another dive would not end in time
        nodes, left = generation.price_and_dive(first, usable)
        if left.any():
            rest = _packed(problem, allowed, left)
            if rest is None:
                continue
            nodes = nodes + rest
        nodes = _finished(problem, nodes, deadline, rounds)
        if best is None or price_of(problem, nodes) < price_of(problem, best) - 1e-9:
            best = nodes
        spent = time.perf_counter() - started
    if best is not None and small and len(problem.counts) <= SMALL_CLASSES:
        # the patterns of the pool and of the packing found, recombined in integers
        whole = generation.integer_master([best])
        if whole is not None:
            whole = _finished(problem, whole, deadline, rounds)
            if price_of(problem, whole) < price_of(problem, best) - 1e-9:
                best = whole
    return best


def lp_pack(
    problem: GroupProblem, deadline: float | None = None, rounds: int = 200
) -> list[PackedNode] | None:
    """LP-guided packing and local search; None when it cannot place every pod."""
    if problem.min_values:
        return None  # minValues needs FFD's per-node type bookkeeping
    reduced = reduce_problem(problem)
    nodes = lp_pack_reduced(reduced.problem, deadline, rounds)
    return None if nodes is None else reduced.expand(nodes)


def pattern_pack(
    problem: GroupProblem, deadline: float | None = None, rounds: int = 200
) -> list[PackedNode] | None:
    """Nodes from the rounded configuration LP (`columns.py`), the pods the rounding leaves
    packed LP-guided, shrunk and improved by local search. None when some pod cannot be
    placed."""
    if problem.min_values:
        return None  # minValues needs FFD's per-node type bookkeeping
    reduced = reduce_problem(problem)
    nodes = pattern_pack_reduced(reduced.problem, deadline, rounds)
    return None if nodes is None else reduced.expand(nodes)
