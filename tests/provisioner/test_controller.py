"""The provisioning controller over the in-memory cluster, the simulated cloud and virtual time."""

import asyncio
import contextlib
import random
from pathlib import Path

import pytest
import yaml

from kube.memory import MemoryCluster
from kube.port import NODE_CLAIMS, NODE_POOLS, NODES, PODS
from provisioner.catalog import load_catalog
from provisioner.cloud.simulated import CloudTiming, SimulatedCloud
from provisioner.controller import ProvisioningController
from scaler.clock import VirtualClock

EXAMPLES = Path(__file__).parents[2] / "examples" / "provision"


@pytest.fixture(scope="module")
def types():
    return load_catalog().instance_types


def general_pool(consolidate_after="1m"):
    docs = yaml.safe_load_all((EXAMPLES / "nodepools.yaml").read_text())
    pool = next(d for d in docs if d and d["metadata"]["name"] == "general-purpose")
    pool["apiVersion"] = NODE_POOLS.api_version
    pool["spec"]["disruption"]["consolidateAfter"] = consolidate_after
    return pool


def pod(name, cpu="1", memory="2Gi", node_selector=None):
    spec = {
        "containers": [{"name": "app", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    }
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
        "status": {"phase": "Pending"},
    }


class Harness:
    def __init__(self, types, capacity=None):
        self.clock = VirtualClock(start=1_000_000.0)
        self.cluster = MemoryCluster(now=self.clock.now)
        timing = CloudTiming(api_seconds=1, registration_seconds=30, registration_jitter_seconds=0)
        self.cloud = SimulatedCloud(
            {t.name: t for t in types}, self.clock, random.Random(1), self.cluster, timing, capacity
        )
        self.controller = ProvisioningController(self.cluster, self.clock, self.cloud, types)

    async def __aenter__(self):
        self.task = asyncio.create_task(self.controller.run())
        await self.clock.settle()
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.cloud.close()
        self.cluster.close()

    async def at(self, offset):
        await self.clock.run_until(1_000_000.0 + offset)

    async def claims(self):
        return (await self.cluster.list(NODE_CLAIMS))[0]


async def test_pods_arriving_together_are_batched_into_one_plan(types):
    async with Harness(types) as h:
        await h.cluster.create(NODE_POOLS, general_pool())
        await h.at(5)
        for i, t in enumerate((0.0, 0.5, 1.2)):
            await h.at(5 + t)
            await h.cluster.create(PODS, pod(f"web-{i}"))
        await h.at(7.1)
        assert await h.claims() == []  # still inside the batch window (1 s idle)
        await h.at(9)
        claims = await h.claims()
        assert h.controller.stats.plans == 1
        assert len(claims) == 1
        claim = claims[0]
        assert claim["metadata"]["labels"]["karpenter.sh/nodepool"] == "general-purpose"
        req = {r["key"]: r for r in claim["spec"]["requirements"]}
        assert req["node.kubernetes.io/instance-type"]["operator"] == "In"
        assert len(req["node.kubernetes.io/instance-type"]["values"]) > 1  # fallbacks ride along
        assert set(h.controller.nominated) == {"shop/web-0", "shop/web-1", "shop/web-2"}
        await h.at(9 + 1 + 30 + 1)
        node = await h.cluster.get(NODES, claim["metadata"]["name"])
        stored = await h.cluster.get(NODE_CLAIMS, claim["metadata"]["name"])
        assert stored["status"]["nodeName"] == node["metadata"]["name"]
        assert stored["status"]["providerID"] == node["spec"]["providerID"]
        types_allowed = req["node.kubernetes.io/instance-type"]["values"]
        assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] in types_allowed


async def test_a_steady_trickle_is_planned_after_at_most_ten_seconds(types):
    async with Harness(types) as h:
        await h.cluster.create(NODE_POOLS, general_pool())
        for i in range(60):  # a pod every 0.5 s for 30 s: never idle for 1 s
            await h.at(1 + i * 0.5)
            await h.cluster.create(PODS, pod(f"w-{i}", cpu="100m", memory="128Mi"))
            if h.controller.stats.plans:
                break
        assert h.controller.stats.plans == 1
        assert h.clock.now() - 1_000_001.0 <= 11.0


async def test_pods_that_fit_an_in_flight_claim_launch_nothing_new(types):
    async with Harness(types) as h:
        await h.cluster.create(NODE_POOLS, general_pool())
        await h.cluster.create(PODS, pod("big", cpu="3", memory="6Gi"))
        await h.at(3)
        assert len(await h.claims()) == 1
        await h.cluster.create(PODS, pod("small", cpu="10m", memory="16Mi"))
        await h.at(6)
        assert len(await h.claims()) == 1
        assert h.controller.nominated["shop/small"] == h.controller.nominated["shop/big"]


async def test_insufficient_capacity_is_cached_and_the_pods_replanned(types):
    zones = ("us-east-1a", "us-east-1b", "us-east-1c")
    no_spot = {("m6i.large", z, "spot"): 0 for z in zones}
    async with Harness(types, capacity=no_spot) as h:
        pool = general_pool()
        for r in pool["spec"]["template"]["spec"]["requirements"]:
            r.pop("minValues", None)  # one pinned type cannot offer two categories
        await h.cluster.create(NODE_POOLS, pool)
        await h.cluster.create(
            PODS, pod("pinned", node_selector={"node.kubernetes.io/instance-type": "m6i.large"})
        )
        await h.at(120)
        assert h.controller.stats.ice_errors == 3  # one per zone, each then cached
        launched = list(h.controller.ledger.values())
        assert len(launched) == 1
        assert launched[0].instance_type == "m6i.large"
        assert launched[0].capacity_type == "on-demand"
        assert len(await h.claims()) == 1
