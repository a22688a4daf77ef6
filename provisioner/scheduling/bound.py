"""The LP lower bound on the price per hour of the new nodes, and the LP the packer follows.

Per NodePool (and, for non-GPU pods kept off GPU types, per that rule), with x_t the number of
nodes of type t bought at its cheapest allowed offering's real price and y_kt the pods of class
k put on them (only where one such pod fits an empty node of type t):

    min sum_t price_t x_t  s.t.  sum_t y_kt = n_k                     (every pod placed)
                                 sum_k d_kr y_kt <= alloc_tr x_t      (cpu, memory, gpu, pods)
                                 y_kt <= cap_k x_t                    (hostname caps)
                                 x, y >= 0.

Why it bounds every valid plan from below: a plan's nodes of one pool, counted by type, with
its pods counted by class and type, satisfy these constraints in integers, and each node costs
at least its type's cheapest offering; dropping integrality only lowers the minimum. A type
another type dominates (as large everywhere, no dearer, allowed wherever it is) is dropped:
moving its share to the dominating type never costs more, so the optimum does not change.
Pools never share nodes, so the bounds of the pools add up. Pods bound to existing nodes cost
nothing and are left out. It is at least the aggregate bound (total cpu, memory, GPU and pods
against the allowed types) that the per-class constraints refine.

Small pools (`INTEGER_PODS`, `INTEGER_PAIRS`): the same program with x and y integer, solved by
branch and bound (HiGHS) for at most `INTEGER_NODES` nodes, and its proved dual bound taken
where it is higher than the LP. Valid for the same reason without the last step: a plan's counts
are a feasible integer point, so the integer optimum is at most the plan's price, and a dual
bound is at most the integer optimum whether or not the search finished (every open branch's LP
value is at least it). It is what makes a lone GPU pod pay for its whole node instead of the
LP's share. Both values are shaded down by 1e-6 relative for the solver's tolerances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix, csr_matrix

from provisioner.scheduling.fit import BoolArray, FloatArray, IntArray, TypeTable

# pools this small (pods; usable class-type pairs) also get the integer program's bound: there
# a lone pod paying a whole node is much of the price, and branch and bound stays cheap (GPU
# pools of the mixes: 0.05-0.4 s; a 100-pod general pool of 2,000 pairs took 2 s, so no)
INTEGER_PODS = 300
INTEGER_PAIRS = 600
# branch-and-bound nodes: a node limit, unlike a time limit, gives the same bound everywhere
INTEGER_NODES = 100


@dataclass(frozen=True)
class BoundPart:
    key: object  # parts with equal keys may share nodes and are bounded together
    demand: IntArray  # (K, 4)
    counts: IntArray  # (K,)
    caps: IntArray  # (K,)
    types: IntArray  # global indices of the types the part may use
    prices: FloatArray  # cheapest real price of each of those types


def undominated(alloc: IntArray, price: FloatArray, member: BoolArray | None = None) -> BoolArray:
    """Types no other type beats: as large in every resource, no dearer (ties: lower index),
    and allowed for every part (column of `member`, (T, parts)) the beaten type is allowed for."""
    n = len(price)
    keep = np.ones(n, dtype=bool)
    order = np.lexsort((np.arange(n), price))
    for rank, i in enumerate(order):
        if not keep[i]:
            continue
        later = order[rank + 1 :]
        beaten = np.all(alloc[later] <= alloc[i], axis=1)
        if member is not None:
            beaten &= np.all(member[i] | ~member[later], axis=1)
        keep[later[beaten]] = False
    return keep


def part_members(allowed: BoolArray) -> BoolArray:
    """(T, P) the distinct rows of a (K, T) allowed mask as parts: the membership `undominated`
    needs (classes with equal masks count once)."""
    if not len(allowed):
        return np.ones((allowed.shape[1], 1), dtype=bool)
    rows: BoolArray = np.unique(allowed, axis=0).T
    return rows


@dataclass(frozen=True)
class Assignment:
    value: float
    nodes: FloatArray  # (T,) x_t
    pods: FloatArray  # (K, T) y_kt
    duals: FloatArray | None = None  # (K,) price of placing one more pod of class k


@dataclass(frozen=True)
class _Model:
    """The LP of the module docstring in matrix form; variables x_t (0..T-1), then y pairs."""

    cost: FloatArray
    a_ub: csr_matrix
    a_eq: csr_matrix
    b_eq: FloatArray
    pairs_k: IntArray
    pairs_t: IntArray


def _model(
    demand: IntArray,
    counts: IntArray,
    caps: IntArray,
    alloc: IntArray,
    price: FloatArray,
    allowed: BoolArray,
) -> _Model | None:
    k_n, t_n = allowed.shape
    pairs_k, pairs_t = np.nonzero(allowed & (counts[:, None] > 0))
    p_n = len(pairs_k)
    if p_n == 0:
        return None
    scale = np.maximum(alloc.max(axis=0).astype(np.float64), 1.0)
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    row = 0
    for r in range(4):
        d = demand[pairs_k, r] / scale[r]
        live = d > 0
        rows.append(row + pairs_t[live])
        cols.append(t_n + np.flatnonzero(live))
        vals.append(d[live])
        rows.append(row + np.arange(t_n))
        cols.append(np.arange(t_n))
        vals.append(-alloc[:, r] / scale[r])
        row += t_n
    capped = caps[pairs_k] < counts[pairs_k]
    c_idx = np.flatnonzero(capped)
    rows.append(row + np.arange(len(c_idx)))
    cols.append(t_n + c_idx)
    vals.append(np.ones(len(c_idx)))
    rows.append(row + np.arange(len(c_idx)))
    cols.append(pairs_t[c_idx])
    vals.append(-caps[pairs_k[c_idx]].astype(np.float64))
    row += len(c_idx)
    a_ub = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(row, t_n + p_n),
    ).tocsr()
    a_eq = coo_matrix(
        (np.ones(p_n), (pairs_k, t_n + np.arange(p_n))), shape=(k_n, t_n + p_n)
    ).tocsr()
    cost = np.concatenate([price, np.zeros(p_n)])
    return _Model(cost, a_ub, a_eq, counts.astype(np.float64), pairs_k, pairs_t)


def assignment_lp(
    demand: IntArray,
    counts: IntArray,
    caps: IntArray,
    alloc: IntArray,
    price: FloatArray,
    allowed: BoolArray,
) -> Assignment | None:
    """Solve the LP of the module docstring (HiGHS); `allowed` (K, T) marks usable pairs."""
    k_n, t_n = allowed.shape
    model = _model(demand, counts, caps, alloc, price, allowed)
    if model is None:
        return Assignment(0.0, np.zeros(t_n), np.zeros((k_n, t_n)), np.zeros(k_n))
    result = linprog(
        model.cost,
        A_ub=model.a_ub,
        b_ub=np.zeros(model.a_ub.shape[0]),
        A_eq=model.a_eq,
        b_eq=model.b_eq,
        bounds=(0, None),
        method="highs",
    )
    if result.status != 0:
        return None
    x = np.asarray(result.x, dtype=np.float64)
    y = np.zeros((k_n, t_n))
    y[model.pairs_k, model.pairs_t] = x[t_n:]
    duals = np.asarray(result.eqlin.marginals, dtype=np.float64)
    return Assignment(float(result.fun), x[:t_n], y, duals)


def integer_bound(
    demand: IntArray,
    counts: IntArray,
    caps: IntArray,
    alloc: IntArray,
    price: FloatArray,
    allowed: BoolArray,
    node_limit: int,
) -> float | None:
    """A lower bound on the module docstring's problem with x and y integer: the dual bound
    HiGHS's branch and bound proves within `node_limit` nodes (optimal or not), or None."""
    model = _model(demand, counts, caps, alloc, price, allowed)
    if model is None:
        return 0.0
    result = milp(
        model.cost,
        constraints=[
            LinearConstraint(model.a_ub, -np.inf, 0.0),
            LinearConstraint(model.a_eq, model.b_eq, model.b_eq),
        ],
        integrality=np.ones(len(model.cost)),
        bounds=Bounds(0, np.inf),
        options={"node_limit": node_limit, "presolve": True},
    )
    bound = getattr(result, "mip_dual_bound", None)
    if bound is None or not np.isfinite(bound):
        return None
    return float(bound)


