import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kube.memory import MemoryCluster
from kube.port import (
    DEPLOYMENTS,
    EVENTS,
    JSON,
    NODES,
    PODS,
    SCALED_OBJECTS,
    STATEFULSETS,
    AlreadyExists,
    Cluster,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    TooManyRequests,
    WatchEvent,
)

JAN_1_2024 = 1704067200.0


def deployment(name: str = "web", namespace: str = "shop", **labels: str) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": []}},
        },
    }


def pod(name: str, namespace: str = "shop", **labels: str) -> JSON:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": {}}


async def next_event(stream: AsyncIterator[WatchEvent]) -> WatchEvent:
    # A guard, not a wait: every event a test expects is already queued.
    return await asyncio.wait_for(anext(stream), timeout=5)


def summary(event: WatchEvent) -> tuple[str, str, str]:
    metadata = event.object["metadata"]
    return event.type, metadata["name"], metadata["resourceVersion"]


@pytest.fixture
def cluster() -> MemoryCluster:
    return MemoryCluster(now=lambda: JAN_1_2024)


# --- CRUD ---------------------------------------------------------------------------------------


async def test_create_fills_the_fields_the_server_owns(cluster: MemoryCluster) -> None:
    created = await cluster.create(PODS, {"metadata": {"name": "p"}, "spec": {}})
    metadata = created["metadata"]
    assert created["apiVersion"] == "v1"
    assert created["kind"] == "Pod"
    assert metadata["namespace"] == "default"
    assert metadata["generation"] == 1
    assert metadata["resourceVersion"] == "1"
    assert metadata["creationTimestamp"] == "2024-01-01T00:00:00Z"
    assert len(metadata["uid"]) == 36
    assert await cluster.get(PODS, "p") == created
    assert await cluster.get(PODS, "p", "default") == created


async def test_the_memory_cluster_is_a_cluster() -> None:
    cluster: Cluster = MemoryCluster()
    await cluster.create(PODS, pod("p"))
    assert [p["metadata"]["name"] for p in (await cluster.list(PODS))[0]] == ["p"]


