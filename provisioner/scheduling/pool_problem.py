"""One packing problem for the groups of a NodePool that may share nodes.

Groups of one pool (pods with the same node requirements, zone included) that differ only in
type-level requirements (a GPU model, an instance family; the rule that keeps non-GPU pods off
GPU types) may share nodes: they are packed as one problem in which each class may use only
the types its own requirements admit. With `PackOptions.merge_zones` groups that differ in zone
are merged too (a zone-spread class is split into per-zone sub-classes, each with its zone's
quota): candidates are then (zone variant, type) pairs, a zone variant being one of the groups'
zone sets priced by its cheapest offering there, and a class may use a candidate when the
variant's zones are within its own, so a zone-a sub-class and an unzoned class may share a
zone-a node. Groups that differ in anything else (capacity type, a label the pool sets,
minValues) are packed apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from provisioner.scheduling.fit import BoolArray, FloatArray, IntArray, TypeTable
from provisioner.scheduling.model import ZONE
from provisioner.scheduling.requirements import Reqs, ReqSet, intersect, signature


def merge_key(table: TypeTable, template: int, reqs: Reqs, no_gpu: bool, zones: bool) -> str:
    """Groups with equal keys are packed together: the pool and the requirements apart from
    type labels (and zone, with `zones`). Groups with minValues keep their own problem (FFD's
    bookkeeping)."""
    if any(r.min_values for r in reqs.values()):
        return repr((template, signature(reqs), no_gpu))
    rest = {k: r for k, r in reqs.items() if (k != ZONE or not zones) and not table.defines(k)}
    return repr((template, signature(rest)))


@dataclass(frozen=True)
class PoolColumns:
    """The candidates of a merged problem and which group may use which."""

    index: IntArray  # (C,) the type of each candidate (into the TypeTable)
    variant: IntArray  # (C,) the zone variant of each candidate
    variant_reqs: list[Reqs]  # per variant: its zone requirement (none: any zone)
    price: FloatArray  # (C,) expected price of the variant's best offering of the type
    allowed: BoolArray  # (G, C) candidates each group may use

    def node_reqs(self, column: int, group_reqs: list[Reqs]) -> dict[str, ReqSet]:
        """A node's requirements: those of every group on it, in the candidate's zones."""
        out: dict[str, ReqSet] = dict(self.variant_reqs[int(self.variant[column])])
        for reqs in group_reqs:
            out = intersect(out, reqs)
        return out


def _zones(table: TypeTable, reqs: Reqs) -> frozenset[str]:
    want = reqs.get(ZONE)
    return frozenset(z for z in table.zones if want is None or want.has(z))


def pool_columns(table: TypeTable, groups: list[tuple[Reqs, bool]]) -> PoolColumns:
    """Candidates for groups (requirements, GPU rule) of one merge key."""
    masks: list[BoolArray] = []
    for reqs, no_gpu in groups:
        mask = table.type_mask(reqs) & np.isfinite(table.best_offerings(reqs).expected)
        masks.append(mask & ~table.is_gpu if no_gpu else mask)
    zones = [_zones(table, reqs) for reqs, _ in groups]
    variants: dict[frozenset[str], Reqs] = {}
    for (reqs, _), zs in zip(groups, zones, strict=True):
        variants.setdefault(zs, reqs)
    order = sorted(variants, key=lambda zs: (-len(zs), sorted(zs)))
    index: list[IntArray] = []
    variant: list[IntArray] = []
    price: list[FloatArray] = []
    allowed: list[BoolArray] = []
    for v, zs in enumerate(order):
        expected = table.best_offerings(variants[zs]).expected
        within = [zs <= own for own in zones]
        rows = np.array([m & np.isfinite(expected) & w for m, w in zip(masks, within, strict=True)])
        used = np.flatnonzero(rows.any(axis=0))
        index.append(used)
        variant.append(np.full(len(used), v, dtype=np.int64))
        price.append(expected[used])
        allowed.append(rows[:, used])
    return PoolColumns(
        index=np.concatenate(index).astype(np.int64),
        variant=np.concatenate(variant),
        variant_reqs=[{k: r for k, r in variants[zs].items() if k == ZONE} for zs in order],
        price=np.concatenate(price).astype(np.float64),
        allowed=np.concatenate(allowed, axis=1).reshape(len(groups), -1),
    )
