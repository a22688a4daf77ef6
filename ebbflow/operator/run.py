"""The operator: the scaling controller behind leader election (or shards), with /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ebbflow.operator.health import health_app, start_health_server
from ebbflow.operator.leader import LeaseTiming
from ebbflow.operator.metrics import OperatorMetrics
from ebbflow.operator.shards import ShardLeases
from ebbflow.settings import OperatorSettings
from kube.port import Cluster
from scaler.clock import Clock
from scaler.controller import ScalerFactory, ScalingController
from scaler.jobs import JobScalerFactory, ScaledJobController

log = logging.getLogger("ebbflow.operator")


def _nothing(namespace: str, name: str) -> bool:
    return False  # until a Lease is held, this replica drives nothing


class Operator:
    """Wires the controller, the Leases and the HTTP endpoints; `run` until `stop` is set."""

    def __init__(
        self,
        cluster: Cluster,
        clock: Clock,
        scalers: ScalerFactory,
        settings: OperatorSettings,
        job_scalers: JobScalerFactory | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = OperatorMetrics()
        self.controller = ScalingController(
            cluster,
            clock,
            scalers,
            namespace=settings.watch_namespace,
            observer=self.metrics,
            owns=_nothing,
            stagger=True,
        )
        # ScaledJobs share the shards: a ScaledJob is driven by the leader of its shard
        self.jobs = (
            ScaledJobController(
                cluster, clock, job_scalers, namespace=settings.watch_namespace, owns=_nothing
            )
            if job_scalers is not None
            else None
        )
        self.leases = ShardLeases(
            cluster,
            clock,
            settings.lease_namespace,
            settings.identity,
            settings.shards,
            on_change=self._shards_changed,
            ordinal=settings.ordinal,
            replicas=settings.replicas,
            timing=LeaseTiming(
                settings.lease_duration, settings.renew_deadline, settings.retry_period
            ),
        )
        self.port: int | None = None

    async def _shards_changed(self, led: frozenset[int]) -> None:
        log.info("leading shards %s", sorted(led), extra={"shards": sorted(led)})
        owns = self.leases.owns if led else _nothing
        await self.controller.set_ownership(owns)
        if self.jobs is not None:
            await self.jobs.set_ownership(owns)

    def ready(self) -> bool:
        return self.controller.listed

    async def run(self, stop: asyncio.Event, serve_http: bool = True) -> None:
        runner = None
        if serve_http:
            app = health_app(self.metrics.registry, self.ready)
            runner, self.port = await start_health_server(
                app, self.settings.metrics_host, self.settings.metrics_port
            )
        tasks = [asyncio.create_task(self.controller.run(), name="scaling-controller")]
        if self.jobs is not None:
            tasks.append(asyncio.create_task(self.jobs.run(), name="scaledjob-controller"))
        tasks.append(asyncio.create_task(self.leases.run(), name="leases"))
        waiter = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiter:
                    task.result()  # a component that died takes the operator down, loudly
        finally:
            # leases first: they step down (stopping the controller's work) and release
            for task in reversed(tasks):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            waiter.cancel()
            if runner is not None:
                await runner.cleanup()
