"""Karpenter's requirement algebra: a key's allowed values as a set, its complement, or bounds.

Follows karpenter `pkg/scheduling/requirement.go` and `requirements.go`:

- `In [a b]` is the set {a, b}; `NotIn [a]` the complement of {a}; `Exists` the complement of
  the empty set; `DoesNotExist` the empty set; `Gt`/`Lt` a complement bounded by integers.
- Intersecting two requirements intersects the sets (complements become differences).
- A node template is *compatible* with a pod when every key they share intersects (or both say
  NotIn/DoesNotExist), and every pod key the template does not define is either well known (the
  cloud provider supplies it: arch, zone, instance family...) or asks NotIn/DoesNotExist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provisioner.scheduling.model import (
    ARCH,
    CAPACITY_TYPE,
    HOSTNAME,
    INSTANCE_TYPE,
    NODEPOOL,
    OS,
    ZONE,
    Operator,
    Requirement,
)

# Labels the provider puts on every node, so a pod may ask for them even when a NodePool is silent.
WELL_KNOWN_LABELS = frozenset(
    {
        INSTANCE_TYPE,
        CAPACITY_TYPE,
        ZONE,
        ARCH,
        OS,
        HOSTNAME,
        NODEPOOL,
        "topology.kubernetes.io/region",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
    }
)
WELL_KNOWN_PREFIXES = ("karpenter.k8s.aws/",)


def is_well_known(key: str) -> bool:
    return key in WELL_KNOWN_LABELS or key.startswith(WELL_KNOWN_PREFIXES)


def _as_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ReqSet:
    """The values one key may take: `values`, or everything but `values` when `complement`."""

    key: str
    complement: bool
    values: frozenset[str] = frozenset()
    gt: int | None = None  # exclusive integer bounds, only on complements
    lt: int | None = None
    min_values: int | None = None

    @staticmethod
    def of(req: Requirement) -> ReqSet:
        """The set a node selector requirement allows; Gt/Lt values must be integers."""
        op = req.operator
        values = frozenset(req.values)
        if op == Operator.IN:
            return ReqSet(req.key, False, values, min_values=req.min_values)
        if op == Operator.NOT_IN:
            return ReqSet(req.key, True, values, min_values=req.min_values)
        if op == Operator.EXISTS:
            return ReqSet(req.key, True, min_values=req.min_values)
        if op == Operator.DOES_NOT_EXIST:
            return ReqSet(req.key, False, min_values=req.min_values)
        bound = _as_int(req.values[0]) if len(req.values) == 1 else None
        if bound is None:
            raise ValueError(f"{req.key} {op}: needs exactly one integer value, got {req.values!r}")
        if op == Operator.GT:
            return ReqSet(req.key, True, gt=bound, min_values=req.min_values)
        return ReqSet(req.key, True, lt=bound, min_values=req.min_values)

    @property
    def operator(self) -> Operator:
        """Karpenter's `Operator()`: bounded complements read as Exists."""
        if self.complement:
            return Operator.NOT_IN if self.values else Operator.EXISTS
        return Operator.IN if self.values else Operator.DOES_NOT_EXIST

    @property
    def negative(self) -> bool:
        """NotIn or DoesNotExist: satisfied by a node that lacks the label."""
        return self.operator in (Operator.NOT_IN, Operator.DOES_NOT_EXIST)

    def within_bounds(self, value: str) -> bool:
        if self.gt is None and self.lt is None:
            return True
        number = _as_int(value)
        if number is None:
            return False
        return (self.gt is None or number > self.gt) and (self.lt is None or number < self.lt)

    def has(self, value: str) -> bool:
        if self.complement:
            return value not in self.values and self.within_bounds(value)
        return value in self.values and self.within_bounds(value)

    def admits_label(self, value: str | None) -> bool:
        """Whether a node whose label is `value` (None: absent) satisfies this requirement."""
        if value is None:
            return self.negative
        return self.has(value)

    @property
    def empty(self) -> bool:
        """No value satisfies it (DoesNotExist, or an empty integer range)."""
        if not self.complement:
            return not self.values
        if self.gt is not None and self.lt is not None:
            return self.lt - self.gt <= 1
        return False

    def intersection(self, other: ReqSet) -> ReqSet:
        """Karpenter's `Requirement.Intersection`."""
        gt = _max_opt(self.gt, other.gt)
        lt = _min_opt(self.lt, other.lt)
        min_values = _max_opt(self.min_values, other.min_values)
        if gt is not None and lt is not None and gt >= lt:
            return ReqSet(self.key, False, min_values=min_values)
        if self.complement and other.complement:
            values = self.values | other.values
        elif self.complement:
            values = other.values - self.values
        elif other.complement:
            values = self.values - other.values
        else:
            values = self.values & other.values
        complement = self.complement and other.complement
        if not complement:
            values = frozenset(v for v in values if _within(v, gt, lt))
            gt = lt = None
        return ReqSet(self.key, complement, values, gt, lt, min_values)

    def to_requirements(self) -> tuple[Requirement, ...]:
        """Back to node selector requirements (a bounded set needs up to three)."""
        out: list[Requirement] = []
        if self.complement and (self.gt is not None or self.lt is not None):
            if self.gt is not None:
                out.append(Requirement(self.key, Operator.GT, (str(self.gt),), self.min_values))
            if self.lt is not None:
                out.append(Requirement(self.key, Operator.LT, (str(self.lt),), self.min_values))
            if self.values:
                out.append(Requirement(self.key, Operator.NOT_IN, tuple(sorted(self.values))))
            return tuple(out)
        return (Requirement(self.key, self.operator, tuple(sorted(self.values)), self.min_values),)

    def describe(self) -> str:
        """`key In [a b]`, `key Gt 4`: how a person would write it in a manifest."""
        parts = []
        for req in self.to_requirements():
            if req.operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
                parts.append(f"{req.key} {req.operator}")
            elif req.operator in (Operator.GT, Operator.LT):
                parts.append(f"{req.key} {req.operator} {req.values[0]}")
            else:
                parts.append(f"{req.key} {req.operator} [{' '.join(req.values)}]")
        return " and ".join(parts)


