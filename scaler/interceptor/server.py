"""The interceptor as a running service: HTTPScaledObject routes, Endpoints, two servers.

The proxy port (a `Listener`) serves the routed traffic; the admin server (aiohttp)
serves `/queue` (every route's counts, the pull side of the operator's reads), `/healthz`
and `/readyz`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from kube.port import HTTP_SCALED_OBJECTS, Cluster
from scaler.clock import Clock
from scaler.http_api import HTTPScaledObject
from scaler.interceptor.counting import queue_json
from scaler.interceptor.endpoints import ServiceEndpoints
from scaler.interceptor.listener import Listener
from scaler.interceptor.proxy import Activate, Interceptor, InterceptorSettings, ignore_activation
from scaler.interceptor.routing import Key, Route, route_of
from scaler.loops import key_of, watch_objects
from scaler.manifests import issues_from

log = logging.getLogger("ebbflow.interceptor")


class RouteWatcher:
    """Keeps the interceptor's route table in step with the cluster's HTTPScaledObjects."""

    def __init__(
        self, cluster: Cluster, clock: Clock, interceptor: Interceptor, namespace: str | None
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.interceptor = interceptor
        self.namespace = namespace
        self.routes: dict[Key, Route] = {}
        self.invalid: dict[Key, str] = {}
        self.listed = asyncio.Event()

    async def run(self) -> None:
        await watch_objects(
            self.cluster,
            self.clock,
            HTTP_SCALED_OBJECTS,
            self.namespace,
            self._upsert,
            self._remove,
            lambda: list(self.routes) + list(self.invalid),
            on_listed=self.listed.set,
        )

    async def _upsert(self, raw: dict[str, Any]) -> None:
        key = key_of(raw)
        try:
            route = route_of(HTTPScaledObject.model_validate(raw))
        except ValidationError as exc:  # one bad object never stops the others
            message = "; ".join(f"{i.path}: {i.message}" for i in issues_from(exc, "", 0))
            log.warning("HTTPScaledObject %s/%s is not routed: %s", key[0], key[1], message)
            self.invalid[key] = message
            await self._remove(key, keep_invalid=True)
            return
        self.invalid.pop(key, None)
        self.routes[key] = route
        self.interceptor.set_routes(list(self.routes.values()))

    async def _remove(self, key: Key, keep_invalid: bool = False) -> None:
        if not keep_invalid:
            self.invalid.pop(key, None)
        if self.routes.pop(key, None) is not None:
            self.interceptor.set_routes(list(self.routes.values()))
            self.interceptor.counts.forget([key])


def admin_app(interceptor: Interceptor, ready: asyncio.Event | None = None) -> web.Application:
    """/queue (counts per route as JSON), /healthz, /readyz."""

    async def queue(request: web.Request) -> web.Response:
        return web.json_response(queue_json(interceptor.counts.snapshot()))

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        if ready is not None and not ready.is_set():
            return web.Response(status=503, text="routes and endpoints not listed yet\n")
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/queue", queue)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.BaseRunner, int]:
    """Serve `app` on host:port (0: a free port); the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or ()
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return runner, bound


@dataclass
class InterceptorService:
    """Everything `ebbflow interceptor` runs: watches, the proxy and the admin server."""

    cluster: Cluster
    clock: Clock
    namespace: str | None = None
    settings: InterceptorSettings = field(default_factory=InterceptorSettings)
    activate: Activate = ignore_activation
    proxy_port: int = 0
    admin_port: int = 0
    interceptor: Interceptor = field(init=False)
    endpoints: ServiceEndpoints = field(init=False)
    watcher: RouteWatcher = field(init=False)
    ready: asyncio.Event = field(init=False)

    def __post_init__(self) -> None:
        self.endpoints = ServiceEndpoints(self.cluster, self.clock, self.namespace)
        self.interceptor = Interceptor(
            self.endpoints, activate=self.activate, settings=self.settings
        )
        self.watcher = RouteWatcher(self.cluster, self.clock, self.interceptor, self.namespace)
        self.ready = asyncio.Event()
        self.listener = Listener(self.interceptor.handle)
        self._runners: list[web.BaseRunner] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, host: str = "127.0.0.1") -> None:
        """Start the watches and both servers; returns once routes and endpoints are listed."""
        await self.interceptor.start()
        self._tasks = [
            asyncio.create_task(self.endpoints.run(), name="interceptor-endpoints"),
            asyncio.create_task(self.watcher.run(), name="interceptor-routes"),
        ]
        self.proxy_port = await self.listener.start(host, self.proxy_port)
        runner, self.admin_port = await start_site(
            admin_app(self.interceptor, self.ready), host, self.admin_port
        )
        self._runners.append(runner)
        await self.watcher.listed.wait()
        await self.endpoints.listed.wait()
        self.ready.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.listener.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        await self.interceptor.close()

    async def __aenter__(self) -> InterceptorService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
