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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from kube.port import (
    JSON,
    NODE_CLAIMS,
    NODE_POOLS,
    NODES,
    POD_DISRUPTION_BUDGETS,
    PODS,
    Cluster,
    ClusterError,
    NotFound,
)
from provisioner.api import NodePool
from provisioner.cloud.port import CloudProvider, Instance, InsufficientCapacity, LaunchRequest
from provisioner.cloud.simulated import resource_list
from provisioner.cloud.unavailable import UnavailableOfferings
from provisioner.disruption.inputs import DISRUPTED_TAINT
from provisioner.disruption.pools import (
    POOL_HASH_ANNOTATION,
    POOL_HASH_VERSION,
    POOL_HASH_VERSION_ANNOTATION,
    pool_hash,
)
from provisioner.nodepools import node_template
from provisioner.quantity import count, cpu_millicores, memory_bytes
from provisioner.scheduling.model import (
    CAPACITY_TYPE,
    INSTANCE_TYPE,
    NODEPOOL,
    ZONE,
    ExistingNode,
    InstanceType,
    NewNode,
    Operator,
    Plan,
    Pod,
    Requirement,
    Resources,
    Taint,
    TaintEffect,
)
from provisioner.scheduling.packer import PackOptions, plan
from provisioner.scheduling.pods import pod_from_manifest
from scaler.clock import Clock
from scaler.loops import condition, key_of, watch_objects

log = logging.getLogger("ebbflow.provisioner")

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


@dataclass(frozen=True)
class ProvisionerOptions:
    batch_idle_seconds: float = 1.0  # Karpenter's BATCH_IDLE_DURATION
    batch_max_seconds: float = 10.0  # Karpenter's BATCH_MAX_DURATION
    # the bound is for the dry run; a controller planning every batch does without it
    pack: PackOptions = field(default_factory=lambda: PackOptions(lower_bound=False))


@dataclass
class NodeRecord:
    """One node's life, for cost accounting: launched (billed) until terminated."""

    claim: str
    pool: str
    instance_type: str
    capacity_type: str
    zone: str
    price: float
    launched_at: float
    terminated_at: float | None = None

    def cost(self, now: float, since: float | None = None) -> float:
        """Dollars billed up to `now`, counting only from `since` when given."""
        return self.price * self.seconds(now, since) / 3600

    def seconds(self, now: float, since: float | None = None) -> float:
        """Seconds of life up to `now` (from `since` when given)."""
        end = self.terminated_at if self.terminated_at is not None else now
        begin = self.launched_at if since is None else max(self.launched_at, since)
        return max(0.0, min(end, now) - begin)


@dataclass
class ProvisionerStats:
    plans: int = 0
    claims_created: int = 0
    ice_errors: int = 0
    errors: int = 0
    unschedulable: dict[str, str] = field(default_factory=dict)  # pod key -> reason (latest)


def resources_of(resource_list_: Mapping[str, Any] | None) -> Resources:
    r = resource_list_ or {}
    gpu = sum(count(r[name]) for name in GPU_RESOURCES if name in r)
    return Resources(
        cpu=cpu_millicores(r.get("cpu", 0)),
        memory=memory_bytes(r.get("memory", 0)),
        gpu=gpu,
        pods=count(r.get("pods", 0)),
    )


def taints_of(spec: Mapping[str, Any]) -> tuple[Taint, ...]:
    return tuple(
        Taint(t["key"], TaintEffect(t["effect"]), t.get("value", "") or "")
        for t in spec.get("taints") or ()
    )


def is_pending(pod: JSON) -> bool:
    """Unbound and alive: the pods a provisioner must find room for."""
    if pod.get("spec", {}).get("nodeName"):
        return False
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    phase: str = pod.get("status", {}).get("phase", "Pending")
    return phase == "Pending"


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


def bound_node(pod: JSON) -> str | None:
    """The node a live pod is bound to (None: unbound, finished or gone)."""
    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return None
    node: str | None = pod.get("spec", {}).get("nodeName") or None
    return node