def _within(value: str, gt: int | None, lt: int | None) -> bool:
    if gt is None and lt is None:
        return True
    number = _as_int(value)
    return number is not None and (gt is None or number > gt) and (lt is None or number < lt)


def _max_opt(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _min_opt(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


Reqs = Mapping[str, ReqSet]
"""Requirements by key, each key's constraints already intersected."""


def reqs_of(requirements: Iterable[Requirement]) -> dict[str, ReqSet]:
    """Requirements by key; several on one key intersect, as Karpenter's `NewRequirements`."""
    out: dict[str, ReqSet] = {}
    for req in requirements:
        add(out, ReqSet.of(req))
    return out


def reqs_of_labels(labels: Mapping[str, str]) -> dict[str, ReqSet]:
    return {key: ReqSet(key, False, frozenset({value})) for key, value in labels.items()}


def add(reqs: dict[str, ReqSet], req: ReqSet) -> None:
    current = reqs.get(req.key)
    reqs[req.key] = req if current is None else current.intersection(req)


def intersect(a: Reqs, b: Reqs) -> dict[str, ReqSet]:
    out = dict(a)
    for req in b.values():
        add(out, req)
    return out


def intersects(existing: Reqs, incoming: Reqs) -> str | None:
    """Karpenter's `Requirements.Intersects`: None, or why a shared key has no common value."""
    for key in sorted(existing.keys() & incoming.keys()):
        have, want = existing[key], incoming[key]
        if not have.intersection(want).empty:
            continue
        if want.negative and have.negative:
            continue
        return f"requirement {want.describe()} conflicts with {have.describe()}"
    return None


def compatible(template: Reqs, pod: Reqs) -> str | None:
    """Karpenter's `Requirements.Compatible` with well-known labels allowed undefined.

    None when a node of `template` can satisfy `pod`, else the reason in words.
    """
    for key in sorted(pod.keys() - template.keys()):
        want = pod[key]
        if is_well_known(key) or want.negative:
            continue
        return f"requirement {want.describe()}: label {key} is not defined by the nodepool"
    return intersects(template, pod)


def labels_satisfy(labels: Mapping[str, str], pod: Reqs) -> str | None:
    """None when a node with these labels satisfies every requirement, else the first failure."""
    for key in sorted(pod):
        want = pod[key]
        if not want.admits_label(labels.get(key)):
            have = labels.get(key)
            shown = "absent" if have is None else f"{key}={have}"
            return f"requirement {want.describe()} not met ({shown})"
    return None


def to_requirements(reqs: Reqs) -> tuple[Requirement, ...]:
    out: list[Requirement] = []
    for key in sorted(reqs):
        out.extend(reqs[key].to_requirements())
    return tuple(out)


def signature(reqs: Reqs) -> tuple[tuple[str, bool, tuple[str, ...], int | None, int | None], ...]:
    """A hashable key for a requirement set (min_values aside)."""
    return tuple(
        (k, r.complement, tuple(sorted(r.values)), r.gt, r.lt) for k, r in sorted(reqs.items())
    )
