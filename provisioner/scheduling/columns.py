"""Node patterns by column generation: the cutting-stock LP of one group, and its rounding.

Pods of a class are identical, so a node is a pattern: a type and a count per class that fits
its allocatable in every resource, keeps the per-node caps and has no two conflicting classes.
The configuration LP (Gilmore-Gomory) buys patterns:

    min sum_j price_j x_j  s.t.  sum_j a_kj x_j >= n_k  (every pod covered),  x >= 0.

It starts from single-class patterns (the few types where a class alone costs least per pod)
and grows by pricing (`pricing.py`): with the duals u_k of the coverage rows, a pattern of type t
is worth buying when u . a > price_t. Every few rounds all types are priced, in between only
those whose knapsack bound promised most. The master LP keeps only the `ACTIVE` columns of
least reduced cost (the others stay in the pool and come back when pricing finds them again):
its solve time grows with the columns, and most of them never return to the basis.

Rounding (price and dive): buy floor(x) of every pattern at once, capped by the pods still to
place, and re-solve for the rest; when nothing is bought whole any more, price a few rounds for
the residual pods (patterns that fit what is left, not what was there at first), then buy one
node of the most-bought pattern (its free room topped up from the pods left when its pattern
holds more than is left), pricing again every `REPRICE_EVERY` such nodes. The whole nodes cost
one LP solve instead of one per node, and the residual gets patterns of its own (1,000 pods,
zone groups merged: about 30 re-solves instead of about 90, within 0.1-1.3% of the converged LP
after local search). With a deadline the LP grows in GROW_SHARE of the time left and the dive
takes DIVE_SHARE of the rest; past that, every pattern the LP still buys part of gets one node
at once, and local search has the remainder. Small groups (GPU pools) also get the integer
program over the patterns found (`integer_master`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csc_matrix, hstack

from provisioner.scheduling.fit import FloatArray, IntArray
from provisioner.scheduling.groups import GroupProblem, PackedNode
from provisioner.scheduling.pricing import greedy_patterns, improving_patterns, size_measures

__all__ = ["ColumnGeneration", "greedy_patterns", "pattern_roundings"]

SEED_TYPES = 3  # single-class seed columns per class
FOCUS = 12  # types priced between full pricings
FULL_EVERY = 3  # rounds between full pricings
TAIL = 5e-4  # stop when a full pricing finds the LP gained less than this share since the last
ROUNDS = 60
ACTIVE = 500  # columns in the master LP (300 or 1,000: plans 0.7-1.3% dearer on average)
RESIDUAL_ROUNDS = 5  # pricing rounds for the residual pods when nothing is bought whole
REPRICE_EVERY = 4  # dive nodes between residual pricings (8: half the time, 0.2-0.5% dearer)
# shares of the time left: growing the LP, then of what remains the dive (the rest: local
# search, which turns a dive's 1-6% over the LP into about 1%)
GROW_SHARE = 0.5
DIVE_SHARE = 0.75
# groups this small: fewer LP rounds (the rounding gap, not the LP, decides there) and, with
# this few classes (GPU pools), the integer program over the patterns found: a few ms there;
# a 50-pod zone group of 10 classes ran into the time limit for nothing
SMALL_PODS = 200
SMALL_ROUNDS = 10
SMALL_CLASSES = 8
NEAR = 0.05  # patterns this share dearer than their worth at the LP's duals join the program
INTEGER_NODES = 200  # branch-and-bound nodes (a node limit: the same plan everywhere)
INTEGER_SECONDS = 0.25  # and a time limit as a safety net: the node limit ends it well before


@dataclass
class PatternPool:
    """The columns so far (type and pod counts of each pattern, without repeats) and which of
    them the master LP uses."""

    k_n: int
    types: list[int] = field(default_factory=list)
    counts: list[IntArray] = field(default_factory=list)
    active: list[bool] = field(default_factory=list)
    _index: dict[tuple[int, bytes], int] = field(default_factory=dict)
    _rows: list[IntArray] = field(default_factory=list)
    _data: list[IntArray] = field(default_factory=list)
    _built: csc_matrix | None = None

    def add(self, t: int, counts: IntArray) -> bool:
        """Add (or bring back into the master) a pattern; False when nothing changed."""
        key = (t, counts.tobytes())
        j = self._index.get(key)
        if j is not None:
            if self.active[j]:
                return False
            self.active[j] = True
            return True
        if not counts.any():
            return False
        self._index[key] = len(self.types)
        self.types.append(t)
        self.counts.append(counts)
        self.active.append(True)
        rows = np.flatnonzero(counts)
        self._rows.append(rows)
        self._data.append(counts[rows])
        return True

    def matrix(self) -> csc_matrix:
        """(K, J) pods of class k in pattern j; only new columns are converted."""
        done = 0 if self._built is None else self._built.shape[1]
        if done < len(self.types):
            rows, data = self._rows[done:], self._data[done:]
            indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
            fresh = csc_matrix(
                (np.concatenate(data).astype(np.float64), np.concatenate(rows), indptr),
                shape=(self.k_n, len(rows)),
            )
            self._built = fresh if self._built is None else hstack([self._built, fresh], "csc")
        assert self._built is not None
        return self._built

    def prune(self, price: FloatArray, solved: MasterSolution, keep: int) -> None:
        """Keep the `keep` active columns of least reduced cost (the basic ones always)."""
        live = np.flatnonzero(self.active)
        if len(live) <= keep:
            return
        reduced = price[np.array(self.types)[live]] - self.matrix()[:, live].T @ solved.duals
        reduced[solved.x[live] > 1e-9] = -np.inf
        for j in live[np.argsort(reduced, kind="stable")[keep:]].tolist():
            self.active[j] = False


@dataclass(frozen=True)
class MasterSolution:
    value: float
    x: FloatArray  # (J,) patterns bought (0 for the columns out of the master)
    duals: FloatArray  # (K,) value of covering one more pod of class k


def solve_master(pool: PatternPool, price: FloatArray, left: IntArray) -> MasterSolution | None:
    """The configuration LP over the pool's active patterns for `left` pods (HiGHS)."""
    live = np.flatnonzero(pool.active)
    rows = left > 0
    result = linprog(
        price[np.array(pool.types, dtype=np.int64)[live]],
        A_ub=-pool.matrix()[:, live][rows],
        b_ub=-left[rows].astype(np.float64),
        bounds=(0, None),
        method="highs",
        options={"presolve": False},  # a small dense-ish LP: presolve costs more than it saves
    )
    if result.status != 0:
        return None
    x = np.zeros(len(pool.types))
    x[live] = np.asarray(result.x, dtype=np.float64)
    duals = np.zeros(len(left))
    duals[rows] = np.maximum(-np.asarray(result.ineqlin.marginals, dtype=np.float64), 0.0)
    return MasterSolution(float(result.fun), x, duals)


