"""The Kubernetes REST emulator over a real socket (aiohttp's TestServer): discovery, CRUD,
selectors, watch, patches, dryRun, subresources, eviction, binding, Status errors, faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from kube.apiserver import ApiServer
from kube.apiserver.strategic import strategic_merge
from kube.disruption_budgets import desired_healthy
from kube.memory import MemoryCluster
from kube.port import JSON, Conflict

JAN_1_2024 = 1704067200.0
DEPLOYMENTS = "/apis/apps/v1/namespaces/shop/deployments"
PODS = "/api/v1/namespaces/shop/pods"
SO_OURS = "/apis/ebbflow.io/v1alpha1/namespaces/shop/scaledobjects"
SO_KEDA = "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


def deployment(name: str = "web", replicas: int = 2, **labels: str) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        },
                        {"name": "sidecar", "image": "proxy:1"},
                    ]
                },
            },
        },
    }


def pod(
    name: str, *, node: str = "", phase: str = "Running", ready: bool = True, **labels: str
) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]} if node else {},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def scaled_object(api_version: str = "keda.sh/v1alpha1", name: str = "web-so") -> JSON:
    return {
        "apiVersion": api_version,
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "cpu"}]},
    }


@pytest.fixture
def cluster() -> MemoryCluster:
    return MemoryCluster(now=lambda: JAN_1_2024, history_limit=5)


@pytest.fixture
async def server(cluster: MemoryCluster) -> ApiServer:
    return ApiServer(cluster, now=lambda: JAN_1_2024 + 90, bookmark_interval=0.02)


@pytest.fixture
async def client(server: ApiServer) -> AsyncIterator[TestClient[Any, Any]]:
    test_client: TestClient[Any, Any] = TestClient(TestServer(server.app()))
    await test_client.start_server()
    yield test_client
    server.close_watches()
    await test_client.close()


async def ok(response: ClientResponse, status: int = 200) -> Any:
    body = await response.json()
    assert response.status == status, body
    return body


async def failure(response: ClientResponse, code: int, reason: str) -> JSON:
    """The Status of a failed request, checked for the shape kube-apiserver sends."""
    body: JSON = await response.json()
    assert response.status == code, body
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert (body["code"], body["reason"]) == (code, reason)
    assert body["message"]
    return body


async def create(client: TestClient[Any, Any], path: str, obj: JSON) -> JSON:
    body: JSON = await ok(await client.post(path, json=obj), 201)
    return body


async def next_line(response: ClientResponse) -> JSON:
    # A guard, not a wait: the server writes every expected event promptly.
    line = await asyncio.wait_for(response.content.readline(), timeout=5)
    assert line, "the watch stream ended"
    event: JSON = json.loads(line)
    return event


async def next_change(response: ClientResponse) -> JSON:
    """The next event that is not a BOOKMARK."""
    while (event := await next_line(response))["type"] == "BOOKMARK":
        pass
    return event


def summary(event: JSON) -> tuple[str, str, str]:
    metadata = event["object"]["metadata"]
    return event["type"], metadata["name"], metadata["resourceVersion"]


# --- discovery ----------------------------------------------------------------------------------


async def test_discovery_describes_every_group_kubectl_needs(client: TestClient[Any, Any]) -> None:
    version = await ok(await client.get("/version"))
    assert (version["major"], version["minor"]) == ("1", "32")
    assert (await ok(await client.get("/api")))["versions"] == ["v1"]
    groups = {g["name"]: g for g in (await ok(await client.get("/apis")))["groups"]}
    assert {"apps", "batch", "policy", "coordination.k8s.io"} <= groups.keys()
    assert {"ebbflow.io", "keda.sh", "karpenter.sh"} <= groups.keys()
    assert groups["keda.sh"]["preferredVersion"]["groupVersion"] == "keda.sh/v1alpha1"
    assert groups["karpenter.sh"]["preferredVersion"]["groupVersion"] == "karpenter.sh/v1"
    keda = await ok(await client.get("/apis/keda.sh"))
    assert keda["kind"] == "APIGroup"


async def test_resource_lists_carry_scope_verbs_short_names_and_subresources(
    client: TestClient[Any, Any],
) -> None:
    core = {r["name"]: r for r in (await ok(await client.get("/api/v1")))["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["namespaced"] is True
    assert core["nodes"]["namespaced"] is False
    assert "watch" in core["pods"]["verbs"] and "deletecollection" in core["pods"]["verbs"]
    assert (core["pods/eviction"]["group"], core["pods/eviction"]["kind"]) == ("policy", "Eviction")
    assert core["pods/binding"]["verbs"] == ["create"]
    assert "bindings" in core and "configmaps/status" not in core
    apps = {r["name"]: r for r in (await ok(await client.get("/apis/apps/v1")))["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"]
    scale = apps["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    ours = {
        r["name"]: r for r in (await ok(await client.get("/apis/ebbflow.io/v1alpha1")))["resources"]
    }
    assert ours["scaledobjects"]["shortNames"] == ["so"]
    assert "scaledobjects/scale" not in ours and "scaledobjects/status" in ours
    keda = {
        r["name"]: r for r in (await ok(await client.get("/apis/keda.sh/v1alpha1")))["resources"]
    }
    assert "shortNames" not in keda["scaledobjects"]  # one group claims `so`: no kubectl warning
    assert keda["clustertriggerauthentications"]["namespaced"] is False
    karpenter = await ok(await client.get("/apis/karpenter.sh/v1"))
    scopes = {r["name"]: r["namespaced"] for r in karpenter["resources"] if "/" not in r["name"]}
    assert scopes == {"nodepools": False, "nodeclaims": False}
    leases = await ok(await client.get("/apis/coordination.k8s.io/v1"))
    assert [r["name"] for r in leases["resources"]] == ["leases"]
    await failure(await client.get("/apis/nope.io/v1"), 404, "NotFound")


async def test_openapi_v3_names_the_patch_operations_and_field_validation(
    client: TestClient[Any, Any],
) -> None:
    index = await ok(await client.get("/openapi/v3"))
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    document = await ok(await client.get(url))
    item = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    gvk = {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert patch["x-kubernetes-group-version-kind"] == gvk
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][2].items()
    assert "application/apply-patch+yaml" in patch["requestBody"]["content"]
    assert "api/v1" in index["paths"] and "apis/keda.sh/v1alpha1" in index["paths"]
    assert (await client.get("/openapi/v2")).status == 404


# --- CRUD and errors ----------------------------------------------------------------------------


async def test_crud_round_trip(client: TestClient[Any, Any]) -> None:
    created = await create(client, DEPLOYMENTS, deployment())
    assert created["metadata"]["namespace"] == "shop"
    assert created["metadata"]["resourceVersion"] == "1"
    got = await ok(await client.get(f"{DEPLOYMENTS}/web"))
    assert got == created
    listed = await ok(await client.get(DEPLOYMENTS))
    assert listed["kind"] == "DeploymentList" and listed["apiVersion"] == "apps/v1"
    assert listed["metadata"]["resourceVersion"] == "1"
    assert [d["metadata"]["name"] for d in listed["items"]] == ["web"]
    changed = {**got, "spec": {**got["spec"], "replicas": 5}}
    updated = await ok(await client.put(f"{DEPLOYMENTS}/web", json=changed))
    assert updated["spec"]["replicas"] == 5 and updated["metadata"]["generation"] == 2
    gone = await ok(await client.delete(f"{DEPLOYMENTS}/web"))
    assert gone["metadata"]["name"] == "web"
    missing = await failure(await client.get(f"{DEPLOYMENTS}/web"), 404, "NotFound")
    assert missing["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    assert 'deployments.apps "web" not found' in missing["message"]


async def test_a_stale_update_is_a_409_conflict(client: TestClient[Any, Any]) -> None:
    created = await create(client, DEPLOYMENTS, deployment())
    await ok(
        await client.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": 3}}, headers=MERGE)
    )
    stale = await client.put(f"{DEPLOYMENTS}/web", json=created)
    body = await failure(stale, 409, "Conflict")
    assert "the object has been modified" in body["message"]


async def test_create_errors_name_what_is_wrong(client: TestClient[Any, Any]) -> None:
    await create(client, DEPLOYMENTS, deployment())
    exists = await failure(await client.post(DEPLOYMENTS, json=deployment()), 409, "AlreadyExists")
    assert exists["details"]["kind"] == "deployments"
    bad_label = deployment("api", **{"bad key!": "x"})
    invalid = await failure(await client.post(DEPLOYMENTS, json=bad_label), 422, "Invalid")
    assert invalid["message"].startswith('Deployment.apps "api" is invalid: ')
    wrong_ns = {**deployment("x"), "metadata": {"name": "x", "namespace": "other"}}
    await failure(await client.post(DEPLOYMENTS, json=wrong_ns), 400, "BadRequest")
    wrong_kind = {**deployment("y"), "kind": "StatefulSet"}
    await failure(await client.post(DEPLOYMENTS, json=wrong_kind), 400, "BadRequest")
    renamed = deployment("other")
    await failure(await client.put(f"{DEPLOYMENTS}/web", json=renamed), 400, "BadRequest")
    await failure(await client.post(DEPLOYMENTS, data=b"{not json"), 400, "BadRequest")
    await failure(await client.get("/apis/apps/v1/namespaces/shop/nothings"), 404, "NotFound")
    await failure(await client.post(f"{DEPLOYMENTS}/web", json={}), 405, "MethodNotAllowed")


async def test_cluster_scoped_and_cross_namespace_paths(client: TestClient[Any, Any]) -> None:
    await create(client, "/api/v1/nodes", {"metadata": {"name": "n1"}})
    assert (await ok(await client.get("/api/v1/nodes/n1")))["metadata"].get("namespace") is None
    await failure(await client.get("/api/v1/namespaces/shop/nodes/n1"), 404, "NotFound")
    await create(client, DEPLOYMENTS, deployment("a"))
    await create(client, "/apis/apps/v1/namespaces/prod/deployments", deployment("b"))
    everywhere = await ok(await client.get("/apis/apps/v1/deployments"))
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in everywhere["items"]] == [
        ("prod", "b"),
        ("shop", "a"),
    ]
    await failure(
        await client.post("/apis/apps/v1/deployments", json=deployment("c")),
        405,
        "MethodNotAllowed",
    )
    pool = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}}
    stored = await create(client, "/apis/karpenter.sh/v1/nodepools", pool)
    assert stored["apiVersion"] == "karpenter.sh/v1"
    ours = await ok(await client.get("/apis/ebbflow.io/v1/nodepools/gpu"))
    assert ours["apiVersion"] == "ebbflow.io/v1"


async def test_alias_groups_share_storage_and_answer_in_their_own_version(
    client: TestClient[Any, Any],
) -> None:
    created = await create(client, SO_KEDA, scaled_object())
    assert created["apiVersion"] == "keda.sh/v1alpha1"
    assert (await ok(await client.get(f"{SO_OURS}/web-so")))["apiVersion"] == "ebbflow.io/v1alpha1"
    listed = await ok(await client.get(SO_KEDA))
    assert listed["apiVersion"] == "keda.sh/v1alpha1"
    assert [o["apiVersion"] for o in listed["items"]] == ["keda.sh/v1alpha1"]
    patched = await ok(
        await client.patch(
            f"{SO_KEDA}/web-so", json={"spec": {"maxReplicaCount": 9}}, headers=MERGE
        )
    )
    assert patched["apiVersion"] == "keda.sh/v1alpha1" and patched["spec"]["maxReplicaCount"] == 9
    ours_in_keda = scaled_object("ebbflow.io/v1alpha1", "other")
    await failure(await client.post(SO_KEDA, json=ours_in_keda), 400, "BadRequest")


# --- selectors and paging -----------------------------------------------------------------------


async def test_label_and_field_selectors(client: TestClient[Any, Any]) -> None:
    await create(client, PODS, pod("a", node="n1", app="web"))
    await create(client, PODS, pod("b", node="n2", app="web"))
    await create(client, PODS, pod("c", phase="Pending", app="db"))

    async def names(**query: str) -> list[str]:
        listed = await ok(await client.get(PODS, params=query))
        return [p["metadata"]["name"] for p in listed["items"]]

    assert await names(labelSelector="app=web") == ["a", "b"]
    assert await names(labelSelector="app in (db)") == ["c"]
    assert await names(fieldSelector="spec.nodeName=n1") == ["a"]
    assert await names(fieldSelector="spec.nodeName=") == ["c"]  # unscheduled pods
    assert await names(fieldSelector="status.phase!=Running") == ["c"]
    assert await names(fieldSelector="metadata.name=b,metadata.namespace=shop") == ["b"]
    assert await names(labelSelector="app=web", fieldSelector="spec.nodeName!=n1") == ["b"]
    unsupported = await client.get(PODS, params={"fieldSelector": "spec.image=x"})
    assert "field label not supported" in (await failure(unsupported, 400, "BadRequest"))["message"]
    await failure(await client.get(PODS, params={"labelSelector": "app in web"}), 400, "BadRequest")
    deployments = await client.get(DEPLOYMENTS, params={"fieldSelector": "spec.nodeName=n1"})
    await failure(deployments, 400, "BadRequest")


async def test_limit_and_continue_page_through_a_list(client: TestClient[Any, Any]) -> None:
    for name in ("a", "b", "c"):
        await create(client, PODS, pod(name))
    first = await ok(await client.get(PODS, params={"limit": "2"}))
    assert [p["metadata"]["name"] for p in first["items"]] == ["a", "b"]
    token = first["metadata"]["continue"]
    rest = await ok(await client.get(PODS, params={"limit": "2", "continue": token}))
    assert [p["metadata"]["name"] for p in rest["items"]] == ["c"]
    assert "continue" not in rest["metadata"]


async def test_deletecollection_deletes_what_the_selector_selects(
    client: TestClient[Any, Any],
) -> None:
    await create(client, PODS, pod("a", app="web"))
    await create(client, PODS, pod("b", app="db"))
    deleted = await ok(await client.delete(PODS, params={"labelSelector": "app=web"}))
    assert [p["metadata"]["name"] for p in deleted["items"]] == ["a"]
    left = await ok(await client.get(PODS))
    assert [p["metadata"]["name"] for p in left["items"]] == ["b"]


async def test_tables_for_kubectl_get(client: TestClient[Any, Any]) -> None:
    await create(client, DEPLOYMENTS, deployment())
    listed = await ok(await client.get(DEPLOYMENTS, headers=TABLE))
    assert listed["kind"] == "Table" and listed["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in listed["columnDefinitions"]]
    assert names == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    (row,) = listed["rows"]
    assert row["cells"] == ["web", "0/2", 0, 0, "90s"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    one = await ok(await client.get(f"{DEPLOYMENTS}/web", headers=TABLE))
    assert one["rows"][0]["cells"][0] == "web"
    await create(client, SO_KEDA, scaled_object())
    so_table = await ok(await client.get(SO_KEDA, headers=TABLE))
    assert [c["name"] for c in so_table["columnDefinitions"]][:3] == [
        "Name",
        "ScaleTargetKind",
        "ScaleTargetName",
    ]
    assert so_table["rows"][0]["cells"][:6] == ["web-so", "", "web", "", "", "Unknown"]


# --- watch --------------------------------------------------------------------------------------


async def test_watch_streams_changes_after_the_list_version(client: TestClient[Any, Any]) -> None:
    await create(client, DEPLOYMENTS, deployment("old"))
    version = (await ok(await client.get(DEPLOYMENTS)))["metadata"]["resourceVersion"]
    stream = await client.get(DEPLOYMENTS, params={"watch": "1", "resourceVersion": version})
    assert stream.status == 200 and stream.content_type == "application/json"
    await create(client, DEPLOYMENTS, deployment("web"))
    await client.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": 4}}, headers=MERGE)
    await client.delete(f"{DEPLOYMENTS}/web")
    assert [summary(await next_line(stream)) for _ in range(3)] == [
        ("ADDED", "web", "2"),
        ("MODIFIED", "web", "3"),
        ("DELETED", "web", "4"),
    ]
    stream.close()


async def test_watch_resumes_from_a_resource_version(client: TestClient[Any, Any]) -> None:
    for name in ("a", "b", "c"):
        await create(client, PODS, pod(name))
    stream = await client.get(PODS, params={"watch": "true", "resourceVersion": "1"})
    assert [summary(await next_line(stream)) for _ in range(2)] == [
        ("ADDED", "b", "2"),
        ("ADDED", "c", "3"),
    ]
    stream.close()


async def test_a_watch_without_a_version_starts_with_the_current_objects(
    client: TestClient[Any, Any],
) -> None:
    await create(client, PODS, pod("a"))
    stream = await client.get(PODS, params={"watch": "1"})
    assert summary(await next_line(stream)) == ("ADDED", "a", "1")
    await create(client, PODS, pod("b"))
    assert summary(await next_line(stream)) == ("ADDED", "b", "2")
    stream.close()


async def test_a_too_old_version_is_a_410_error_event(client: TestClient[Any, Any]) -> None:
    for index in range(8):  # the fixture keeps 5 changes of history
        await create(client, PODS, pod(f"p{index}"))
    stream = await client.get(PODS, params={"watch": "1", "resourceVersion": "1"})
    event = await next_line(stream)
    assert event["type"] == "ERROR"
    status = event["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert "too old resource version" in status["message"]
    assert await stream.content.readline() == b""  # the server ends the stream


async def test_bookmarks_carry_the_newest_version(client: TestClient[Any, Any]) -> None:
    await create(client, PODS, pod("a", app="web"))
    await create(client, PODS, pod("b", app="db"))
    params = {"watch": "1", "resourceVersion": "2", "allowWatchBookmarks": "true"}
    stream = await client.get(PODS, params={**params, "labelSelector": "app=web"})
    await create(client, PODS, pod("c", app="db"))  # filtered out, but moves the version on
    while (event := await next_line(stream))["object"]["metadata"]["resourceVersion"] != "3":
        assert event["type"] == "BOOKMARK"
    assert event["type"] == "BOOKMARK"
    assert event["object"] == {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "3"},
    }
    stream.close()


async def test_send_initial_events_ends_with_an_annotated_bookmark(
    client: TestClient[Any, Any],
) -> None:
    await create(client, PODS, pod("a"))
    query = {"watch": "1", "sendInitialEvents": "true", "allowWatchBookmarks": "true"}
    stream = await client.get(PODS, params=query)
    assert summary(await next_line(stream)) == ("ADDED", "a", "1")
    bookmark = await next_line(stream)
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    stream.close()


async def test_timeout_seconds_ends_the_stream(client: TestClient[Any, Any]) -> None:
    stream = await client.get(PODS, params={"watch": "1", "timeoutSeconds": "1"})
    assert await asyncio.wait_for(stream.content.read(), 5) == b""


async def test_a_field_selecting_watch_sees_objects_enter_and_leave(
    client: TestClient[Any, Any],
) -> None:
    await create(client, PODS, pod("a"))
    stream = await client.get(PODS, params={"watch": "1", "fieldSelector": "spec.nodeName=n1"})
    binding = {"target": {"kind": "Node", "name": "n1"}}
    await ok(await client.post(f"{PODS}/a/binding", json=binding), 201)
    # one write sets spec.nodeName and PodScheduled, as kube-apiserver's binding does
    entered = await next_line(stream)
    assert summary(entered)[:2] == ("ADDED", "a")
    assert entered["object"]["status"]["conditions"][-1] == {
        "type": "PodScheduled",
        "status": "True",
    }
    await client.patch(f"{PODS}/a", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
    assert summary(await next_line(stream))[:2] == ("MODIFIED", "a")
    await client.patch(f"{PODS}/a", json={"spec": {"nodeName": "n2"}}, headers=MERGE)
    assert summary(await next_line(stream))[:2] == ("DELETED", "a")
    stream.close()


async def test_watch_tables_send_column_definitions_once(client: TestClient[Any, Any]) -> None:
    stream = await client.get(DEPLOYMENTS, params={"watch": "1"}, headers=TABLE)
    await create(client, DEPLOYMENTS, deployment())
    await client.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": 3}}, headers=MERGE)
    first, second = await next_line(stream), await next_line(stream)
    assert first["object"]["kind"] == "Table" and first["object"]["columnDefinitions"]
    assert second["object"]["columnDefinitions"] == []
    assert second["object"]["rows"][0]["cells"][1] == "0/3"
    stream.close()


async def test_fault_switches_for_watches(client: TestClient[Any, Any], server: ApiServer) -> None:
    server.faults.expire_next_watch()
    expired = await client.get(PODS, params={"watch": "1", "resourceVersion": "0"})
    assert (await next_line(expired))["object"]["code"] == 410
    stream = await client.get(PODS, params={"watch": "1"})
    await create(client, PODS, pod("a"))
    assert summary(await next_line(stream))[:2] == ("ADDED", "a")
    server.faults.drop_watches()
    assert await asyncio.wait_for(stream.content.read(), 5) == b""
    server.close_watches()
    await failure(await client.get(PODS, params={"watch": "1"}), 503, "ServiceUnavailable")


async def test_a_closed_watch_unregisters(
    client: TestClient[Any, Any], server: ApiServer, cluster: MemoryCluster
) -> None:
    stream = await client.get(PODS, params={"watch": "1"})
    await create(client, PODS, pod("a"))
    await next_line(stream)
    assert cluster.active_watches == 1
    server.faults.drop_watches()
    await stream.content.read()
    for _ in range(100):  # the handler's cleanup runs right after the stream ends
        if cluster.active_watches == 0:
            break
        await asyncio.sleep(0.01)
    assert cluster.active_watches == 0


# --- patches and dryRun -------------------------------------------------------------------------


async def test_merge_and_json_patches(client: TestClient[Any, Any]) -> None:
    await create(client, DEPLOYMENTS, deployment())
    merged = await ok(
        await client.patch(
            f"{DEPLOYMENTS}/web", json={"metadata": {"labels": {"tier": "front"}}}, headers=MERGE
        )
    )
    assert merged["metadata"]["labels"] == {"app": "web", "tier": "front"}
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 7}]
    patched = await ok(await client.patch(f"{DEPLOYMENTS}/web", json=ops, headers=JSON_PATCH))
    assert patched["spec"]["replicas"] == 7
    failing = [{"op": "test", "path": "/spec/replicas", "value": 1}]
    await failure(
        await client.patch(f"{DEPLOYMENTS}/web", json=failing, headers=JSON_PATCH), 422, "Invalid"
    )
    await failure(
        await client.patch(f"{DEPLOYMENTS}/web", json={"a": 1}, headers=JSON_PATCH),
        400,
        "BadRequest",
    )
    text = {"Content-Type": "text/plain"}
    await failure(
        await client.patch(f"{DEPLOYMENTS}/web", data="x", headers=text),
        415,
        "UnsupportedMediaType",
    )
    await failure(
        await client.patch(f"{DEPLOYMENTS}/nope", json={}, headers=MERGE), 404, "NotFound"
    )


async def test_strategic_merge_patch_merges_containers_and_env_by_name(
    client: TestClient[Any, Any],
) -> None:
    await create(client, DEPLOYMENTS, deployment())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [
                        {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}]},
                        {"name": "sidecar", "$patch": "delete"},
                    ],
                }
            }
        }
    }
    result = await ok(await client.patch(f"{DEPLOYMENTS}/web", json=patch, headers=STRATEGIC))
    (container,) = result["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "app:2"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    so = await create(client, SO_OURS, scaled_object("ebbflow.io/v1alpha1"))
    name = so["metadata"]["name"]
    refused = await client.patch(f"{SO_OURS}/{name}", json={"spec": {}}, headers=STRATEGIC)
    await failure(refused, 415, "UnsupportedMediaType")


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}}),
        ({"a": {"b": 1}}, {"a": {"$patch": "replace", "x": 1}}, {"a": {"x": 1}}),
        ({"a": {"b": 1}, "k": 1}, {"a": {"$patch": "delete"}}, {"k": 1}),
        ({"args": ["a", "b"]}, {"args": ["c"]}, {"args": ["c"]}),
        ({"finalizers": ["a"]}, {"finalizers": ["b", "a"]}, {"finalizers": ["a", "b"]}),
        (
            {"finalizers": ["a", "b"]},
            {"$deleteFromPrimitiveList/finalizers": ["a"]},
            {"finalizers": ["b"]},
        ),
        (
            {"ports": [{"containerPort": 80, "name": "http"}]},
            {"ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]},
            {
                "ports": [
                    {"containerPort": 80, "name": "http", "protocol": "TCP"},
                    {"containerPort": 443},
                ]
            },
        ),
        (
            {"env": [{"name": "A"}, {"name": "B"}]},
            {"env": [{"name": "C"}, {"$patch": "replace"}]},
            {"env": [{"name": "C"}]},
        ),
        (
            {"env": [{"name": "A"}, {"name": "B"}]},
            {
                "$setElementOrder/env": [{"name": "B"}, {"name": "A"}],
                "env": [{"name": "A", "value": "1"}],
            },
            {"env": [{"name": "B"}, {"name": "A", "value": "1"}]},
        ),
        (
            {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
            {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}},
            {"strategy": {"type": "Recreate"}},
        ),
    ],
)
def test_strategic_merge_subset(target: JSON, patch: JSON, expected: JSON) -> None:
    assert strategic_merge(target, patch) == expected


async def test_server_side_apply_creates_then_merges(client: TestClient[Any, Any]) -> None:
    applied = json.dumps(deployment())
    path = f"{DEPLOYMENTS}/web"
    missing_manager = await client.patch(path, data=applied, headers=APPLY)
    await failure(missing_manager, 422, "Invalid")
    first = await client.patch(path, data=applied, headers=APPLY, params={"fieldManager": "t"})
    assert (await ok(first, 201))["spec"]["replicas"] == 2
    yaml_body = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 6}\n"
    )
    second = await client.patch(path, data=yaml_body, headers=APPLY, params={"fieldManager": "t"})
    body = await ok(second)
    assert body["spec"]["replicas"] == 6
    assert len(body["spec"]["template"]["spec"]["containers"]) == 2  # not owned, not removed


async def test_dry_run_validates_but_stores_nothing(
    client: TestClient[Any, Any], cluster: MemoryCluster
) -> None:
    dry = {"dryRun": "All"}
    would = await ok(await client.post(DEPLOYMENTS, json=deployment(), params=dry), 201)
    assert would["metadata"]["name"] == "web"
    await failure(await client.get(f"{DEPLOYMENTS}/web"), 404, "NotFound")
    assert cluster.resource_version == "0"
    await create(client, DEPLOYMENTS, deployment())
    patch = {"spec": {"replicas": 9}}
    answer = await ok(
        await client.patch(f"{DEPLOYMENTS}/web", json=patch, headers=MERGE, params=dry)
    )
    assert answer["spec"]["replicas"] == 9
    assert (await ok(await client.get(f"{DEPLOYMENTS}/web")))["spec"]["replicas"] == 2
    await ok(await client.delete(f"{DEPLOYMENTS}/web", params=dry))
    await ok(await client.delete(f"{DEPLOYMENTS}/web", json={"dryRun": ["All"]}))
    await ok(await client.get(f"{DEPLOYMENTS}/web"))
    invalid = await client.post(DEPLOYMENTS, json=deployment("x", **{"b@d": "1"}), params=dry)
    await failure(invalid, 422, "Invalid")
    await failure(
        await client.post(DEPLOYMENTS, json=deployment("y"), params={"dryRun": "Some"}),
        400,
        "BadRequest",
    )
    assert cluster.resource_version == "1"


async def test_delete_preconditions(client: TestClient[Any, Any]) -> None:
    await create(client, DEPLOYMENTS, deployment())
    stale = {"preconditions": {"resourceVersion": "99"}}
    await failure(await client.delete(f"{DEPLOYMENTS}/web", json=stale), 409, "Conflict")


async def test_finalizers_hold_a_deleted_object(client: TestClient[Any, Any]) -> None:
    held = deployment()
    held["metadata"]["finalizers"] = ["ebbflow.io/cleanup"]
    await create(client, DEPLOYMENTS, held)
    answer = await ok(await client.delete(f"{DEPLOYMENTS}/web"), 202)
    assert answer["metadata"]["deletionTimestamp"] == "2024-01-01T00:00:00Z"
    release = {"metadata": {"finalizers": None}}
    await ok(await client.patch(f"{DEPLOYMENTS}/web", json=release, headers=MERGE))
    await failure(await client.get(f"{DEPLOYMENTS}/web"), 404, "NotFound")


# --- /scale and /status -------------------------------------------------------------------------


async def test_scale_subresource(client: TestClient[Any, Any]) -> None:
    await create(client, DEPLOYMENTS, deployment())
    scale = await ok(await client.get(f"{DEPLOYMENTS}/web/scale"))
    assert scale == {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"},
        "spec": {"replicas": 2},
        "status": {"replicas": 0, "selector": "app=web"},
    }
    put = await ok(
        await client.put(f"{DEPLOYMENTS}/web/scale", json={**scale, "spec": {"replicas": 4}})
    )
    assert put["spec"]["replicas"] == 4 and put["metadata"]["resourceVersion"] == "2"
    stale = await client.put(f"{DEPLOYMENTS}/web/scale", json={**scale, "spec": {"replicas": 5}})
    await failure(stale, 409, "Conflict")
    patch = {"spec": {"replicas": 6}}
    merged = await ok(await client.patch(f"{DEPLOYMENTS}/web/scale", json=patch, headers=MERGE))
    assert merged["spec"]["replicas"] == 6
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 1}]
    assert (await ok(await client.patch(f"{DEPLOYMENTS}/web/scale", json=ops, headers=JSON_PATCH)))[
        "spec"
    ]["replicas"] == 1
    negative = {"spec": {"replicas": -1}}
    await failure(
        await client.patch(f"{DEPLOYMENTS}/web/scale", json=negative, headers=MERGE), 422, "Invalid"
    )
    assert (await ok(await client.get(f"{DEPLOYMENTS}/web")))["spec"]["replicas"] == 1
    await create(client, SO_OURS, scaled_object("ebbflow.io/v1alpha1"))
    await failure(await client.get(f"{SO_OURS}/web-so/scale"), 404, "NotFound")
    await failure(await client.get(f"{DEPLOYMENTS}/nope/scale"), 404, "NotFound")


async def test_status_subresource_writes_only_status(client: TestClient[Any, Any]) -> None:
    created = await create(client, DEPLOYMENTS, deployment())
    body = {**created, "spec": {**created["spec"], "replicas": 8}, "status": {"replicas": 2}}
    put = await ok(await client.put(f"{DEPLOYMENTS}/web/status", json=body))
    assert put["status"] == {"replicas": 2} and put["spec"]["replicas"] == 2
    patch = {"status": {"readyReplicas": 1}}
    merged = await ok(await client.patch(f"{DEPLOYMENTS}/web/status", json=patch, headers=MERGE))
    assert merged["status"] == {"replicas": 2, "readyReplicas": 1}
    # ...and the main resource keeps the status.
    main = await ok(
        await client.patch(f"{DEPLOYMENTS}/web", json={"status": {"replicas": 0}}, headers=MERGE)
    )
    assert main["status"] == {"replicas": 2, "readyReplicas": 1}
    stale = {**created, "status": {"replicas": 9}}
    await failure(await client.put(f"{DEPLOYMENTS}/web/status", json=stale), 409, "Conflict")
    assert (await ok(await client.get(f"{DEPLOYMENTS}/web/status")))["status"]["replicas"] == 2
    await create(client, "/api/v1/namespaces/shop/configmaps", {"metadata": {"name": "c"}})
    await failure(await client.get("/api/v1/namespaces/shop/configmaps/c/status"), 404, "NotFound")


# --- eviction and binding -----------------------------------------------------------------------


def eviction(name: str) -> JSON:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}


def budget(**spec: Any) -> JSON:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "db"},
        "spec": {"selector": {"matchLabels": {"app": "db"}}, **spec},
    }


async def test_eviction_honours_the_disruption_budget(client: TestClient[Any, Any]) -> None:
    await create(
        client, "/apis/policy/v1/namespaces/shop/poddisruptionbudgets", budget(minAvailable=1)
    )
    for name in ("a", "b"):
        await create(client, PODS, pod(name, app="db"))
    allowed = await ok(await client.post(f"{PODS}/a/eviction", json=eviction("a")), 201)
    assert (allowed["kind"], allowed["status"]) == ("Status", "Success")
    await failure(await client.get(f"{PODS}/a"), 404, "NotFound")
    blocked = await client.post(f"{PODS}/b/eviction", json=eviction("b"))
    assert blocked.headers["Retry-After"] == "1"
    status = await failure(blocked, 429, "TooManyRequests")
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    (cause,) = status["details"]["causes"]
    assert cause["reason"] == "DisruptionBudget"
    assert cause["message"] == "The disruption budget db needs 1 healthy pods and has 1 currently"
    await ok(await client.get(f"{PODS}/b"))


async def test_eviction_of_unhealthy_or_unbudgeted_pods(client: TestClient[Any, Any]) -> None:
    pdbs = "/apis/policy/v1/namespaces/shop/poddisruptionbudgets"
    await create(client, pdbs, budget(maxUnavailable=1))
    await create(client, PODS, pod("a", app="db"))
    await create(client, PODS, pod("b", app="db"))
    await create(client, PODS, pod("sick", ready=False, app="db"))
    await create(client, PODS, pod("free", app="web"))
    # 3 selected, 1 may be unavailable: 2 must stay healthy and 2 are. A healthy pod may not
    # go; the unhealthy one may (the budget is met); a pod no budget selects may.
    await failure(
        await client.post(f"{PODS}/a/eviction", json=eviction("a")), 429, "TooManyRequests"
    )
    await ok(await client.post(f"{PODS}/sick/eviction", json=eviction("sick")), 201)
    await ok(await client.post(f"{PODS}/free/eviction", json=eviction("free")), 201)
    dry = await client.post(f"{PODS}/b/eviction", json=eviction("b"), params={"dryRun": "All"})
    await ok(dry, 201)
    await ok(await client.get(f"{PODS}/b"))  # a dry-run eviction deletes nothing
    await failure(
        await client.post(f"{PODS}/nope/eviction", json=eviction("nope")), 404, "NotFound"
    )


@pytest.mark.parametrize(
    ("spec", "expected", "healthy"),
    [
        ({"minAvailable": 2}, 5, 2),
        ({"minAvailable": "50%"}, 5, 3),
        ({"maxUnavailable": 1}, 5, 4),
        ({"maxUnavailable": "30%"}, 5, 3),
        ({}, 5, 0),
    ],
)
def test_desired_healthy(spec: JSON, expected: int, healthy: int) -> None:
    assert desired_healthy(spec, expected) == healthy


async def test_binding_assigns_a_node_once(client: TestClient[Any, Any]) -> None:
    await create(client, PODS, {"metadata": {"name": "a"}, "spec": {}})
    await create(client, PODS, {"metadata": {"name": "b"}, "spec": {}})
    target = {"apiVersion": "v1", "kind": "Binding", "target": {"kind": "Node", "name": "n1"}}
    await ok(await client.post(f"{PODS}/a/binding", json=target), 201)
    bound = await ok(await client.get(f"{PODS}/a"))
    assert bound["spec"]["nodeName"] == "n1"
    assert bound["status"]["conditions"] == [{"type": "PodScheduled", "status": "True"}]
    again = await client.post(f"{PODS}/a/binding", json=target)
    assert "already assigned" in (await failure(again, 409, "Conflict"))["message"]
    by_name = {**target, "metadata": {"name": "b"}}
    await ok(await client.post("/api/v1/namespaces/shop/bindings", json=by_name), 201)
    assert (await ok(await client.get(f"{PODS}/b")))["spec"]["nodeName"] == "n1"


# --- faults -------------------------------------------------------------------------------------


async def test_http_faults_answer_with_statuses(
    client: TestClient[Any, Any], server: ApiServer
) -> None:
    await create(client, DEPLOYMENTS, deployment())
    server.faults.http_status("patch", 429, times=2, retry_after=3)
    for _ in range(2):
        throttled = await client.patch(
            f"{DEPLOYMENTS}/web/scale", json={"spec": {"replicas": 3}}, headers=MERGE
        )
        assert throttled.headers["Retry-After"] == "3"
        status = await failure(throttled, 429, "TooManyRequests")
        assert status["details"]["retryAfterSeconds"] == 3
    await ok(
        await client.patch(
            f"{DEPLOYMENTS}/web/scale", json={"spec": {"replicas": 3}}, headers=MERGE
        )
    )
    server.faults.http_status("/apis/apps/v1/*/scale", 500)
    await ok(await client.get(f"{DEPLOYMENTS}/web"))
    await failure(await client.get(f"{DEPLOYMENTS}/web/scale"), 500, "InternalError")
    await ok(await client.get(f"{DEPLOYMENTS}/web/scale"))
    server.faults.cluster.fail_next("get", Conflict("injected"))
    await failure(await client.get(f"{DEPLOYMENTS}/web"), 409, "Conflict")
    with pytest.raises(ValueError, match="pattern"):
        server.faults.http_status("fetch", 500)
