"""Resource metrics as the HPA reads them: ready pods, usage from PodMetrics, requests."""

from __future__ import annotations

from typing import Any

import pytest

from kube.memory import MemoryCluster
from kube.metrics import ClusterResourceMetrics
from kube.port import DEPLOYMENTS, POD_METRICS, PODS
from scaler.api import ScaledObject
from scaler.sources import LiveScalers
from scaler.triggers import trigger_specs
from scalers.pools import Pools


def pod(name: str, ready: bool = True, cpu: str = "500m") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "web", "labels": {"app": "api"}},
        "spec": {
            "containers": [
                {"name": "main", "image": "api", "resources": {"requests": {"cpu": cpu}}},
                {"name": "sidecar", "image": "proxy", "resources": {"requests": {"cpu": "100m"}}},
            ]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def usage(name: str, main: str, sidecar: str = "10m") -> dict[str, Any]:
    return {
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": {"name": name, "namespace": "web", "labels": {"app": "api"}},
        "containers": [
            {"name": "main", "usage": {"cpu": main, "memory": "100Mi"}},
            {"name": "sidecar", "usage": {"cpu": sidecar, "memory": "20Mi"}},
        ],
    }


@pytest.fixture
async def cluster() -> MemoryCluster:
    c = MemoryCluster()
    for name, ready, main in (("a", True, "400m"), ("b", True, "200m"), ("c", False, "900m")):
        await c.create(PODS, pod(name, ready))
        await c.create(POD_METRICS, usage(name, main))
    await c.create(PODS, pod("d"))  # ready but not measured yet: left out, as the HPA does
    await c.create(
        DEPLOYMENTS,
        {
            "metadata": {"name": "api", "namespace": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {"metadata": {"labels": {"app": "api"}}},
            },
        },
    )
    return c


async def test_ready_measured_pods_only_summed_per_container(cluster: MemoryCluster) -> None:
    metrics = ClusterResourceMetrics(cluster)
    whole = await metrics.pod_usage("web", "app=api", "cpu", None)
    assert [(round(p.usage, 3), p.request) for p in whole] == [(0.41, 0.6), (0.21, 0.6)]
    main = await metrics.pod_usage("web", "app=api", "cpu", "main")
    assert [(round(p.usage, 3), p.request) for p in main] == [(0.4, 0.5), (0.2, 0.5)]


async def test_cpu_trigger_reads_utilization_through_the_cluster(cluster: MemoryCluster) -> None:
    so = ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "api", "namespace": "web"},
            "spec": {
                "scaleTargetRef": {"name": "api"},
                "minReplicaCount": 1,
                "triggers": [
                    {
                        "type": "cpu",
                        "metricType": "Utilization",
                        "metadata": {"value": "50", "containerName": "main"},
                    }
                ],
            },
        }
    )
    pools = Pools()
    live = LiveScalers(cluster, pools, resource_metrics=ClusterResourceMetrics(cluster))
    ((name, spec),) = trigger_specs(so)
    scaler = await live(so, 0, name, spec)
    assert await scaler.read() == pytest.approx(60.0)  # 0.6 cores of 1.0 requested
    await pools.close()
