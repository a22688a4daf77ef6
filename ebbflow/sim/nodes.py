"""The simulator's node layer: the real provisioning and disruption controllers over a
simulated cloud.

It is wired exactly as in production (watches, NodeClaims, the packer, the disruption
planner and its executor, evictions through the API) with two adapters swapped: the
SimulatedCloud for the cloud API and the SimulatedScheduler for kube-scheduler and the
ReplicaSets.
Node cost is billed per second from launch to termination at the offering's price. The
baseline is what a static cluster would pay: the same pods at the trace's peak, packed onto
on-demand nodes by the same packer, running the whole time.
"""

from __future__ import annotations

import asyncio
import math
import random
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ebbflow.sim.predictive import SimulatedPredictors, is_predictive
from ebbflow.sim.provisioning import on_demand_only, peak_pods
from ebbflow.sim.scenario import Scenario
from ebbflow.sim.scheduler import SimulatedScheduler, pod_manifest
from ebbflow.sim.workload import SimulatedDeployment
from kube.port import NODE_POOLS, Cluster
from provisioner.catalog import load_catalog
from provisioner.cloud.simulated import CloudTiming, SimulatedCloud
from provisioner.controller import ProvisionerOptions, ProvisioningController
from provisioner.disruption.churn import Churn
from provisioner.disruption.executor import DisruptionController, DisruptionStats, ExecutorOptions
from provisioner.disruption.state import DEFAULT_OPTIONS as PLANNER_DEFAULTS
from provisioner.headroom import HeadroomController, HeadroomSource
from provisioner.nodepools import node_template
from provisioner.scheduling.model import Pod
from provisioner.scheduling.packer import PackOptions, plan
from provisioner.scheduling.pods import pod_from_manifest
from scaler.clock import VirtualClock

# how far ahead forecast-aware consolidation looks: a node the forecast needs back within the
# hour is kept (removing it would evict its pods and launch a node again for the next ramp)
CONSOLIDATION_HORIZON_SECONDS = 3600.0


@dataclass(frozen=True)
class NodeResult:
    cost: float  # dollars over the run
    node_hours: float
    spot_node_hours: float
    peak_nodes: int
    launches: int
    insufficient_capacity_errors: int
    empty_nodes_removed: int
    unschedulable_pods: int
    baseline_cost: float  # static on-demand nodes sized for the peak
    baseline_nodes: tuple[tuple[str, int], ...]  # (instance type, count)
    duration_seconds: float
    consolidation: bool = True
    disruption: DisruptionStats | None = None
    churn: Churn | None = None
    pod_seconds: float = 0.0  # replica-seconds of every workload (for evictions per pod-day)
    pods_killed: int = 0  # pods still on a node when it vanished
    pending_pod_seconds: float = 0.0
    storm_notices: int = 0  # interruption notices the scenario's spotStorm sent
    reschedule_waits: tuple[float, ...] = ()  # seconds each replacement pod waited for a node
    never_rescheduled: int = 0  # replacement pods still pending at the end

    @property
    def evictions(self) -> int:
        return self.disruption.evictions if self.disruption else 0

    @property
    def evictions_per_pod_day(self) -> float:
        return self.evictions / (self.pod_seconds / 86400) if self.pod_seconds else 0.0

    @property
    def cost_per_hour(self) -> float:
        return self.cost / (self.duration_seconds / 3600) if self.duration_seconds else 0.0

    @property
    def baseline_cost_per_hour(self) -> float:
        hours = self.duration_seconds / 3600
        return self.baseline_cost / hours if hours else 0.0

    @property
    def savings_percent(self) -> float:
        if self.baseline_cost == 0:
            return 0.0
        return 100.0 * (1.0 - self.cost / self.baseline_cost)


