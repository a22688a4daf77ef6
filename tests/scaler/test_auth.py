"""Trigger authentication resolved through the Cluster port, and secrets that never leak."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from kube.memory import MemoryCluster
from kube.port import (
    CLUSTER_TRIGGER_AUTHENTICATIONS,
    CONFIG_MAPS,
    DEPLOYMENTS,
    SECRETS,
    TRIGGER_AUTHENTICATIONS,
)
from scaler.api import ScaledObject
from scaler.auth import AuthError, LocalObjects, resolve_auth
from scaler.sources import LiveScalers, RedactingScaler
from scaler.triggers import trigger_specs
from scalers.base import BadMetric, MetricSpec, PodUsage, SourceUnreachable
from scalers.context import Secret
from scalers.pools import Pools

PASSWORD = "hunter2-very-secret"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def so(metadata: dict[str, str], auth: dict[str, str] | None = None) -> ScaledObject:
    trigger: dict[str, Any] = {"type": "redis", "metadata": metadata}
    if auth:
        trigger["authenticationRef"] = auth
    return ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "worker", "namespace": "jobs"},
            "spec": {"scaleTargetRef": {"name": "worker"}, "triggers": [trigger]},
        }
    )


@pytest.fixture
async def cluster() -> MemoryCluster:
    c = MemoryCluster()
    await c.create(
        SECRETS,
        {
            "metadata": {"name": "redis", "namespace": "jobs"},
            "data": {"password": b64(PASSWORD), "user": b64("app")},
        },
    )
    await c.create(
        CONFIG_MAPS,
        {
            "metadata": {"name": "settings", "namespace": "jobs"},
            "data": {"address": "redis.jobs:6379"},
        },
    )
    await c.create(
        DEPLOYMENTS,
        {
            "metadata": {"name": "worker", "namespace": "jobs"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "worker"}},
                "template": {
                    "metadata": {"labels": {"app": "worker"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "main",
                                "image": "worker",
                                "env": [
                                    {"name": "REDIS_HOST", "value": "redis.jobs:6379"},
                                    {
                                        "name": "REDIS_PASSWORD",
                                        "valueFrom": {
                                            "secretKeyRef": {"name": "redis", "key": "password"}
                                        },
                                    },
                                ],
                            }
                        ]
                    },
                },
            },
        },
    )
    return c


async def test_from_env_metadata_reads_the_target_container(cluster: MemoryCluster) -> None:
    target = so(
        {"addressFromEnv": "REDIS_HOST", "passwordFromEnv": "REDIS_PASSWORD", "listName": "jobs"}
    )
    params = await resolve_auth(target, 0, cluster)
    assert {k: v.reveal for k, v in params.items()} == {
        "address": "redis.jobs:6379",
        "password": PASSWORD,
    }


async def test_trigger_authentication_secret_configmap_and_env(cluster: MemoryCluster) -> None:
    await cluster.create(
        TRIGGER_AUTHENTICATIONS,
        {
            "metadata": {"name": "redis-auth", "namespace": "jobs"},
            "spec": {
                "secretTargetRef": [{"parameter": "password", "name": "redis", "key": "password"}],
                "configMapTargetRef": [
                    {"parameter": "address", "name": "settings", "key": "address"}
                ],
                "env": [{"parameter": "host", "name": "REDIS_HOST"}],
            },
        },
    )
    target = so({"listName": "jobs"}, {"name": "redis-auth"})
    params = await resolve_auth(target, 0, cluster)
    assert {k: v.reveal for k, v in params.items()} == {
        "password": PASSWORD,
        "address": "redis.jobs:6379",
        "host": "redis.jobs:6379",
    }


async def test_cluster_trigger_authentication_reads_the_operator_namespace(
    cluster: MemoryCluster,
) -> None:
    await cluster.create(
        SECRETS,
        {
            "metadata": {"name": "shared", "namespace": "ebbflow"},
            "stringData": {"token": "t0ken-value"},
        },
    )
    await cluster.create(
        CLUSTER_TRIGGER_AUTHENTICATIONS,
        {
            "metadata": {"name": "global"},
            "spec": {
                "secretTargetRef": [{"parameter": "password", "name": "shared", "key": "token"}]
            },
        },
    )
    target = so({"listName": "jobs"}, {"name": "global", "kind": "ClusterTriggerAuthentication"})
    assert (await resolve_auth(target, 0, cluster))["password"].reveal == "t0ken-value"


@pytest.mark.parametrize(
    ("auth_spec", "message"),
    [
        (
            {"secretTargetRef": [{"parameter": "password", "name": "nope", "key": "password"}]},
            "TriggerAuthentication a: secretTargetRef[0]: Secret jobs/nope not found",
        ),
        (
            {"secretTargetRef": [{"parameter": "password", "name": "redis", "key": "pass"}]},
            "TriggerAuthentication a: secretTargetRef[0]: Secret jobs/redis has no key 'pass'",
        ),
        (
            {"env": [{"parameter": "password", "name": "MISSING"}]},
            "TriggerAuthentication a: env[0]: no environment variable 'MISSING' "
            "in worker's container",
        ),
    ],
)
async def test_unresolvable_auth_names_the_entry_never_a_value(
    cluster: MemoryCluster, auth_spec: dict[str, Any], message: str
) -> None:
    await cluster.create(
        TRIGGER_AUTHENTICATIONS, {"metadata": {"name": "a", "namespace": "jobs"}, "spec": auth_spec}
    )
    with pytest.raises(AuthError) as caught:
        await resolve_auth(so({"listName": "jobs"}, {"name": "a"}), 0, cluster)
    assert str(caught.value) == message


async def test_missing_trigger_authentication() -> None:
    with pytest.raises(AuthError, match=r"authenticationRef: TriggerAuthentication gone not found"):
        await resolve_auth(so({"listName": "x"}, {"name": "gone"}), 0, LocalObjects([]))


def test_secret_never_prints() -> None:
    secret = Secret(PASSWORD)
    logged = "%s" % secret  # noqa: UP031 - logging formats with %
    shown = [str(secret), repr(secret), f"{secret}", f"{secret!r}", logged]
    assert all(PASSWORD not in text for text in shown)
    assert secret == PASSWORD and secret.reveal == PASSWORD


class Leaky:
    spec = MetricSpec("m", 1)

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def read(self) -> float:
        raise self.exc

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("error", [SourceUnreachable, BadMetric, RuntimeError])
async def test_redacting_scaler_masks_secrets_in_any_error(error: type[Exception]) -> None:
    leaky = Leaky(error(f"auth failed for app:{PASSWORD}@redis"))
    scaler = RedactingScaler(leaky, [Secret(PASSWORD)])
    with pytest.raises(Exception) as caught:
        await scaler.read()
    assert PASSWORD not in str(caught.value)
    assert "app:***@redis" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is not None
    if error is SourceUnreachable:
        assert isinstance(caught.value, SourceUnreachable), "retriable errors stay retriable"


class FixedMetrics:
    def __init__(self, pods: list[PodUsage]) -> None:
        self.pods = pods
        self.asked: list[tuple[str, str, str, str | None]] = []

    async def pod_usage(
        self, namespace: str, selector: str, resource: str, container: str | None
    ) -> list[PodUsage]:
        self.asked.append((namespace, selector, resource, container))
        return self.pods


async def test_cpu_reader_computes_utilization_like_the_hpa(cluster: MemoryCluster) -> None:
    target = ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "worker", "namespace": "jobs"},
            "spec": {
                "scaleTargetRef": {"name": "worker"},
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
    metrics = FixedMetrics([PodUsage(0.3, 0.5), PodUsage(0.6, 0.5)])
    pools = Pools()
    live = LiveScalers(cluster, pools, resource_metrics=metrics)
    ((name, spec),) = trigger_specs(target)
    scaler = await live(target, 0, name, spec)
    assert await scaler.read() == pytest.approx(90.0)  # 0.9 cores used of 1.0 requested
    assert metrics.asked == [("jobs", "app=worker", "cpu", "main")]
    metrics.pods = []
    with pytest.raises(BadMetric, match="no ready pods"):
        await scaler.read()
    await pools.close()


async def test_cron_reader_follows_the_clock_port(cluster: MemoryCluster) -> None:
    target = ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "worker", "namespace": "jobs"},
            "spec": {
                "scaleTargetRef": {"name": "worker"},
                "triggers": [
                    {
                        "type": "cron",
                        "metadata": {
                            "timezone": "Europe/Berlin",
                            "start": "0 8 * * *",
                            "end": "0 18 * * *",
                            "desiredReplicas": "7",
                        },
                    }
                ],
            },
        }
    )
    now = [datetime(2024, 6, 3, 7, 30, tzinfo=UTC).timestamp()]  # 09:30 in Berlin (CEST)
    pools = Pools()
    ((name, spec),) = trigger_specs(target)
    scaler = await LiveScalers(cluster, pools, now=lambda: now[0])(target, 0, name, spec)
    assert await scaler.read() == 7.0
    now[0] = datetime(2024, 6, 3, 17, 0, tzinfo=UTC).timestamp()  # 19:00 in Berlin
    assert await scaler.read() == 0.0
    await pools.close()
