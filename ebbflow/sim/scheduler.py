"""The simulator's ReplicaSet controller and kube-scheduler, for scenarios with a node layer.

Each Deployment's replicas become Pod objects in the cluster, so the provisioning controller
sees pending pods exactly as it would in a real cluster. A pod is bound to a Ready node that
satisfies its node selector, affinity and tolerations and has room for its requests; among
those, the fullest node wins (MostAllocated scoring, the bin-packing profile that lets empty
nodes go). A bound pod starts; a node that disappears sends its pods back to pending.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ebbflow.sim.workload import SimulatedDeployment
from kube.port import NODES, PODS, Cluster, Conflict, NotFound
from provisioner.headroom import HEADROOM_LABEL
from provisioner.manifests import node_is_ready, resources_of, taints_of
from provisioner.scheduling.model import Pod, Resources, Taint, TaintEffect
from provisioner.scheduling.pods import pod_from_manifest
from provisioner.scheduling.requirements import labels_satisfy, reqs_of
from provisioner.scheduling.taints import untolerated
from scaler.clock import Clock
from scaler.loops import watch_objects


@dataclass
class NodeState:
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    allocatable: Resources
    ready: bool
    used: Resources = field(default_factory=Resources)
    pods: set[str] = field(default_factory=set)  # pod names bound here


def pod_manifest(d: SimulatedDeployment, name: str) -> dict[str, Any]:
    spec = d.workload.spec
    app = d.workload.so.spec.scale_target_ref.name
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": app,
                "image": f"{app}:sim",
                "resources": {"requests": dict(spec.pod.resources)},
            }
        ]
    }
    if spec.pod.node_selector:
        pod_spec["nodeSelector"] = dict(spec.pod.node_selector)
    if spec.pod.tolerations:
        pod_spec["tolerations"] = list(spec.pod.tolerations)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": d.workload.so.metadata.namespace,
            "labels": {"app": app},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{app}-sim",
                    "uid": f"rs-{app}",
                    "controller": True,
                }
            ],
        },
        "spec": pod_spec,
        "status": {"phase": "Pending"},
    }


@dataclass
class Placeholder:
    """A headroom pod: the lowest priority, bound where it fits, preempted for real pods."""

    pod: Pod
    node: str | None = None


def fits(pod: Pod, node: NodeState) -> bool:
    if not node.ready or not (node.used + pod.requests).fits_in(node.allocatable):
        return False
    if any(node.labels.get(k) != v for k, v in pod.node_selector.items()):
        return False
    if pod.node_affinity and not any(
        labels_satisfy(node.labels, reqs_of(term)) is None for term in pod.node_affinity
    ):
        return False
    blocking = [t for t in node.taints if t.effect is not TaintEffect.PREFER_NO_SCHEDULE]
    return untolerated(pod.tolerations, blocking) is None


class SimulatedScheduler:
    def __init__(
        self,
        cluster: Cluster,
        clock: Clock,
        deployments: Mapping[str, SimulatedDeployment],
        start: float,
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.deployments = deployments
        self.start = start
        self.nodes: dict[str, NodeState] = {}
        self.unbound: dict[str, list[str]] = {name: [] for name in deployments}
        self.bound: dict[str, list[tuple[str, str]]] = {name: [] for name in deployments}
        self.templates: dict[str, Pod] = {}
        self._serial: dict[str, int] = dict.fromkeys(deployments, 0)
        self.peak_nodes = 0
        # pods made to replace evicted or killed ones: created at; and, once bound, the wait
        self._replaced_at: dict[str, float] = {}
        self.reschedule_waits: list[float] = []
        self.placeholders: dict[tuple[str, str], Placeholder] = {}
        self.preemptions = 0
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        await asyncio.gather(
            watch_objects(
                self.cluster,
                self.clock,
                NODES,
                None,
                self._upsert_node,
                self._remove_node,
                lambda: [("default", n) for n in self.nodes],
            ),
            watch_objects(
                self.cluster,
                self.clock,
                PODS,
                None,
                self._upsert_pod,
                self._remove_pod,
                self._pod_keys,
            ),
        )

    def _pod_keys(self) -> list[tuple[str, str]]:
        keys = []
        for name, d in self.deployments.items():
            namespace = d.workload.so.metadata.namespace
            keys += [(namespace, p) for p in self.unbound[name]]
            keys += [(namespace, p) for p, _ in self.bound[name]]
        return keys + list(self.placeholders)

    async def _upsert_pod(self, obj: dict[str, Any]) -> None:
        """Placeholder pods (the forecast's headroom) are bound like any pod, after real ones."""
        meta = obj.get("metadata", {})
        if HEADROOM_LABEL not in (meta.get("labels") or {}):
            return  # the workloads' pods are ours: we know what we created and bound
        key = (meta.get("namespace", "default"), meta["name"])
        if key not in self.placeholders:
            self.placeholders[key] = Placeholder(pod_from_manifest(obj))
            async with self._lock:
                await self._bind_all()

    async def _remove_pod(self, key: tuple[str, str]) -> None:
        """A pod we still count was deleted by someone else (an eviction): replace it."""
        now = self.clock.now() - self.start
        placeholder = self.placeholders.pop(key, None)
        if placeholder is not None:
            if placeholder.node is not None:
                self._release(key[1], placeholder.node, placeholder.pod)
            return
        async with self._lock:
            for name, d in self.deployments.items():
                if d.workload.so.metadata.namespace != key[0]:
                    continue
                if key[1] in self.unbound[name]:
                    self.unbound[name].remove(key[1])
                    await self._replace(name)
                    break
                node = next((n for p, n in self.bound[name] if p == key[1]), None)
                if node is not None:
                    self.bound[name].remove((key[1], node))
                    self._release(key[1], node, self.template(name))
                    d.evict(now)
                    await self._replace(name)
                    break
            await self._bind_all()

    async def _replace(self, name: str) -> None:
        """The ReplicaSet's answer to a lost pod: a new pending one."""
        self._serial[name] += 1
        replacement = f"{name}-{self._serial[name]:06d}"
        await self.cluster.create(PODS, pod_manifest(self.deployments[name], replacement))
        self.unbound[name].append(replacement)
        self._replaced_at[replacement] = self.clock.now()

    @property
    def waiting_replacements(self) -> int:
        """Replacement pods not bound yet (at the end of a run: pods never rescheduled)."""
        return len(self._replaced_at)

    def template(self, name: str) -> Pod:
        if name not in self.templates:
            d = self.deployments[name]
            self.templates[name] = pod_from_manifest(pod_manifest(d, f"{name}-template"))
        return self.templates[name]

    async def sync(self, name: str) -> None:
        """Create or delete Pod objects so that they match the Deployment, then bind."""
        async with self._lock:
            d = self.deployments[name]
            unbound, bound = self.unbound[name], self.bound[name]
            while len(unbound) + len(bound) < d.desired:
                self._serial[name] += 1
                pod_name = f"{name}-{self._serial[name]:06d}"
                await self.cluster.create(PODS, pod_manifest(d, pod_name))
                unbound.append(pod_name)
            while len(unbound) + len(bound) > d.desired:
                if unbound:
                    pod_name = unbound.pop()
                    self._replaced_at.pop(pod_name, None)  # no longer wanted
                    await self._delete_pod(d, pod_name)
                else:
                    pod_name, node = bound.pop(self._victim(bound))
                    self._release(pod_name, node, self.template(name))
                    await self._delete_pod(d, pod_name)
            await self._bind_all()

    @staticmethod
    def _victim(bound: list[tuple[str, str]]) -> int:
        """Which bound pod a ReplicaSet deletes first when scaling down: the one on the node
        that holds the most of its replicas, the newest of those (the controller's
        ActivePodsWithRanks ordering: doubled-up pods first, then the most recently created)."""
        per_node: dict[str, int] = {}
        for _, node in bound:
            per_node[node] = per_node.get(node, 0) + 1
        return max(range(len(bound)), key=lambda i: (per_node[bound[i][1]], i))

    async def _bind_all(self) -> None:
        now = self.clock.now() - self.start
        for name, unbound in self.unbound.items():
            if not unbound:
                continue
            pod = self.template(name)
            d = self.deployments[name]
            while unbound:
                candidates = [(n, s) for n, s in self.nodes.items() if fits(pod, s)]
                if not candidates and not await self._preempt_for(pod):
                    break
                candidates = candidates or [(n, s) for n, s in self.nodes.items() if fits(pod, s)]
                node, state = max(candidates, key=lambda c: (_fullness(c[1]), c[0]))
                pod_name = unbound.pop(0)
                state.used = state.used + pod.requests
                state.pods.add(pod_name)
                self.bound[name].append((pod_name, node))
                replaced = self._replaced_at.pop(pod_name, None)
                if replaced is not None:
                    self.reschedule_waits.append(self.clock.now() - replaced)
                namespace = d.workload.so.metadata.namespace
                with contextlib.suppress(NotFound, Conflict):
                    await self.cluster.bind(pod_name, namespace, node)
                    await self.cluster.patch_status(PODS, pod_name, {"phase": "Running"}, namespace)
                d.bind(now)

        for (namespace, pod_name), placeholder in self.placeholders.items():
            if placeholder.node is not None:
                continue
            fitting = [(n, s) for n, s in self.nodes.items() if fits(placeholder.pod, s)]
            if not fitting:
                continue
            node, state = max(fitting, key=lambda c: (_fullness(c[1]), c[0]))
            placeholder.node = node
            state.used = state.used + placeholder.pod.requests
            state.pods.add(pod_name)
            with contextlib.suppress(NotFound, Conflict):
                await self.cluster.bind(pod_name, namespace, node)

    async def _preempt_for(self, pod: Pod) -> bool:
        """kube-scheduler's preemption: delete lower-priority placeholders from a node so
        that `pod` fits there. True when room was made."""
        for node, state in sorted(self.nodes.items(), key=lambda c: (-_fullness(c[1]), c[0])):
            victims = [(key, p) for key, p in self.placeholders.items() if p.node == node]
            if not victims:
                continue
            freed = Resources()
            for _, p in victims:
                freed = freed + p.pod.requests
            room = NodeState(
                state.labels, state.taints, state.allocatable, state.ready, state.used - freed
            )
            if not fits(pod, room):
                continue
            for key, p in victims:
                self._release(key[1], node, p.pod)
                del self.placeholders[key]
                self.preemptions += 1
                with contextlib.suppress(NotFound):
                    await self.cluster.delete(PODS, key[1], key[0])
                if fits(pod, state):
                    break
            return True
        return False

    async def _delete_pod(self, d: SimulatedDeployment, pod_name: str) -> None:
        with contextlib.suppress(NotFound):
            await self.cluster.delete(PODS, pod_name, d.workload.so.metadata.namespace)

    def _release(self, pod_name: str, node: str, pod: Pod) -> None:
        state = self.nodes.get(node)
        if state is not None and pod_name in state.pods:
            state.pods.discard(pod_name)
            state.used = state.used - pod.requests

    async def _upsert_node(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        old = self.nodes.get(name)
        self.nodes[name] = NodeState(
            labels=obj.get("metadata", {}).get("labels") or {},
            taints=taints_of(obj.get("spec", {})),
            allocatable=resources_of(obj.get("status", {}).get("allocatable")),
            ready=node_is_ready(obj),
            used=old.used if old else Resources(),
            pods=old.pods if old else set(),
        )
        self.peak_nodes = max(self.peak_nodes, len(self.nodes))
        async with self._lock:
            await self._bind_all()

    async def _remove_node(self, key: tuple[str, str]) -> None:
        state = self.nodes.pop(key[1], None)
        if state is None or not state.pods:
            return
        now = self.clock.now() - self.start
        async with self._lock:
            for name, bound in self.bound.items():
                d = self.deployments[name]
                lost = [(p, n) for p, n in bound if n == key[1]]
                for pod_name, node in lost:
                    bound.remove((pod_name, node))
                    try:  # the pod garbage collector removes the dead node's pods
                        await self.cluster.delete(PODS, pod_name, d.workload.so.metadata.namespace)
                        d.lose(now)
                    except NotFound:  # evicted just before its node went
                        d.evict(now)
                    await self._replace(name)
            await self._bind_all()


def _fullness(state: NodeState) -> float:
    a = state.allocatable
    cpu = state.used.cpu / a.cpu if a.cpu else 0.0
    memory = state.used.memory / a.memory if a.memory else 0.0
    return cpu + memory
