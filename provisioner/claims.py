"""The NodeClaim lifecycle: create a claim for a planned node, launch it, register it, end it.

A claim is created with the NodePool's template and hash, launched through the
CloudProvider (an insufficient-capacity error caches the offering, deletes the claim and
re-plans its pods), marked Registered once its Node appears, and terminated with its
instance and Node. Deleting a claim releases the pods nominated to it so the next batch
plans them again. `NodeClaimLifecycle` is a base of `ProvisioningController`: the behaviour
lives here, the state in the controller's `__init__` (declared below so mypy checks both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import Any

from kube.port import JSON, NODE_CLAIMS, NODES, Cluster, ClusterError, NotFound
from provisioner.api import NodePool
from provisioner.cloud.port import CloudProvider, Instance, InsufficientCapacity, LaunchRequest
from provisioner.cloud.simulated import resource_list
from provisioner.cloud.unavailable import UnavailableOfferings
from provisioner.disruption.pools import (
    POOL_HASH_ANNOTATION,
    POOL_HASH_VERSION,
    POOL_HASH_VERSION_ANNOTATION,
    pool_hash,
)
from provisioner.ledger import NodeRecord, ProvisionerStats
from provisioner.manifests import node_is_ready
from provisioner.nodepools import node_template
from provisioner.scheduling.model import (
    CAPACITY_TYPE,
    INSTANCE_TYPE,
    NODEPOOL,
    ZONE,
    InstanceType,
    NewNode,
    Operator,
    Requirement,
    Resources,
    Taint,
)
from scaler.clock import Clock
from scaler.loops import condition

log = logging.getLogger("ebbflow.provisioner")


class NodeClaimLifecycle:
    """Creating, launching, registering, releasing and terminating NodeClaims."""

    # the controller's state this part reads and writes (set in its __init__)
    cluster: Cluster
    clock: Clock
    cloud: CloudProvider
    unavailable: UnavailableOfferings
    stats: ProvisionerStats
    ledger: dict[str, NodeRecord]
    nodes: dict[str, JSON]
    claims: dict[str, JSON]
    pools: dict[str, NodePool]
    nominated: dict[str, str]
    _types_by_name: dict[str, InstanceType]
    _claim_plans: dict[str, NewNode]
    _wake: asyncio.Event
    _arrivals: int
    _sequence: int
    _tasks: set[asyncio.Task[None]]

    async def create_claim(self, new: NewNode, nominate: bool = True) -> str:
        """Create a NodeClaim for `new` and launch it; its pods are nominated to it unless
        `nominate` is False (a disruption's replacement: its pods are still running)."""
        self._sequence += 1
        name = f"{new.pool}-{self._sequence:05d}"
        pool = self.pools[new.pool]
        template = pool.spec.template
        requirements = [
            {
                "key": INSTANCE_TYPE,
                "operator": "In",
                "values": [new.instance_type, *new.alternatives],
            },
            {"key": CAPACITY_TYPE, "operator": "In", "values": [new.capacity_type]},
            {"key": ZONE, "operator": "In", "values": [new.zone]},
        ]
        for r in new.requirements:
            if r.key not in (INSTANCE_TYPE, CAPACITY_TYPE, ZONE):
                requirements.append(_requirement_json(r))
        requests = Resources()
        for pod in new.pods:
            requests = requests + pod.requests
        spec: dict[str, Any] = {
            "requirements": requirements,
            "resources": {"requests": resource_list(requests)},
            "nodeClassRef": template.spec.node_class_ref.model_dump(by_alias=True),
        }
        dumped = template.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        for extra in ("taints", "startupTaints", "expireAfter", "terminationGracePeriod"):
            if extra in dumped:
                spec[extra] = dumped[extra]
        claim = {
            "apiVersion": NODE_CLAIMS.api_version,
            "kind": "NodeClaim",
            "metadata": {
                "name": name,
                "labels": {**template.metadata.labels, NODEPOOL: new.pool},
                # what drift compares with the pool's hash later (Karpenter's annotations)
                "annotations": {
                    POOL_HASH_ANNOTATION: pool_hash(pool),
                    POOL_HASH_VERSION_ANNOTATION: POOL_HASH_VERSION,
                },
            },
            "spec": spec,
        }
        created = await self.cluster.create(NODE_CLAIMS, claim)
        self.claims[name] = created
        self._claim_plans[name] = new
        self.stats.claims_created += 1
        if nominate:
            for pod in new.pods:
                self.nominated[pod.key] = name
        self._spawn(self._launch(name, new))
        return name

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _launch(self, name: str, new: NewNode) -> None:
        pool = self.pools.get(new.pool)
        labels = dict(pool.spec.template.metadata.labels) if pool else {}
        labels[NODEPOOL] = new.pool
        taints = self._pool_taints(new.pool) + self._startup_taints(new.pool)
        request = LaunchRequest(
            claim=name,
            pool=new.pool,
            instance_types=(new.instance_type, *new.alternatives),
            zones=(new.zone,),
            capacity_types=(new.capacity_type,),
            labels=labels,
            taints=taints,
        )
        try:
            instance = await self.cloud.create(request)
        except InsufficientCapacity as exc:
            self.stats.ice_errors += 1
            self.unavailable.mark(exc.offerings, self.clock.now())
            log.info("claim %s: insufficient capacity (%s); re-planning its pods", name, exc)
            await self._delete_claim(name)
            self._wake.set()
            return
        self._record_launch(instance)
        itype = self._types_by_name.get(instance.instance_type)
        status: dict[str, Any] = {
            "providerID": instance.provider_id,
            "conditions": [condition("Launched", True, "Launched", "", self.clock.now())],
        }
        if itype is not None:
            status["capacity"] = resource_list(itype.capacity)
            status["allocatable"] = resource_list(itype.allocatable)
        with contextlib.suppress(NotFound):
            await self.cluster.patch_status(NODE_CLAIMS, name, status)
        if instance.instance_type != new.instance_type or instance.zone != new.zone:
            # the cloud fell back to an alternative: the claim now plans for what launched
            self._claim_plans[name] = replace(
                new, instance_type=instance.instance_type, zone=instance.zone, price=instance.price
            )
        node = self.nodes.get(name)
        if node is not None:
            await self._mark_registered(name, node)

    def _record_launch(self, instance: Instance) -> None:
        self.ledger[instance.claim] = NodeRecord(
            claim=instance.claim,
            pool=instance.pool,
            instance_type=instance.instance_type,
            capacity_type=instance.capacity_type,
            zone=instance.zone,
            price=instance.price,
            launched_at=instance.launched_at,
        )

    async def _mark_registered(self, name: str, node: JSON) -> None:
        now = self.clock.now()
        conditions = [
            condition("Launched", True, "Launched", "", now),
            condition("Registered", True, "Registered", "", now),
            condition("Initialized", node_is_ready(node), "Initialized", "", now),
        ]
        with contextlib.suppress(NotFound):
            await self.cluster.patch_status(
                NODE_CLAIMS,
                name,
                {
                    "nodeName": name,
                    "providerID": node.get("spec", {}).get("providerID"),
                    "conditions": conditions,
                },
            )

    def _release(self, claim: str) -> None:
        released = [k for k, c in self.nominated.items() if c == claim]
        for key in released:
            del self.nominated[key]
        self._claim_plans.pop(claim, None)
        if released:  # its pods are pending again: plan them in the next batch
            self._arrivals += 1
            self._wake.set()

    async def _delete_claim(self, name: str) -> None:
        self._release(name)
        self.claims.pop(name, None)
        with contextlib.suppress(NotFound):
            await self.cluster.delete(NODE_CLAIMS, name)

    def _pool_taints(self, pool_name: str) -> tuple[Taint, ...]:
        pool = self.pools.get(pool_name)
        return node_template(pool).taints if pool is not None else ()

    def _startup_taints(self, pool_name: str) -> tuple[Taint, ...]:
        pool = self.pools.get(pool_name)
        return node_template(pool).startup_taints if pool is not None else ()

    # --- termination ---------------------------------------------------------------------

    async def terminate(self, name: str) -> None:
        """Terminate a claim's instance, then delete its Node and NodeClaim."""
        record = self.ledger.get(name)
        claim = self.claims.get(name, {})
        provider_id = claim.get("status", {}).get("providerID")
        if provider_id:
            with contextlib.suppress(Exception):
                await self.cloud.delete(provider_id)
        if record is not None and record.terminated_at is None:
            record.terminated_at = self.clock.now()
        for kind in (NODES, NODE_CLAIMS):
            with contextlib.suppress(NotFound, ClusterError):
                await self.cluster.delete(kind, name)
        self.nodes.pop(name, None)
        self.claims.pop(name, None)
        self._release(name)


def _requirement_json(r: Requirement) -> dict[str, Any]:
    out: dict[str, Any] = {"key": r.key, "operator": r.operator.value}
    if r.operator not in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        out["values"] = list(r.values)
    if r.min_values is not None:
        out["minValues"] = r.min_values
    return out