def node_is_ready(node: JSON) -> bool:
    conditions = node.get("status", {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class ProvisioningController:
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

    async def _watch(self, kind: Any, upsert: Any, remove: Any, known: Any) -> None:
        await watch_objects(self.cluster, self.clock, kind, None, upsert, remove, known)

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

    # --- informers -----------------------------------------------------------------------

    async def _upsert_pod(self, obj: JSON) -> None:
        key = "/".join(key_of(obj))
        old = self.pods.get(key)
        self.pods[key] = obj
        before, after = bound_node(old) if old else None, bound_node(obj)
        if before != after:
            self._pod_event(before, after)
        elif old is None:
            self.generation += 1  # a new pending pod takes room first in disruption plans
        if is_pending(obj) and key not in self.nominated:
            self._arrivals += 1
            self._wake.set()

    async def _remove_pod(self, key: tuple[str, str]) -> None:
        name = "/".join(key)
        old = self.pods.pop(name, None)
        self.nominated.pop(name, None)
        self._pod_event(bound_node(old) if old else None, None)

    def _pod_event(self, *nodes: str | None) -> None:
        """A pod arrived on or left these nodes (Karpenter's lastPodEventTime)."""
        self.generation += 1
        for node in nodes:
            if node:
                self.last_pod_event[node] = self.clock.now()

    def _pod_keys(self) -> list[tuple[str, str]]:
        return [(k.split("/", 1)[0], k.split("/", 1)[1]) for k in self.pods]

    async def _upsert_node(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        self.nodes[name] = obj
        self.generation += 1
        if node_is_ready(obj):
            self.initialized_at.setdefault(name, self.clock.now())
        claim = self.claims.get(name)
        if claim is not None and not claim.get("status", {}).get("nodeName"):
            await self._mark_registered(name, obj)

    async def _remove_node(self, key: tuple[str, str]) -> None:
        self.nodes.pop(key[1], None)
        self.initialized_at.pop(key[1], None)
        self.last_pod_event.pop(key[1], None)
        self.generation += 1

    def _node_keys(self) -> list[tuple[str, str]]:
        return [("default", n) for n in self.nodes]

    async def _upsert_claim(self, obj: JSON) -> None:
        self.claims[obj["metadata"]["name"]] = obj
        self.generation += 1

    async def _remove_claim(self, key: tuple[str, str]) -> None:
        self.claims.pop(key[1], None)
        self._release(key[1])
        self.generation += 1

    def _claim_keys(self) -> list[tuple[str, str]]:
        return [("default", n) for n in self.claims]

    async def _upsert_pool(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        self.generation += 1
        try:
            self.pools[name] = NodePool.model_validate(obj)
        except ValidationError as exc:
            self.pools.pop(name, None)
            log.warning("NodePool %s is invalid and ignored: %s", name, exc)

    async def _remove_pool(self, key: tuple[str, str]) -> None:
        self.pools.pop(key[1], None)

    def _pool_keys(self) -> list[tuple[str, str]]:
        return [("default", n) for n in self.pools]

    async def _upsert_pdb(self, obj: JSON) -> None:
        self.pdbs["/".join(key_of(obj))] = obj
        self.generation += 1

    async def _remove_pdb(self, key: tuple[str, str]) -> None:
        self.pdbs.pop("/".join(key), None)
        self.generation += 1

    def _pdb_keys(self) -> list[tuple[str, str]]:
        return [(k.split("/", 1)[0], k.split("/", 1)[1]) for k in self.pdbs]

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

    def is_disrupting(self, name: str) -> bool:
        """The node carries karpenter.sh/disrupted:NoSchedule: no new pods go to it."""
        node = self.nodes.get(name)
        if node is None:
            return False
        return any(
            t.key == DISRUPTED_TAINT and t.effect is TaintEffect.NO_SCHEDULE
            for t in taints_of(node.get("spec", {}))
        )

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

    # --- accounting ----------------------------------------------------------------------

    def node_cost(self, now: float, since: float | None = None) -> float:
        return sum(r.cost(now, since) for r in self.ledger.values())


def _requirement_json(r: Requirement) -> dict[str, Any]:
    out: dict[str, Any] = {"key": r.key, "operator": r.operator.value}
    if r.operator not in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        out["values"] = list(r.values)
    if r.min_values is not None:
        out["minValues"] = r.min_values
    return out
