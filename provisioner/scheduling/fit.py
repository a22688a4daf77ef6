"""Which instance types and offerings a set of requirements allows, and why a pod fits nowhere.

The catalog is held as numpy columns (`TypeTable`) so that filtering 1,367 types against one
requirement set is a handful of vector operations, done once per pod class and template.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from provisioner.scheduling.model import (
    CAPACITY_TYPE,
    INSTANCE_TYPE,
    SPOT,
    ZONE,
    InstanceType,
    NodeTemplate,
    Resources,
    Toleration,
)
from provisioner.scheduling.requirements import Reqs, ReqSet, compatible, intersect, reqs_of
from provisioner.scheduling.taints import describe as describe_taint
from provisioner.scheduling.taints import untolerated

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

RESOURCE_NAMES = ("cpu", "memory", "nvidia.com/gpu", "pods")
OFFERING_KEYS = (ZONE, CAPACITY_TYPE)
GPU_MANUFACTURER = "karpenter.k8s.aws/instance-gpu-manufacturer"


def vector(r: Resources) -> IntArray:
    return np.array([r.cpu, r.memory, r.gpu, r.pods], dtype=np.int64)


def resources_of(v: IntArray) -> Resources:
    return Resources(int(v[0]), int(v[1]), int(v[2]), int(v[3]))


def show_amount(dim: int, amount: float) -> str:
    """Amounts as a person reads them: cores, GiB, counts."""
    if dim == 0:
        return f"{amount / 1000:g}"
    if dim == 1:
        return f"{amount / 2**30:.4g}Gi"
    return f"{int(amount)}"


def expected_price(price: float, capacity_type: str, rate: float, penalty: float) -> float:
    """What an offering is expected to cost: spot pays for its interruptions."""
    return price * (1.0 + penalty * rate) if capacity_type == SPOT else price


@dataclass(frozen=True, slots=True)
class BestOfferings:
    """Per type, the cheapest allowed offering by expected price (-1: none)."""

    index: IntArray  # into TypeTable's offering columns
    expected: FloatArray  # inf where none
    real: FloatArray


class TypeTable:
    """The instance types as columns: allocatable, labels, flattened offerings."""

    def __init__(self, types: Sequence[InstanceType], spot_penalty: float) -> None:
        self.types = tuple(types)
        n = len(self.types)
        self.names = [t.name for t in self.types]
        self.alloc: IntArray = np.array(
            [
                [t.allocatable.cpu, t.allocatable.memory, t.allocatable.gpu, t.allocatable.pods]
                for t in self.types
            ],
            dtype=np.int64,
        ).reshape(n, 4)
        self.capacity: IntArray = np.array(
            [
                [t.capacity.cpu, t.capacity.memory, t.capacity.gpu, t.capacity.pods]
                for t in self.types
            ],
            dtype=np.int64,
        ).reshape(n, 4)
        self.is_gpu: BoolArray = (self.capacity[:, 2] > 0) | np.array(
            [t.gpu_name is not None for t in self.types], dtype=bool
        )
        # pods ask for nvidia.com/gpu: other makers' accelerators (amd.com/gpu...) do not count
        other_maker = np.array(
            [t.labels.get(GPU_MANUFACTURER, "nvidia") != "nvidia" for t in self.types], dtype=bool
        )
        self.alloc[other_maker, 2] = 0
        self.capacity[other_maker, 2] = 0
        keys = {k for t in self.types for k in t.labels if k not in OFFERING_KEYS}
        keys.add(INSTANCE_TYPE)
        self._labels: dict[str, npt.NDArray[np.str_]] = {}
        self._present: dict[str, BoolArray] = {}
        self._numbers: dict[str, FloatArray] = {}
        for key in keys:
            raw = [t.name if key == INSTANCE_TYPE else t.labels.get(key) for t in self.types]
            self._present[key] = np.array([v is not None for v in raw], dtype=bool)
            self._labels[key] = np.array(["" if v is None else v for v in raw], dtype=str)
        rows = [(i, o) for i, t in enumerate(self.types) for o in t.offerings]
        self.off_type: IntArray = np.array([i for i, _ in rows], dtype=np.int64)
        self.off_zone = np.array([o.zone for _, o in rows], dtype=str)
        self.off_ct = np.array([o.capacity_type for _, o in rows], dtype=str)
        self.off_price: FloatArray = np.array([o.price for _, o in rows], dtype=np.float64)
        self.off_expected: FloatArray = np.array(
            [
                expected_price(o.price, o.capacity_type, o.interruption_rate, spot_penalty)
                for _, o in rows
            ],
            dtype=np.float64,
        )
        self.off_available: BoolArray = np.array([o.available for _, o in rows], dtype=bool)
        self.zones = tuple(sorted({o.zone for t in self.types for o in t.offerings}))
        counts = np.bincount(self.off_type, minlength=n) if rows else np.zeros(n, np.int64)
        self._has_offering: BoolArray = counts > 0
        self._starts: IntArray = (np.cumsum(counts) - counts).astype(np.int64)
        self._type_cache: dict[object, BoolArray] = {}
        self._offer_cache: dict[object, BestOfferings] = {}

    def __len__(self) -> int:
        return len(self.types)

    def defines(self, key: str) -> bool:
        return key in self._labels

    def _numbers_of(self, key: str) -> FloatArray:
        if key not in self._numbers:
            out = np.full(len(self.types), np.nan)
            for i, v in enumerate(self._labels[key]):
                with contextlib.suppress(ValueError):
                    out[i] = int(v)
            self._numbers[key] = out
        return self._numbers[key]

    def admits(self, req: ReqSet) -> BoolArray:
        """Types whose label satisfies `req` (a type without the label: only NotIn/DoesNotExist)."""
        column = self._labels[req.key]
        hit = np.isin(column, list(req.values)) if req.values else np.zeros(len(column), bool)
        if req.complement:
            hit = ~hit
        if req.gt is not None or req.lt is not None:
            numbers = self._numbers_of(req.key)
            with np.errstate(invalid="ignore"):
                if req.gt is not None:
                    hit &= numbers > req.gt
                if req.lt is not None:
                    hit &= numbers < req.lt
        return np.where(self._present[req.key], hit, req.negative)

    def type_mask(self, reqs: Reqs) -> BoolArray:
        """Types allowed by the type-level requirements (zone and capacity type aside)."""
        relevant = tuple(sorted((k, r) for k, r in reqs.items() if k in self._labels))
        key = tuple((k, r.complement, tuple(sorted(r.values)), r.gt, r.lt) for k, r in relevant)
        cached = self._type_cache.get(key)
        if cached is None:
            cached = self._has_offering.copy()
            for _, r in relevant:
                cached &= self.admits(r)
            self._type_cache[key] = cached
        return cached

    def best_offerings(self, reqs: Reqs) -> BestOfferings:
        """Per type, the cheapest available offering whose zone and capacity type are allowed."""
        zone, ct = reqs.get(ZONE), reqs.get(CAPACITY_TYPE)
        key = tuple(
            None if r is None else (r.complement, tuple(sorted(r.values))) for r in (zone, ct)
        )
        cached = self._offer_cache.get(key)
        if cached is not None:
            return cached
        ok = self.off_available.copy()
        if zone is not None:
            ok &= np.isin(self.off_zone, list(zone.values)) != zone.complement
        if ct is not None:
            ok &= np.isin(self.off_ct, list(ct.values)) != ct.complement
        n = len(self.types)
        expected = np.where(ok, self.off_expected, np.inf)
        index = np.full(n, -1, dtype=np.int64)
        best_exp = np.full(n, np.inf)
        best_real = np.full(n, np.inf)
        if len(expected):
            order = np.lexsort((self.off_price, expected, self.off_type))
            first = order[self._starts[self._has_offering]]
            types = self.off_type[first]
            found = np.isfinite(expected[first])
            index[types[found]] = first[found]
            best_exp[types[found]] = expected[first[found]]
            best_real[types[found]] = self.off_price[first[found]]
        cached = BestOfferings(index, best_exp, best_real)
        self._offer_cache[key] = cached
        return cached

    def cheapest_real(self, reqs: Reqs) -> FloatArray:
        """Per type, the lowest real price among allowed offerings (for the lower bound)."""
        zone, ct = reqs.get(ZONE), reqs.get(CAPACITY_TYPE)
        ok = self.off_available.copy()
        if zone is not None:
            ok &= np.isin(self.off_zone, list(zone.values)) != zone.complement
        if ct is not None:
            ok &= np.isin(self.off_ct, list(ct.values)) != ct.complement
        out = np.full(len(self.types), np.inf)
        np.minimum.at(out, self.off_type[ok], self.off_price[ok])
        return out

    def distinct_values(self, key: str, mask: BoolArray) -> int:
        if key == INSTANCE_TYPE:
            return int(mask.sum())
        if key not in self._labels:
            return 0
        chosen = self._labels[key][mask & self._present[key]]
        return len(set(chosen.tolist()))


def template_reqs(template: NodeTemplate) -> dict[str, ReqSet]:
    """A NodePool's requirements with its labels as `In [value]`, as Karpenter builds them."""
    reqs = reqs_of(template.requirements)
    for key, value in template.labels.items():
        reqs = intersect(reqs, {key: ReqSet(key, False, frozenset({value}))})
    return reqs


