"""The Cluster port's pod eviction and binding, one contract for every adapter.

Each test runs twice: against MemoryCluster directly, and against KubeClient
(kubernetes_asyncio) talking over real HTTP to the API emulator serving a MemoryCluster.
The answers must agree: that is what lets the disruption executor and the simulator's
scheduler run unchanged on either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kube.apiserver.serve import serve, write_kubeconfig
from kube.client import KubeClient
from kube.memory import MemoryCluster
from kube.port import (
    JSON,
    POD_DISRUPTION_BUDGETS,
    PODS,
    Cluster,
    Conflict,
    NotFound,
    TooManyRequests,
    WatchEvent,
)

NS = "shop"


async def never_sleep(seconds: float) -> None:
    raise AssertionError(f"the client retried after {seconds}s where it should have answered")


@pytest.fixture(params=["memory", "kube-client"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    memory = MemoryCluster(now=time.time)
    if request.param == "memory":
        yield memory
        memory.close()
        return
    running = await serve(memory, bookmark_interval=0.2)
    configured = await KubeClient.from_kubeconfig(
        str(write_kubeconfig(tmp_path / "kubeconfig", running.url))
    )
    # no transport retries in these tests: every answer (a 429 included) reaches the caller
    kube = KubeClient(configured.api, sleep=never_sleep)
    yield kube
    await kube.close()
    await running.close()
    memory.close()


async def running_pod(cluster: Cluster, name: str, **labels: str) -> None:
    pod: JSON = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "app:1"}]},
    }
    await cluster.create(PODS, pod)
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    await cluster.patch_status(PODS, name, ready, NS)


async def min_available(cluster: Cluster, count: int, app: str) -> None:
    budget: JSON = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": app, "namespace": NS},
        "spec": {"minAvailable": count, "selector": {"matchLabels": {"app": app}}},
    }
    await cluster.create(POD_DISRUPTION_BUDGETS, budget)


async def next_change(events: AsyncIterator[WatchEvent]) -> WatchEvent:
    """The next watch event that is not a BOOKMARK (a guard, not a wait: it comes at once)."""
    async with asyncio.timeout(5):
        while (event := await anext(events)).type == "BOOKMARK":
            pass
    return event


async def test_eviction_that_the_budget_allows_deletes_the_pod(cluster: Cluster) -> None:
    await min_available(cluster, 1, "db")
    await running_pod(cluster, "db-0", app="db")
    await running_pod(cluster, "db-1", app="db")
    await running_pod(cluster, "loner", app="web")  # no budget selects it

    await cluster.evict("db-0", NS)
    await cluster.evict("loner", NS, grace_period_seconds=0)

    remaining, _ = await cluster.list(PODS, NS)
    assert [p["metadata"]["name"] for p in remaining] == ["db-1"]


async def test_eviction_that_would_break_min_available_is_429_with_retry_after(
    cluster: Cluster,
) -> None:
    await min_available(cluster, 2, "db")
    await running_pod(cluster, "db-0", app="db")
    await running_pod(cluster, "db-1", app="db")

    with pytest.raises(TooManyRequests) as refused:
        await cluster.evict("db-0", NS, grace_period_seconds=30)

    assert refused.value.status == 429
    assert refused.value.retry_after == 1.0
    assert "disruption budget" in str(refused.value)
    assert (await cluster.get(PODS, "db-0", NS))["metadata"].get("deletionTimestamp") is None


async def test_eviction_of_a_missing_pod_is_not_found(cluster: Cluster) -> None:
    with pytest.raises(NotFound):
        await cluster.evict("gone", NS)


async def test_binding_sets_the_node_in_one_modified_event(cluster: Cluster) -> None:
    await running_pod(cluster, "web-0", app="web")
    _, version = await cluster.list(PODS, NS)
    events = cluster.watch(PODS, NS, resource_version=version)
    try:
        await cluster.bind("web-0", NS, "node-a")
        bound = await next_change(events)
        await running_pod(cluster, "web-1", app="web")
        after = await next_change(events)
    finally:
        await events.aclose()  # type: ignore[attr-defined]

    assert bound.type == "MODIFIED"
    assert bound.object["metadata"]["name"] == "web-0"
    assert bound.object["spec"]["nodeName"] == "node-a"
    conditions = {c["type"]: c["status"] for c in bound.object["status"]["conditions"]}
    assert conditions == {"Ready": "True", "PodScheduled": "True"}
    # kube-apiserver writes a binding once: the next change is the next pod, not a second write
    assert (after.type, after.object["metadata"]["name"]) == ("ADDED", "web-1")
    assert (await cluster.get(PODS, "web-0", NS))["spec"]["nodeName"] == "node-a"


async def test_binding_a_bound_pod_conflicts_and_changes_nothing(cluster: Cluster) -> None:
    await running_pod(cluster, "web-0", app="web")
    await cluster.bind("web-0", NS, "node-a")
    before = await cluster.get(PODS, "web-0", NS)

    with pytest.raises(Conflict, match="already assigned"):
        await cluster.bind("web-0", NS, "node-b")

    after = await cluster.get(PODS, "web-0", NS)
    assert after["spec"]["nodeName"] == "node-a"
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_binding_a_missing_pod_is_not_found(cluster: Cluster) -> None:
    with pytest.raises(NotFound):
        await cluster.bind("gone", NS, "node-a")