def lower_bound(parts: list[BoundPart], table: TypeTable) -> float:
    """Sum over pools of the LP relaxation, or for small pools of the integer program's proved
    bound where that is higher (see the module docstring)."""
    merged: dict[str, list[BoundPart]] = {}
    for part in parts:
        merged.setdefault(repr(part.key), []).append(part)
    total = 0.0
    for key in sorted(merged):
        group = merged[key]
        used = np.unique(np.concatenate([p.types for p in group]))
        position = {int(t): i for i, t in enumerate(used)}
        prices = np.full(len(used), np.inf)
        member = np.zeros((len(used), len(group)), dtype=bool)
        allowed_rows: list[BoolArray] = []
        for bit, part in enumerate(group):
            at = np.array([position[int(t)] for t in part.types], dtype=np.int64)
            np.minimum.at(prices, at, part.prices)
            member[at, bit] = True
            row = np.zeros((len(part.counts), len(used)), dtype=bool)
            row[:, at] = True
            allowed_rows.append(row)
        alloc = table.alloc[used]
        keep = undominated(alloc, prices, member)
        demand = np.vstack([p.demand for p in group])
        counts = np.concatenate([p.counts for p in group])
        caps = np.concatenate([p.caps for p in group])
        fits = np.all(alloc[None, :, :] >= demand[:, None, :], axis=2)
        allowed = np.vstack(allowed_rows) & fits & keep[None, :] & np.isfinite(prices)[None, :]
        usable = keep & np.isfinite(prices)
        cost = np.where(usable, prices, 0.0)
        solved = assignment_lp(demand, counts, caps, alloc, cost, allowed)
        if solved is None:
            continue
        value = solved.value
        if counts.sum() <= INTEGER_PODS and allowed.sum() <= INTEGER_PAIRS:
            proved = integer_bound(demand, counts, caps, alloc, cost, allowed, INTEGER_NODES)
            if proved is not None:
                value = max(value, proved)
        # the solver's tolerances could overshoot by a hair; keep the bound on the safe side
        total += max(0.0, value * (1 - 1e-6))
    return total
