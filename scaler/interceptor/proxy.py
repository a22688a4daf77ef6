"""The interceptor's request path: route, count, hold through a cold start, forward.

A request for a route with no ready endpoint is held (at most `max_pending` per route,
then 503 with Retry-After), the activation is pushed to the scaler at once, and the
request goes on the moment an endpoint is ready; after the wait it gets 504, or the
route's failover Service. Requests go upstream on pooled keep-alive connections, bodies
stream both ways without buffering, and an accepted upgrade (websockets) becomes a byte
tunnel: see `listener` (the client side), `upstream` (the pool) and `wire` (the heads,
with RFC 9110's hop-by-hop and X-Forwarded-* rules).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from scaler.interceptor.counting import RequestCounts, RouteCounter
from scaler.interceptor.endpoints import ServiceEndpoints
from scaler.interceptor.listener import ClientConnection, RequestBody
from scaler.interceptor.routing import Key, Route, RouteTable
from scaler.interceptor.upstream import UpstreamPool
from scaler.interceptor.wire import Field, RequestHead, upstream_request

log = logging.getLogger("ebbflow.interceptor")


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


@dataclass(frozen=True)
class Refusal:
    """A response of the interceptor's own, instead of the upstream's."""

    status: int
    text: str
    fields: tuple[Field, ...] = ()


class Interceptor:
    """The proxy. `handle` serves one request of a `Listener`; routes come from `set_routes`."""

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
        self.pool = UpstreamPool(self.settings.connect_timeout)
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.activations = 0

    def set_routes(self, routes: list[Route]) -> None:
        self.routes = RouteTable.from_routes(routes)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        return None  # connections are made on demand

    async def close(self) -> None:
        self.pool.close()

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

    async def handle(self, client: ClientConnection, head: RequestHead, body: RequestBody) -> None:
        """Serve one request: route it, count it, hold it at zero, forward it."""
        if head.method == b"CONNECT":
            client.respond(head, body, 501, "CONNECT is not served: this is a reverse proxy")
            return
        route = self.routes.match(head.host, head.path, head.view)
        if route is None:
            client.respond(head, body, 404, f"no HTTPScaledObject routes host {head.host!r}")
            return
        counter = self.counts.counter(route.key, route.rate_window, route.rate_granularity)
        counter.arrived(time.monotonic())
        counter.in_flight += 1
        try:
            upstream = self.endpoints.pick(route.target)
            if upstream is None:
                held = await self._hold(route, counter)
                if isinstance(held, Refusal):
                    client.respond(head, body, held.status, held.text, *held.fields)
                    return
                upstream = held
            await self._forward(client, head, body, route, upstream)
        finally:
            counter.in_flight -= 1

    async def _hold(self, route: Route, counter: RouteCounter) -> str | Refusal:
        """Wait for a ready endpoint (or the failover); a refusal when the wait fails."""
        if counter.pending >= self.settings.max_pending:
            return Refusal(
                503,
                f"{route.key[0]}/{route.key[1]}: {counter.pending} requests already wait "
                "for a ready endpoint",
                ((b"Retry-After", str(self.settings.retry_after).encode()),),
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
                return Refusal(
                    504,
                    f"{route.target.namespace}/{route.target.service} had no ready endpoint "
                    f"within {wait:g}s",
                )
        finally:
            counter.pending -= 1
            self._changed()

    async def _forward(
        self,
        client: ClientConnection,
        head: RequestHead,
        body: RequestBody,
        route: Route,
        address: str,
    ) -> None:
        request = upstream_request(head, client.peer, address)
        timeout = route.response_header_timeout or self.settings.response_header_timeout
        for attempt in (1, 2):
            try:
                upstream, pooled = await self.pool.acquire(address)
            except (OSError, TimeoutError) as exc:
                text = f"upstream {address}: {type(exc).__name__}: {exc}"
                client.respond(head, body, 502, text)
                return
            try:
                headers, done = upstream.send(client, head, body, request)
                try:
                    async with asyncio.timeout(timeout):
                        await headers
                except TimeoutError:
                    text = f"no response headers from {address} within {timeout:g}s"
                    client.respond(head, body, 504, text)
                    return
                if upstream.error is None:
                    await done
                    if upstream.error is not None:  # the head went out: closing tells the client
                        client.keep_alive = False
                    return
                # RFC 9112 9.3.1: a pooled connection the upstream closed as it was reused;
                # only a request that is safe to repeat (RFC 9110 9.2.2) goes again
                if not (attempt == 1 and pooled and not upstream.replied and head.replayable):
                    client.respond(head, body, 502, upstream.error)
                    return
            finally:
                self.pool.release(upstream)