def single_class_patterns(problem: GroupProblem, types: IntArray, pool: PatternPool) -> None:
    """First columns: each class alone, as many as fit, on the SEED_TYPES types where its pods
    cost least each (so the LP is feasible)."""
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


@dataclass
class ColumnGeneration:
    """The configuration LP of one group, grown by pricing, then rounded into nodes."""

    problem: GroupProblem
    types: IntArray  # candidate indices worth pricing (undominated, some pod fits)
    deadline: float | None
    rounds: int = ROUNDS
    pool: PatternPool = field(init=False)

    def __post_init__(self) -> None:
        self.pool = PatternPool(len(self.problem.counts))

    def out_of_time(self, deadline: float | None = None) -> bool:
        limit = self.deadline if deadline is None else deadline
        return limit is not None and time.perf_counter() > limit

    def solve(self, left: IntArray) -> MasterSolution | None:
        """The master LP for `left`, its columns pruned to ACTIVE after."""
        solved = solve_master(self.pool, self.problem.price, left)
        if solved is None and not all(self.pool.active):
            # the columns kept for another residual may not cover this one
            self.pool.active = [True] * len(self.pool.active)
            solved = solve_master(self.pool, self.problem.price, left)
        if solved is not None:
            self.pool.prune(self.problem.price, solved, ACTIVE)
        return solved

    def grow(
        self, left: IntArray, rounds: int, deadline: float | None = None
    ) -> MasterSolution | None:
        """Add improving patterns for `left` until none is found, the LP stops gaining, the
        rounds run out or `deadline` (default: the packing's) passes."""
        solved = self.solve(left)
        focus = self.types
        full = True
        last_full: float | None = None
        for done in range(rounds):
            if solved is None or self.out_of_time(deadline):
                break
            types = self.types if full else focus
            found, ratio = improving_patterns(self.problem, types, solved.duals, left)
            if full:
                promising = np.flatnonzero(ratio > 1 + 1e-9)
                best = promising[np.argsort(-ratio[promising], kind="stable")][:FOCUS]
                focus = self.types[np.sort(best)]
                # tailing off: the rounds since the last full pricing gained too little
                if last_full is not None and last_full - solved.value < TAIL * solved.value:
                    break
                last_full = solved.value
            added = sum(self.pool.add(t, counts) for t, counts in found)
            if not added and full:
                break
            full = not added or (done + 1) % FULL_EVERY == 0
            if added:
                solved = self.solve(left)
        return solved

    def first_solution(self) -> MasterSolution | None:
        """The LP grown from single-class patterns, in GROW_SHARE of the time left."""
        single_class_patterns(self.problem, self.types, self.pool)
        until = self.deadline
        if until is not None:
            until = time.perf_counter() + GROW_SHARE * (until - time.perf_counter())
        rounds = self.rounds
        if self.problem.counts.sum() <= SMALL_PODS:
            rounds = min(rounds, SMALL_ROUNDS)
        return self.grow(self.problem.counts.copy(), rounds, until)

    def buy(self, x: FloatArray, whole: IntArray, left: IntArray) -> list[PackedNode]:
        """Nodes of the patterns bought whole, most bought (`x`) first, pods capped by `left`
        (taken from it)."""
        nodes: list[PackedNode] = []
        for j in np.flatnonzero(whole)[np.argsort(-x[whole > 0], kind="stable")]:
            for _ in range(int(whole[j])):
                take = np.minimum(self.pool.counts[j], left)
                if not take.any():
                    break
                left -= take
                nodes.append(PackedNode(self.pool.types[j], take, self.problem.demand_of(take)))
        return nodes

    def round_up(self, solved: MasterSolution, left: IntArray, usable: bool) -> PackedNode:
        """One node of the most-bought pattern (taken from `left`); `usable`: its share scaled
        by how much of its worth the pods left still fill. When fewer pods of a class are left
        than it holds, its room is topped up with other pods left, the most valuable per room
        first (a half-empty node at the end of a dive otherwise)."""
        p = self.problem
        j = int(np.argmax(solved.x))
        if usable:
            live = np.flatnonzero(solved.x > 1e-9)
            counts = np.array([self.pool.counts[i] for i in live.tolist()])
            worth = counts @ solved.duals
            fill = np.minimum(counts, left[None, :]) @ solved.duals
            share = np.where(worth > 0, fill / np.where(worth > 0, worth, 1.0), 1.0)
            j = int(live[np.argmax(solved.x[live] * share)])
        t = self.pool.types[j]
        take = np.minimum(self.pool.counts[j], left)
        if not np.array_equal(take, self.pool.counts[j]):
            types = np.array([t], dtype=np.int64)
            value = np.maximum(solved.duals, 1e-9)  # pods the LP covers twice still help
            bound = np.minimum(p.caps, left)  # per node, as in pricing: no more than a cap
            size = size_measures(p, types)[0]
            take = greedy_patterns(p, types, value, bound, size, take[None])[0]
        left -= take
        return PackedNode(t, take, p.demand_of(take))

    def price_and_dive(
        self, solved: MasterSolution | None, usable: bool = False
    ) -> tuple[list[PackedNode], IntArray]:
        """Nodes by price and dive (module docstring) and the pods per class left to place;
        `usable`: see `round_up`. Past DIVE_SHARE of the time left every pattern the LP still
        buys part of gets one node at once (capped by the pods left; the caller shrinks them
        and improves by local search in the rest of the time)."""
        until = self.deadline
        if until is not None:
            until = time.perf_counter() + DIVE_SHARE * (until - time.perf_counter())
        left = self.problem.counts.copy()
        nodes: list[PackedNode] = []
        since_priced = REPRICE_EVERY  # price the first time nothing is bought whole
        while solved is not None and left.any():
            whole = np.floor(solved.x + 1e-6).astype(np.int64)
            if self.out_of_time(until):
                whole = np.ceil(solved.x - 1e-6).astype(np.int64)
                nodes += self.buy(solved.x, whole, left)
                break
            if whole.any():
                nodes += self.buy(solved.x, whole, left)
            elif since_priced >= REPRICE_EVERY:
                since_priced = 0
                solved = self.grow(left, RESIDUAL_ROUNDS, until)
                continue
            else:
                since_priced += 1
                nodes.append(self.round_up(solved, left, usable))
            solved = self.solve(left) if left.any() else None
        return nodes, left

    def seconds_for_integers(self) -> float:
        if self.deadline is None:
            return INTEGER_SECONDS
        return max(0.01, min(INTEGER_SECONDS, self.deadline - time.perf_counter()))

    def integer_master(self, found: list[list[PackedNode]]) -> list[PackedNode] | None:
        """The cheapest whole number of each pattern that covers every pod (HiGHS branch and
        bound, for small groups): the pool's patterns, those of the packings found and those
        within NEAR of their price at the LP's duals, recombined."""
        for nodes in found:
            for node in nodes:
                self.pool.add(node.type, node.counts.copy())
        p = self.problem
        solved = solve_master(self.pool, p.price, p.counts)
        if solved is not None:
            near, _ = improving_patterns(p, self.types, solved.duals, p.counts, NEAR)
            for t, pattern in near:
                self.pool.add(t, pattern)
        counts = p.counts.astype(np.float64)
        result = milp(
            p.price[np.array(self.pool.types, dtype=np.int64)],
            constraints=[LinearConstraint(self.pool.matrix(), counts, np.inf)],
            integrality=np.ones(len(self.pool.types)),
            bounds=Bounds(0, np.inf),
            options={"node_limit": INTEGER_NODES, "time_limit": self.seconds_for_integers()},
        )
        if result.x is None:
            return None
        whole = np.rint(np.asarray(result.x, dtype=np.float64)).astype(np.int64)
        left = p.counts.copy()
        nodes = self.buy(whole.astype(np.float64), whole, left)
        return None if left.any() else nodes


def pattern_roundings(
    problem: GroupProblem, types: IntArray, deadline: float | None, rounds: int = ROUNDS
) -> list[tuple[list[PackedNode], IntArray]]:
    """Nodes from the rounded configuration LP and the pods per class the rounding leaves."""
    generation = ColumnGeneration(problem, types, deadline, rounds)
    return [generation.price_and_dive(generation.first_solution())]
