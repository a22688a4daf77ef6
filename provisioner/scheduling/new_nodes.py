"""Pending pods packed onto new nodes: steps 4 and 5 of the scheduler (`scheduler.py`).

Each round groups the pending pods by (pool, node requirements, zone) at their current choice;
groups of one pool that may share nodes form one problem (`pool_problem.py`) handed to the
packing strategy. NodePool limits are charged with each new node's full capacity (Karpenter
does the same); pods that overflow a pool are spilled to their next choice for the next round.
Every packed group also leaves a part of the lower bound (`bound.py`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from provisioner.scheduling.bound import BoundPart
from provisioner.scheduling.fit import BoolArray, IntArray, TypeTable, vector
from provisioner.scheduling.groups import GroupProblem, PackedNode
from provisioner.scheduling.model import (
    HOSTNAME,
    INSTANCE_TYPE,
    ZONE,
    NewNode,
    NodeTemplate,
    Operator,
    Pod,
    Requirement,
    Unschedulable,
)
from provisioner.scheduling.options import PackOptions
from provisioner.scheduling.pod_classes import PodClass, PoolChoice, Row
from provisioner.scheduling.pool_problem import PoolColumns, merge_key, pool_columns
from provisioner.scheduling.requirements import (
    Reqs,
    ReqSet,
    intersect,
    signature,
    to_requirements,
)
from provisioner.scheduling.strategy import Strategy
from provisioner.scheduling.topology import UNLIMITED, repels

# pods still to place: (class, zone, pods, next choice index)
Pending = tuple[PodClass, str | None, list[Pod], int]


class NewNodePacker:
    """Packs rounds of pending pods into new nodes, charging the pools' limits as it goes."""

    def __init__(
        self,
        templates: Sequence[NodeTemplate],
        table: TypeTable,
        options: PackOptions,
        strategy: Strategy,
        unschedulable: list[Unschedulable],
    ) -> None:
        self.templates = templates  # by weight, as the classes' choices index them
        self.table = table
        self.options = options
        self.strategy = strategy
        self.unschedulable = unschedulable  # the scheduler's list: pods no pool takes go there
        self.remaining = [
            None if t.limits is None else vector(t.limits) - vector(t.in_use)
            for t in self.templates
        ]
        self.new_nodes: list[NewNode] = []
        self.bound_parts: list[BoundPart] = []
        budget = options.time_budget_seconds
        self.deadline = None if budget is None else time.perf_counter() + budget

    def pack_round(self, pending: list[Pending]) -> list[Pending]:
        """Group and pack the pending pods; returns those spilled to their next choice."""
        # merge key -> group key -> (choice, requirements, rows)
        pools: dict[str, dict[str, tuple[PoolChoice, dict[str, ReqSet], list[Row]]]] = {}
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
        spilled: list[Pending] = []
        for merged in sorted(pools):
            groups = [pools[merged][k] for k in sorted(pools[merged])]
            spilled.extend(self.pack_pool(groups))
        return spilled

    def pack_pool(
        self, groups: list[tuple[PoolChoice, dict[str, ReqSet], list[Row]]]
    ) -> list[Pending]:
        """Pack groups of one pool that may share nodes as one problem (`pool_problem.py`)."""
        table = self.table
        columns = pool_columns(table, [(reqs, choice.no_gpu) for choice, reqs, _ in groups])
        index = columns.index
        # merge rows of one class within a group (a spill round may bring a class back)
        items: list[tuple[PodClass, list[Pod], int, int]] = []  # class, pods, choice, group
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
        out: list[Pending] = []
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
        """The node to launch for a packed node on candidate `c`, with its alternatives."""
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
