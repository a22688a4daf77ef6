"""The interceptor's HTTP/1.1 handling over real sockets: raw clients and raw upstreams
where the framing itself is what is proved (pipelining, HTTP/1.0, HEAD, bodies ended by
close, stale pooled connections, Expect, malformed requests, timeouts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from kube.memory import MemoryCluster
from kube.port import HTTP_SCALED_OBJECTS
from scaler.clock import RealClock
from scaler.interceptor.server import InterceptorService, start_site
from tests.integration.ports import free_port
from tests.integration.test_interceptor import HOST, add_service, http_scaled_object, make_ready

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_response(
    reader: asyncio.StreamReader, head_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One response off a raw connection: status, fields (lower-cased names), body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    fields = {
        k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)
    }
    if head_only or status < 200 or status in (204, 304):
        return status, fields, b""
    if "content-length" in fields:
        return status, fields, await reader.readexactly(int(fields["content-length"]))
    if fields.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readexactly(2)
        return status, fields, body
    return status, fields, await reader.read()  # ended by close


class Proxy:
    """An interceptor routing HOST to one upstream port; raw connections to it."""

    def __init__(self, service: InterceptorService) -> None:
        self.service = service

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.service.proxy_port)

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        reader, writer = await self.connect()
        writer.write(request)
        try:
            return await read_response(reader)
        finally:
            writer.close()


@pytest.fixture
async def proxy_to() -> AsyncIterator[Callable[..., Awaitable[Proxy]]]:
    cleanups: list[Callable[[], Any]] = []

    async def build(port: int, **spec: Any) -> Proxy:
        cluster = MemoryCluster(now=time.time)
        cleanups.append(cluster.close)
        await add_service(cluster, "web", replicas=1)
        await make_ready(cluster, "web", port)
        await cluster.create(HTTP_SCALED_OBJECTS, http_scaled_object(**spec))
        service = InterceptorService(cluster, RealClock())
        await service.start()
        cleanups.append(service.close)
        return Proxy(service)

    yield build
    for cleanup in reversed(cleanups):
        result = cleanup()
        if asyncio.iscoroutine(result):
            await result


@pytest.fixture
async def raw_upstream() -> AsyncIterator[Callable[[Serve], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(serve: Serve) -> int:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def app_upstream() -> AsyncIterator[tuple[int, list[Any]]]:
    """An aiohttp upstream: /echo answers the path; each request's peer is recorded."""
    peers: list[Any] = []

    async def echo(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        text = f"{request.method} {request.path_qs} {await request.read()!r}"
        if request.host != HOST:
            text += f" host={request.host}"
        return web.Response(text=text)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner, port = await start_site(app, "127.0.0.1", 0)
    yield port, peers
    await runner.cleanup()


def get(path: str, *extra: str, version: str = "1.1", method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", f"Host: {HOST}", *extra, "", ""]
    return "\r\n".join(lines).encode()


async def test_pipelined_requests_are_answered_in_order_on_one_upstream_connection(
    proxy_to: Callable[..., Awaitable[Proxy]], app_upstream: tuple[int, list[Any]]
) -> None:
    port, peers = app_upstream
    proxy = await proxy_to(port)
    reader, writer = await proxy.connect()
    writer.write(b"".join(get(f"/echo?n={i}") for i in range(5)))
    bodies = [(await read_response(reader))[2] for _ in range(5)]
    writer.close()
    assert bodies == [f"GET /echo?n={i} b''".encode() for i in range(5)]
    assert len(set(peers)) == 1  # pooled: one keep-alive connection upstream


async def test_an_http10_client_gets_a_body_of_unknown_length_ended_by_close(
    proxy_to: Callable[..., Awaitable[Proxy]], raw_upstream: Callable[[Serve], Awaitable[int]]
) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello, ")
        await writer.drain()
        writer.write(b"world")
        writer.close()

    proxy = await proxy_to(await raw_upstream(serve))
    status, fields, body = await proxy.exchange(get("/", version="1.0"))
    assert (status, body) == (200, b"hello, world")
    assert "transfer-encoding" not in fields and fields["connection"] == "close"
    # an HTTP/1.1 client gets the same body re-framed as chunks, on a connection kept open
    status, fields, body = await proxy.exchange(get("/"))
    assert (status, body, fields["transfer-encoding"]) == (200, b"hello, world", "chunked")
    assert "connection" not in fields


async def test_head_gets_the_head_alone_and_the_connection_goes_on(
    proxy_to: Callable[..., Awaitable[Proxy]], app_upstream: tuple[int, list[Any]]
) -> None:
    proxy = await proxy_to(app_upstream[0])
    reader, writer = await proxy.connect()
    writer.write(get("/echo", method="HEAD"))
    status, fields, _ = await read_response(reader, head_only=True)
    assert status == 200 and int(fields["content-length"]) > 0
    writer.write(get("/echo?after=head"))
    assert (await read_response(reader))[2] == b"GET /echo?after=head b''"
    writer.close()


async def test_a_stale_pooled_connection_is_retried_for_a_get_but_not_for_a_post(
    proxy_to: Callable[..., Awaitable[Proxy]], raw_upstream: Callable[[Serve], Awaitable[int]]
) -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # answers the first request of a connection, then closes on the second unanswered:
        # what an upstream whose keep-alive timeout just ran out does
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    proxy = await proxy_to(await raw_upstream(serve))
    reader, writer = await proxy.connect()
    for _ in range(2):
        writer.write(get("/"))
        assert (await read_response(reader))[::2] == (200, b"ok")
    assert connections == 2  # the second went again on a fresh connection
    post = get("/", "Content-Length: 1", method="POST") + b"x"
    writer.write(post)
    status, _, body = await read_response(reader)
    writer.close()
    assert status == 502 and b"connection closed" in body  # RFC 9110 9.2.2: not repeated


async def test_expect_100_continue_is_answered_by_the_proxy_then_the_body_streams(
    proxy_to: Callable[..., Awaitable[Proxy]], app_upstream: tuple[int, list[Any]]
) -> None:
    proxy = await proxy_to(app_upstream[0])
    reader, writer = await proxy.connect()
    writer.write(get("/up", "Expect: 100-continue", "Content-Length: 5", method="POST"))
    assert (await read_response(reader))[0] == 100
    writer.write(b"hello")
    assert (await read_response(reader))[::2] == (200, b"POST /up b'hello'")
    writer.close()


async def test_a_chunked_upload_is_relayed(
    proxy_to: Callable[..., Awaitable[Proxy]], app_upstream: tuple[int, list[Any]]
) -> None:
    proxy = await proxy_to(app_upstream[0])
    chunks = b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    request = get("/up", "Transfer-Encoding: chunked", method="PUT") + chunks
    assert (await proxy.exchange(request))[::2] == (200, b"PUT /up b'abcdefg'")


async def test_a_malformed_request_gets_400_and_a_closed_connection(
    proxy_to: Callable[..., Awaitable[Proxy]], app_upstream: tuple[int, list[Any]]
) -> None:
    proxy = await proxy_to(app_upstream[0])
    status, fields, _ = await proxy.exchange(b"GET / HTTP/1.1\r\nHost web\r\n\r\n")
    assert status == 400 and fields["connection"] == "close"


async def test_no_response_head_within_the_route_timeout_answers_504(
    proxy_to: Callable[..., Awaitable[Proxy]], raw_upstream: Callable[[Serve], Awaitable[int]]
) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; returns when the proxy gives up and closes

    proxy = await proxy_to(await raw_upstream(serve), timeouts={"responseHeader": "200ms"})
    status, _, body = await proxy.exchange(get("/"))
    assert status == 504 and b"within 0.2s" in body


async def test_an_upstream_that_refuses_connections_answers_502(
    proxy_to: Callable[..., Awaitable[Proxy]],
) -> None:
    proxy = await proxy_to(free_port())
    status, _, body = await proxy.exchange(get("/"))
    assert status == 502 and b"ConnectionRefusedError" in body


async def test_an_absolute_form_target_is_routed_by_its_authority(
    proxy_to: Callable[..., Awaitable[Proxy]], app_upstream: tuple[int, list[Any]]
) -> None:
    proxy = await proxy_to(app_upstream[0])
    request = f"GET http://{HOST}/echo?a=1 HTTP/1.1\r\nHost: other\r\n\r\n".encode()
    # RFC 9112 3.2.3: the Host field is replaced by the authority (the echo names any other)
    assert (await proxy.exchange(request))[::2] == (200, b"GET /echo?a=1 b''")
