"""`ebbflow interceptor`: the HTTP proxy that counts requests and holds them through cold starts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ebbflow.commands.common import fail

if TYPE_CHECKING:
    from kube.memory import MemoryCluster


async def load_static_cluster(paths: list[Path]) -> MemoryCluster:
    """An in-memory cluster holding the HTTPScaledObjects, Services and Endpoints of `paths`.

    Raises ValueError naming the file, document and field of the first invalid object.
    """
    from kube.memory import MemoryCluster
    from kube.port import ClusterError, NotFound, kind_for
    from scaler.manifests import load_documents

    cluster = MemoryCluster()
    for path in paths:
        for doc in load_documents(path):
            errors = [i for i in doc.issues if i.severity == "error"]
            if errors:
                raise ValueError(str(errors[0]))
            raw = doc.raw
            if raw is None:
                continue
            try:
                kind = kind_for(str(raw.get("apiVersion", "")), str(raw.get("kind", "")))
            except NotFound:
                continue  # not a kind the interceptor reads
            if kind.kind not in ("HTTPScaledObject", "Service", "Endpoints"):
                continue
            stored = dict(raw, apiVersion=kind.api_version)  # http.keda.sh -> our group
            try:
                await cluster.create(kind, stored)
            except ClusterError as exc:
                where = f"{path}:doc {doc.document}"
                raise ValueError(f"{where}: {raw.get('kind')}: {exc}") from None
    return cluster


async def run_interceptor(
    kubeconfig: str | None,
    context: str | None,
    manifests: list[Path],
    namespace: str | None,
    host: str,
    port: int,
    admin_port: int,
    operator_urls: list[str],
    max_pending: int,
    condition_wait: float,
    response_header_timeout: float,
) -> None:
    """Serve until SIGTERM/SIGINT."""
    import asyncio
    import signal

    import aiohttp

    from kube.port import Cluster
    from scaler.clock import RealClock
    from scaler.interceptor.proxy import InterceptorSettings
    from scaler.interceptor.push import ActivationPusher
    from scaler.interceptor.server import InterceptorService

    cluster: Cluster
    if manifests:
        cluster = await load_static_cluster(manifests)
    else:
        from kube.client import KubeClient

        cluster = await KubeClient.from_kubeconfig(kubeconfig, context)
    session = aiohttp.ClientSession()
    pusher = ActivationPusher(operator_urls, session)
    settings = InterceptorSettings(
        max_pending=max_pending,
        condition_wait=condition_wait,
        response_header_timeout=response_header_timeout,
    )
    service = InterceptorService(
        cluster,
        RealClock(),
        namespace,
        settings,
        activate=pusher.activate,
        proxy_port=port,
        admin_port=admin_port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start(host)
    print(
        f"interceptor: proxy on {host}:{service.proxy_port}, /queue on {host}:{service.admin_port}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await service.close()
        await pusher.close()
        await session.close()
        close = getattr(cluster, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result


def interceptor(
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG, else in-cluster).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context.")] = None,
    manifests: Annotated[
        list[Path] | None,
        typer.Option(
            "--manifests",
            "-f",
            help="Serve the HTTPScaledObjects, Services and Endpoints of these files "
            "instead of a cluster's (repeatable).",
        ),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Watch one namespace (default: all).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Proxy port (routed traffic).")] = 8080,
    admin_port: Annotated[int, typer.Option(help="Admin port: /queue, /healthz, /readyz.")] = 9090,
    operator_url: Annotated[
        list[str] | None,
        typer.Option(help="Push activations to this operator (repeatable), e.g. http://op:8080."),
    ] = None,
    max_pending_requests: Annotated[
        int, typer.Option(min=1, help="Requests held per route at zero before 503.")
    ] = 1000,
    condition_wait: Annotated[
        float, typer.Option(min=0.001, help="Seconds a held request waits for a ready endpoint.")
    ] = 20.0,
    response_header_timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds to wait for the upstream's response headers.")
    ] = 60.0,
    use_uvloop: Annotated[bool, typer.Option("--uvloop/--no-uvloop", help="Run on uvloop.")] = True,
) -> None:
    """Run the HTTP interceptor: route by host and path to each HTTPScaledObject's Service,
    count requests (served on /queue), and hold requests at zero until a pod is ready."""
    import asyncio

    runner = asyncio.run
    if use_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
            pass
    try:
        runner(
            run_interceptor(
                str(kubeconfig) if kubeconfig else None,
                context,
                list(manifests or []),
                namespace,
                host,
                port,
                admin_port,
                list(operator_url or []),
                max_pending_requests,
                condition_wait,
                response_header_timeout,
            )
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
