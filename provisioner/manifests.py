"""Reading pods and nodes from their manifests: resources, taints, binding and readiness.

Plain functions over the JSON the informers cache, shared by the provisioner, the disruption
controller and the simulator so that all of them read a manifest the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kube.port import JSON
from provisioner.quantity import count, cpu_millicores, memory_bytes
from provisioner.scheduling.model import Resources, Taint, TaintEffect

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


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


def bound_node(pod: JSON) -> str | None:
    """The node a live pod is bound to (None: unbound, finished or gone)."""
    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return None
    node: str | None = pod.get("spec", {}).get("nodeName") or None
    return node


def node_is_ready(node: JSON) -> bool:
    conditions = node.get("status", {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
