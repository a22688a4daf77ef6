"""The real `kubernetes_asyncio` client against the REST emulator, configured from the
kubeconfig that `write_kubeconfig` writes: typed APIs, /scale, custom objects under our
group and KEDA's, and watch streams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from kube.apiserver import RunningServer, serve, write_kubeconfig
from kube.memory import MemoryCluster

NAMESPACE = "shop"


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
        },
    }


def scaled_object(group: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "cpu"}]},
    }


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    running = await serve(MemoryCluster(now=time.time))
    yield running
    await running.close()


@pytest.fixture
async def api(server: RunningServer, tmp_path: Path) -> AsyncIterator[client.ApiClient]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    assert configuration.host == server.url
    async with client.ApiClient(configuration) as api_client:
        yield api_client


async def test_typed_apis_create_list_patch_and_scale(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    created = await apps.create_namespaced_deployment(NAMESPACE, deployment("web"))
    assert created.metadata.uid and created.spec.replicas == 2
    await core.create_namespaced_pod(
        NAMESPACE, {"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": {"containers": []}}
    )
    pods = await core.list_namespaced_pod(NAMESPACE, label_selector="app=web")
    assert [p.metadata.name for p in pods.items] == ["p"]
    everywhere = await apps.list_deployment_for_all_namespaces()
    assert [d.metadata.namespace for d in everywhere.items] == [NAMESPACE]

    # A dict body goes as a strategic merge patch: containers merge by name.
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}}
    patched = await apps.patch_namespaced_deployment("web", NAMESPACE, patch)
    assert [c.image for c in patched.spec.template.spec.containers] == ["app:2"]

    scale = await apps.read_namespaced_deployment_scale("web", NAMESPACE)
    assert (scale.spec.replicas, scale.status.selector) == (2, "app=web")
    scaled = await apps.patch_namespaced_deployment_scale(
        "web", NAMESPACE, {"spec": {"replicas": 5}}
    )
    assert scaled.spec.replicas == 5
    assert (await apps.read_namespaced_deployment("web", NAMESPACE)).spec.replicas == 5


async def test_errors_arrive_as_api_exceptions_with_status_bodies(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    with pytest.raises(ApiException) as missing:
        await apps.read_namespaced_deployment("nope", NAMESPACE)
    assert missing.value.status == 404
    await apps.create_namespaced_deployment(NAMESPACE, deployment("web"))
    with pytest.raises(ApiException) as exists:
        await apps.create_namespaced_deployment(NAMESPACE, deployment("web"))
    assert exists.value.status == 409 and '"reason":"AlreadyExists"' in exists.value.body


async def test_custom_objects_under_our_group_and_kedas(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    keda = await custom.create_namespaced_custom_object(
        "keda.sh", "v1alpha1", NAMESPACE, "scaledobjects", scaled_object("keda.sh", "a")
    )
    assert keda["apiVersion"] == "keda.sh/v1alpha1"
    await custom.create_namespaced_custom_object(
        "ebbflow.io", "v1alpha1", NAMESPACE, "scaledobjects", scaled_object("ebbflow.io", "b")
    )
    ours = await custom.list_namespaced_custom_object(
        "ebbflow.io", "v1alpha1", NAMESPACE, "scaledobjects"
    )
    assert [(o["apiVersion"], o["metadata"]["name"]) for o in ours["items"]] == [
        ("ebbflow.io/v1alpha1", "a"),
        ("ebbflow.io/v1alpha1", "b"),
    ]
    # The generated client sends a dict body as a JSON patch unless told otherwise.
    patched = await custom.patch_namespaced_custom_object(
        "keda.sh",
        "v1alpha1",
        NAMESPACE,
        "scaledobjects",
        "b",
        {"spec": {"maxReplicaCount": 7}},
        _content_type="application/merge-patch+json",
    )
    assert patched["apiVersion"] == "keda.sh/v1alpha1" and patched["spec"]["maxReplicaCount"] == 7
    got = await custom.get_namespaced_custom_object(
        "ebbflow.io", "v1alpha1", NAMESPACE, "scaledobjects", "b"
    )
    assert got["spec"]["maxReplicaCount"] == 7
    status = await custom.patch_namespaced_custom_object_status(
        "keda.sh",
        "v1alpha1",
        NAMESPACE,
        "scaledobjects",
        "b",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        _content_type="application/merge-patch+json",
    )
    assert status["status"]["conditions"][0]["type"] == "Ready"
    pool = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}}
    await custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
    pools = await custom.list_cluster_custom_object("ebbflow.io", "v1", "nodepools")
    assert [p["metadata"]["name"] for p in pools["items"]] == ["gpu"]


async def test_watch_stream_receives_events(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    await apps.create_namespaced_deployment(NAMESPACE, deployment("web"))
    seen: list[tuple[str, str, int]] = []

    async def change_when_listed() -> None:
        await apps.patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 3}})

    async with watch.Watch() as stream:
        changer: asyncio.Task[None] | None = None
        events = stream.stream(apps.list_namespaced_deployment, NAMESPACE, timeout_seconds=10)
        async for event in events:
            obj = event["object"]
            seen.append((event["type"], obj.metadata.name, obj.spec.replicas))
            if changer is None:  # the initial ADDED: now make a change to watch
                changer = asyncio.create_task(change_when_listed())
            else:
                break
    assert changer is not None
    await changer
    assert seen == [("ADDED", "web", 2), ("MODIFIED", "web", 3)]


async def test_watch_resumes_and_reports_410(api: client.ApiClient, server: RunningServer) -> None:
    core = client.CoreV1Api(api)
    first_map = await core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "a"}})
    await core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "b"}})
    after_a = first_map.metadata.resource_version
    async with watch.Watch() as stream:
        events = stream.stream(
            core.list_namespaced_config_map,
            NAMESPACE,
            resource_version=after_a,
            allow_watch_bookmarks=True,
            timeout_seconds=10,
        )
        first = await asyncio.wait_for(anext(events), 5)
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "b")

    server.faults.expire_next_watch()
    async with watch.Watch() as stream:
        events = stream.stream(
            core.list_namespaced_config_map,
            NAMESPACE,
            resource_version=after_a,
            timeout_seconds=10,
        )
        with pytest.raises(ApiException) as expired:
            await asyncio.wait_for(anext(events), 5)
    assert expired.value.status == 410


async def test_injected_throttling_reaches_the_client(
    api: client.ApiClient, server: RunningServer
) -> None:
    apps = client.AppsV1Api(api)
    await apps.create_namespaced_deployment(NAMESPACE, deployment("web"))
    server.faults.http_status("patch", 429, retry_after=2)
    with pytest.raises(ApiException) as throttled:
        await apps.patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 4}})
    assert throttled.value.status == 429 and throttled.value.headers["Retry-After"] == "2"
    await apps.patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 4}})
