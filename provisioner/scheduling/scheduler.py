"""The batch scheduler both packers share: classes, pool choice, existing nodes, groups, limits.

Steps, as Karpenter's `scheduler.go` orders them:

1. pods with the same requests and constraints form a class (packing is by counts per class);
2. each class lists the (node affinity term, NodePool) pairs it can use: terms in order (the
   ORed terms are relaxed one after the other), pools by weight, highest first
   (`pod_classes.py`);
3. existing nodes with free room are filled first (topology and anti-affinity respected;
   `existing_nodes.py`, zone quotas in `zone_split.py`);
4. the rest is grouped by (pool, node requirements, zone); groups of one pool that differ only
   in type-level requirements (and, with `merge_zones`, zone) are one problem with a type mask
   per class (`pool_problem.py`), handed to a packing strategy (`new_nodes.py`);
5. NodePool limits are charged with each new node's full capacity; pods that overflow a pool
   move on to their next choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from provisioner.scheduling.bound import lower_bound
from provisioner.scheduling.existing_nodes import ExistingNodes
from provisioner.scheduling.fit import TypeTable, type_table
from provisioner.scheduling.model import (
    ExistingNode,
    InstanceType,
    NodeTemplate,
    Plan,
    Pod,
    Unschedulable,
)
from provisioner.scheduling.new_nodes import NewNodePacker, Pending
from provisioner.scheduling.options import PackOptions
from provisioner.scheduling.pod_classes import PodClass, choose, pod_classes, pool_bases
from provisioner.scheduling.strategy import Strategy
from provisioner.scheduling.zone_split import ZoneSplitter


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
        self.bases = pool_bases(self.templates)
        self.table = table
        self.existing = ExistingNodes(existing)
        # one list, in the order the steps find them, shared by the steps that give up on pods
        self.unschedulable: list[Unschedulable] = []
        self.zones = ZoneSplitter(table, self.existing, self.unschedulable)
        self.packer = NewNodePacker(self.templates, table, options, strategy, self.unschedulable)

    def run(self, classes: list[PodClass]) -> None:
        pending: list[Pending] = []
        for cls in classes:
            if cls.error is None:
                choose(cls, self.templates, self.bases, self.table)
            for zone, pods in (
                self.zones.split_by_zone(cls) if cls.error is None else [(None, cls.pods)]
            ):
                left = self.existing.fill(cls, pods, zone) if cls.terms else pods
                if not left:
                    continue
                if cls.error is not None:
                    self.unschedulable.extend(Unschedulable(p, cls.error) for p in left)
                else:
                    pending.append((cls, zone, left, 0))
        while pending:
            pending = self.packer.pack_round(pending)


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
    scheduler.run(pod_classes(pods))
    packer = scheduler.packer
    return Plan(
        new_nodes=tuple(packer.new_nodes),
        bindings=dict(scheduler.existing.bindings),
        unschedulable=tuple(scheduler.unschedulable),
        lower_bound=lower_bound(packer.bound_parts, table) if options.lower_bound else 0.0,
    )