async def test_create_of_an_existing_name_already_exists(cluster: MemoryCluster) -> None:
    await cluster.create(DEPLOYMENTS, deployment())
    with pytest.raises(AlreadyExists, match=r'deployments\.apps "web" already exists'):
        await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(DEPLOYMENTS, deployment(namespace="other"))  # names are per namespace


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"metadata": {}}, "metadata.name: required"),
        ({"metadata": {"name": "Web_1"}}, "metadata.name: must be a lowercase RFC 1123"),
        ({"metadata": {"name": "p", "resourceVersion": "3"}}, "must not be set on create"),
        ({"kind": "Node", "metadata": {"name": "p"}}, "kind: expected 'Pod'"),
        ({"apiVersion": "apps/v1", "metadata": {"name": "p"}}, "apiVersion: expected 'v1'"),
        ({"metadata": {"name": "p", "labels": {"a": 1}}}, "metadata.labels.a: must be a string"),
        ({"metadata": {"name": "p", "labels": {"a": "x y"}}}, "label value 'x y'"),
        ({"metadata": {"name": "p"}, "spec": {"x": object()}}, "spec.x: not a JSON value"),
        ({"metadata": "p"}, "metadata: must be an object"),
    ],
)
async def test_bad_objects_are_invalid(cluster: MemoryCluster, obj: JSON, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        await cluster.create(PODS, obj)
    assert (await cluster.list(PODS))[1] == "0"  # nothing was written


async def test_generate_name_gives_unique_deterministic_names(cluster: MemoryCluster) -> None:
    names = [
        (await cluster.create(PODS, {"metadata": {"generateName": "worker-"}}))["metadata"]["name"]
        for _ in range(3)
    ]
    assert len(set(names)) == 3
    assert all(name.startswith("worker-") and len(name) == len("worker-") + 5 for name in names)
    again = MemoryCluster()
    created = await again.create(PODS, {"metadata": {"generateName": "worker-"}})
    assert created["metadata"]["name"] == names[0]


async def test_missing_objects_are_not_found(cluster: MemoryCluster) -> None:
    with pytest.raises(NotFound, match='pods "p" not found'):
        await cluster.get(PODS, "p")
    with pytest.raises(NotFound):
        await cluster.delete(PODS, "p")
    with pytest.raises(NotFound):
        await cluster.patch(PODS, "p", {"spec": {}})
    with pytest.raises(NotFound):
        await cluster.patch(PODS, "p", [], patch_type="json")
    with pytest.raises(NotFound):
        await cluster.replace(PODS, pod("p"))
    with pytest.raises(NotFound):
        await cluster.patch_status(PODS, "p", {"phase": "Running"})


async def test_delete_removes_the_object(cluster: MemoryCluster) -> None:
    await cluster.create(PODS, pod("p"))
    await cluster.delete(PODS, "p", "shop")
    with pytest.raises(NotFound):
        await cluster.get(PODS, "p", "shop")
    await cluster.create(PODS, pod("p"))  # the name is free again


async def test_cluster_scoped_kinds_ignore_namespace(cluster: MemoryCluster) -> None:
    created = await cluster.create(NODES, {"metadata": {"name": "n1", "namespace": "shop"}})
    assert "namespace" not in created["metadata"]
    assert await cluster.get(NODES, "n1", "anything") == created
    assert (await cluster.list(NODES, "elsewhere"))[0] == [created]


async def test_resource_version_is_one_global_increasing_counter(
    cluster: MemoryCluster,
) -> None:
    versions = [
        (await cluster.create(PODS, pod("a")))["metadata"]["resourceVersion"],
        (await cluster.create(DEPLOYMENTS, deployment()))["metadata"]["resourceVersion"],
        (await cluster.patch(PODS, "a", {"metadata": {"labels": {"x": "1"}}}, "shop"))["metadata"][
            "resourceVersion"
        ],
        (await cluster.patch_scale(DEPLOYMENTS, "web", "shop", 5)).resource_version,
    ]
    await cluster.delete(PODS, "a", "shop")
    assert [int(v) for v in versions] == [1, 2, 3, 4]
    assert (await cluster.list(PODS))[1] == "5"


# --- replace and patch --------------------------------------------------------------------------


async def test_replace_with_a_stale_resource_version_conflicts(cluster: MemoryCluster) -> None:
    first = await cluster.create(DEPLOYMENTS, deployment())
    first["spec"]["replicas"] = 3
    second = await cluster.replace(DEPLOYMENTS, first)
    assert second["spec"]["replicas"] == 3
    first["spec"]["replicas"] = 4  # still carries the old resourceVersion
    with pytest.raises(Conflict, match="the object has been modified"):
        await cluster.replace(DEPLOYMENTS, first)
    del first["metadata"]["resourceVersion"]  # unconditional
    assert (await cluster.replace(DEPLOYMENTS, first))["spec"]["replicas"] == 4


async def test_replace_keeps_status_and_server_owned_metadata(cluster: MemoryCluster) -> None:
    created = await cluster.create(DEPLOYMENTS, deployment())
    await cluster.patch_status(DEPLOYMENTS, "web", {"replicas": 2}, "shop")
    update = deployment()
    update["status"] = {"replicas": 99}
    update["metadata"]["uid"] = "forged"
    replaced = await cluster.replace(DEPLOYMENTS, update)
    assert replaced["status"] == {"replicas": 2}
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert replaced["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


async def test_merge_patch_follows_rfc_7386(cluster: MemoryCluster) -> None:
    await cluster.create(
        PODS,
        {
            "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "c"}], "nodeName": "n1"},
        },
    )
    patched = await cluster.patch(
        PODS,
        "p",
        {
            "metadata": {"labels": {"a": None, "c": "3"}},
            "spec": {"containers": [{"name": "d"}], "nodeName": None, "priority": 5},
        },
    )
    assert patched["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert patched["spec"] == {"containers": [{"name": "d"}], "priority": 5}
    assert await cluster.get(PODS, "p") == patched


async def test_json_patch_follows_rfc_6902(cluster: MemoryCluster) -> None:
    await cluster.create(PODS, {"metadata": {"name": "p"}, "spec": {"containers": [{"n": 1}]}})
    patched = await cluster.patch(
        PODS,
        "p",
        [
            {"op": "add", "path": "/spec/containers/-", "value": {"n": 2}},
            {"op": "replace", "path": "/spec/containers/0/n", "value": 0},
            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        ],
        patch_type="json",
    )
    assert patched["spec"]["containers"] == [{"n": 0}, {"n": 2}]
    assert patched["metadata"]["labels"] == {"x": "y"}


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "test", "path": "/spec/containers", "value": "other"}],
        [{"op": "remove", "path": "/spec/missing"}],
        [{"op": "explode", "path": "/spec"}],
        [{"op": "add", "path": "no-slash", "value": 1}],
        {"op": "add", "path": "/spec/x", "value": 1},
    ],
)
async def test_json_patch_that_does_not_apply_is_invalid(
    cluster: MemoryCluster, patch: Any
) -> None:
    created = await cluster.create(PODS, {"metadata": {"name": "p"}, "spec": {"containers": []}})
    with pytest.raises(Invalid, match="json patch"):
        await cluster.patch(PODS, "p", patch, patch_type="json")
    assert await cluster.get(PODS, "p") == created


