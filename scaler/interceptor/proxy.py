"""The interceptor's request path: route, count, hold through a cold start, forward.

A request for a route with no ready endpoint is held (at most `max_pending` per route,
then 503 with Retry-After), the activation is pushed to the scaler at once, and the
request goes on the moment an endpoint is ready; after the wait it gets 504, or the
route's failover Service. Bodies stream both ways without buffering (small responses of
known length are read whole: one write is cheaper than a stream); websockets are relayed
frame by frame. Headers follow RFC 9110 section 7.6: the hop-by-hop fields (Connection and
those it names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade) stop here;
the proxy adds Via and X-Forwarded-For/-Host/-Proto.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from scaler.interceptor.counting import RequestCounts, RouteCounter
from scaler.interceptor.endpoints import ServiceEndpoints
from scaler.interceptor.routing import Key, Route, RouteTable

log = logging.getLogger("ebbflow.interceptor")

HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade"}
)
VIA = "1.1 ebbflow"
SMALL_BODY = 64 * 1024  # responses of known length up to this are relayed in one write


@dataclass(frozen=True)
class InterceptorSettings:
    """Defaults a route's own `spec.timeouts` override."""

    max_pending: int = 1000  # held requests per route before 503
    condition_wait: float = 20.0  # seconds a request waits for a ready endpoint
    response_header_timeout: float = 60.0  # seconds from sending to the response headers
    connect_timeout: float = 5.0
    retry_after: int = 1  # seconds, on 503 when a route's hold queue is full


Activate = Callable[[Key], None]


def ignore_activation(key: Key) -> None:
    return None


def hop_by_hop(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """Every hop-by-hop field name of a message: the fixed ones and those Connection lists."""
    named = headers.getall("Connection", ())
    if not named:
        return HOP_BY_HOP
    listed = {token.strip().lower() for value in named for token in value.split(",")}
    return HOP_BY_HOP | listed


def end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """A copy of `headers` without the hop-by-hop fields."""
    drop = hop_by_hop(headers)
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


def _forwarded_headers(request: web.BaseRequest) -> CIMultiDict[str]:
    headers = end_to_end(request.headers)
    peer = request.remote or ""
    prior = headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    if "X-Forwarded-Host" not in headers and request.host:
        headers["X-Forwarded-Host"] = request.host
    if "X-Forwarded-Proto" not in headers:
        headers["X-Forwarded-Proto"] = request.scheme
    headers.add("Via", VIA)
    return headers


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=headers)


