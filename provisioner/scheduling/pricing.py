"""Pricing for the configuration LP (`columns.py`): patterns worth more than their price.

With the duals u_k of the master's coverage rows, a pattern of type t is worth u . a; it
improves the LP when that exceeds price_t. Finding the best is a multi-dimensional knapsack
per type; a greedy one (classes by dual value per normalised size, under a few size
measures, from scratch and on top of each type's knapsack LP rounded down) finds improving
patterns well enough for a good plan.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csc_matrix

from provisioner.scheduling.fit import BoolArray, FloatArray, IntArray
from provisioner.scheduling.groups import GroupProblem

HUGE = 1 << 40


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
    wanted = (value > 0) & (bound > 0)
    smallest = demand[wanted].min(axis=0) if wanted.any() else demand.max(axis=0)
    for step in range(int((~blocked).sum(axis=1).max(initial=0))):
        if step % 4 == 0 and not np.all(room >= smallest, axis=1).any():
            break  # no class fits the room left on any type
        k = order[:, step]
        live = ~blocked[rows, k]
        n = np.minimum((room // safe[k] + unbounded[k]).min(axis=1), bound[k] - counts[rows, k])
        n = np.maximum(n, 0) * live
        counts[rows, k] += n
        room -= demand[k] * n[:, None]
        if conflicts:
            blocked |= (n > 0)[:, None] & p.conflicts[k]
    return counts


def beaten_classes(problem: GroupProblem, value: FloatArray, bound: IntArray) -> BoolArray:
    """Classes some other class beats for pricing: its pods no larger in any resource and
    allowed wherever the beaten class's are, worth at least as much, at least as many to
    place, neither with caps or conflicts (ties: the lower index wins)."""
    free: BoolArray = ~problem.conflicts.any(axis=1) & (problem.caps >= HUGE)
    beats: BoolArray = problem.no_larger & free[:, None] & free[None, :]
    beats &= (value[:, None] >= value[None, :]) & (bound[:, None] >= bound[None, :])
    ties = beats & beats.T
    k_n = len(value)
    beats &= ~ties | (np.arange(k_n)[:, None] < np.arange(k_n)[None, :])
    np.fill_diagonal(beats, False)
    out: BoolArray = np.asarray(beats.any(axis=0), dtype=bool)
    return out


def relaxed_knapsacks(
    problem: GroupProblem, types: IntArray, value: FloatArray, bound: IntArray
) -> tuple[IntArray, FloatArray] | None:
    """Every type's knapsack LP relaxation in one block-diagonal LP (HiGHS): the solutions
    rounded down (conflicting or overfull mixes dropped), and each type's LP value, about what
    the best pattern of that type is worth. Classes another class beats (pods no larger, fitting
    wherever they fit, worth as much, as many left) are left out: one column per class and
    type is most of the time HiGHS's wrapper spends, and they are worth nothing the other
    does not offer."""
    p = problem
    t_n, k_n = len(types), len(value)
    wanted = (value > 0) & (bound > 0) & ~beaten_classes(p, value, bound)
    pair_t, pair_k = np.nonzero(p.fits[:, types].T & wanted[None, :])
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
    # HiGHS meets the scaled rows within its feasibility tolerance: a rounded-down solution may
    # still overfill a node by a few bytes (two 16 GiB + 1 B pods on 32 GiB). Integer check.
    counts[np.any(counts @ p.demand > p.alloc[types], axis=1)] = 0
    if p.conflicts.any():
        present = counts > 0
        clash = ((present.astype(np.int64) @ p.conflicts.astype(np.int64)) * present).any(axis=1)
        counts[clash] = 0
    return counts, worth


def size_measures(problem: GroupProblem, types: IntArray) -> list[FloatArray]:
    """(T, K) sizes of each class on each type, under the two norms the greedy tries: the
    largest share of any resource, and the shares of cpu, memory and GPU summed."""
    alloc = problem.alloc[types].astype(np.float64)
    share = problem.demand[None, :, :] / np.where(alloc > 0, alloc, 1.0)[:, None, :]  # (T,K,4)
    return [share.max(axis=2), share[:, :, :3].sum(axis=2)]


def knapsack_bounds(
    problem: GroupProblem, types: IntArray, value: FloatArray, bound: IntArray
) -> FloatArray:
    """Per type, an upper bound on what any pattern is worth at `value` per pod: the least,
    over the resources, of the fractional knapsack on that resource alone (each relaxes the
    pattern's constraints, so each bounds its worth). A few sorts instead of an LP: types whose
    bound is below their price need no pricing."""
    usable = problem.fits[:, types].T & (value > 0)[None, :] & (bound > 0)[None, :]  # (T, K)
    worth = np.where(usable, value[None, :] * bound[None, :], 0.0)
    best = np.full(len(types), np.inf)
    alloc = problem.alloc[types].astype(np.float64)
    for r in range(4):
        if not (problem.demand[:, r] > 0).any():
            continue  # no class asks for it: no bound from it
        # room each class's whole `bound` pods would take, as a share of the type's resource
        take = np.where(usable, problem.demand[None, :, r] * bound[None, :], 0.0)
        take = take / np.where(alloc[:, r : r + 1] > 0, alloc[:, r : r + 1], 1e-300)
        density = np.where(take > 0, worth / np.maximum(take, 1e-300), np.inf)
        order = np.argsort(-density, axis=1, kind="stable")
        take_s = np.take_along_axis(take, order, axis=1)
        worth_s = np.take_along_axis(worth, order, axis=1)
        before = np.cumsum(take_s, axis=1) - take_s
        part = np.clip((1.0 - before) / np.where(take_s > 0, take_s, 1.0), 0.0, 1.0)
        part = np.where(take_s > 0, part, 1.0)
        best = np.minimum(best, (worth_s * part).sum(axis=1))
    out: FloatArray = np.where(np.isfinite(best), best, worth.sum(axis=1))
    return out


def improving_patterns(
    problem: GroupProblem,
    types: IntArray,
    duals: FloatArray,
    left: IntArray,
    slack: float = -1e-9,
) -> tuple[list[tuple[int, IntArray]], FloatArray]:
    """Patterns with a reduced cost below `slack` (a share of the price), and per type about
    what a pattern is worth over its price (below 1: no improving pattern at these duals):
    the knapsack LP's where the cheap bound leaves the type in play, else the bound."""
    bound = np.minimum(problem.caps, left)
    ratio = knapsack_bounds(problem, types, duals, bound) / problem.price[types]
    live = np.flatnonzero(ratio > 1 + 1e-9)
    if not len(live):
        return [], ratio
    priced = types[live]
    price = problem.price[priced]
    relaxed = relaxed_knapsacks(problem, priced, duals, bound)
    starts: list[IntArray | None] = [None]
    if relaxed is not None:
        starts.append(relaxed[0])
        ratio[live] = np.minimum(ratio[live], relaxed[1] / price)
    out: list[tuple[int, IntArray]] = []
    sizes = size_measures(problem, priced)
    # from scratch under the max-share norm; from the rounded-down LP under both norms
    for start, which in zip(starts, ((0,), (0, 1)), strict=False):
        for size in (sizes[i] for i in which):
            counts = greedy_patterns(problem, priced, duals, bound, size, start)
            reduced = (price - counts @ duals) / price
            out.extend((int(priced[i]), counts[i]) for i in np.flatnonzero(reduced < slack))
    return out, ratio