async def test_patch_with_a_stale_resource_version_conflicts(cluster: MemoryCluster) -> None:
    created = await cluster.create(PODS, pod("p"))
    stale = created["metadata"]["resourceVersion"]
    await cluster.patch(PODS, "p", {"spec": {"a": 1}}, "shop")
    with pytest.raises(Conflict):
        await cluster.patch(PODS, "p", {"metadata": {"resourceVersion": stale}}, "shop")


async def test_patch_cannot_rename_or_move(cluster: MemoryCluster) -> None:
    await cluster.create(PODS, pod("p"))
    with pytest.raises(Invalid, match=r"metadata\.name: cannot be changed"):
        await cluster.patch(PODS, "p", {"metadata": {"name": "q"}}, "shop")
    with pytest.raises(Invalid, match=r"metadata\.namespace: cannot be changed"):
        await cluster.patch(PODS, "p", {"metadata": {"namespace": "x"}}, "shop")


async def test_generation_counts_spec_changes_only(cluster: MemoryCluster) -> None:
    await cluster.create(DEPLOYMENTS, deployment())

    async def generation() -> int:
        return int((await cluster.get(DEPLOYMENTS, "web", "shop"))["metadata"]["generation"])

    await cluster.patch(DEPLOYMENTS, "web", {"metadata": {"labels": {"x": "y"}}}, "shop")
    assert await generation() == 1
    await cluster.patch_status(DEPLOYMENTS, "web", {"replicas": 1}, "shop")
    assert await generation() == 1
    await cluster.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, "shop")
    assert await generation() == 2
    await cluster.patch_scale(DEPLOYMENTS, "web", "shop", 7)
    assert await generation() == 3


async def test_an_update_that_changes_nothing_writes_nothing(cluster: MemoryCluster) -> None:
    created = await cluster.create(DEPLOYMENTS, deployment())
    stream = cluster.watch(DEPLOYMENTS)
    unchanged = await cluster.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 2}}, "shop")
    assert unchanged == created
    assert await cluster.replace(DEPLOYMENTS, created) == created
    assert (await cluster.patch_scale(DEPLOYMENTS, "web", "shop", 2)).resource_version == "1"
    await cluster.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 3}}, "shop")
    assert summary(await next_event(stream)) == ("MODIFIED", "web", "2")


async def test_finalizers_hold_a_deleted_object_until_removed(cluster: MemoryCluster) -> None:
    obj = pod("p")
    obj["metadata"]["finalizers"] = ["ebbflow.io/cleanup"]
    await cluster.create(PODS, obj)
    await cluster.delete(PODS, "p", "shop")
    held = await cluster.get(PODS, "p", "shop")
    assert held["metadata"]["deletionTimestamp"] == "2024-01-01T00:00:00Z"
    await cluster.delete(PODS, "p", "shop")  # deleting again changes nothing
    assert await cluster.get(PODS, "p", "shop") == held
    with pytest.raises(Invalid, match="cannot add one while deleting"):
        await cluster.patch(PODS, "p", {"metadata": {"finalizers": ["a", "b"]}}, "shop")
    await cluster.patch(PODS, "p", {"metadata": {"finalizers": None}}, "shop")
    with pytest.raises(NotFound):
        await cluster.get(PODS, "p", "shop")


