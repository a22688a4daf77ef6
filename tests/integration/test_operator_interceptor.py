"""`ebbflow operator` and `ebbflow interceptor` wired as in a cluster, on real sockets.

The API emulator serves the in-memory cluster; the operator (production wiring, its own
KubeClient) pulls the interceptor's /queue and serves the activation push on its metrics
port; the interceptor (its own KubeClient) forwards to a real aiohttp upstream. The test
plays the kubelet: it makes the endpoint ready once the operator has scaled the target.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import scaler.http_api
from ebbflow.operator.run import Operator
from ebbflow.settings import OperatorSettings
from kube.apiserver.serve import RunningServer, serve, write_kubeconfig
from kube.client import KubeClient
from kube.memory import MemoryCluster
from kube.port import DEPLOYMENTS, EVENTS, HTTP_SCALED_OBJECTS
from scaler.api import ScaledObject
from scaler.clock import RealClock
from scaler.interceptor.push import ActivationPusher
from scaler.interceptor.server import InterceptorService, start_site
from scalers.base import MetricSpec, Scaler
from tests.integration.test_interceptor import HOST, add_service, http_scaled_object, make_ready


async def no_scalers(so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
    raise AssertionError("no ScaledObject in this test")


@pytest.fixture
async def api() -> AsyncIterator[tuple[MemoryCluster, RunningServer]]:
    cluster = MemoryCluster(now=time.time)
    running = await serve(cluster, bookmark_interval=0.2)
    yield cluster, running
    await running.close()
    cluster.close()


async def watch_until(
    cluster: MemoryCluster, kind: Any, name: str, holds: Any, within: float = 15
) -> dict[str, Any]:
    """The object once `holds(object)`, by watching the cluster (no polling, no sleeps)."""
    async with asyncio.timeout(within):
        items, version = await cluster.list(kind, "default")
        for item in items:
            if item["metadata"]["name"] == name and holds(item):
                return item
        async for event in cluster.watch(kind, "default", resource_version=version):
            if event.object["metadata"]["name"] == name and holds(event.object):
                return event.object
    raise AssertionError("watch ended")


async def test_a_request_at_zero_is_pushed_scaled_by_the_operator_and_served(
    api: tuple[MemoryCluster, RunningServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an hour between polls: within the test's deadlines only the push can scale the target
    monkeypatch.setattr(scaler.http_api, "HTTP_POLLING_INTERVAL", 3600)
    cluster, running = api
    upstream = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path_qs})

    upstream.router.add_get("/hello", hello)
    upstream_runner, upstream_port = await start_site(upstream, "127.0.0.1", 0)
    await add_service(cluster, "web", replicas=0)
    await cluster.create(HTTP_SCALED_OBJECTS, http_scaled_object())

    config = write_kubeconfig(tmp_path / "kubeconfig", running.url)
    operator_kube = await KubeClient.from_kubeconfig(str(config))
    interceptor_kube = await KubeClient.from_kubeconfig(str(config))
    session = aiohttp.ClientSession()
    pusher = ActivationPusher([], session)
    interceptor = InterceptorService(interceptor_kube, RealClock(), activate=pusher.activate)
    await interceptor.start()
    settings = OperatorSettings(
        identity="it",
        metrics_host="127.0.0.1",
        metrics_port=0,
        lease_duration=3,
        renew_deadline=2,
        retry_period=0.2,
        interceptor_urls=f"http://127.0.0.1:{interceptor.admin_port}",
    )
    operator = Operator(operator_kube, RealClock(), no_scalers, settings)
    assert operator.http is not None
    operator.http.stagger = False  # its first poll at once: the test waits for its status
    stop = asyncio.Event()
    task = asyncio.create_task(operator.run(stop))
    try:
        # the first poll (nothing held: stays at zero) has written the Ready condition
        await watch_until(
            cluster, HTTP_SCALED_OBJECTS, "web", lambda o: "conditions" in (o.get("status") or {})
        )
        assert operator.port is not None
        operator_url = f"http://127.0.0.1:{operator.port}"
        pusher.urls.append(operator_url)

        proxy = f"http://127.0.0.1:{interceptor.proxy_port}/hello?n=1"
        request = asyncio.ensure_future(session.get(proxy, headers={"Host": HOST}))
        scaled = await watch_until(cluster, DEPLOYMENTS, "web", lambda o: o["spec"]["replicas"])
        assert scaled["spec"]["replicas"] == 1  # one held request / concurrency target 10
        assert not request.done()  # still held: no endpoint is ready yet
        await make_ready(cluster, "web", upstream_port)  # the kubelet's part
        async with asyncio.timeout(15):
            response = await request
        assert response.status == 200
        assert (await response.json()) == {"path": "/hello?n=1"}
        response.release()
        assert (pusher.sent, pusher.failed) == (1, 0)

        # the Event is written after the scale patch, so it may trail the proxied response
        async with asyncio.timeout(15):
            events, version = await cluster.list(EVENTS, "default")
            if not any(e["reason"] == "KEDAScaleTargetActivated" for e in events):
                async for event in cluster.watch(EVENTS, "default", resource_version=version):
                    if event.object["reason"] == "KEDAScaleTargetActivated":
                        break
        activated = [
            e
            for e in (await cluster.list(EVENTS, "default"))[0]
            if e["reason"] == "KEDAScaleTargetActivated"
        ]
        assert activated and activated[0]["involvedObject"]["kind"] == "HTTPScaledObject"

        # the push endpoint answers for objects this operator drives only
        activate = operator_url + "/interceptor/activate"
        async with session.post(activate, params={"namespace": "default", "name": "nope"}) as r:
            assert r.status == 404
        async with session.post(activate, params={"namespace": "default"}) as r:
            assert r.status == 400
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task
        await interceptor.close()
        await pusher.close()
        await session.close()
        await upstream_runner.cleanup()
        await operator_kube.close()
        await interceptor_kube.close()


async def test_without_interceptor_urls_http_scaled_objects_are_not_driven() -> None:
    settings = OperatorSettings(identity="it")
    operator = Operator(MemoryCluster(), RealClock(), no_scalers, settings)
    assert operator.http is None
    with pytest.raises(ValueError, match="must start with http"):
        OperatorSettings(identity="it", interceptor_urls="interceptor:9090")
