"""The operator: the scaling controllers behind leader election (or shards), with /metrics.

With `interceptor_urls` set, HTTPScaledObjects are driven too: their counts are pulled
from the interceptors' /queue, and an activation pushed to POST /interceptor/activate (on
the metrics port) polls the object at once.
"""

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
from scaler.history import PrometheusPredictors
from scaler.http_scaling import HTTPScalingController, PulledCounts, RouteScalers
from scaler.interceptor.counting import CountsSource
from scaler.interceptor.push import add_activation_route
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
        http_counts: CountsSource | None = None,
    ) -> None:
        """`http_counts` overrides where HTTPScaledObjects read their counts (default: the
        interceptors of `settings.interceptor_urls`; neither: they are not driven)."""
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
            predictors=PrometheusPredictors(
                clock, settings.predictive_pod_startup, settings.predictive_node_launch
            ),
        )
        # ScaledJobs share the shards: a ScaledJob is driven by the leader of its shard
        self.jobs = (
            ScaledJobController(
                cluster, clock, job_scalers, namespace=settings.watch_namespace, owns=_nothing
            )
            if job_scalers is not None
            else None
        )
        # HTTPScaledObjects share the shards too; the pulled counts are read by every one
        urls = settings.interceptor_admin_urls
        self._pulled = (
            PulledCounts(urls, timeout=settings.read_timeout)
            if http_counts is None and urls
            else None
        )
        counts = http_counts or self._pulled
        self.http = (
            HTTPScalingController(
                cluster,
                clock,
                RouteScalers(counts),
                namespace=settings.watch_namespace,
                observer=self.metrics,
                owns=_nothing,
                stagger=True,
            )
            if counts is not None
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
        if self.http is not None:
            await self.http.set_ownership(owns)

    def activate(self, namespace: str, name: str) -> bool:
        """A pushed activation: poll the HTTPScaledObject now, on counts read afresh."""
        if self.http is None:
            return False
        if self._pulled is not None:
            self._pulled.invalidate()
        return self.http.wake(namespace, name)

    def ready(self) -> bool:
        return self.controller.listed and (self.http is None or self.http.listed)

    async def run(self, stop: asyncio.Event, serve_http: bool = True) -> None:
        runner = None
        if serve_http:
            app = health_app(self.metrics.registry, self.ready)
            if self.http is not None:  # the interceptor's push: 202 here, 404 on another shard
                add_activation_route(app, self.activate)
            runner, self.port = await start_health_server(
                app, self.settings.metrics_host, self.settings.metrics_port
            )
        tasks = [asyncio.create_task(self.controller.run(), name="scaling-controller")]
        if self.jobs is not None:
            tasks.append(asyncio.create_task(self.jobs.run(), name="scaledjob-controller"))
        if self.http is not None:
            tasks.append(asyncio.create_task(self.http.run(), name="http-scaling-controller"))
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
            if self._pulled is not None:
                await self._pulled.close()