# --- list ---------------------------------------------------------------------------------------


async def test_list_filters_by_namespace_and_selector_and_sorts(cluster: MemoryCluster) -> None:
    await cluster.create(PODS, pod("b", "ns1", app="web"))
    await cluster.create(PODS, pod("a", "ns2", app="web"))
    await cluster.create(PODS, pod("a", "ns1", app="db"))
    await cluster.create(PODS, pod("c", "ns1"))

    async def names(namespace: str | None = None, selector: str | None = None) -> list[str]:
        items, _ = await cluster.list(PODS, namespace, selector)
        return [f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in items]

    assert await names() == ["ns1/a", "ns1/b", "ns1/c", "ns2/a"]
    assert await names("ns1") == ["ns1/a", "ns1/b", "ns1/c"]
    assert await names(selector="app=web") == ["ns1/b", "ns2/a"]
    assert await names("ns1", "app in (web,db)") == ["ns1/a", "ns1/b"]
    assert await names(selector="!app") == ["ns1/c"]
    assert await names("missing") == []
    assert (await cluster.list(PODS))[1] == "4"


async def test_list_with_a_bad_selector_is_invalid(cluster: MemoryCluster) -> None:
    with pytest.raises(Invalid, match="label selector"):
        await cluster.list(PODS, label_selector="app in web")


# --- watch --------------------------------------------------------------------------------------


async def test_watch_replays_after_a_resource_version_then_streams_live(
    cluster: MemoryCluster,
) -> None:
    await cluster.create(PODS, pod("a"))
    _, version = await cluster.list(PODS)
    await cluster.create(PODS, pod("b"))
    await cluster.create(DEPLOYMENTS, deployment())  # another kind: not in this stream
    stream = cluster.watch(PODS, resource_version=version)
    assert summary(await next_event(stream)) == ("ADDED", "b", "2")
    await cluster.patch(PODS, "a", {"spec": {"x": 1}}, "shop")
    await cluster.delete(PODS, "b", "shop")
    assert summary(await next_event(stream)) == ("MODIFIED", "a", "4")
    deleted = await next_event(stream)
    assert summary(deleted) == ("DELETED", "b", "5")
    assert deleted.object["metadata"]["labels"] == {}


async def test_watch_without_a_version_starts_now(cluster: MemoryCluster) -> None:
    await cluster.create(PODS, pod("old"))
    stream = cluster.watch(PODS)
    await cluster.create(PODS, pod("new"))
    assert summary(await next_event(stream)) == ("ADDED", "new", "2")


async def test_watch_from_zero_starts_with_the_current_objects(cluster: MemoryCluster) -> None:
    await cluster.create(PODS, pod("b"))
    await cluster.create(PODS, pod("a"))
    stream = cluster.watch(PODS, resource_version="0")
    assert [summary(await next_event(stream))[:2] for _ in range(2)] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]
    await cluster.delete(PODS, "a", "shop")
    assert summary(await next_event(stream)) == ("DELETED", "a", "3")


async def test_watch_from_before_the_history_window_is_gone() -> None:
    cluster = MemoryCluster()
    for index in range(1002):  # the last 1000 changes (3..1002) are kept
        await cluster.create(PODS, pod(f"p{index}"))
    with pytest.raises(Gone, match="too old resource version: 1 \\(2\\)"):
        async for _ in cluster.watch(PODS, resource_version="1"):
            pass
    stream = cluster.watch(PODS, resource_version="2")
    assert summary(await next_event(stream)) == ("ADDED", "p2", "3")


async def test_history_is_kept_per_kind() -> None:
    cluster = MemoryCluster(history_limit=2)
    for index in range(5):
        await cluster.create(PODS, pod(f"p{index}"))
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(PODS, pod("p5"))
    stream = cluster.watch(DEPLOYMENTS, resource_version="1")
    assert summary(await next_event(stream)) == ("ADDED", "web", "6")
    with pytest.raises(Gone):
        cluster.watch(PODS, resource_version="3")


