"""The cpu/memory triggers' ResourceMetrics port over the Cluster port: metrics.k8s.io.

What the HPA reads for Resource metrics: each ready pod's usage from metrics-server's
PodMetrics, and its requests from the pod spec, summed over its containers (or the one
container a trigger names).
"""

from __future__ import annotations

from typing import Any

from kube.port import JSON, POD_METRICS, PODS, Cluster
from scalers.base import PodUsage
from scalers.cpu_memory import quantity


def _ready(pod: JSON) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = status.get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _sum(containers: list[dict[str, Any]], key: str, resource: str, only: str | None) -> float:
    total = 0.0
    for container in containers:
        if only is not None and container.get("name") != only:
            continue
        value = (
            ((container.get(key) or {}).get(resource))
            if key == "usage"
            else (((container.get("resources") or {}).get("requests") or {}).get(resource))
        )
        if value is not None:
            total += quantity(str(value))
    return total


class ClusterResourceMetrics:
    """PodMetrics and pod requests through any Cluster (a real one, or the emulator)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def pod_usage(
        self, namespace: str, selector: str, resource: str, container: str | None
    ) -> list[PodUsage]:
        pods, _ = await self.cluster.list(PODS, namespace, selector or None)
        metrics, _ = await self.cluster.list(POD_METRICS, namespace, selector or None)
        usage = {(m.get("metadata") or {}).get("name"): m.get("containers") or [] for m in metrics}
        out = []
        for pod in pods:
            name = (pod.get("metadata") or {}).get("name")
            if not _ready(pod) or name not in usage:
                continue  # the HPA leaves out pods that are not ready or not yet measured
            containers = (pod.get("spec") or {}).get("containers") or []
            request = _sum(containers, "requests", resource, container)
            out.append(PodUsage(_sum(usage[name], "usage", resource, container), request or None))
        return out
