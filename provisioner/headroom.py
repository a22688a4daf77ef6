"""Nodes ahead of pods: low-priority placeholder pods sized from the forecast.

The over-provisioning pattern: for each predictive workload, the pods the forecast needs at
now + lead time, beyond the pods it has, are held as placeholder pods of the same shape and
the lowest priority. The provisioner launches nodes for them like for any pending pod; when
the real pods arrive, the scheduler preempts placeholders to make room, so the pods start
on a node that is already Ready instead of waiting for one to launch. Placeholders are
removed as soon as the forecast drops, and their nodes go with the usual disruption.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from forecasting.policy import placeholder_pods
from kube.port import PODS, Cluster, ClusterError, NotFound
from scaler.clock import Clock

log = logging.getLogger("ebbflow.headroom")

HEADROOM_LABEL = "ebbflow.io/headroom"  # value: the workload the placeholder stands for
HEADROOM_PRIORITY = -1000  # below every real pod: the first to be preempted
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


@dataclass(frozen=True)
class HeadroomSource:
    """One predictive workload: its pod template, and how many pods it will need."""

    name: str
    namespace: str
    pod_spec: Mapping[str, Any]  # the workload's pod spec (requests, selectors, tolerations)
    forecast: Callable[[float], int | None]  # pods needed at a time; None without a forecast
    current: Callable[[], int]  # pods the workload has (desired replicas)
    lead_seconds: float  # how far ahead nodes must be asked for


def placeholder_manifest(source: HeadroomSource, index: int) -> dict[str, Any]:
    spec = dict(source.pod_spec)
    requests = {}
    for container in spec.get("containers") or ():
        for key, value in ((container.get("resources") or {}).get("requests") or {}).items():
            requests[key] = value  # one container: the placeholder takes the pod's whole ask
    spec["containers"] = [
        {"name": "pause", "image": PAUSE_IMAGE, "resources": {"requests": requests}}
    ]
    spec["priority"] = HEADROOM_PRIORITY
    spec.pop("nodeName", None)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{source.name}-headroom-{index:04d}",
            "namespace": source.namespace,
            "labels": {HEADROOM_LABEL: source.name},
        },
        "spec": spec,
        "status": {"phase": "Pending"},
    }


@dataclass
class HeadroomStats:
    created: int = 0
    removed: int = 0
    peak: dict[str, int] = field(default_factory=dict)


class HeadroomController:
    """Keeps each source's placeholder pods at `forecast(now + lead) - current`, never below 0."""

    def __init__(
        self,
        cluster: Cluster,
        clock: Clock,
        sources: Callable[[], list[HeadroomSource]],
        interval: float = 30.0,
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.sources = sources
        self.interval = interval
        self.held: dict[str, list[str]] = {}  # workload -> placeholder pod names
        self.stats = HeadroomStats()
        self._serial: dict[str, int] = {}

    async def run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except ClusterError as exc:  # retried at the next tick
                log.warning("headroom: %s", exc)
            await self.clock.sleep(self.interval)

    async def reconcile(self) -> None:
        now = self.clock.now()
        for source in self.sources():
            wanted = placeholder_pods(source.forecast(now + source.lead_seconds), source.current())
            # re-read: the scheduler preempts placeholders when real pods need the room
            items, _ = await self.cluster.list(
                PODS, source.namespace, label_selector=f"{HEADROOM_LABEL}={source.name}"
            )
            held = sorted(o["metadata"]["name"] for o in items)
            self.held[source.name] = held
            while len(held) < wanted:
                index = self._serial.get(source.name, 0) + 1
                self._serial[source.name] = index
                manifest = placeholder_manifest(source, index)
                await self.cluster.create(PODS, manifest)
                held.append(manifest["metadata"]["name"])
                self.stats.created += 1
            while len(held) > wanted:
                name = held.pop()
                with contextlib.suppress(NotFound):
                    await self.cluster.delete(PODS, name, source.namespace)
                self.stats.removed += 1
            peak = self.stats.peak.get(source.name, 0)
            self.stats.peak[source.name] = max(peak, len(held))