async def test_watch_with_a_bad_version_or_selector_is_invalid(cluster: MemoryCluster) -> None:
    with pytest.raises(Invalid, match="not a version"):
        cluster.watch(PODS, resource_version="abc")
    with pytest.raises(Invalid, match="label selector"):
        cluster.watch(PODS, label_selector="a in")


async def test_selector_watch_sends_deleted_when_an_object_stops_matching(
    cluster: MemoryCluster,
) -> None:
    await cluster.create(PODS, pod("p", app="web"))
    stream = cluster.watch(PODS, label_selector="app=web")
    await cluster.patch(PODS, "p", {"spec": {"x": 1}}, "shop")
    await cluster.patch(PODS, "p", {"metadata": {"labels": {"app": "db"}}}, "shop")
    await cluster.patch(PODS, "p", {"spec": {"x": 2}}, "shop")  # not matching: unseen
    await cluster.patch(PODS, "p", {"metadata": {"labels": {"app": "web"}}}, "shop")
    await cluster.create(PODS, pod("other", app="db"))
    await cluster.delete(PODS, "p", "shop")
    assert summary(await next_event(stream)) == ("MODIFIED", "p", "2")
    left = await next_event(stream)
    assert summary(left) == ("DELETED", "p", "3")
    assert left.object["metadata"]["labels"] == {"app": "web"}  # the content before the change
    assert summary(await next_event(stream)) == ("ADDED", "p", "5")
    assert summary(await next_event(stream)) == ("DELETED", "p", "7")


async def test_watch_filters_by_namespace(cluster: MemoryCluster) -> None:
    stream = cluster.watch(PODS, "ns2")
    await cluster.create(PODS, pod("a", "ns1"))
    await cluster.create(PODS, pod("b", "ns2"))
    assert summary(await next_event(stream)) == ("ADDED", "b", "2")


async def test_a_watcher_that_does_not_read_never_blocks_writers(cluster: MemoryCluster) -> None:
    stream = cluster.watch(PODS)
    await cluster.create(PODS, pod("p0"))
    names = [summary(await next_event(stream))[1]]  # the first read registers the watcher
    for index in range(1, 500):
        await cluster.create(PODS, pod(f"p{index}"))
    names += [summary(await next_event(stream))[1] for _ in range(499)]
    assert names == [f"p{index}" for index in range(500)]


async def test_watch_streams_are_cleaned_up_when_the_consumer_stops(
    cluster: MemoryCluster,
) -> None:
    async with contextlib.aclosing(cluster.watch(PODS)) as stream:  # type: ignore[type-var]
        await cluster.create(PODS, pod("a"))
        await next_event(stream)
        assert cluster.active_watches == 1
    assert cluster.active_watches == 0

    async def first_name() -> str:
        async for event in cluster.watch(PODS, resource_version="0"):
            return str(event.object["metadata"]["name"])
        return ""

    assert await first_name() == "a"
    for _ in range(3):  # the loop finalizes the abandoned generator on a later turn
        await asyncio.sleep(0)
    assert cluster.active_watches == 0


async def test_close_ends_every_watch(cluster: MemoryCluster) -> None:
    async def drain(stream: AsyncIterator[WatchEvent]) -> list[str]:
        return [summary(event)[1] async for event in stream]

    streams = [cluster.watch(PODS), cluster.watch(PODS, label_selector="app=web")]
    await cluster.create(PODS, pod("a", app="web"))
    for stream in streams:
        await next_event(stream)  # registered
    await cluster.create(PODS, pod("b", app="web"))
    readers = [asyncio.ensure_future(drain(stream)) for stream in streams]
    cluster.close()
    assert await asyncio.wait_for(asyncio.gather(*readers), timeout=5) == [["b"], ["b"]]
    assert cluster.active_watches == 0
    assert await drain(cluster.watch(PODS, resource_version="0")) == []


# --- subresources -------------------------------------------------------------------------------


