import asyncio
import random

import pytest

from kube.memory import MemoryCluster
from kube.port import NODES
from provisioner.catalog import load_catalog
from provisioner.cloud.port import InstanceNotFound, InsufficientCapacity, LaunchRequest
from provisioner.cloud.simulated import CloudTiming, SimulatedCloud
from provisioner.cloud.unavailable import UnavailableOfferings
from provisioner.scheduling.model import Taint, TaintEffect
from scaler.clock import VirtualClock


@pytest.fixture(scope="module")
def types():
    return {t.name: t for t in load_catalog().instance_types}


def request(*names, zones=("us-east-1a",), capacity=("on-demand",), claim="c-1"):
    return LaunchRequest(claim, "default", names, zones, capacity)


async def launched(cloud, clock, req):
    task = asyncio.ensure_future(cloud.create(req))
    await clock.run_until(clock.now() + cloud.timing.api_seconds)
    return await task


async def test_launches_the_cheapest_allowed_offering(types):
    clock = VirtualClock()
    cloud = SimulatedCloud(types, clock, random.Random(1))
    instance = await launched(
        cloud, clock, request("m5.2xlarge", "m5.large", capacity=("on-demand", "spot"))
    )
    cheapest = min(
        (o.price, name)
        for name in ("m5.2xlarge", "m5.large")
        for o in types[name].offerings
        if o.zone == "us-east-1a"
    )
    assert (instance.price, instance.instance_type) == cheapest
    assert instance.capacity_type == "spot"  # m5.large spot is priced below on-demand
    assert await cloud.get(instance.provider_id) == instance


async def test_exhausted_offering_falls_back_then_fails_naming_each_offering(types):
    clock = VirtualClock()
    limits = {
        ("m5.large", "us-east-1a", "on-demand"): 1,
        ("m5.xlarge", "us-east-1a", "on-demand"): 0,
    }
    cloud = SimulatedCloud(types, clock, random.Random(1), capacity=limits)
    first = await launched(cloud, clock, request("m5.large", "m5.xlarge"))
    assert first.instance_type == "m5.large"
    with pytest.raises(InsufficientCapacity) as caught:
        await launched(cloud, clock, request("m5.large", "m5.xlarge", claim="c-2"))
    assert set(caught.value.offerings) == set(limits)
    assert cloud.ice_errors == 1
    await cloud.delete(first.provider_id)  # capacity comes back when the instance goes
    again = await launched(cloud, clock, request("m5.large", claim="c-3"))
    assert again.instance_type == "m5.large"
    with pytest.raises(InstanceNotFound):
        await cloud.delete(first.provider_id)


async def test_node_registers_after_the_registration_delay(types):
    clock = VirtualClock()
    cluster = MemoryCluster(now=clock.now)
    timing = CloudTiming(api_seconds=1, registration_seconds=40, registration_jitter_seconds=0)
    cloud = SimulatedCloud(types, clock, random.Random(1), cluster, timing)
    req = LaunchRequest(
        "gpu-00001",
        "gpu",
        ("g5.xlarge",),
        ("us-east-1b",),
        ("on-demand",),
        {"team": "ml"},
        (Taint("nvidia.com/gpu", TaintEffect.NO_SCHEDULE, "true"),),
    )
    instance = await launched(cloud, clock, req)
    await clock.run_until(clock.now() + 39)
    assert (await cluster.list(NODES))[0] == []
    await clock.run_until(clock.now() + 1)
    node = await cluster.get(NODES, "gpu-00001")
    labels = node["metadata"]["labels"]
    assert labels["node.kubernetes.io/instance-type"] == "g5.xlarge"
    assert labels["topology.kubernetes.io/zone"] == "us-east-1b"
    assert labels["karpenter.sh/capacity-type"] == "on-demand"
    assert labels["team"] == "ml"
    assert node["spec"]["providerID"] == instance.provider_id
    assert node["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "1"
    cloud.close()


async def test_storm_notices_a_fraction_of_spot_instances_and_reclaims_them(types):
    clock = VirtualClock()
    cluster = MemoryCluster(now=clock.now)
    cloud = SimulatedCloud(types, clock, random.Random(3), cluster)
    spot = [
        await launched(cloud, clock, request("m5.large", capacity=("spot",), claim=f"s-{i}"))
        for i in range(10)
    ]
    await launched(cloud, clock, request("m5.large", claim="od"))
    chosen = cloud.storm(0.2, within=300)
    assert len(chosen) == 2 and set(chosen) <= {i.provider_id for i in spot}
    await clock.run_until(clock.now() + 300)
    notices = []
    while not cloud.notices.empty():
        notices.append(cloud.notices.get_nowait())
    assert sorted(n.provider_id for n in notices) == sorted(chosen)
    assert all(n.terminates_at - n.noticed_at == 120 for n in notices)
    await clock.run_until(clock.now() + 121)
    remaining = {i.provider_id for i in await cloud.list()}
    assert remaining.isdisjoint(chosen) and len(remaining) == 9
    cloud.close()


def test_unavailable_offerings_expire_after_three_minutes():
    cache = UnavailableOfferings()
    key = ("p5.48xlarge", "us-east-1a", "spot")
    cache.mark([key], now=100.0)
    assert cache.is_unavailable(key, 279.0)
    assert cache.active(279.0) == {key}
    assert not cache.is_unavailable(key, 280.0)
    assert cache.active(280.0) == set()
