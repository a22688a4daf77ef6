"""The disruption controller over the in-memory cluster, the simulated cloud and virtual time."""

import asyncio
import contextlib
import random
from pathlib import Path

import pytest
import yaml

from kube.memory import MemoryCluster
from kube.port import NODE_CLAIMS, NODE_POOLS, NODES, POD_DISRUPTION_BUDGETS, PODS
from provisioner.catalog import load_catalog
from provisioner.cloud.simulated import CloudTiming, SimulatedCloud
from provisioner.controller import ProvisioningController
from provisioner.disruption.executor import DisruptionController, ExecutorOptions
from scaler.clock import VirtualClock

EXAMPLES = Path(__file__).parents[3] / "examples" / "provision"
T0 = 1_000_000.0  # a Monday afternoon (UTC): the example's business-hours budget is dropped


@pytest.fixture(scope="module")
def types():
    return load_catalog().instance_types


def pool(consolidate_after="1m", capacity_types=("on-demand",), **template_spec):
    docs = yaml.safe_load_all((EXAMPLES / "nodepools.yaml").read_text())
    doc = next(d for d in docs if d and d["metadata"]["name"] == "general-purpose")
    doc["apiVersion"] = NODE_POOLS.api_version
    spec = doc["spec"]
    spec["disruption"]["consolidateAfter"] = consolidate_after
    spec["disruption"]["budgets"] = [{"nodes": "10%"}]
    for r in spec["template"]["spec"]["requirements"]:
        if r["key"] == "karpenter.sh/capacity-type":
            r["values"] = list(capacity_types)
    spec["template"]["spec"].update(template_spec)
    return doc


def pod(name, cpu="1", memory="2Gi", labels=None):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": labels or {"app": name},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "rs",
                    "uid": "1",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {"name": "app", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
            ]
        },
        "status": {"phase": "Pending"},
    }


class Harness:
    def __init__(self, types, consolidation=True, run_disruption=True):
        self.clock = VirtualClock(start=T0)
        self.cluster = MemoryCluster(now=self.clock.now)
        timing = CloudTiming(api_seconds=1, registration_seconds=30, registration_jitter_seconds=0)
        self.cloud = SimulatedCloud(
            {t.name: t for t in types}, self.clock, random.Random(1), self.cluster, timing
        )
        self.provisioner = ProvisioningController(self.cluster, self.clock, self.cloud, types)
        self.disruption = DisruptionController(
            self.provisioner, ExecutorOptions(consolidation=consolidation)
        )
        self.run_disruption = run_disruption
        self.evictions: list[tuple[float, str, list[str]]] = []  # (time, pod, node taints)
        evict = self.cluster.evict

        async def recording_evict(name, namespace, grace_period_seconds=None):
            obj = await self.cluster.get(PODS, name, namespace)
            node = await self.cluster.get(NODES, obj["spec"]["nodeName"])
            taints = [t["key"] for t in node["spec"].get("taints") or ()]
            await evict(name, namespace, grace_period_seconds)
            self.evictions.append((self.clock.now(), name, taints))

        self.cluster.evict = recording_evict

    async def __aenter__(self):
        self.tasks = [asyncio.create_task(self.provisioner.run())]
        if self.run_disruption:
            self.tasks.append(asyncio.create_task(self.disruption.run()))
        await self.clock.settle()
        return self

    async def __aexit__(self, *exc):
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.cloud.close()
        self.cluster.close()

    async def at(self, offset):
        await self.clock.run_until(T0 + offset)

    async def claim_names(self):
        return sorted(c["metadata"]["name"] for c in (await self.cluster.list(NODE_CLAIMS))[0])

    async def bind(self, name, node):
        await self.cluster.bind(name, "shop", node)
        await self.cluster.patch_status(PODS, name, {"phase": "Running"}, "shop")


async def start_node_with(h, *pods):
    """Launch one node for `pods` and bind them to it; returns the node's name."""
    for p in pods:
        await h.cluster.create(PODS, p)
    await h.at(45)
    [name] = await h.claim_names()
    for p in pods:
        await h.bind(p["metadata"]["name"], name)
    return name


async def test_an_empty_node_goes_after_consolidate_after_and_validation(types):
    async with Harness(types) as h:
        await h.cluster.create(NODE_POOLS, pool("2m"))
        name = await start_node_with(h, pod("job"))
        await h.at(600)
        assert await h.claim_names() == [name]  # busy nodes stay
        await h.cluster.delete(PODS, "job", "shop")
        # consolidatable at 720; a poll (10 s) then the validation period (15 s)
        await h.at(600 + 120 + 10)
        assert await h.claim_names() == [name]
        await h.at(600 + 120 + 10 + 15 + 1)
        assert await h.claim_names() == []
        assert (await h.cluster.list(NODES))[0] == []
        assert await h.cloud.list() == []
        record = h.provisioner.ledger[name]
        assert record.terminated_at is not None
        lived = record.terminated_at - record.launched_at
        assert record.cost(h.clock.now()) == pytest.approx(record.price * lived / 3600)
        assert h.disruption.stats.nodes == {"emptiness": 1}
        assert [r.method for r in h.disruption.removals] == ["emptiness"]


