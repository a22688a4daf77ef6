"""Node patterns by column generation: the cutting-stock LP of one group, and its rounding.

Pods of a class are identical, so a node is a pattern: a type and a count per class that fits
its allocatable in every resource, keeps the per-node caps and has no two conflicting classes.
The configuration LP (Gilmore-Gomory) buys patterns:

    min sum_j price_j x_j  s.t.  sum_j a_kj x_j >= n_k  (every pod covered),  x >= 0.

It starts from one single-class pattern per (type, class) and grows by pricing: with the duals
u_k of the coverage rows, a pattern of type t is worth buying when u . a > price_t. Pricing is a
multi-dimensional knapsack per type; a greedy one (classes by dual value per normalised size,
under a few size measures) finds improving patterns well enough for a good plan. Unlike the
per-class assignment LP (`bound.py`), the patterns hold whole pods, so small nodes are priced
with the room whole pods really leave.

Rounding: buy floor(x) of each pattern (capped by the pods still to place), re-solve for the
rest, and when no pattern is bought whole any more, buy one node of the largest fractional
pattern; the last few pods go to the LP-guided packer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csc_matrix, hstack

from provisioner.scheduling.bound import assignment_lp
from provisioner.scheduling.fit import BoolArray, FloatArray, IntArray
from provisioner.scheduling.groups import GroupProblem, PackedNode

HUGE = 1 << 40
SEED_TYPES = 3  # single-class seed columns per class
FOCUS = 12  # types priced between full pricings
FULL_EVERY = 5
TAIL = 5e-4  # stop when three rounds together gained less than this share
ROUNDS = 40
DIVE_PODS = 3000  # diving re-solves the LP once per node: only for groups this small
SEED_SLACK = 0.05
GROW_SHARE = 0.5


@dataclass
class PatternPool:
    """The columns so far: type and pod counts of each pattern, without repeats."""

    types: list[int] = field(default_factory=list)
    counts: list[IntArray] = field(default_factory=list)
    seen: set[tuple[int, bytes]] = field(default_factory=set)
    _rows: list[IntArray] = field(default_factory=list)
    _data: list[IntArray] = field(default_factory=list)
    _built: csc_matrix | None = None

    def add(self, t: int, counts: IntArray) -> bool:
        key = (t, counts.tobytes())
        if key in self.seen or not counts.any():
            return False
        self.seen.add(key)
        self.types.append(t)
        self.counts.append(counts)
        rows = np.flatnonzero(counts)
        self._rows.append(rows)
        self._data.append(counts[rows])
        return True

    def matrix(self, k_n: int) -> csc_matrix:
        """(K, J) pods of class k in pattern j; only new columns are converted."""
        done = 0 if self._built is None else self._built.shape[1]
        if done < len(self.types):
            rows, data = self._rows[done:], self._data[done:]
            indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
            fresh = csc_matrix(
                (np.concatenate(data).astype(np.float64), np.concatenate(rows), indptr),
                shape=(k_n, len(rows)),
            )
            self._built = fresh if self._built is None else hstack([self._built, fresh], "csc")
        assert self._built is not None
        return self._built


@dataclass(frozen=True)
class MasterSolution:
    value: float
    x: FloatArray  # (J,) patterns bought
    duals: FloatArray  # (K,) value of covering one more pod of class k


def solve_master(
    pool: PatternPool, price: FloatArray, left: IntArray, usable: BoolArray | None = None
) -> MasterSolution | None:
    """The configuration LP over the pool's patterns for `left` pods (HiGHS)."""
    costs = price[np.array(pool.types, dtype=np.int64)]
    if usable is not None:
        costs = np.where(usable, costs, np.inf)
    live = np.isfinite(costs)
    matrix = pool.matrix(len(left))
    rows = left > 0
    result = linprog(
        np.where(live, costs, 0.0),
        A_ub=-matrix[rows],
        b_ub=-left[rows].astype(np.float64),
        bounds=np.column_stack([np.zeros(len(costs)), np.where(live, np.inf, 0.0)]),
        method="highs",
    )
    if result.status != 0:
        return None
    duals = np.zeros(len(left))
    duals[rows] = np.maximum(-np.asarray(result.ineqlin.marginals, dtype=np.float64), 0.0)
    return MasterSolution(float(result.fun), np.asarray(result.x, dtype=np.float64), duals)


