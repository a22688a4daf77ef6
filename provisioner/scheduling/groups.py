"""One packing problem: pods that may share nodes, counted by class, and the types they may use.

A group is a set of pod classes of one NodePool that may share nodes, bar anti-affinity. Its
candidates (columns) are node kinds: a type, and (when zone groups are merged) the zones a node
of that kind may be launched in. Each class may carry its own mask of candidates
(`allowed`): the types its requirements admit, in the zones it may use. A node holds a class
only on a candidate the class allows. The packers (`ffd.py`, `packer.py`) turn a group into
nodes: a candidate and how many pods of each class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from provisioner.scheduling.fit import BoolArray, FloatArray, IntArray


@dataclass
class GroupProblem:
    """Classes (rows) with their requests and counts; candidate types (columns) with prices."""

    demand: IntArray  # (K, 4) requests of one pod of each class
    counts: IntArray  # (K,) pods to place
    caps: IntArray  # (K,) most pods of the class one node may hold
    conflicts: BoolArray  # (K, K) classes that may not share a node
    alloc: IntArray  # (T, 4) allocatable of the candidate types
    price: FloatArray  # (T,) expected price per hour of each candidate's best offering
    # (key, minValues) to keep, and how to count distinct values among a candidate mask
    min_values: tuple[tuple[str, int], ...] = ()
    distinct: Callable[[str, BoolArray], int] | None = None
    # (K, T) candidates each class may use (None: every candidate for every class)
    allowed: BoolArray | None = None
    _fits: BoolArray | None = field(default=None, repr=False)
    _no_larger: BoolArray | None = field(default=None, repr=False)

    @property
    def fits(self) -> BoolArray:
        """(K, T): one pod of class k fits an empty node of type t, and the class allows t."""
        if self._fits is None:
            fits = np.all(self.alloc[None, :, :] >= self.demand[:, None, :], axis=2)
            self._fits = fits if self.allowed is None else fits & self.allowed
        return self._fits

    @property
    def no_larger(self) -> BoolArray:
        """(K, K) [a, b]: a pod of class a asks for no more than one of b in any resource and
        fits every candidate one of b fits."""
        if self._no_larger is None:
            smaller = np.all(self.demand[:, None, :] <= self.demand[None, :, :], axis=2)
            fits = self.fits
            wider = ~(~fits[:, None, :] & fits[None, :, :]).any(axis=2)
            self._no_larger = smaller & wider
        return self._no_larger

    def fitting_types(self, used: IntArray, counts: IntArray) -> BoolArray:
        """Candidates that hold `used` and that every class present in `counts` allows."""
        fitting: BoolArray = np.all(self.alloc >= used, axis=1)
        if self.allowed is not None:
            fitting &= self.allowed[counts > 0].all(axis=0)
        return fitting

    def admitting(self, counts: IntArray, candidates: IntArray) -> BoolArray:
        """(N, C) per row of `counts` (pods per class on a node), which of `candidates` every
        class present allows."""
        if self.allowed is None:
            return np.ones((len(counts), len(candidates)), dtype=bool)
        # bit sets of classes in 64-bit words: a BLAS product here stalls whenever the other
        # core is busy (its second thread waits for a time slice)
        present = _words(counts > 0)
        barred = _words(~self.allowed[:, candidates].T)
        clash = np.zeros((len(counts), len(candidates)), dtype=np.uint64)
        for w in range(present.shape[1]):
            clash |= present[:, w, None] & barred[None, :, w]
        out: BoolArray = clash == 0
        return out

    def cheapest_fitting(self, used: IntArray, counts: IntArray) -> int | None:
        mask = self.fitting_types(used, counts)
        if not mask.any():
            return None
        prices = np.where(mask, self.price, np.inf)
        return int(np.argmin(prices))

    def keeps_min_values(self, mask: BoolArray) -> bool:
        if self.distinct is None:
            return True
        return all(self.distinct(key, mask) >= need for key, need in self.min_values)

    def demand_of(self, counts: IntArray) -> IntArray:
        return np.asarray(counts @ self.demand, dtype=np.int64)


def _words(rows: BoolArray) -> npt.NDArray[np.uint64]:
    """Each row of booleans as a bit set in 64-bit words."""
    width = -(-rows.shape[1] // 64) * 64
    padded = np.zeros((rows.shape[0], width), dtype=bool)
    padded[:, : rows.shape[1]] = rows
    words: npt.NDArray[np.uint64] = np.packbits(padded, axis=1).view(np.uint64)
    return words


@dataclass
class PackedNode:
    """A node of a plan-in-progress: its type (candidate index) and pods per class."""

    type: int
    counts: IntArray
    used: IntArray


def how_many_fit(alloc: IntArray, used: IntArray, demand: IntArray) -> IntArray:
    """Per type, how many more pods of `demand` fit on top of `used`."""
    room = alloc - used
    positive = demand > 0
    if not positive.any():
        return np.where(np.all(room >= 0, axis=1), 1 << 40, 0).astype(np.int64)
    per_dim = room[:, positive] // demand[positive]
    out = per_dim.min(axis=1)
    out[np.any(room < 0, axis=1)] = 0
    result: IntArray = np.maximum(out, 0)
    return result


def price_of(problem: GroupProblem, nodes: list[PackedNode]) -> float:
    return float(sum(problem.price[n.type] for n in nodes))


def check_nodes(problem: GroupProblem, nodes: list[PackedNode]) -> None:
    """Raise AssertionError if a packing breaks capacity, caps, conflicts or loses pods."""
    total = np.zeros(len(problem.counts), dtype=np.int64)
    for node in nodes:
        used = problem.demand_of(node.counts)
        assert np.array_equal(used, node.used), "node usage out of date"
        assert np.all(used <= problem.alloc[node.type]), "node over capacity"
        assert problem.fits[node.counts > 0, node.type].all(), "class not allowed on the type"
        assert np.all(node.counts <= problem.caps), "per-node cap broken"
        present = node.counts > 0
        assert not (problem.conflicts[np.ix_(present, present)]).any(), "conflicting classes"
        total += node.counts
    assert np.array_equal(total, problem.counts), "pods lost or duplicated"