@pytest.mark.parametrize("consolidation", [True, False])
async def test_an_underused_node_is_replaced_first_then_tainted_drained_and_removed(
    types, consolidation
):
    async with Harness(types, consolidation=consolidation) as h:
        await h.cluster.create(NODE_POOLS, pool())
        big = await start_node_with(h, pod("big", cpu="12", memory="24Gi"), pod("small"))
        before = h.provisioner.ledger[big]
        await h.cluster.delete(PODS, "big", "shop")  # "small" alone on a 16-CPU node
        # (no ReplicaSet here recreates "small": its empty replacement goes a minute later)
        await h.at(200)
        if not consolidation:  # every pool acts as WhenEmpty: a busy node is left alone
            assert await h.claim_names() == [big]
            assert h.disruption.stats.commands == {}
            return
        assert h.disruption.stats.commands == {"single-node-consolidation": 1}
        [replacement] = await h.claim_names()
        assert replacement != big
        after = h.provisioner.ledger[replacement]
        assert after.price < before.price
        # the replacement was Ready before the first eviction, and the candidate tainted
        [(evicted_at, pod_name, taints)] = h.evictions
        assert pod_name == "small"
        assert "karpenter.sh/disrupted" in taints
        assert h.provisioner.initialized_at[replacement] <= evicted_at
        assert after.launched_at < evicted_at <= before.terminated_at
        # decided at the first poll after consolidateAfter, validated 15 s later
        assert after.launched_at >= T0 + 45 + 60 + 15
        [removal] = h.disruption.removals
        assert removal.replaced_by == (replacement,)
        assert h.disruption.recently_replaced == {
            ("general-purpose", before.instance_type): pytest.approx(evicted_at, abs=1)
        }


async def test_a_change_during_validation_abandons_the_command(types):
    async with Harness(types, run_disruption=False) as h:
        await h.cluster.create(NODE_POOLS, pool())
        name = await start_node_with(h, pod("job"))
        await h.cluster.delete(PODS, "job", "shop")
        await h.at(200)  # empty for over a minute
        round_ = asyncio.create_task(h.disruption.disrupt_once())
        await h.at(205)  # inside the 15 s validation period, a pod lands on it
        await h.cluster.create(PODS, pod("late"))
        await h.bind("late", name)
        await h.at(230)
        assert await round_ == []
        assert h.disruption.stats.abandoned == 1
        assert await h.claim_names() == [name]


async def test_pdb_holds_the_drain_until_termination_grace_period_then_deletes(types):
    grace = 180
    async with Harness(types) as h:
        await h.cluster.create(
            NODE_POOLS,
            pool("Never", expireAfter="10m", terminationGracePeriod=f"{grace}s"),
        )
        await h.cluster.create(
            POD_DISRUPTION_BUDGETS,
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "db", "namespace": "shop"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
            },
        )
        old = await start_node_with(h, pod("db-0", labels={"app": "db"}))
        await h.at(900)
        stats = h.disruption.stats
        assert stats.commands == {"expiration": 1}  # forceful: no budget, no validation
        assert stats.evictions == 0 and stats.eviction_retries >= grace // 5
        assert stats.forced_deletions == 1
        record = h.provisioner.ledger[old]
        assert record.terminated_at is not None
        # expired at launch + 600; replacement Ready ~31 s later; then the grace period
        drained_for = record.terminated_at - (record.launched_at + 600)
        assert grace <= drained_for <= grace + 31 + 10 + 5
        assert len(await h.claim_names()) == 1 and old not in await h.claim_names()


async def test_spot_interruption_drains_at_once_and_the_node_goes_before_the_deadline(types):
    async with Harness(types) as h:
        await h.cluster.create(NODE_POOLS, pool(capacity_types=("spot",)))
        name = await start_node_with(h, pod("web-0"), pod("web-1"))
        await h.at(100)
        [instance] = await h.cloud.list()
        assert instance.capacity_type == "spot"
        h.cloud.storm(1.0, 0)
        await h.at(103)
        assert h.disruption.stats.interruptions == 1
        assert sorted(p for _, p, _ in h.evictions) == ["web-0", "web-1"]
        assert all(t <= T0 + 101 for t, _, _ in h.evictions)
        assert h.disruption.stats.evictions_by_method == {"interruption": 2}
        # drained, so terminated long before the two-minute deadline
        assert h.provisioner.ledger[name].terminated_at < T0 + 100 + 120
        assert name not in await h.claim_names()
        assert [r.method for r in h.disruption.removals] == ["interruption"]


async def test_a_changed_node_pool_template_drifts_its_nodes(types):
    async with Harness(types) as h:
        await h.cluster.create(NODE_POOLS, pool(consolidate_after="Never"))
        old = await start_node_with(h, pod("web-0"))
        claim = await h.cluster.get(NODE_CLAIMS, old)
        assert claim["metadata"]["annotations"]["karpenter.sh/nodepool-hash-version"]
        await h.at(300)
        assert await h.claim_names() == [old]
        changed = pool(consolidate_after="Never")
        changed["spec"]["template"]["metadata"]["labels"]["team"] = "web"
        await h.cluster.patch(NODE_POOLS, "general-purpose", changed)
        await h.at(500)
        assert h.disruption.stats.commands == {"drift": 1}
        [new] = await h.claim_names()
        assert new != old
        assert (await h.cluster.get(NODES, new))["metadata"]["labels"]["team"] == "web"
