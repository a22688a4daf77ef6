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
from kube.port import NODES, PODS, Cluster, NotFound
from provisioner.controller import node_is_ready, resources_of, taints_of
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
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        await watch_objects(
            self.cluster,
            self.clock,
            NODES,
            None,
            self._upsert_node,
            self._remove_node,
            lambda: [("default", n) for n in self.nodes],
        )

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
                    await self._delete_pod(d, unbound.pop())
                else:
                    pod_name, node = bound.pop()
                    self._release(pod_name, node, self.template(name))
                    await self._delete_pod(d, pod_name)
            await self._bind_all()

    async def _bind_all(self) -> None:
        now = self.clock.now() - self.start
        for name, unbound in self.unbound.items():
            if not unbound:
                continue
            pod = self.template(name)
            d = self.deployments[name]
            while unbound:
                candidates = [(n, s) for n, s in self.nodes.items() if fits(pod, s)]
                if not candidates:
                    break
                node, state = max(candidates, key=lambda c: (_fullness(c[1]), c[0]))
                pod_name = unbound.pop(0)
                state.used = state.used + pod.requests
                state.pods.add(pod_name)
                self.bound[name].append((pod_name, node))
                namespace = d.workload.so.metadata.namespace
                with contextlib.suppress(NotFound):
                    await self.cluster.patch(
                        PODS, pod_name, {"spec": {"nodeName": node}}, namespace
                    )
                    await self.cluster.patch_status(PODS, pod_name, {"phase": "Running"}, namespace)
                d.bind(now)

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
                    await self._delete_pod(d, pod_name)
                    d.lose(now)
                    self._serial[name] += 1
                    replacement = f"{name}-{self._serial[name]:06d}"
                    await self.cluster.create(PODS, pod_manifest(d, replacement))
                    self.unbound[name].append(replacement)
            await self._bind_all()


def _fullness(state: NodeState) -> float:
    a = state.allocatable
    cpu = state.used.cpu / a.cpu if a.cpu else 0.0
    memory = state.used.memory / a.memory if a.memory else 0.0
    return cpu + memory