async def test_scale_reads_spec_status_and_selector(cluster: MemoryCluster) -> None:
    obj = deployment()
    obj["spec"]["selector"]["matchLabels"] = {"tier": "web", "app": "shop"}
    obj["status"] = {"replicas": 1}
    await cluster.create(DEPLOYMENTS, obj)
    scale = await cluster.get_scale(DEPLOYMENTS, "web", "shop")
    assert (scale.namespace, scale.name, scale.replicas, scale.status_replicas) == (
        "shop",
        "web",
        2,
        1,
    )
    assert scale.selector == "app=shop,tier=web"
    assert scale.resource_version == "1"


async def test_scalable_kinds_default_to_one_replica(cluster: MemoryCluster) -> None:
    await cluster.create(STATEFULSETS, {"metadata": {"name": "db"}, "spec": {}})
    scale = await cluster.get_scale(STATEFULSETS, "db", "default")
    assert (scale.replicas, scale.status_replicas, scale.selector) == (1, 0, "")


async def test_patch_scale_changes_replicas_and_notifies(cluster: MemoryCluster) -> None:
    await cluster.create(DEPLOYMENTS, deployment())
    stream = cluster.watch(DEPLOYMENTS)
    scale = await cluster.patch_scale(DEPLOYMENTS, "web", "shop", 0)
    assert (scale.replicas, scale.resource_version) == (0, "2")
    event = await next_event(stream)
    assert event.type == "MODIFIED"
    assert event.object["spec"]["replicas"] == 0
    assert event.object["metadata"]["generation"] == 2


async def test_scale_of_a_kind_without_it_is_not_found(cluster: MemoryCluster) -> None:
    await cluster.create(PODS, pod("p"))
    with pytest.raises(NotFound, match="could not find the requested resource"):
        await cluster.get_scale(PODS, "p", "shop")
    with pytest.raises(NotFound, match="could not find the requested resource"):
        await cluster.patch_scale(SCALED_OBJECTS, "p", "shop", 1)
    with pytest.raises(NotFound):
        await cluster.get_scale(DEPLOYMENTS, "missing", "shop")


async def test_patch_scale_rejects_negative_replicas(cluster: MemoryCluster) -> None:
    await cluster.create(DEPLOYMENTS, deployment())
    with pytest.raises(Invalid, match=r"spec\.replicas"):
        await cluster.patch_scale(DEPLOYMENTS, "web", "shop", -1)


async def test_status_patch_touches_only_status(cluster: MemoryCluster) -> None:
    created = await cluster.create(DEPLOYMENTS, deployment())
    await cluster.patch_status(DEPLOYMENTS, "web", {"replicas": 2, "conditions": []}, "shop")
    patched = await cluster.patch_status(
        DEPLOYMENTS, "web", {"replicas": 3, "spec": {"replicas": 9}}, "shop"
    )
    assert patched["status"] == {"replicas": 3, "conditions": [], "spec": {"replicas": 9}}
    assert patched["spec"] == created["spec"]
    assert patched["metadata"]["generation"] == 1
    assert patched["metadata"]["resourceVersion"] == "3"
    main_patch = await cluster.patch(DEPLOYMENTS, "web", {"status": {"replicas": 0}}, "shop")
    assert main_patch["status"]["replicas"] == 3  # the main resource cannot write status


# --- events -------------------------------------------------------------------------------------


async def test_record_event_creates_a_core_event(cluster: MemoryCluster) -> None:
    regarding = await cluster.create(DEPLOYMENTS, deployment())
    await cluster.record_event(regarding, "SuccessfulRescale", "New size: 3", "Normal")
    [event], _ = await cluster.list(EVENTS, "shop")
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "namespace": "shop",
        "uid": regarding["metadata"]["uid"],
    }
    assert (event["reason"], event["message"], event["type"], event["count"]) == (
        "SuccessfulRescale",
        "New size: 3",
        "Normal",
        1,
    )
    assert event["source"] == {"component": "ebbflow"}
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2024-01-01T00:00:00Z"


