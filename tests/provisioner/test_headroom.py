"""Placeholder pods sized from the forecast: nodes ahead of pods."""

import asyncio
import contextlib

from kube.memory import MemoryCluster
from kube.port import PODS
from provisioner.headroom import (
    HEADROOM_LABEL,
    HEADROOM_PRIORITY,
    HeadroomController,
    HeadroomSource,
)
from scaler.clock import VirtualClock

POD_SPEC = {
    "containers": [
        {
            "name": "llm",
            "image": "llm:1",
            "resources": {"requests": {"cpu": "3", "nvidia.com/gpu": "1"}},
        }
    ],
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


async def placeholders(cluster):
    items, _ = await cluster.list(PODS, "ml", label_selector=f"{HEADROOM_LABEL}=llm")
    return sorted(items, key=lambda o: o["metadata"]["name"])


async def test_placeholders_follow_the_forecast_ahead_of_the_pods():
    clock = VirtualClock(start=1000.0)
    cluster = MemoryCluster(now=clock.now)
    forecast = {"at": None, "pods": 5}
    current = {"pods": 2}

    def predicted(at):
        forecast["at"] = at
        return forecast["pods"]

    source = HeadroomSource("llm", "ml", POD_SPEC, predicted, lambda: current["pods"], 90.0)
    controller = HeadroomController(cluster, clock, lambda: [source], interval=30)
    task = asyncio.create_task(controller.run())
    try:
        await clock.settle()
        assert forecast["at"] == 1090.0  # asks for the pods needed a lead time from now
        held = await placeholders(cluster)
        assert len(held) == 3  # forecast 5, the workload has 2
        pod = held[0]
        assert pod["spec"]["priority"] == HEADROOM_PRIORITY
        assert pod["spec"]["tolerations"] == POD_SPEC["tolerations"]
        assert pod["spec"]["containers"][0]["resources"]["requests"] == {
            "cpu": "3",
            "nvidia.com/gpu": "1",
        }
        assert "nodeName" not in pod["spec"]

        # the scheduler preempted one for a real pod: the workload now has 3
        await cluster.delete(PODS, held[0]["metadata"]["name"], "ml")
        current["pods"] = 3
        await clock.run_until(1030.0)
        assert len(await placeholders(cluster)) == 2

        forecast["pods"] = 2  # the forecast drops below what the workload has: release all
        await clock.run_until(1060.0)
        assert await placeholders(cluster) == []

        forecast["pods"] = None  # no usable forecast: no placeholders either
        await clock.run_until(1090.0)
        assert await placeholders(cluster) == []
        assert controller.stats.created == 3 and controller.stats.removed == 2
        assert controller.stats.peak["llm"] == 3
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        cluster.close()
