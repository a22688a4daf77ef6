"""`ebbflow operator`: the production wiring against a real cluster."""

from __future__ import annotations

import asyncio
import logging
import signal

from ebbflow.logs import configure
from ebbflow.operator.run import Operator
from ebbflow.settings import OperatorSettings
from kube.client import KubeClient
from kube.metrics import ClusterResourceMetrics
from scaler.clock import RealClock
from scaler.sources import LiveScalers
from scalers.pools import Pools

log = logging.getLogger("ebbflow.operator")


async def run_operator(
    settings: OperatorSettings, kubeconfig: str | None = None, context: str | None = None
) -> None:
    """Run until SIGTERM/SIGINT; on the way out, Leases are released and clients closed."""
    configure(settings.log_format, settings.log_level)
    cluster = await KubeClient.from_kubeconfig(kubeconfig, context)
    clock = RealClock()
    pools = Pools(open_seconds=settings.circuit_open_seconds)
    scalers = LiveScalers(
        cluster,
        pools,
        settings.read_timeout,
        cluster_auth_namespace=settings.cluster_auth_namespace,
        now=clock.now,
        resource_metrics=ClusterResourceMetrics(cluster),
    )
    operator = Operator(cluster, clock, scalers, settings, job_scalers=scalers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "ebbflow operator starting",
        extra={"identity": settings.identity, "shards": settings.shards},
    )
    try:
        await operator.run(stop)
    finally:
        await pools.close()
        await cluster.close()
        log.info("ebbflow operator stopped")