class NodeLayer:
    def __init__(
        self,
        scenario: Scenario,
        clock: VirtualClock,
        deployments: dict[str, SimulatedDeployment],
        scheduler: SimulatedScheduler,
        cloud: SimulatedCloud,
        controller: ProvisioningController,
        start: float,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.deployments = deployments
        self.scheduler = scheduler
        self.cloud = cloud
        self.controller = controller
        spec = scenario.spec.provisioning
        self.consolidation = spec.consolidation if spec is not None else True
        spot_to_spot = spec.spot_to_spot_consolidation if spec is not None else False
        planner = replace(PLANNER_DEFAULTS, spot_to_spot=spot_to_spot)
        self.disruption = DisruptionController(
            controller, ExecutorOptions(consolidation=self.consolidation, planner=planner)
        )
        self.start_time = start
        self.storm_notices = 0
        self.headroom: HeadroomController | None = None
        self._expected_shape: dict[str, Pod] = {}

    @classmethod
    async def create(
        cls,
        scenario: Scenario,
        cluster: Cluster,
        clock: VirtualClock,
        deployments: dict[str, SimulatedDeployment],
        start: float,
        seed: int,
    ) -> NodeLayer:
        spec = scenario.spec.provisioning
        assert spec is not None
        catalog_path = Path(scenario.source).parent / spec.catalog if spec.catalog else None
        catalog = load_catalog(catalog_path, zones=tuple(spec.zones))
        types = catalog.instance_types
        for pool in scenario.node_pools:
            manifest = pool.model_dump(mode="json", by_alias=True, exclude_none=True)
            manifest["apiVersion"] = NODE_POOLS.api_version
            await cluster.create(NODE_POOLS, manifest)
        capacity = {(c.instance_type, c.zone, c.capacity_type): c.count for c in spec.capacity}
        cloud = SimulatedCloud(
            {t.name: t for t in types},
            clock,
            random.Random(seed * 7_919 + zlib.crc32(b"cloud")),
            cluster,
            CloudTiming(
                registration_seconds=spec.registration_seconds,
                registration_jitter_seconds=spec.registration_jitter_seconds,
            ),
            capacity,
            interruptions=spec.spot_interruptions,
        )
        # no wall-clock cap on the packer: the same scenario and seed give the same run
        options = ProvisionerOptions(pack=PackOptions(time_budget_seconds=None, lower_bound=False))
        controller = ProvisioningController(cluster, clock, cloud, types, options)
        scheduler = SimulatedScheduler(cluster, clock, deployments, start)

        return cls(scenario, clock, deployments, scheduler, cloud, controller, start)

    def start(self, predictors: SimulatedPredictors | None = None) -> list[asyncio.Task[Any]]:
        tasks = [
            asyncio.create_task(self.controller.run(), name="provisioner"),
            asyncio.create_task(self.disruption.run(), name="disruption"),
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
        ]
        if predictors is not None and is_predictive(self.scenario):
            self.headroom = HeadroomController(
                self.controller.cluster, self.clock, lambda: self.headroom_sources(predictors)
            )
            tasks.append(asyncio.create_task(self.headroom.run(), name="headroom"))
            self.disruption.expected = lambda: self.expected_pods(predictors)
        for name in self.deployments:
            tasks.append(asyncio.create_task(self.scheduler.sync(name), name=f"pods-{name}"))
        spec = self.scenario.spec.provisioning
        if spec is not None and spec.spot_storm is not None:
            tasks.append(asyncio.create_task(self._storm(), name="spot-storm"))
        return tasks

    def node_lead_seconds(self) -> float:
        """Pending pod to Ready node at worst: the batch window, the launch call, registration."""
        spec = self.scenario.spec.provisioning
        assert spec is not None
        options = self.controller.options
        return (
            options.batch_max_seconds
            + self.cloud.timing.api_seconds
            + spec.registration_seconds
            + spec.registration_jitter_seconds
        )

    def headroom_sources(self, predictors: SimulatedPredictors) -> list[HeadroomSource]:
        """Placeholders for each predictive workload: the pods its forecast needs once a node
        launched now is Ready and a pod on it has started (node lead + the pod's own lead)."""
        sources = []
        for name, d in self.deployments.items():
            predictor = predictors.predictors.get(d.workload.spec.name)
            if predictor is None:
                continue
            lead = self.node_lead_seconds() + predictor.config.lead_time
            sources.append(
                HeadroomSource(
                    name=name,
                    namespace=d.workload.so.metadata.namespace,
                    pod_spec=pod_manifest(d, f"{name}-headroom")["spec"],
                    forecast=predictor.forecast_replicas,
                    current=lambda d=d: d.desired,  # type: ignore[misc]
                    lead_seconds=lead,
                )
            )
        return sources

    def expected_pods(self, predictors: SimulatedPredictors) -> list[Pod]:
        """Forecast-aware consolidation: for each predictive workload, the pods its forecast
        needs in the coming `CONSOLIDATION_HORIZON_SECONDS` beyond its replicas and the
        placeholders already held, for the disruption planner to keep room for."""
        expected: list[Pod] = []
        held = self.headroom.held if self.headroom is not None else {}
        for name, d in self.deployments.items():
            predictor = predictors.predictors.get(d.workload.spec.name)
            if predictor is None:
                continue
            peak = predictor.peak_replicas(CONSOLIDATION_HORIZON_SECONDS)
            missing = (peak or 0) - d.desired - len(held.get(name, ()))
            if missing <= 0:
                continue
            shape = self._expected_shape.get(name)
            if shape is None:
                manifest = pod_manifest(d, f"{name}-expected")
                shape = self._expected_shape[name] = pod_from_manifest(manifest)
            expected += [replace(shape, name=f"{name}-expected-{i}") for i in range(missing)]
        return expected

    async def _storm(self) -> None:
        spec = self.scenario.spec.provisioning
        assert spec is not None and spec.spot_storm is not None
        storm = spec.spot_storm
        await self.clock.sleep(self.start_time + storm.at - self.clock.now())
        self.storm_notices = len(self.cloud.storm(storm.fraction, storm.within))

    def close(self) -> None:
        self.cloud.close()

    def result(self, end: float) -> NodeResult:
        ledger = self.controller.ledger.values()
        duration = end - self.start_time
        base_price, base_nodes = self.static_baseline()
        # billed from the start: the warm-up that gave the initial pods their nodes is free
        since = self.start_time
        spot = sum(r.seconds(end, since) for r in ledger if r.capacity_type == "spot")
        nodes = sum(r.seconds(end, since) for r in ledger)
        return NodeResult(
            cost=self.controller.node_cost(end, since),
            node_hours=nodes / 3600,
            spot_node_hours=spot / 3600,
            peak_nodes=self.scheduler.peak_nodes,
            launches=self.cloud.launched,
            insufficient_capacity_errors=self.controller.stats.ice_errors,
            empty_nodes_removed=self.disruption.stats.nodes.get("emptiness", 0),
            unschedulable_pods=len(self.controller.stats.unschedulable),
            baseline_cost=base_price * duration / 3600,
            baseline_nodes=base_nodes,
            duration_seconds=duration,
            consolidation=self.consolidation,
            disruption=self.disruption.stats,
            churn=self.disruption.churn(),
            pod_seconds=sum(d.accounts.replica_seconds for d in self.deployments.values()),
            pods_killed=sum(d.accounts.pods_killed for d in self.deployments.values()),
            pending_pod_seconds=sum(
                d.accounts.pending_pod_seconds for d in self.deployments.values()
            ),
            storm_notices=self.storm_notices,
            reschedule_waits=tuple(self.scheduler.reschedule_waits),
            never_rescheduled=self.scheduler.waiting_replacements,
        )

    def static_baseline(self) -> tuple[float, tuple[tuple[str, int], ...]]:
        """Price per hour of on-demand nodes that hold every workload at its peak replicas."""
        pods = []
        for name, d in self.deployments.items():
            w = d.workload
            peak = w.trace.peak_between(0, self.scenario.duration) / w.spec.pod.capacity_per_second
            pods += peak_pods(self.scheduler.template(name), math.ceil(peak))
        templates = [on_demand_only(node_template(p)) for p in self.scenario.node_pools]
        result = plan(pods, templates, self.controller.instance_types)
        counts: dict[str, int] = {}
        for n in result.new_nodes:
            counts[n.instance_type] = counts.get(n.instance_type, 0) + 1
        return result.total_price, tuple(sorted(counts.items()))


def node_result_json(n: NodeResult) -> dict[str, Any]:
    """The `nodes` block of `ebbflow simulate -o json` (documented in README)."""

    def money(x: float) -> float:
        return round(x, 4)

    return {
        "cost": money(n.cost),
        "costPerHour": money(n.cost_per_hour),
        "nodeHours": round(n.node_hours, 3),
        "spotNodeHours": round(n.spot_node_hours, 3),
        "peakNodes": n.peak_nodes,
        "launches": n.launches,
        "insufficientCapacityErrors": n.insufficient_capacity_errors,
        "emptyNodesRemoved": n.empty_nodes_removed,
        "unschedulablePods": n.unschedulable_pods,
        "baseline": {
            "kind": "static on-demand nodes sized for the peak",
            "cost": money(n.baseline_cost),
            "costPerHour": money(n.baseline_cost_per_hour),
            "nodes": [{"instanceType": t, "count": c} for t, c in n.baseline_nodes],
        },
        "savingsPercent": round(n.savings_percent, 3),
        "disruption": disruption_json(n),
    }


def disruption_json(n: NodeResult) -> dict[str, Any]:
    """The `nodes.disruption` block: what the disruption controller did, and churn."""
    stats = n.disruption or DisruptionStats()
    churn = n.churn
    lifetime = churn.min_replacement_lifetime if churn else None
    waits = n.reschedule_waits
    return {
        "consolidation": n.consolidation,
        "commands": dict(sorted(stats.commands.items())),
        "nodesRemoved": dict(sorted(stats.nodes.items())),
        "abandoned": stats.abandoned,
        "replacementFailures": stats.replacement_failures,
        "evictions": stats.evictions,
        "evictionsByMethod": dict(sorted(stats.evictions_by_method.items())),
        "evictionsPerPodDay": round(n.evictions_per_pod_day, 4),
        "evictionRetries": stats.eviction_retries,
        "forcedDeletions": stats.forced_deletions,
        "interruptions": stats.interruptions,
        "stormNotices": n.storm_notices,
        "podsKilled": n.pods_killed,
        "pendingPodSeconds": round(n.pending_pod_seconds, 1),
        "rescheduled": {
            "pods": len(waits),
            "pendingSeconds": round(sum(waits), 1),
            "maxPendingSeconds": round(max(waits, default=0.0), 1),
            "stillPending": n.never_rescheduled,
        },
        "churn": {
            "removals": churn.removals if churn else 0,
            "replacements": churn.replacements if churn else 0,
            "minReplacementLifetimeSeconds": None if lifetime is None else round(lifetime, 1),
            "replacedTooSoon": churn.replaced_too_soon if churn else 0,
            "flaps": churn.flaps if churn else 0,
            "shapeReturns": churn.shape_returns if churn else 0,
        },
    }
