"""The batch scheduler both packers share: classes, pool choice, existing nodes, groups, limits.

Steps, as Karpenter's `scheduler.go` orders them:

1. pods with the same requests and constraints form a class (packing is by counts per class);
2. each class lists the (node affinity term, NodePool) pairs it can use: terms in order (the
   ORed terms are relaxed one after the other), pools by weight, highest first;
3. existing nodes with free room are filled first (topology and anti-affinity respected);
4. the rest is grouped by (pool, node requirements, zone); groups of one pool that differ only
   in type-level requirements (and, with `merge_zones`, zone) are one problem with a type mask
   per class (`pool_problem.py`), handed to a packing strategy;
5. NodePool limits are charged with each new node's full capacity; pods that overflow a pool
   move on to their next choice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from provisioner.scheduling.bound import BoundPart, lower_bound
from provisioner.scheduling.fit import (
    BoolArray,
    IntArray,
    TypeTable,
    taint_problem,
    template_reqs,
    type_table,
    vector,
    why_not_template,
)
from provisioner.scheduling.groups import GroupProblem, PackedNode
from provisioner.scheduling.model import (
    CAPACITY_TYPE,
    HOSTNAME,
    INSTANCE_TYPE,
    NODEPOOL,
    ON_DEMAND,
    ZONE,
    ExistingNode,
    InstanceType,
    NewNode,
    NodeTemplate,
    Operator,
    Plan,
    Pod,
    Requirement,
    Unschedulable,
)
from provisioner.scheduling.options import PackOptions
from provisioner.scheduling.pool_problem import PoolColumns, merge_key, pool_columns
from provisioner.scheduling.requirements import (
    Reqs,
    ReqSet,
    compatible,
    intersect,
    labels_satisfy,
    reqs_of,
    signature,
    to_requirements,
)
from provisioner.scheduling.strategy import Strategy
from provisioner.scheduling.taints import untolerated
from provisioner.scheduling.topology import (
    UNLIMITED,
    hard_spreads,
    node_cap,
    pod_matches,
    repels,
    unsupported_topology,
    zone_quotas,
)


@dataclass
class _Choice:
    template: int
    reqs: dict[str, ReqSet]
    mask: BoolArray  # allowed, offered, fitting candidate types (GPU rule applied)
    no_gpu: bool  # whether GPU types were left out for this non-GPU class


@dataclass
class _Class:
    pods: list[Pod]
    requests: IntArray
    terms: list[dict[str, ReqSet]] = field(default_factory=list)
    choices: list[_Choice] = field(default_factory=list)
    cap: int = UNLIMITED
    error: str | None = None

    @property
    def rep(self) -> Pod:
        return self.pods[0]


# a class's pods in one group: (class, pods, index of the choice in use)
_Row = tuple[_Class, list[Pod], int]


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


def _classes(pods: Iterable[Pod]) -> list[_Class]:
    by_key: dict[object, _Class] = {}
    for pod in pods:
        key = _class_key(pod)
        if key in by_key:
            by_key[key].pods.append(pod)
            continue
        requests = vector(pod.requests)
        requests[3] = max(int(requests[3]), 1)  # every pod takes a slot
        cls = _Class([pod], requests)
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


class _Scheduler:
    def __init__(
        self,
        templates: Sequence[NodeTemplate],
        table: TypeTable,
        existing: Sequence[ExistingNode],
        options: PackOptions,
        strategy: Strategy,
    ) -> None:
        self.templates = sorted(templates, key=lambda t: (-t.weight, t.pool))
        self.bases = []
        for t in self.templates:
            base = template_reqs(t)
            if CAPACITY_TYPE not in base:
                # Karpenter: a NodePool that does not say buys on-demand
                base[CAPACITY_TYPE] = ReqSet(CAPACITY_TYPE, False, frozenset({ON_DEMAND}))
            self.bases.append(
                intersect(base, {NODEPOOL: ReqSet(NODEPOOL, False, frozenset({t.pool}))})
            )
        self.table = table
        self.options = options
        self.strategy = strategy
        self.existing = sorted(existing, key=lambda n: n.name)
        self.room = [vector(n.allocatable) - vector(n.requested) for n in self.existing]
        self.on_node: list[list[Pod]] = [list(n.pods) for n in self.existing]
        self.bindings: dict[str, str] = {}
        self.unschedulable: list[Unschedulable] = []
        self.zone_tally: list[tuple[Pod, str, int]] = []  # pods sent to a zone in this batch
        self.remaining = [
            None if t.limits is None else vector(t.limits) - vector(t.in_use)
            for t in self.templates
        ]
        self.new_nodes: list[NewNode] = []
        self.bound_parts: list[BoundPart] = []
        budget = options.time_budget_seconds
        self.deadline = None if budget is None else time.perf_counter() + budget

    # -- step 2: which pools and terms a class may use ------------------------------------------

    def choose(self, cls: _Class) -> None:
        """Fill `cls.choices`: the ORed terms relaxed in order, pools by weight within a term."""
        fits_types = np.all(self.table.alloc >= cls.requests, axis=1)
        reasons: list[str] = []
        for term in cls.terms:
            for t_index, template in enumerate(self.templates):
                base = self.bases[t_index]
                taint = taint_problem(template, cls.rep.tolerations)
                if taint is None and compatible(base, term) is None:
                    reqs = intersect(base, term)
                    offered = np.isfinite(self.table.best_offerings(reqs).expected)
                    mask = self.table.type_mask(reqs) & offered & fits_types
                    no_gpu = False
                    if cls.requests[2] == 0:
                        # non-GPU pods stay off GPU types unless nothing else fits
                        plain = mask & ~self.table.is_gpu
                        if plain.any():
                            mask, no_gpu = plain, True
                    if mask.any():
                        cls.choices.append(_Choice(t_index, reqs, mask, no_gpu))
                        continue
                reason = why_not_template(self.table, template, base, term, taint, cls.requests)
                reasons.append(reason)
        if not self.templates:
            reasons.append("no nodepool")
        if not cls.choices:
            cls.error = cls.error or "; ".join(dict.fromkeys(reasons))

    # -- step 3: existing nodes --------------------------------------------------------------

    def existing_ok(self, cls: _Class, i: int) -> bool:
        node = self.existing[i]
        if untolerated(cls.rep.tolerations, node.taints) is not None:
            return False
        if not any(labels_satisfy(node.labels, term) is None for term in cls.terms):
            return False
        return not any(repels(cls.rep, other, HOSTNAME) for other in self.on_node[i])

    def fill_existing(self, cls: _Class, pods: list[Pod], zone: str | None) -> list[Pod]:
        """Bind as many of `pods` as fit on existing nodes (of `zone`); returns the rest."""
        for i, node in enumerate(self.existing):
            if not pods:
                break
            if zone is not None and node.labels.get(ZONE) != zone:
                continue
            if not self.existing_ok(cls, i):
                continue
            d = cls.requests
            positive = d > 0
            room = self.room[i]
            if np.any(room < 0):
                continue
            n = int((room[positive] // d[positive]).min()) if positive.any() else len(pods)
            if cls.cap < UNLIMITED:
                here = sum(1 for p in self.on_node[i] if _same_spread_group(cls.rep, p))
                n = min(n, cls.cap - here)
            n = min(n, len(pods))
            if n <= 0:
                continue
            for pod in pods[:n]:
                self.bindings[pod.key] = node.name
            self.on_node[i].extend(pods[:n])
            self.room[i] = room - d * n
            pods = pods[n:]
        return pods

    # -- zones -------------------------------------------------------------------------------

    def zones_for(self, cls: _Class) -> list[str]:
        zones: set[str] = set()
        if cls.choices:
            want = cls.choices[0].reqs.get(ZONE)
            zones |= {z for z in self.table.zones if want is None or want.has(z)}
        for i, node in enumerate(self.existing):
            zone = node.labels.get(ZONE)
            if zone is not None and self.existing_ok(cls, i):
                zones.add(zone)
        return sorted(zones)

    def split_by_zone(self, cls: _Class) -> list[tuple[str | None, list[Pod]]]:
        rep = cls.rep
        spread = next((s for s in hard_spreads(rep) if s.topology_key == ZONE), None)
        existing: dict[str, int] = {}
        blocked: dict[str, bool] = {}
        for i, node in enumerate(self.existing):
            zone = node.labels.get(ZONE)
            if zone is None:
                continue
            for pod in self.on_node[i]:
                if spread is not None and pod_matches(spread.selector, rep.namespace, pod):
                    existing[zone] = existing.get(zone, 0) + 1
                if repels(rep, pod, ZONE):
                    blocked[zone] = True
        for pod, zone, count in self.zone_tally:
            if spread is not None and pod_matches(spread.selector, rep.namespace, pod):
                existing[zone] = existing.get(zone, 0) + count
            if repels(rep, pod, ZONE):
                blocked[zone] = True
        quota = zone_quotas(rep, len(cls.pods), self.zones_for(cls), existing, blocked)
        if quota is None:
            return [(None, list(cls.pods))]
        out: list[tuple[str | None, list[Pod]]] = []
        start = 0
        for zone in sorted(quota.quotas):
            count = quota.quotas[zone]
            out.append((zone, cls.pods[start : start + count]))
            self.zone_tally.append((rep, zone, count))
            start += count
        for pod in cls.pods[start:]:
            self.unschedulable.append(Unschedulable(pod, quota.reason))
        return out

    # -- steps 4 and 5: groups, packing, limits ---------------------------------------------------

    def run(self, classes: list[_Class]) -> None:
        # (class, zone, pods, next choice index)
        pending: list[tuple[_Class, str | None, list[Pod], int]] = []
        for cls in classes:
            if cls.error is None:
                self.choose(cls)
            for zone, pods in self.split_by_zone(cls) if cls.error is None else [(None, cls.pods)]:
                left = self.fill_existing(cls, pods, zone) if cls.terms else pods
                if not left:
                    continue
                if cls.error is not None:
                    self.unschedulable.extend(Unschedulable(p, cls.error) for p in left)
                else:
                    pending.append((cls, zone, left, 0))
        while pending:
            pending = self.pack_round(pending)

    def pack_round(
        self, pending: list[tuple[_Class, str | None, list[Pod], int]]
    ) -> list[tuple[_Class, str | None, list[Pod], int]]:
        # merge key -> group key -> (choice, requirements, rows)
        pools: dict[str, dict[str, tuple[_Choice, dict[str, ReqSet], list[_Row]]]] = {}
        for cls, zone, pods, at in pending:
            placed = False
            while at < len(cls.choices):
                choice = cls.choices[at]
                reqs = choice.reqs
                if zone is not None:
                    reqs = intersect(reqs, {ZONE: ReqSet(ZONE, False, frozenset({zone}))})
                    offered = np.isfinite(self.table.best_offerings(reqs).expected)
                    if not (choice.mask & offered).any():
                        at += 1
                        continue
                key = repr((choice.template, signature(reqs), choice.no_gpu))
                merged = (
                    merge_key(
                        self.table, choice.template, reqs, choice.no_gpu, self.options.merge_zones
                    )
                    if self.options.merge_groups
                    else key
                )
                group = pools.setdefault(merged, {}).setdefault(key, (choice, reqs, []))
                group[2].append((cls, pods, at))
                placed = True
                break
            if not placed:
                reason = cls.error or (
                    f"no nodepool can take it in zone {zone}" if zone else "no nodepool left"
                )
                self.unschedulable.extend(Unschedulable(p, reason) for p in pods)
        spilled: list[tuple[_Class, str | None, list[Pod], int]] = []
        for merged in sorted(pools):
            groups = [pools[merged][k] for k in sorted(pools[merged])]
            spilled.extend(self.pack_pool(groups))
        return spilled

    def pack_pool(
        self, groups: list[tuple[_Choice, dict[str, ReqSet], list[_Row]]]
    ) -> list[tuple[_Class, str | None, list[Pod], int]]:
        """Pack groups of one pool that may share nodes as one problem (`pool_problem.py`)."""
        table = self.table
        columns = pool_columns(table, [(reqs, choice.no_gpu) for choice, reqs, _ in groups])
        index = columns.index
        # merge rows of one class within a group (a spill round may bring a class back)
        items: list[tuple[_Class, list[Pod], int, int]] = []  # class, pods, choice, group
        at_item: dict[tuple[int, int], int] = {}
        for g, (_, _, rows) in enumerate(groups):
            for cls, pods, at in rows:
                if (id(cls), g) in at_item:
                    items[at_item[(id(cls), g)]][1].extend(pods)
                else:
                    at_item[(id(cls), g)] = len(items)
                    items.append((cls, list(pods), at, g))
        group_of = np.array([g for _, _, _, g in items], dtype=np.int64)
        reqs0 = groups[0][1]
        single = len(groups) == 1
        problem = GroupProblem(
            demand=np.array([c.requests for c, _, _, _ in items], dtype=np.int64).reshape(-1, 4),
            counts=np.array([len(p) for _, p, _, _ in items], dtype=np.int64),
            caps=np.array([min(c.cap, UNLIMITED) for c, _, _, _ in items], dtype=np.int64),
            conflicts=np.array(
                [
                    [
                        i != j and repels(a.rep, b.rep, HOSTNAME)
                        for j, (b, _, _, _) in enumerate(items)
                    ]
                    for i, (a, _, _, _) in enumerate(items)
                ],
                dtype=bool,
            ).reshape(len(items), len(items)),
            alloc=table.alloc[index],
            price=columns.price,
            min_values=tuple((k, r.min_values) for k, r in sorted(reqs0.items()) if r.min_values)
            if single
            else (),
            distinct=lambda key, mask: table.distinct_values(key, _widen(mask, index, len(table))),
            allowed=None if single else columns.allowed[group_of],
        )
        nodes = self.strategy(problem, self.deadline)
        t_index = groups[0][0].template
        template = self.templates[t_index]
        spilled_counts = np.zeros(len(items), dtype=np.int64)
        queues = [list(p) for _, p, _, _ in items]
        for node in nodes:
            c = self.within_limits(problem, node, index, t_index)
            if c is None:
                spilled_counts += node.counts
                continue
            on_node: list[Pod] = []
            for k, n in enumerate(node.counts):
                on_node.extend(queues[k][:n])
                queues[k] = queues[k][n:]
            present = sorted(set(group_of[node.counts > 0].tolist()))
            reqs = columns.node_reqs(c, [groups[g][1] for g in present])
            self.new_nodes.append(self.new_node(template, reqs, problem, columns, c, node, on_node))
        placed = problem.counts - spilled_counts
        for g, (choice, reqs, _) in enumerate(groups):
            mine = group_of == g
            if not placed[mine].any():
                continue
            own = table.type_mask(reqs) & np.isfinite(table.best_offerings(reqs).expected)
            if choice.no_gpu:
                own &= ~table.is_gpu
            demand = problem.demand[mine]
            fits = np.all(table.alloc[None, :, :] >= demand[:, None, :], axis=2).any(axis=0)
            types = np.flatnonzero(own & fits)
            self.bound_parts.append(
                BoundPart(
                    key=(t_index, choice.no_gpu),
                    demand=demand,
                    counts=placed[mine],
                    caps=problem.caps[mine],
                    types=types,
                    prices=table.cheapest_real(reqs)[types],
                )
            )
        out: list[tuple[_Class, str | None, list[Pod], int]] = []
        for k, (cls, _, at, g) in enumerate(items):
            if queues[k]:
                if at + 1 >= len(cls.choices):
                    reason = f'nodepool "{template.pool}" limits exceeded'
                    self.unschedulable.extend(Unschedulable(p, reason) for p in queues[k])
                else:
                    zone_req = groups[g][1].get(ZONE)
                    zone = (
                        next(iter(zone_req.values))
                        if zone_req and len(zone_req.values) == 1
                        else None
                    )
                    out.append((cls, zone, queues[k], at + 1))
        return out

    def within_limits(
        self, problem: GroupProblem, node: PackedNode, index: IntArray, t_index: int
    ) -> int | None:
        """The candidate to launch within the pool's limits (charging it), or None."""
        left = self.remaining[t_index]
        if left is None:
            return node.type
        capacity = self.table.capacity[index]
        if np.all(capacity[node.type] <= left):
            choice = node.type
        else:
            ok = problem.fitting_types(node.used, node.counts) & np.all(capacity <= left, axis=1)
            if not ok.any():
                return None
            choice = int(np.argmin(np.where(ok, problem.price, np.inf)))
        self.remaining[t_index] = left - capacity[choice]
        return choice

    def new_node(
        self,
        template: NodeTemplate,
        reqs: Reqs,
        problem: GroupProblem,
        columns: PoolColumns,
        c: int,
        node: PackedNode,
        pods: list[Pod],
    ) -> NewNode:
        table = self.table
        index = columns.index
        offers = table.best_offerings(reqs)
        chosen = int(index[c])
        offering = int(offers.index[chosen])
        # other types of the same zone variant that hold the pods and that their classes allow
        ok = problem.fitting_types(node.used, node.counts) & (columns.variant == columns.variant[c])
        fitting = np.flatnonzero(ok)
        fitting = fitting[fitting != c]
        keep = self.options.max_alternatives
        if len(fitting) > keep > 0:
            fitting = fitting[np.argpartition(problem.price[fitting], keep - 1)[:keep]]
        ranked = fitting[np.lexsort((fitting, problem.price[fitting]))][:keep]
        alternatives = tuple(table.names[int(index[a])] for a in ranked)
        options = (table.names[chosen], *alternatives)
        requirements = (
            *(r for r in to_requirements(reqs) if r.key != INSTANCE_TYPE),
            Requirement(INSTANCE_TYPE, Operator.IN, options),
        )
        return NewNode(
            pool=template.pool,
            instance_type=table.names[chosen],
            zone=str(table.off_zone[offering]),
            capacity_type=str(table.off_ct[offering]),
            price=float(table.off_price[offering]),
            pods=tuple(pods),
            alternatives=alternatives,
            requirements=requirements,
        )