def seed_patterns(problem: GroupProblem, types: IntArray, pool: PatternPool) -> None:
    """First columns: each class alone on the types where its pods cost least each (so the LP
    is feasible), and the per-type average nodes of the assignment LP, rounded down."""
    p = problem
    bound = np.minimum(p.caps, p.counts)
    for k in range(len(p.counts)):
        fits = types[p.fits[k, types]]
        if not len(fits) or bound[k] <= 0:
            continue
        d = p.demand[k]
        positive = d > 0
        many = np.full(len(fits), bound[k], dtype=np.int64)
        if positive.any():
            many = np.minimum((p.alloc[fits][:, positive] // d[positive]).min(axis=1), many)
        per_pod = p.price[fits] / np.maximum(many, 1)
        for i in np.argsort(per_pod, kind="stable")[:SEED_TYPES]:
            counts = np.zeros(len(p.counts), dtype=np.int64)
            counts[k] = many[i]
            pool.add(int(fits[i]), counts)
    allowed = np.zeros(len(p.price), dtype=bool)
    allowed[types] = True
    solved = assignment_lp(p.demand, p.counts, p.caps, p.alloc, p.price, p.fits & allowed)
    if solved is None:
        return
    if solved.duals is not None:
        # the assignment LP's pod prices are close to the configuration LP's: patterns nearly
        # worth their price at those are good first columns
        duals = np.maximum(solved.duals, 0.0)
        found, _ = improving_patterns(p, types, duals, p.counts, SEED_SLACK)
        for t, counts in found:
            pool.add(t, counts)
    for used in np.flatnonzero(solved.nodes > 1e-9).tolist():
        average = np.floor(solved.pods[:, used] / max(solved.nodes[used], 1.0) + 1e-9)
        counts = np.minimum(average.astype(np.int64), bound)
        present = counts > 0
        if not p.conflicts[np.ix_(present, present)].any():
            pool.add(used, counts)


def greedy_patterns(
    problem: GroupProblem,
    types: IntArray,
    value: FloatArray,
    bound: IntArray,
    size: FloatArray,
    start: IntArray | None = None,
) -> IntArray:
    """Per type, a knapsack filled greedily (on top of `start`): classes by value / size[t, k],
    as many as fit. Vectorised over the types: step i tops each type up with its i-th class.
    """
    p = problem
    t_n, k_n = len(types), len(value)
    counts = np.zeros((t_n, k_n), dtype=np.int64) if start is None else start.copy()
    room = p.alloc[types] - counts @ p.demand
    blocked = ~p.fits[:, types].T | (value <= 0)[None, :] | (counts >= bound[None, :])
    if p.conflicts.any():
        blocked |= (counts > 0).astype(np.int64) @ p.conflicts.astype(np.int64) > 0
    score = np.where(blocked, -np.inf, value[None, :] / np.maximum(size, 1e-12))
    order = np.argsort(-score, axis=1, kind="stable")
    rows = np.arange(t_n)
    conflicts = p.conflicts.any()
    demand = p.demand
    safe = np.maximum(demand, 1)
    unbounded = np.where(demand > 0, 0, HUGE)  # a resource the class does not ask for
    for step in range(int((~blocked).sum(axis=1).max(initial=0))):
        k = order[:, step]
        live = ~blocked[rows, k]
        n = np.minimum((room // safe[k] + unbounded[k]).min(axis=1), bound[k] - counts[rows, k])
        n = np.maximum(n, 0) * live
        counts[rows, k] += n
        room -= demand[k] * n[:, None]
        if conflicts:
            blocked |= (n > 0)[:, None] & p.conflicts[k]
    return counts


def relaxed_knapsacks(
    problem: GroupProblem, types: IntArray, value: FloatArray, bound: IntArray
) -> tuple[IntArray, FloatArray] | None:
    """Every type's knapsack LP relaxation in one block-diagonal LP (HiGHS): the solutions
    rounded down (conflicting mixes dropped), and each type's LP value, an upper bound on
    what any pattern of that type is worth."""
    p = problem
    t_n, k_n = len(types), len(value)
    pair_t, pair_k = np.nonzero(p.fits[:, types].T & (value > 0)[None, :] & (bound > 0)[None, :])
    if not len(pair_t):
        return np.zeros((t_n, k_n), dtype=np.int64), np.zeros(t_n)
    alloc = p.alloc[types].astype(np.float64)
    share = p.demand[pair_k] / np.where(alloc > 0, alloc, 1.0)[pair_t]  # (P, 4)
    rows = (pair_t[:, None] * 4 + np.arange(4)[None, :]).ravel()
    cols = np.repeat(np.arange(len(pair_t)), 4)
    vals = share.ravel()
    keep = vals > 0
    matrix = csc_matrix((vals[keep], (rows[keep], cols[keep])), shape=(4 * t_n, len(pair_t)))
    result = linprog(
        -value[pair_k],
        A_ub=matrix,
        b_ub=np.ones(4 * t_n),
        bounds=np.column_stack([np.zeros(len(pair_t)), bound[pair_k].astype(np.float64)]),
        method="highs",
        options={"presolve": False},  # separable blocks: presolve costs more than it saves
    )
    if result.status != 0:
        return None
    x = np.asarray(result.x, dtype=np.float64)
    worth = np.zeros(t_n)
    np.add.at(worth, pair_t, x * value[pair_k])
    counts = np.zeros((t_n, k_n), dtype=np.int64)
    counts[pair_t, pair_k] = np.floor(x + 1e-9).astype(np.int64)
    if p.conflicts.any():
        present = counts > 0
        clash = ((present.astype(np.int64) @ p.conflicts.astype(np.int64)) * present).any(axis=1)
        counts[clash] = 0
    return counts, worth


def size_measures(problem: GroupProblem, types: IntArray, left: IntArray) -> list[FloatArray]:
    """(T, K) sizes of each class on each type, under a few norms the greedy tries in turn."""
    alloc = problem.alloc[types].astype(np.float64)
    share = problem.demand[None, :, :] / np.where(alloc > 0, alloc, 1.0)[:, None, :]  # (T,K,4)
    total = (left @ problem.demand).astype(np.float64)  # what is left, summed
    need = total[None, :] / np.where(alloc > 0, alloc, 1.0)  # (T,4) nodes' worth per resource
    weights = need / np.maximum(need.sum(axis=1, keepdims=True), 1e-12)
    return [
        share.max(axis=2),
        share[:, :, :3].sum(axis=2),
        np.einsum("tkr,tr->tk", share, weights),
        share[:, :, 0] + 1e-3 * share[:, :, 1],
        share[:, :, 1] + 1e-3 * share[:, :, 0],
    ]


def improving_patterns(
    problem: GroupProblem,
    types: IntArray,
    duals: FloatArray,
    left: IntArray,
    slack: float = -1e-9,
) -> tuple[list[tuple[int, IntArray]], FloatArray]:
    """Patterns with a negative reduced cost, and per type the LP bound on a pattern's worth
    over its price (below 1: the type has no improving pattern at these duals)."""
    bound = np.minimum(problem.caps, left)
    price = problem.price[types]
    relaxed = relaxed_knapsacks(problem, types, duals, bound)
    starts: list[IntArray | None] = [None]
    ratio = np.full(len(types), np.inf)
    if relaxed is not None:
        starts.append(relaxed[0])
        ratio = relaxed[1] / price
    out: list[tuple[int, IntArray]] = []
    sizes = size_measures(problem, types, left)
    # from scratch under the max-share norm; from the rounded-down LP under two norms
    for start, which in zip(starts, ((0,), (0, 1)), strict=False):
        for size in (sizes[i] for i in which):
            counts = greedy_patterns(problem, types, duals, bound, size, start)
            reduced = (price - counts @ duals) / price
            out.extend((int(types[i]), counts[i]) for i in np.flatnonzero(reduced < slack))
    return out, ratio


@dataclass
class ColumnGeneration:
    """The configuration LP of one group, grown by pricing, then rounded into nodes."""

    problem: GroupProblem
    types: IntArray  # candidate indices worth pricing (undominated, some pod fits)
    deadline: float | None
    rounds: int = ROUNDS
    pool: PatternPool = field(default_factory=PatternPool)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def grow(self, left: IntArray, rounds: int) -> MasterSolution | None:
        """Add improving patterns for `left` until none is found or the rounds run out.

        Every few rounds all types are priced; in between only the FOCUS types whose LP bound
        promised the most at the last full pricing (pricing is most of the time spent)."""
        solved = solve_master(self.pool, self.problem.price, left)
        focus = self.types
        full = True
        history: list[float] = []
        for done in range(rounds):
            if solved is None or self.out_of_time():
                break
            types = self.types if full else focus
            found, ratio = improving_patterns(self.problem, types, solved.duals, left)
            if full:
                promising = np.flatnonzero(ratio > 1 + 1e-9)
                best = promising[np.argsort(-ratio[promising], kind="stable")][:FOCUS]
                focus = self.types[np.sort(best)]
            added = sum(self.pool.add(t, counts) for t, counts in found)
            if not added and full:
                break
            full = not added or (done + 1) % FULL_EVERY == 0
            if added:
                before = solved.value
                solved = solve_master(self.pool, self.problem.price, left)
                if solved is not None:
                    history.append(before - solved.value)
                    # tailing off: the last rounds together gained less than TAIL of the value
                    if len(history) >= 3 and sum(history[-3:]) < TAIL * solved.value:
                        break
        self.rounds_done = done
        return solved

    def buy(self, solved: MasterSolution, whole: IntArray, left: IntArray) -> list[PackedNode]:
        """Nodes of the patterns bought whole, largest share first, pods capped by `left`
        (taken from it)."""
        nodes: list[PackedNode] = []
        for j in np.flatnonzero(whole)[np.argsort(-solved.x[whole > 0], kind="stable")]:
            for _ in range(int(whole[j])):
                take = np.minimum(self.pool.counts[j], left)
                if not take.any():
                    break
                left -= take
                nodes.append(PackedNode(self.pool.types[j], take, self.problem.demand_of(take)))
        return nodes

    def roundings(self) -> list[tuple[list[PackedNode], IntArray]]:
        """Ways to round the LP, each as nodes and the pods per class left to place:
        floor(x) re-solved until nothing is bought whole; and, for small groups, diving
        (the whole nodes of the most-bought pattern, at least one, the LP re-solved after each)."""
        p = self.problem
        seed_patterns(p, self.types, self.pool)
        deadline = self.deadline
        if deadline is not None:
            # growing may take half the time left: rounding and later groups need the rest
            self.deadline = time.perf_counter() + GROW_SHARE * (deadline - time.perf_counter())
        first = self.grow(p.counts.copy(), self.rounds)
        self.deadline = deadline
        if first is None:
            return []
        out: list[tuple[list[PackedNode], IntArray]] = []
        for dive in (False, True):
            if dive and p.counts.sum() > DIVE_PODS:
                break
            left = p.counts.copy()
            nodes: list[PackedNode] = []
            solved: MasterSolution | None = first
            while solved is not None and left.any() and not self.out_of_time():
                whole = np.floor(solved.x + 1e-6).astype(np.int64)
                if dive:
                    # the most-bought pattern, all its whole nodes at once (at least one)
                    top = int(np.argmax(solved.x))
                    whole = np.zeros_like(whole)
                    whole[top] = max(1, int(np.floor(solved.x[top] + 1e-6)))
                elif not whole.any():
                    break
                nodes += self.buy(solved, whole, left)
                solved = solve_master(self.pool, p.price, left) if left.any() else None
            out.append((nodes, left))
        return out


def pattern_roundings(
    problem: GroupProblem, types: IntArray, deadline: float | None, rounds: int = ROUNDS
) -> list[tuple[list[PackedNode], IntArray]]:
    """Nodes from the rounded configuration LP and the pods per class each rounding leaves."""
    return ColumnGeneration(problem, types, deadline, rounds).roundings()
