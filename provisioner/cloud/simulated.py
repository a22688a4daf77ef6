"""A simulated cloud: launch latency, capacity limits, node registration and spot interruptions.

Instances are launched from the catalog's offerings, cheapest first among those the request
allows (as a lowest-price fleet request does). An offering with no capacity left fails with
InsufficientCapacity. After `registration_seconds` the instance's kubelet registers a Node
through the Cluster port, Ready at once (image pulls are part of the pods' start-up).
Spot instances receive two-minute interruption notices at the rate of their offering's
interruption bucket, or in a storm on demand.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import math
import random
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from kube.port import NODES, Cluster, NotFound
from provisioner.cloud.port import (
    Instance,
    InstanceNotFound,
    InsufficientCapacity,
    InterruptionNotice,
    LaunchRequest,
    OfferingKey,
)
from provisioner.scheduling.model import CAPACITY_TYPE, SPOT, ZONE, InstanceType, Resources
from scaler.clock import Clock

SPOT_NOTICE_SECONDS = 120.0  # EC2 gives a two-minute warning
SECONDS_PER_MONTH = 30 * 86400.0


@dataclass(frozen=True)
class CloudTiming:
    api_seconds: float = 1.0  # the launch call itself
    registration_seconds: float = 40.0  # boot and kubelet registration after launch
    registration_jitter_seconds: float = 20.0


def resource_list(r: Resources) -> dict[str, str]:
    """A Kubernetes ResourceList (what a Node reports as capacity or allocatable)."""
    out = {"cpu": f"{r.cpu}m", "memory": str(r.memory), "pods": str(r.pods)}
    if r.gpu:
        out["nvidia.com/gpu"] = str(r.gpu)
    return out


class SimulatedCloud:
    def __init__(
        self,
        types: Mapping[str, InstanceType],
        clock: Clock,
        rng: random.Random,
        cluster: Cluster | None = None,
        timing: CloudTiming = CloudTiming(),
        capacity: Mapping[OfferingKey, int] | None = None,
        interruptions: bool = False,
    ) -> None:
        self.types = types
        self.clock = clock
        self.rng = rng
        self.cluster = cluster
        self.timing = timing
        # None: unlimited; otherwise instances each offering can hold at once (absent: unlimited)
        self.capacity = dict(capacity or {})
        self.interruptions_enabled = interruptions
        self.notices: asyncio.Queue[InterruptionNotice] = asyncio.Queue()
        self._instances: dict[str, Instance] = {}
        self._in_use: dict[OfferingKey, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sequence = 0
        self.launched = 0
        self.terminated = 0
        self.ice_errors = 0

    async def create(self, request: LaunchRequest) -> Instance:
        candidates: list[tuple[float, int, str, str, str]] = []
        for rank, name in enumerate(request.instance_types):
            itype = self.types.get(name)
            if itype is None:
                continue
            for o in itype.offerings:
                if o.zone in request.zones and o.capacity_type in request.capacity_types:
                    candidates.append((o.price, rank, name, o.zone, o.capacity_type))
        candidates.sort()
        await self.clock.sleep(self.timing.api_seconds)
        tried: list[OfferingKey] = []
        for price, _, name, zone, capacity_type in candidates:
            key = (name, zone, capacity_type)
            limit = self.capacity.get(key)
            if limit is not None and self._in_use.get(key, 0) >= limit:
                tried.append(key)
                continue
            self._in_use[key] = self._in_use.get(key, 0) + 1
            self._sequence += 1
            provider_id = f"sim:///{zone}/i-{self._sequence:08x}"
            instance = Instance(
                provider_id,
                request.claim,
                request.pool,
                name,
                zone,
                capacity_type,
                price,
                self.clock.now(),
            )
            self._instances[provider_id] = instance
            self.launched += 1
            self._spawn(self._register(instance, request))
            if capacity_type == SPOT and self.interruptions_enabled:
                self._spawn(self._interrupt_later(instance))
            return instance
        self.ice_errors += 1
        raise InsufficientCapacity(
            f"no capacity for {request.claim}: tried {len(tried)} offerings", tuple(tried)
        )

    async def delete(self, provider_id: str) -> None:
        instance = self._instances.pop(provider_id, None)
        if instance is None:
            raise InstanceNotFound(provider_id)
        key = (instance.instance_type, instance.zone, instance.capacity_type)
        self._in_use[key] -= 1
        self.terminated += 1

    async def get(self, provider_id: str) -> Instance:
        try:
            return self._instances[provider_id]
        except KeyError:
            raise InstanceNotFound(provider_id) from None

    async def list(self) -> builtins.list[Instance]:
        return list(self._instances.values())

    def storm(self, fraction: float, within: float) -> builtins.list[str]:
        """Send interruption notices to `fraction` of the spot instances over `within` seconds."""
        spot = sorted(i.provider_id for i in self._instances.values() if i.capacity_type == SPOT)
        chosen = self.rng.sample(spot, math.ceil(len(spot) * fraction)) if spot else []
        for provider_id in chosen:
            self._spawn(self._notify(provider_id, self.rng.uniform(0, within)))
        return chosen

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _register(self, instance: Instance, request: LaunchRequest) -> None:
        if self.cluster is None:
            return
        t = self.timing
        await self.clock.sleep(
            t.registration_seconds + self.rng.uniform(0, t.registration_jitter_seconds)
        )
        if instance.provider_id not in self._instances:
            return  # terminated before it joined
        itype = self.types[instance.instance_type]
        labels = {
            **itype.labels,
            **request.labels,
            ZONE: instance.zone,
            CAPACITY_TYPE: instance.capacity_type,
            "kubernetes.io/hostname": request.claim,
        }
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": request.claim, "labels": labels},
            "spec": {
                "providerID": instance.provider_id,
                "taints": [
                    {"key": x.key, "value": x.value, "effect": x.effect.value}
                    for x in request.taints
                ],
            },
            "status": {
                "capacity": resource_list(itype.capacity),
                "allocatable": resource_list(itype.allocatable),
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
        with contextlib.suppress(Exception):
            await self.cluster.create(NODES, node)

    async def _interrupt_later(self, instance: Instance) -> None:
        itype = self.types[instance.instance_type]
        rate = next(
            (
                o.interruption_rate
                for o in itype.offerings
                if o.zone == instance.zone and o.capacity_type == SPOT
            ),
            0.0,
        )
        if rate <= 0:
            return
        # a constant hazard: the bucket's monthly fraction spread evenly over the month
        await self._notify(instance.provider_id, self.rng.expovariate(rate / SECONDS_PER_MONTH))

    async def _notify(self, provider_id: str, delay: float) -> None:
        await self.clock.sleep(delay)
        if provider_id not in self._instances:
            return
        now = self.clock.now()
        await self.notices.put(InterruptionNotice(provider_id, now, now + SPOT_NOTICE_SECONDS))
        await self.clock.sleep(SPOT_NOTICE_SECONDS)
        instance = self._instances.get(provider_id)
        if instance is None:
            return  # drained and deleted before the deadline
        await self.delete(provider_id)
        if self.cluster is not None:
            with contextlib.suppress(NotFound):
                await self.cluster.delete(NODES, instance.claim)
