"""The provisioning controller: pending pods -> batch -> plan -> NodeClaims -> instances -> nodes.

It keeps pods, nodes, NodeClaims and NodePools in step with the cluster through watches,
batches unschedulable pods (Karpenter's defaults: 1 s idle, 10 s at most), asks the pure
packer for the cheapest set of new nodes, and creates a NodeClaim per node. Each claim is
launched through the CloudProvider; an insufficient-capacity error caches the offering for
three minutes, deletes the claim and re-plans its pods. Pods wait for their claim's node
(the scheduler binds them once it is Ready); in-flight claims count as nodes in the next
plan so no pod is provisioned twice. It also keeps what the disruption controller
(`provisioner.disruption.executor`) reads: PodDisruptionBudgets, when a pod last arrived on
or left each node, when each node became Ready; and it stamps the NodePool hash on every
NodeClaim so drift can compare it. Removing nodes is the disruption controller's job.

This module holds the state, the loops and the planning round; the informers' cache is in
`provisioner.informers`, the NodeClaim lifecycle in `provisioner.claims`, the cost ledger in
`provisioner.ledger` and the manifest readers in `provisioner.manifests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kube.port import (
    JSON,
    NODE_CLAIMS,
    NODE_POOLS,
    NODES,
    POD_DISRUPTION_BUDGETS,
    PODS,
    Cluster,
)
from provisioner.api import NodePool
from provisioner.cloud.port import CloudProvider
from provisioner.cloud.unavailable import UnavailableOfferings
from provisioner.disruption.inputs import DISRUPTED_TAINT
from provisioner.informers import ClusterInformers
from provisioner.ledger import NodeRecord, ProvisionerStats
from provisioner.manifests import is_pending, node_is_ready, resources_of, taints_of
from provisioner.nodepools import node_template
from provisioner.scheduling.model import (
    CAPACITY_TYPE,
    NODEPOOL,
    ZONE,
    ExistingNode,
    InstanceType,
    NewNode,
    Plan,
    Pod,
    Resources,
    TaintEffect,
)
from provisioner.scheduling.packer import PackOptions, plan
from provisioner.scheduling.pods import pod_from_manifest
from scaler.clock import Clock

log = logging.getLogger("ebbflow.provisioner")


@dataclass(frozen=True)
class ProvisionerOptions:
    batch_idle_seconds: float = 1.0  # Karpenter's BATCH_IDLE_DURATION
    batch_max_seconds: float = 10.0  # Karpenter's BATCH_MAX_DURATION
    # the bound is for the dry run; a controller planning every batch does without it
    pack: PackOptions = field(default_factory=lambda: PackOptions(lower_bound=False))


async def run_loops(loops: Sequence[Any], spawned: set[asyncio.Task[None]]) -> None:
    """Run `loops` together until cancelled; then cancel them and every task in `spawned`."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in (*tasks, *spawned):
            task.cancel()
        for task in (*tasks, *spawned):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class ProvisioningController(ClusterInformers):
    def __init__(
        self,
        cluster: Cluster,
        clock: Clock,
        cloud: CloudProvider,
        instance_types: Sequence[InstanceType],
        options: ProvisionerOptions | None = None,
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.cloud = cloud
        self.instance_types = tuple(instance_types)
        self._types_by_name = {t.name: t for t in self.instance_types}
        self.options = options or ProvisionerOptions()
        self.unavailable = UnavailableOfferings()
        self.stats = ProvisionerStats()
        self.ledger: dict[str, NodeRecord] = {}  # claim name -> record
        self.pods: dict[str, JSON] = {}
        self.nodes: dict[str, JSON] = {}
        self.claims: dict[str, JSON] = {}
        self.pools: dict[str, NodePool] = {}
        self.pdbs: dict[str, JSON] = {}  # "namespace/name" -> PodDisruptionBudget
        self.nominated: dict[str, str] = {}  # pod key -> claim name
        self.last_pod_event: dict[str, float] = {}  # node -> when a pod last came or went
        self.initialized_at: dict[str, float] = {}  # node -> when it was first seen Ready
        # bumped on every change the disruption planner reads (it skips unchanged rounds)
        self.generation = 0
        self._claim_plans: dict[str, NewNode] = {}
        self._wake = asyncio.Event()
        self._arrivals = 0
        self._sequence = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the loops -----------------------------------------------------------------------

    async def run(self) -> None:
        """Watch, batch and plan until cancelled."""
        loops = [
            self._watch(PODS, self._upsert_pod, self._remove_pod, self._pod_keys),
            self._watch(NODES, self._upsert_node, self._remove_node, self._node_keys),
            self._watch(NODE_CLAIMS, self._upsert_claim, self._remove_claim, self._claim_keys),
            self._watch(NODE_POOLS, self._upsert_pool, self._remove_pool, self._pool_keys),
            self._watch(POD_DISRUPTION_BUDGETS, self._upsert_pdb, self._remove_pdb, self._pdb_keys),
            self._batching(),
        ]
        await run_loops(loops, self._tasks)

    async def _batching(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            started = self.clock.now()
            while True:
                seen = self._arrivals
                await self.clock.sleep(self.options.batch_idle_seconds)
                waited = self.clock.now() - started
                if self._arrivals == seen or waited >= self.options.batch_max_seconds:
                    break
            try:
                await self.provision_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the guard: a failed round is retried on the next pod
                self.stats.errors += 1
                log.warning("provisioning round failed: %s: %s", type(exc).__name__, exc)
                await self.clock.sleep(self.options.batch_max_seconds)
                self._wake.set()

    # --- planning ------------------------------------------------------------------------

    def pending_pods(self) -> list[Pod]:
        pods = []
        for key, obj in self.pods.items():
            if key in self.nominated or not is_pending(obj):
                continue
            try:
                pods.append(pod_from_manifest(obj))
            except ValueError as exc:
                self.stats.unschedulable[key] = f"invalid pod: {exc}"
        return pods

    def existing_nodes(self, include_disrupting: bool = False) -> list[ExistingNode]:
        """Registered nodes with their bound pods, and in-flight claims with their nominees.

        Nodes tainted karpenter.sh/disrupted:NoSchedule take no new pods and are left out,
        unless `include_disrupting` (the disruption planner must see their pods).
        """
        bound: dict[str, list[Pod]] = {}
        for obj in self.pods.values():
            node = obj.get("spec", {}).get("nodeName")
            if node and obj.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                with contextlib.suppress(ValueError):
                    bound.setdefault(node, []).append(pod_from_manifest(obj))
        nominees: dict[str, list[Pod]] = {}
        for key, claim in self.nominated.items():
            nominee = self.pods.get(key)
            if nominee is not None and is_pending(nominee):
                with contextlib.suppress(ValueError):
                    nominees.setdefault(claim, []).append(pod_from_manifest(nominee))
        out = []
        for name, node in self.nodes.items():
            if not include_disrupting and self.is_disrupting(name):
                continue
            labels = node.get("metadata", {}).get("labels") or {}
            out.append(
                ExistingNode(
                    name=name,
                    labels=labels,
                    allocatable=resources_of(node.get("status", {}).get("allocatable")),
                    taints=taints_of(node.get("spec", {})),
                    pods=(*bound.get(name, ()), *nominees.get(name, ())),
                    pool=labels.get(NODEPOOL),
                    ready=node_is_ready(node),
                )
            )
        for name, new in self._claim_plans.items():
            if name in self.nodes or name not in self.claims:
                continue
            itype = self._types_by_name[new.instance_type]
            labels = {**itype.labels, ZONE: new.zone, CAPACITY_TYPE: new.capacity_type}
            labels[NODEPOOL] = new.pool
            out.append(
                ExistingNode(
                    name=name,
                    labels=labels,
                    allocatable=itype.allocatable,
                    taints=self._pool_taints(new.pool),
                    pods=tuple(nominees.get(name, ())),
                    pool=new.pool,
                    price=new.price,
                    ready=False,
                )
            )
        return out

    def available_types(self) -> tuple[InstanceType, ...]:
        """The catalog with offerings that recently ran out of capacity marked unavailable."""
        now = self.clock.now()
        cached = self.unavailable.active(now)
        if not cached:
            return self.instance_types
        out = []
        for t in self.instance_types:
            if any((t.name, o.zone, o.capacity_type) in cached for o in t.offerings):
                offerings = tuple(
                    replace(o, available=False)
                    if (t.name, o.zone, o.capacity_type) in cached
                    else o
                    for o in t.offerings
                )
                t = replace(t, offerings=offerings)
            out.append(t)
        return tuple(out)

    def pool_usage(self) -> dict[str, Resources]:
        usage: dict[str, Resources] = {}
        for name, new in self._claim_plans.items():
            if name in self.claims:
                capacity = self._types_by_name[new.instance_type].capacity
                usage[new.pool] = usage.get(new.pool, Resources()) + capacity
        return usage

    async def provision_once(self) -> Plan | None:
        """One round: plan the pending pods and create a NodeClaim per new node."""
        pods = self.pending_pods()
        if not pods:
            return None
        usage = self.pool_usage()
        templates = [
            node_template(pool, usage.get(name, Resources())) for name, pool in self.pools.items()
        ]
        result = plan(
            pods, templates, self.available_types(), self.existing_nodes(), self.options.pack
        )
        self.stats.plans += 1
        for key, node in result.bindings.items():
            if node in self._claim_plans and node not in self.nodes:
                self.nominated[key] = node
        for item in result.unschedulable:
            if self.stats.unschedulable.get(item.pod.key) != item.reason:
                log.info("pod %s cannot be provisioned: %s", item.pod.key, item.reason)
            self.stats.unschedulable[item.pod.key] = item.reason
        for new in result.new_nodes:
            await self.create_claim(new)
        return result

    def is_disrupting(self, name: str) -> bool:
        """The node carries karpenter.sh/disrupted:NoSchedule: no new pods go to it."""
        node = self.nodes.get(name)
        if node is None:
            return False
        return any(
            t.key == DISRUPTED_TAINT and t.effect is TaintEffect.NO_SCHEDULE
            for t in taints_of(node.get("spec", {}))
        )

    # --- accounting ----------------------------------------------------------------------

    def node_cost(self, now: float, since: float | None = None) -> float:
        return sum(r.cost(now, since) for r in self.ledger.values())
