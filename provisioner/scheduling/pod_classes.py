"""Pod classes and the pools each may use: steps 1 and 2 of the scheduler (`scheduler.py`).

Pods with the same requests and constraints form a class, so packing counts pods per class
instead of placing them one by one. Each class then lists the (node affinity term, NodePool)
pairs it can use, with the instance types each pair admits: the terms in order (Karpenter
relaxes ORed terms one after the other), pools by weight, highest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from provisioner.scheduling.fit import (
    BoolArray,
    IntArray,
    TypeTable,
    taint_problem,
    template_reqs,
    vector,
    why_not_template,
)
from provisioner.scheduling.model import (
    CAPACITY_TYPE,
    NODEPOOL,
    ON_DEMAND,
    NodeTemplate,
    Operator,
    Pod,
    Requirement,
)
from provisioner.scheduling.requirements import ReqSet, compatible, intersect, reqs_of
from provisioner.scheduling.topology import UNLIMITED, node_cap, unsupported_topology


@dataclass
class PoolChoice:
    template: int
    reqs: dict[str, ReqSet]
    mask: BoolArray  # allowed, offered, fitting candidate types (GPU rule applied)
    no_gpu: bool  # whether GPU types were left out for this non-GPU class


@dataclass
class PodClass:
    pods: list[Pod]
    requests: IntArray
    terms: list[dict[str, ReqSet]] = field(default_factory=list)
    choices: list[PoolChoice] = field(default_factory=list)
    cap: int = UNLIMITED
    error: str | None = None

    @property
    def rep(self) -> Pod:
        return self.pods[0]


# a class's pods in one group: (class, pods, index of the choice in use)
Row = tuple[PodClass, list[Pod], int]


def _class_key(pod: Pod) -> object:
    return (
        pod.namespace,
        pod.requests,
        tuple(sorted(pod.labels.items())),
        tuple(sorted(pod.node_selector.items())),
        pod.node_affinity,
        pod.tolerations,
        pod.topology_spread,
        pod.anti_affinity,
        pod.priority,
    )


def pod_classes(pods: Iterable[Pod]) -> list[PodClass]:
    """The pods' classes, highest priority first, then the largest requests."""
    by_key: dict[object, PodClass] = {}
    for pod in pods:
        key = _class_key(pod)
        if key in by_key:
            by_key[key].pods.append(pod)
            continue
        requests = vector(pod.requests)
        requests[3] = max(int(requests[3]), 1)  # every pod takes a slot
        cls = PodClass([pod], requests)
        try:
            selector = reqs_of(
                Requirement(k, Operator.IN, (v,)) for k, v in pod.node_selector.items()
            )
            terms = pod.node_affinity or ((),)
            cls.terms = [intersect(selector, reqs_of(term)) for term in terms]
        except ValueError as err:
            cls.error = f"bad node affinity: {err}"
        cls.error = cls.error or unsupported_topology(pod)
        cls.cap = node_cap(pod)
        by_key[key] = cls
    return sorted(
        by_key.values(),
        key=lambda c: (-c.rep.priority, -int(c.requests[0]), -int(c.requests[1])),
    )


def pool_bases(templates: Sequence[NodeTemplate]) -> list[dict[str, ReqSet]]:
    """Each template's own requirements, its NodePool name and capacity type included."""
    bases = []
    for t in templates:
        base = template_reqs(t)
        if CAPACITY_TYPE not in base:
            # Karpenter: a NodePool that does not say buys on-demand
            base[CAPACITY_TYPE] = ReqSet(CAPACITY_TYPE, False, frozenset({ON_DEMAND}))
        bases.append(intersect(base, {NODEPOOL: ReqSet(NODEPOOL, False, frozenset({t.pool}))}))
    return bases


def choose(
    cls: PodClass,
    templates: Sequence[NodeTemplate],
    bases: Sequence[dict[str, ReqSet]],
    table: TypeTable,
) -> None:
    """Fill `cls.choices`: the ORed terms relaxed in order, pools by weight within a term."""
    fits_types = np.all(table.alloc >= cls.requests, axis=1)
    reasons: list[str] = []
    for term in cls.terms:
        for t_index, template in enumerate(templates):
            base = bases[t_index]
            taint = taint_problem(template, cls.rep.tolerations)
            if taint is None and compatible(base, term) is None:
                reqs = intersect(base, term)
                offered = np.isfinite(table.best_offerings(reqs).expected)
                mask = table.type_mask(reqs) & offered & fits_types
                no_gpu = False
                if cls.requests[2] == 0:
                    # non-GPU pods stay off GPU types unless nothing else fits
                    plain = mask & ~table.is_gpu
                    if plain.any():
                        mask, no_gpu = plain, True
                if mask.any():
                    cls.choices.append(PoolChoice(t_index, reqs, mask, no_gpu))
                    continue
            reason = why_not_template(table, template, base, term, taint, cls.requests)
            reasons.append(reason)
    if not templates:
        reasons.append("no nodepool")
    if not cls.choices:
        cls.error = cls.error or "; ".join(dict.fromkeys(reasons))