async def test_repeated_events_are_counted(cluster: MemoryCluster) -> None:
    now = [JAN_1_2024]
    cluster = MemoryCluster(now=lambda: now[0])
    regarding = await cluster.create(DEPLOYMENTS, deployment())
    await cluster.record_event(regarding, "Failed", "boom", "Warning")
    now[0] += 60
    await cluster.record_event(regarding, "Failed", "boom", "Warning")
    await cluster.record_event(regarding, "Failed", "other", "Warning")
    events, _ = await cluster.list(EVENTS)
    assert [(e["message"], e["count"]) for e in events] == [("boom", 2), ("other", 1)]
    assert events[0]["firstTimestamp"] == "2024-01-01T00:00:00Z"
    assert events[0]["lastTimestamp"] == "2024-01-01T00:01:00Z"


async def test_events_about_cluster_objects_go_to_default(cluster: MemoryCluster) -> None:
    node = await cluster.create(NODES, {"metadata": {"name": "n1"}})
    await cluster.record_event(node, "Provisioned", "launched")
    [event], _ = await cluster.list(EVENTS, "default")
    assert event["involvedObject"]["namespace"] == ""


# --- isolation, determinism, faults -------------------------------------------------------------


async def test_callers_never_alias_stored_state(cluster: MemoryCluster) -> None:
    obj = deployment()
    created = await cluster.create(DEPLOYMENTS, obj)
    obj["spec"]["template"]["metadata"]["labels"]["app"] = "changed-input"
    created["spec"]["template"]["metadata"]["labels"]["app"] = "changed-output"
    fetched = await cluster.get(DEPLOYMENTS, "web", "shop")
    fetched["metadata"]["labels"]["app"] = "changed-get"
    stream = cluster.watch(DEPLOYMENTS, resource_version="0")
    (await next_event(stream)).object["spec"]["selector"]["matchLabels"]["app"] = "changed-watch"
    listed, _ = await cluster.list(DEPLOYMENTS)
    listed[0]["spec"]["replicas"] = 100
    stored = await cluster.get(DEPLOYMENTS, "web", "shop")
    assert stored["spec"] == deployment()["spec"]
    assert stored["metadata"]["labels"] == {"app": "web"}


async def test_two_clusters_fed_the_same_calls_agree_exactly() -> None:
    async def play(cluster: MemoryCluster) -> list[JSON]:
        created = await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(PODS, {"metadata": {"generateName": "web-", "namespace": "shop"}})
        await cluster.patch_scale(DEPLOYMENTS, "web", "shop", 4)
        await cluster.record_event(created, "SuccessfulRescale", "New size: 4")
        return [
            *(await cluster.list(DEPLOYMENTS))[0],
            *(await cluster.list(PODS))[0],
            *(await cluster.list(EVENTS))[0],
        ]

    first = await play(MemoryCluster(now=lambda: JAN_1_2024))
    second = await play(MemoryCluster(now=lambda: JAN_1_2024))
    assert first == second
    assert len(first) == 3


async def test_injected_faults_fail_the_next_matching_call(cluster: MemoryCluster) -> None:
    await cluster.create(DEPLOYMENTS, deployment())
    cluster.faults.fail_next("patch_scale", Conflict("stale"), times=2, kind=DEPLOYMENTS)
    cluster.faults.fail_next("get", TooManyRequests("slow down", retry_after=1.0))
    with pytest.raises(TooManyRequests):
        await cluster.get(DEPLOYMENTS, "web", "shop")
    await cluster.get(DEPLOYMENTS, "web", "shop")
    for _ in range(2):
        with pytest.raises(Conflict, match="stale"):
            await cluster.patch_scale(DEPLOYMENTS, "web", "shop", 3)
    assert (await cluster.patch_scale(DEPLOYMENTS, "web", "shop", 3)).replicas == 3


async def test_a_fault_for_another_kind_does_not_fire(cluster: MemoryCluster) -> None:
    await cluster.create(PODS, pod("p"))
    cluster.faults.fail_next("get", NotFound("injected"), kind=NODES)
    await cluster.get(PODS, "p", "shop")
    cluster.faults.clear()
    await cluster.get(PODS, "p", "shop")


def test_a_fault_for_an_unknown_verb_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown verb 'gett'"):
        MemoryCluster().faults.fail_next("gett", Conflict("x"))
