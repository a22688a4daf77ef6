"""Least privilege, measured: the real operator (production wiring: KubeClient, LiveScalers)
runs against the API emulator, which records every (group, resource, verb) it is asked for;
that table must equal what the chart's ClusterRole and Role grant — no more, no less, and no
wildcard. The scenario drives every code path that talks to the API: ScaledObjects on a
Deployment and a StatefulSet, cpu metrics, TriggerAuthentication and
ClusterTriggerAuthentication (Secrets, ConfigMaps, *FromEnv), a ScaledJob that creates Jobs
and, after a spec change, deletes them with their Pods, Events, status and Leases."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from ebbflow.operator.run import Operator
from ebbflow.settings import OperatorSettings
from kube.apiserver.app import Access
from kube.apiserver.serve import serve, write_kubeconfig
from kube.client import KubeClient
from kube.memory import MemoryCluster
from kube.metrics import ClusterResourceMetrics
from kube.port import (
    CLUSTER_TRIGGER_AUTHENTICATIONS,
    CONFIG_MAPS,
    DEPLOYMENTS,
    HTTP_SCALED_OBJECTS,
    JOBS,
    PODS,
    SCALED_JOBS,
    SCALED_OBJECTS,
    SECRETS,
    STATEFULSETS,
    TRIGGER_AUTHENTICATIONS,
    Kind,
)
from scaler.clock import RealClock
from scaler.sources import LiveScalers
from scalers.pools import Pools

CHART = Path(__file__).resolve().parents[2] / "charts" / "ebbflow"
RELEASE_NAMESPACE = "ebbflow"
Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def granted(values: dict[str, Any] | None = None) -> tuple[set[Grant], set[Grant]]:
    """What the rendered ClusterRole grants everywhere, and the Role in its namespace."""
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values or {}, name="ebbflow", namespace=RELEASE_NAMESPACE)
    objects = [doc for doc in yaml.safe_load_all(manifests["ebbflow/templates/rbac.yaml"]) if doc]
    tables: dict[str, set[Grant]] = {"ClusterRole": set(), "Role": set()}
    for obj in objects:
        for rule in obj.get("rules", ()):
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{obj['kind']}: wildcard in {field}"
            tables[obj["kind"]] |= {
                (group, resource, verb)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
    return tables["ClusterRole"], tables["Role"]


def _deployment(kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {
            "replicas": 0,  # the operator scales both up: /scale patches
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": name,
                            "env": [
                                {
                                    "name": "TOKEN",
                                    "valueFrom": {"secretKeyRef": {"name": "creds", "key": "t"}},
                                }
                            ],
                        }
                    ]
                },
            },
        },
    }


def _prometheus(auth_kind: str, auth_name: str) -> dict[str, Any]:
    # nothing listens on port 9: the read fails after auth is resolved, as a real outage does
    return {
        "type": "prometheus",
        "name": "rps",
        "metadata": {"serverAddress": "http://127.0.0.1:9", "query": "up", "threshold": "1"},
        "authenticationRef": {"name": auth_name, "kind": auth_kind},
    }


SEED: list[tuple[Kind, dict[str, Any]]] = [
    (SECRETS, {"metadata": {"name": "creds", "namespace": "apps"}, "stringData": {"t": "s3"}}),
    (CONFIG_MAPS, {"metadata": {"name": "cfg", "namespace": "apps"}, "data": {"user": "ops"}}),
    (
        SECRETS,
        {"metadata": {"name": "shared", "namespace": RELEASE_NAMESPACE}, "stringData": {"t": "x"}},
    ),
    (DEPLOYMENTS, _deployment("Deployment", "web")),
    (STATEFULSETS, _deployment("StatefulSet", "db")),
    (
        TRIGGER_AUTHENTICATIONS,
        {
            "apiVersion": "ebbflow.io/v1alpha1",
            "kind": "TriggerAuthentication",
            "metadata": {"name": "ta", "namespace": "apps"},
            "spec": {
                "secretTargetRef": [{"parameter": "bearerToken", "name": "creds", "key": "t"}],
                "configMapTargetRef": [{"parameter": "username", "name": "cfg", "key": "user"}],
            },
        },
    ),
    (
        CLUSTER_TRIGGER_AUTHENTICATIONS,
        {
            "apiVersion": "ebbflow.io/v1alpha1",
            "kind": "ClusterTriggerAuthentication",
            "metadata": {"name": "cta"},
            "spec": {
                "secretTargetRef": [{"parameter": "bearerToken", "name": "shared", "key": "t"}]
            },
        },
    ),
    (
        SCALED_OBJECTS,
        {
            "apiVersion": "ebbflow.io/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {
                "scaleTargetRef": {"name": "web"},
                "pollingInterval": 1,
                "minReplicaCount": 1,
                "triggers": [
                    {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}},
                    _prometheus("TriggerAuthentication", "ta"),
                ],
            },
        },
    ),
    (
        SCALED_OBJECTS,
        {
            "apiVersion": "ebbflow.io/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "db", "namespace": "apps"},
            "spec": {
                "scaleTargetRef": {"kind": "StatefulSet", "name": "db"},
                "pollingInterval": 1,
                "triggers": [
                    {
                        "type": "cron",
                        "metadata": {
                            "timezone": "UTC",
                            "start": "0 0 * * *",
                            "end": "59 23 * * *",
                            "desiredReplicas": "2",
                        },
                    },
                    _prometheus("ClusterTriggerAuthentication", "cta"),
                    {
                        "type": "prometheus",
                        "name": "env",
                        "metadata": {
                            "serverAddress": "http://127.0.0.1:9",
                            "query": "up",
                            "threshold": "1",
                            "authModes": "bearer",
                            "bearerTokenFromEnv": "TOKEN",
                        },
                    },
                ],
            },
        },
    ),
    (
        SCALED_JOBS,
        {
            "apiVersion": "ebbflow.io/v1alpha1",
            "kind": "ScaledJob",
            "metadata": {"name": "batch", "namespace": "apps"},
            "spec": {
                "pollingInterval": 1,
                "maxReplicaCount": 2,
                "jobTargetRef": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "work", "image": "work"}],
                            "restartPolicy": "Never",
                        }
                    }
                },
                "triggers": [
                    {
                        "type": "cron",
                        "metadata": {
                            "timezone": "UTC",
                            "start": "0 0 * * *",
                            "end": "59 23 * * *",
                            "desiredReplicas": "2",
                        },
                    }
                ],
            },
        },
    ),
]


HTTP_SCALED_OBJECT = {
    "apiVersion": "ebbflow.io/v1alpha1",
    "kind": "HTTPScaledObject",
    "metadata": {"name": "web", "namespace": "apps"},
    "spec": {
        "hosts": ["web.example"],
        "scaleTargetRef": {"name": "web", "service": "web", "port": 80},
        "replicas": {"min": 0, "max": 5},
        "scalingMetric": {"concurrency": {"targetValue": 10}},
    },
}


@pytest.mark.parametrize("interceptor", [False, True], ids=["default", "interceptor"])
async def test_cluster_role_grants_exactly_what_the_operator_calls(
    tmp_path: Path, interceptor: bool
) -> None:
    cluster_role, role = granted({"interceptor": {"enabled": interceptor}})
    cluster = MemoryCluster(now=time.time)
    running = await serve(cluster, namespaces=("default", "apps", RELEASE_NAMESPACE))
    calls: set[tuple[Grant, str | None]] = set()

    def record(access: Access) -> None:
        calls.add(((access.group, access.resource, access.verb), access.namespace))

    for kind, obj in SEED:  # straight into storage: only the operator's requests are recorded
        await cluster.create(kind, obj)
    if interceptor:
        await cluster.create(HTTP_SCALED_OBJECTS, HTTP_SCALED_OBJECT)
    running.server.on_access = record
    kube = await KubeClient.from_kubeconfig(str(write_kubeconfig(tmp_path / "kc", running.url)))
    pools = Pools(open_seconds=0)
    settings = OperatorSettings(
        identity="op-0",
        lease_namespace=RELEASE_NAMESPACE,
        cluster_auth_namespace=RELEASE_NAMESPACE,
        lease_duration=3,
        renew_deadline=2,
        retry_period=0.2,
        read_timeout=0.5,
        metrics_port=0,
        # nothing listens on port 9: the /queue pull fails as an unreachable interceptor does
        interceptor_urls="http://127.0.0.1:9" if interceptor else "",
    )
    scalers = LiveScalers(
        kube,
        pools,
        settings.read_timeout,
        cluster_auth_namespace=RELEASE_NAMESPACE,
        now=time.time,
        resource_metrics=ClusterResourceMetrics(kube),
    )
    operator = Operator(kube, RealClock(), scalers, settings, job_scalers=scalers)
    stop = asyncio.Event()
    task = asyncio.create_task(operator.run(stop, serve_http=False))
    wanted = cluster_role | role
    try:
        async with asyncio.timeout(8):
            # a running Job's Pod, then a spec change: the rollout deletes both
            while not (await cluster.list(JOBS, "apps"))[0]:  # noqa: ASYNC110 - polls storage
                await asyncio.sleep(0.05)
            job = (await cluster.list(JOBS, "apps"))[0][0]["metadata"]["name"]
            await cluster.create(PODS, _job_pod(job))
            await cluster.patch(SCALED_JOBS, "batch", {"spec": {"maxReplicaCount": 3}}, "apps")
            while {grant for grant, _ in calls} < wanted:  # noqa: ASYNC110 - polls the record
                await asyncio.sleep(0.05)
    except TimeoutError:
        pass  # the assertions below say what was never called
    finally:
        stop.set()
        await task
        await pools.close()
        await kube.close()
        await running.close()
        cluster.close()
    table = {grant for grant, _ in calls}
    assert sorted(table - wanted) == [], "the operator calls what RBAC does not grant"
    unused = sorted(wanted - table)
    assert unused == [], f"RBAC grants what the operator never calls: {unused}"
    # the Role's grants are used only in its namespace
    assert {ns for grant, ns in calls if grant in role - cluster_role} == {RELEASE_NAMESPACE}


def _job_pod(job: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{job}-pod",
            "namespace": "apps",
            "labels": {"scaledjob.keda.sh/name": "batch", "job-name": job},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job,
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "work", "image": "work"}]},
        "status": {"phase": "Running"},
    }


@pytest.mark.parametrize("kind", ["ClusterRole", "Role"])
def test_no_rule_uses_a_wildcard(kind: str) -> None:
    cluster_role, role = granted()
    table = cluster_role if kind == "ClusterRole" else role
    assert table and all("*" not in part for grant in table for part in grant)
