"""The interceptor over real sockets: a real aiohttp upstream, a real client, the in-memory
cluster for HTTPScaledObjects and Endpoints, and the real HTTP scaling controller."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kube.memory import MemoryCluster
from kube.port import DEPLOYMENTS, ENDPOINTS, EVENTS, HTTP_SCALED_OBJECTS, SERVICES
from scaler.clock import RealClock
from scaler.http_scaling import HTTPScalingController, RouteScalers
from scaler.interceptor.proxy import InterceptorSettings
from scaler.interceptor.server import InterceptorService, start_site

HOST = "web.example"
MB = 1024 * 1024
CHUNK = 64 * 1024


# --- the upstream app -----------------------------------------------------------------


@dataclass
class Upstream:
    """A real aiohttp app; its handlers record what they saw."""

    seen_headers: list[dict[str, str]] = field(default_factory=list)
    upload_started: asyncio.Event = field(default_factory=asyncio.Event)
    download_gate: asyncio.Event = field(default_factory=asyncio.Event)
    name: str = "web"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_post("/upload", self.upload)
        app.router.add_get("/download", self.download)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/sse", self.events)
        return app

    async def echo(self, request: web.Request) -> web.Response:
        self.seen_headers.append(dict(request.headers))
        return web.json_response(
            {"upstream": self.name, "path": request.path_qs, "method": request.method},
            headers={"Connection": "keep-alive, X-Hop", "X-Hop": "drop me", "X-End": "keep"},
        )

    async def upload(self, request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            if size == 0:
                self.upload_started.set()
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def download(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        await response.write(b"\x01" * CHUNK)
        # the rest only once the client has the first chunk: a buffering proxy never would
        await self.download_gate.wait()
        for _ in range(10 * MB // CHUNK - 1):
            await response.write(b"\x01" * CHUNK)
        await response.write_eof()
        return response

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("echo.v1",))
        await ws.prepare(request)
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                await ws.send_str(f"echo:{message.data}")
            elif message.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(3):
            await response.write(f"id: {i}\ndata: tick {i}\n\n".encode())
        await response.write_eof()
        return response


# --- the world: cluster objects, the interceptor, the controller -------------------------


def http_scaled_object(name: str = "web", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hosts": [HOST],
        "scaleTargetRef": {"name": name, "service": name, "port": 80},
        "replicas": {"min": 0, "max": 5},
        "scalingMetric": {"concurrency": {"targetValue": 10}},
    }
    body.update(spec)
    return {  # stored under our group, as the API server stores http.keda.sh objects
        "apiVersion": "ebbflow.io/v1alpha1",
        "kind": "HTTPScaledObject",
        "metadata": {"name": name, "namespace": "default"},
        "spec": body,
    }


async def add_service(cluster: MemoryCluster, name: str, replicas: int = 0) -> None:
    await cluster.create(
        DEPLOYMENTS,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
        },
    )
    await cluster.create(
        SERVICES,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    )
    await cluster.create(
        ENDPOINTS,
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "default"},
        },
    )


async def make_ready(cluster: MemoryCluster, name: str, port: int) -> None:
    """What the kubelet and the endpoints controller do when a pod becomes ready."""
    await cluster.patch(
        ENDPOINTS,
        name,
        {
            "subsets": [
                {
                    "addresses": [{"ip": "127.0.0.1"}],
                    "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
                }
            ]
        },
        "default",
    )


@dataclass
class World:
    cluster: MemoryCluster
    service: InterceptorService
    upstream: Upstream
    upstream_port: int
    client: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service.proxy_port}"

    def pending(self, name: str = "web") -> int:
        counter = self.service.interceptor.counts.snapshot().get(("default", name))
        return counter.pending if counter else 0

    async def held(self, count: int, name: str = "web") -> None:
        await asyncio.wait_for(
            self.service.interceptor.wait_for(lambda: self.pending(name) == count), 10
        )

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(self.url + path, headers={"Host": HOST}, **kwargs)


async def _serve(app: web.Application) -> tuple[web.BaseRunner, int]:
    return await start_site(app, "127.0.0.1", 0)


@pytest.fixture
async def world_factory() -> AsyncIterator[Callable[..., Awaitable[World]]]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def build(
        hso: dict[str, Any] | None = None,
        settings: InterceptorSettings | None = None,
        ready: bool = True,
        controller: bool = False,
    ) -> World:
        cluster = MemoryCluster(now=time.time)
        upstream = Upstream()
        runner, port = await _serve(upstream.app())
        cleanups.append(runner.cleanup)
        await add_service(cluster, "web", replicas=1 if ready else 0)
        if ready:
            await make_ready(cluster, "web", port)
        await cluster.create(HTTP_SCALED_OBJECTS, hso or http_scaled_object())
        service = InterceptorService(
            cluster, RealClock(), settings=settings or InterceptorSettings()
        )
        if controller:
            scaling = HTTPScalingController(
                cluster, RealClock(), RouteScalers(service.interceptor.counts)
            )
            service.interceptor.activate = lambda key: scaling.wake(*key)
            task = asyncio.create_task(scaling.run())

            async def stop_controller() -> None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

            cleanups.append(stop_controller)
        await service.start()
        cleanups.append(service.close)
        client = aiohttp.ClientSession(auto_decompress=False)
        cleanups.append(client.close)
        cleanups.append(cluster.close)  # type: ignore[arg-type]
        return World(cluster, service, upstream, port, client)

    yield build
    for cleanup in reversed(cleanups):
        result = cleanup()
        if asyncio.iscoroutine(result):
            await result


# --- cold start -----------------------------------------------------------------------


async def wait_for_replicas(cluster: MemoryCluster, name: str) -> int:
    """Block until the Deployment asks for at least one replica (a /scale patch)."""
    items, version = await cluster.list(DEPLOYMENTS, "default")
    for item in items:
        if item["metadata"]["name"] == name and item["spec"]["replicas"] >= 1:
            return int(item["spec"]["replicas"])
    async for event in cluster.watch(DEPLOYMENTS, "default", resource_version=version):
        if event.object["metadata"]["name"] == name and event.object["spec"]["replicas"] >= 1:
            return int(event.object["spec"]["replicas"])
    raise AssertionError("watch ended")


async def test_scale_from_zero_holds_every_request_until_the_upstream_is_ready(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    world = await world_factory(ready=False, controller=True)
    requests = [asyncio.ensure_future(world.get(f"/echo?n={i}")) for i in range(5)]
    # the push: the Deployment is scaled up while the requests are held, not after a poll
    replicas = await asyncio.wait_for(wait_for_replicas(world.cluster, "web"), 10)
    await world.held(5)
    assert replicas == 1  # 5 in flight / concurrency target 10
    await make_ready(world.cluster, "web", world.upstream_port)
    responses = await asyncio.gather(*requests)
    bodies = []
    for response in responses:
        assert response.status == 200
        bodies.append(await response.json())
        response.release()
    assert sorted(b["path"] for b in bodies) == [f"/echo?n={i}" for i in range(5)]
    assert world.pending() == 0
    events, _ = await world.cluster.list(EVENTS, "default")
    reasons = {e["reason"] for e in events if e["involvedObject"]["kind"] == "HTTPScaledObject"}
    assert "KEDAScaleTargetActivated" in reasons


async def test_a_full_hold_queue_answers_503_with_retry_after(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    world = await world_factory(ready=False, settings=InterceptorSettings(max_pending=2))
    held = [asyncio.ensure_future(world.get("/echo")) for _ in range(2)]
    await world.held(2)
    async with world.get("/echo") as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
    await make_ready(world.cluster, "web", world.upstream_port)
    for response in await asyncio.gather(*held):
        assert response.status == 200
        response.release()


async def test_no_ready_endpoint_within_condition_wait_answers_504(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    hso = http_scaled_object(timeouts={"conditionWait": "200ms"})
    world = await world_factory(hso=hso, ready=False)
    async with world.get("/echo") as response:
        assert response.status == 504
        assert "no ready endpoint" in await response.text()
    assert world.pending() == 0


async def test_cold_start_timeout_goes_to_the_failover_service(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    hso = http_scaled_object(
        coldStartTimeoutFailoverRef={"service": "fallback", "port": 80, "timeoutSeconds": 1}
    )
    world = await world_factory(hso=hso, ready=False)
    fallback = Upstream(name="fallback")
    runner, port = await _serve(fallback.app())
    try:
        await add_service(world.cluster, "fallback", replicas=1)
        await make_ready(world.cluster, "fallback", port)
        async with world.get("/echo") as response:
            assert response.status == 200
            assert (await response.json())["upstream"] == "fallback"
    finally:
        await runner.cleanup()


async def test_a_client_that_disconnects_while_held_frees_its_slot(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    world = await world_factory(ready=False, settings=InterceptorSettings(max_pending=1))
    first = asyncio.ensure_future(world.get("/echo"))
    await world.held(1)
    first.cancel()  # the client goes away: aiohttp closes the connection
    await asyncio.gather(first, return_exceptions=True)
    await world.held(0)
    # the slot is free: the next request is held again, not refused
    second = asyncio.ensure_future(world.get("/echo"))
    await world.held(1)
    await make_ready(world.cluster, "web", world.upstream_port)
    response = await second
    assert response.status == 200
    response.release()


# --- streaming, websockets, headers ----------------------------------------------------


async def test_a_10mb_upload_streams_through_without_buffering(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    world = await world_factory()
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for i in range(10 * MB // CHUNK):
            chunk = bytes([i % 251]) * CHUNK
            digest.update(chunk)
            yield chunk
            if i == 0:
                # the upstream sees the first chunk while the rest is unsent: nothing buffers
                await asyncio.wait_for(world.upstream.upload_started.wait(), 10)

    url = world.url + "/upload"
    async with world.client.post(url, data=body(), headers={"Host": HOST}) as response:
        assert response.status == 200
        result = await response.json()
    assert result == {"size": 10 * MB, "sha256": digest.hexdigest()}


async def test_a_10mb_download_streams_through_without_buffering(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    world = await world_factory()
    size = 0
    async with world.get("/download") as response:
        assert response.status == 200
        async for chunk in response.content.iter_any():
            if size == 0:
                world.upstream.download_gate.set()  # the upstream sends the rest only now
            size += len(chunk)
    assert size == 10 * MB


async def test_websockets_are_relayed_both_ways(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    world = await world_factory()
    async with world.client.ws_connect(
        world.url + "/ws", headers={"Host": HOST}, protocols=("echo.v1",)
    ) as ws:
        assert ws.protocol == "echo.v1"
        await ws.send_str("hello")
        assert (await ws.receive_str()) == "echo:hello"
        await ws.send_bytes(b"abc")
        assert (await ws.receive_bytes()) == b"cba"


async def test_server_sent_events_arrive_as_sent(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    world = await world_factory()
    async with world.get("/sse") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        text = await response.text()
    assert text == "".join(f"id: {i}\ndata: tick {i}\n\n" for i in range(3))


async def test_hop_by_hop_headers_stop_and_forwarded_headers_are_set(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    world = await world_factory()
    headers = {
        "Host": HOST,
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "TE": "trailers",
        "X-Forwarded-For": "203.0.113.9",
        "X-End-To-End": "yes",
    }
    async with world.client.get(world.url + "/echo", headers=headers) as response:
        assert response.status == 200
        assert "X-Hop" not in response.headers  # named by the upstream's Connection
        assert response.headers["X-End"] == "keep"
        assert response.headers["Via"] == "1.1 ebbflow"
    seen = {k.lower(): v for k, v in world.upstream.seen_headers[-1].items()}
    assert "x-secret-hop" not in seen and "te" not in seen
    assert seen["x-end-to-end"] == "yes"
    assert seen["host"] == HOST
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-host"] == HOST
    assert seen["x-forwarded-proto"] == "http"
    assert seen["via"] == "1.1 ebbflow"


async def test_unrouted_hosts_get_404_and_queue_reports_counts(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    world = await world_factory()
    async with world.client.get(world.url + "/echo", headers={"Host": "other.example"}) as r:
        assert r.status == 404
    for _ in range(3):
        async with world.get("/echo") as response:
            assert response.status == 200
    admin = f"http://127.0.0.1:{world.service.admin_port}"
    async with world.client.get(admin + "/queue") as response:
        counts = await response.json()
    assert counts["default/web"]["total"] == 3
    assert counts["default/web"]["concurrency"] == 0
    assert counts["default/web"]["requestRate"] == pytest.approx(3 / 60)


async def test_the_operator_side_pulls_queue_and_receives_pushed_activations(
    world_factory: Callable[..., Awaitable[World]],
) -> None:
    from scaler.http_scaling import PulledCounts
    from scaler.interceptor.push import ActivationPusher, add_activation_route
    from scalers.base import SourceUnreachable
    from tests.integration.ports import free_port

    world = await world_factory()
    for _ in range(2):
        async with world.get("/echo") as response:
            assert response.status == 200
    admin = f"http://127.0.0.1:{world.service.admin_port}"
    pulled = await PulledCounts([admin], world.client).metrics(("default", "web"))
    assert pulled.total == 2
    with pytest.raises(SourceUnreachable):  # an unknown count is an error, never a zero
        await PulledCounts([f"http://127.0.0.1:{free_port()}"], world.client).metrics(
            ("default", "web")
        )

    woken = asyncio.Event()
    driven = {("default", "web")}

    def wake(namespace: str, name: str) -> bool:
        woken.set()
        return (namespace, name) in driven

    operator = web.Application()
    add_activation_route(operator, wake)
    runner, port = await _serve(operator)
    try:
        pusher = ActivationPusher([f"http://127.0.0.1:{port}"], world.client)
        pusher.activate(("default", "web"))
        await asyncio.wait_for(woken.wait(), 10)
        await pusher.close()
    finally:
        await runner.cleanup()