def _widen(mask: BoolArray, index: IntArray, n: int) -> BoolArray:
    out = np.zeros(n, dtype=bool)
    out[index[mask]] = True
    return out


def _same_spread_group(rep: Pod, other: Pod) -> bool:
    """Pods counted against a class's per-node cap: those its hostname selectors match."""
    return any(
        s.topology_key == HOSTNAME and pod_matches(s.selector, rep.namespace, other)
        for s in hard_spreads(rep)
    ) or any(
        t.topology_key == HOSTNAME and pod_matches(t.selector, rep.namespace, other)
        for t in rep.anti_affinity
    )


def schedule(
    pods: Iterable[Pod],
    templates: Sequence[NodeTemplate],
    instance_types: Sequence[InstanceType],
    existing_nodes: Sequence[ExistingNode],
    options: PackOptions,
    strategy: Strategy,
) -> Plan:
    """Run the shared pipeline with a packing strategy; see the module docstring."""
    table = type_table(instance_types, options.spot_interruption_penalty)
    scheduler = _Scheduler(templates, table, existing_nodes, options, strategy)
    scheduler.run(_classes(pods))
    return Plan(
        new_nodes=tuple(scheduler.new_nodes),
        bindings=dict(scheduler.bindings),
        unschedulable=tuple(scheduler.unschedulable),
        lower_bound=lower_bound(scheduler.bound_parts, table) if options.lower_bound else 0.0,
    )