def why_not_template(
    table: TypeTable,
    template: NodeTemplate,
    base: Reqs,
    pod: Reqs,
    tolerations_taint: str | None,
    requests: IntArray,
) -> str:
    """Why no node of `template` can host a pod with these requirements and requests."""
    pool = f'nodepool "{template.pool}"'
    if tolerations_taint is not None:
        return f"taint {tolerations_taint} of {pool} not tolerated"
    problem = compatible(base, pod)
    if problem is not None:
        return f"{problem} of {pool}"
    mask = table.type_mask(base) & np.isfinite(table.best_offerings(base).expected)
    if not mask.any():
        return f"{pool} allows no instance type with an available offering"
    running: dict[str, ReqSet] = dict(base)
    for key in sorted(pod):
        running = intersect(running, {key: pod[key]})
        step = table.type_mask(running) & np.isfinite(table.best_offerings(running).expected)
        if not step.any():
            return (
                f"no instance type satisfies requirement {pod[key].describe()} together with {pool}"
            )
        mask = step
    largest = table.alloc[mask].max(axis=0)
    for dim in range(4):
        if requests[dim] > largest[dim]:
            return (
                f"needs {show_amount(dim, requests[dim])} {RESOURCE_NAMES[dim]} but the largest "
                f"type {pool} allows has {show_amount(dim, largest[dim])} allocatable"
            )
    asked = ", ".join(
        f"{show_amount(d, requests[d])} {RESOURCE_NAMES[d]}" for d in range(3) if requests[d]
    )
    return f"no type {pool} allows fits {asked} together"


def taint_problem(template: NodeTemplate, tolerations: Sequence[Toleration]) -> str | None:
    """The first NodePool taint the pod does not tolerate, in words (startup taints aside)."""
    taint = untolerated(tolerations, template.taints)
    return None if taint is None else describe_taint(taint)


_TABLES: OrderedDict[tuple[int, float], TypeTable] = OrderedDict()


def type_table(types: Sequence[InstanceType], spot_penalty: float) -> TypeTable:
    """The columns of `types`, built once per catalog tuple and reused by later plans.

    A controller plans against the same catalog every round; building the columns of 1,367
    types costs more than most plans, and the per-requirement masks cached inside the table
    are worth keeping too. A list (not a tuple) is not cached: it may change in place.
    """
    if not isinstance(types, tuple):
        return TypeTable(types, spot_penalty)
    key = (id(types), spot_penalty)
    table = _TABLES.get(key)
    if table is not None and table.types is types:
        _TABLES.move_to_end(key)
        return table
    table = TypeTable(types, spot_penalty)
    _TABLES[key] = table
    while len(_TABLES) > 8:
        _TABLES.popitem(last=False)
    return table