class Interceptor:
    """The proxy. `handle` is the aiohttp handler; routes come from `set_routes`."""

    def __init__(
        self,
        endpoints: ServiceEndpoints,
        counts: RequestCounts | None = None,
        activate: Activate = ignore_activation,
        settings: InterceptorSettings | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.counts = counts or RequestCounts()
        self.activate = activate
        self.settings = settings or InterceptorSettings()
        self.routes = RouteTable.from_routes(())
        self._session: aiohttp.ClientSession | None = None
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.activations = 0

    def set_routes(self, routes: list[Route]) -> None:
        self.routes = RouteTable.from_routes(routes)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.settings.connect_timeout
                ),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Interceptor.start() was not awaited")
        return self._session

    # --- waiting on counts (held requests), for tests and readiness -------------------

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds; it is checked whenever a hold starts or ends."""
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            await future
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _changed(self) -> None:
        for predicate, future in list(self._waiters):
            if not future.done() and predicate():
                future.set_result(None)

    # --- the request path -----------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        route = self.routes.match(request.host, request.path, request.headers)
        if route is None:
            return _plain(404, f"no HTTPScaledObject routes host {request.host!r}")
        counter = self.counts.counter(route.key, route.rate_window, route.rate_granularity)
        counter.arrived(time.monotonic())
        counter.in_flight += 1
        try:
            upstream = self.endpoints.pick(route.target)
            if upstream is None:
                held = await self._hold(route, counter)
                if isinstance(held, web.StreamResponse):
                    return held
                upstream = held
            return await self._forward(request, route, upstream)
        finally:
            counter.in_flight -= 1

    async def _hold(self, route: Route, counter: RouteCounter) -> str | web.StreamResponse:
        """Wait for a ready endpoint (or the failover); a response when the wait fails."""
        if counter.pending >= self.settings.max_pending:
            return _plain(
                503,
                f"{route.key[0]}/{route.key[1]}: {counter.pending} requests already wait "
                "for a ready endpoint",
                {"Retry-After": str(self.settings.retry_after)},
            )
        counter.pending += 1
        self._changed()
        try:
            self.activations += 1
            self.activate(route.key)  # pushed now: the scaler does not wait for its next poll
            wait = (
                route.failover_after
                if route.failover is not None
                else route.condition_wait or self.settings.condition_wait
            )
            try:
                async with asyncio.timeout(wait):
                    return await self.endpoints.wait_ready(route.target)
            except TimeoutError:
                if route.failover is not None:
                    failover = self.endpoints.pick(route.failover)
                    if failover is not None:
                        return failover
                return _plain(
                    504,
                    f"{route.target.namespace}/{route.target.service} had no ready endpoint "
                    f"within {wait:g}s",
                )
        finally:
            counter.pending -= 1
            self._changed()

    async def _forward(
        self, request: web.BaseRequest, route: Route, upstream: str
    ) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._forward_websocket(request, upstream)
        url = URL(f"http://{upstream}{request.raw_path}", encoded=True)
        headers = _forwarded_headers(request)
        body = request.content if request.body_exists else None
        timeout = route.response_header_timeout or self.settings.response_header_timeout
        try:
            async with asyncio.timeout(timeout):
                response = await self.session.request(
                    request.method,
                    url,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    compress=None,
                )
        except TimeoutError:
            return _plain(504, f"no response headers from {upstream} within {timeout:g}s")
        except aiohttp.ClientError as exc:
            return _plain(502, f"upstream {upstream}: {type(exc).__name__}: {exc}")
        try:
            return await self._relay(request, response)
        finally:
            response.release()

    async def _relay(
        self, request: web.BaseRequest, response: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        headers = end_to_end(response.headers)
        headers.add("Via", VIA)
        length = response.content_length
        if length is not None and length <= SMALL_BODY and request.method != "HEAD":
            body = await response.read()
            headers.popall("Content-Length", None)
            return web.Response(
                status=response.status, reason=response.reason, headers=headers, body=body
            )
        out = web.StreamResponse(status=response.status, reason=response.reason, headers=headers)
        await out.prepare(request)
        async for chunk in response.content.iter_any():
            await out.write(chunk)  # write() waits for the client: backpressure, no buffering
        await out.write_eof()
        return out

    async def _forward_websocket(
        self, request: web.BaseRequest, upstream: str
    ) -> web.StreamResponse:
        headers = _forwarded_headers(request)
        for name in ("Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions"):
            headers.popall(name, None)
        offered = [
            p.strip()
            for value in request.headers.getall("Sec-WebSocket-Protocol", ())
            for p in value.split(",")
            if p.strip()
        ]
        headers.popall("Sec-WebSocket-Protocol", None)
        url = URL(f"ws://{upstream}{request.raw_path}", encoded=True)
        try:
            upstream_ws = await self.session.ws_connect(
                url, headers=headers, protocols=offered, autoping=False
            )
        except (aiohttp.ClientError, aiohttp.WSServerHandshakeError) as exc:
            return _plain(502, f"upstream websocket {upstream}: {exc}")
        chosen = (upstream_ws.protocol,) if upstream_ws.protocol else ()
        client_ws = web.WebSocketResponse(protocols=chosen, autoping=False)
        await client_ws.prepare(request)

        async def pump(
            source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
            sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        ) -> None:
            async for message in source:
                if message.type is aiohttp.WSMsgType.TEXT:
                    await sink.send_str(message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                elif message.type is aiohttp.WSMsgType.PING:
                    await sink.ping(message.data)
                elif message.type is aiohttp.WSMsgType.PONG:
                    await sink.pong(message.data)
            await sink.close(code=source.close_code or aiohttp.WSCloseCode.OK)

        async with upstream_ws:
            tasks = [
                asyncio.create_task(pump(client_ws, upstream_ws)),
                asyncio.create_task(pump(upstream_ws, client_ws)),
            ]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return client_ws
