"""Activation pushed from the interceptor to the operator over HTTP, and the operator's end.

The interceptor POSTs `/interceptor/activate?namespace=N&name=M` the moment a request
is held at zero; the operator polls that HTTPScaledObject at once (`wake`). One push per
route is in flight at a time: more held requests for the same route add nothing to it.
With sharded operators the push goes to every listed operator: the replica that drives
the object answers 202, the others 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
from aiohttp import web

from scaler.interceptor.routing import Key

log = logging.getLogger("ebbflow.interceptor")

ACTIVATE_PATH = "/interceptor/activate"


class ActivationPusher:
    """`activate(key)` sends the push in the background; failures are logged, not raised
    (the operator's regular poll still reads the counts: a lost push only costs time)."""

    def __init__(self, urls: list[str], session: aiohttp.ClientSession, timeout: float = 2.0):
        self.urls = [u.rstrip("/") for u in urls]
        self.session = session
        self.timeout = timeout
        self._in_flight: dict[Key, asyncio.Task[None]] = {}
        self.sent = 0
        self.failed = 0

    def activate(self, key: Key) -> None:
        if key in self._in_flight:
            return
        task = asyncio.get_running_loop().create_task(self._push(key))
        self._in_flight[key] = task
        task.add_done_callback(lambda _: self._in_flight.pop(key, None))

    async def _push(self, key: Key) -> None:
        params = {"namespace": key[0], "name": key[1]}
        accepted = False
        problems: list[str] = []
        for url in self.urls:
            try:
                async with asyncio.timeout(self.timeout):
                    async with self.session.post(url + ACTIVATE_PATH, params=params) as response:
                        if response.status == 404:  # driven by another operator replica
                            problems.append(f"{url}: not driven there")
                            continue
                        if response.status >= 400:
                            raise aiohttp.ClientResponseError(
                                response.request_info, (), status=response.status
                            )
                accepted = True
            except (TimeoutError, aiohttp.ClientError) as exc:
                problems.append(f"{url}: {type(exc).__name__}: {exc}")
        if accepted:
            self.sent += 1
        elif self.urls:
            self.failed += 1
            log.warning("no operator took the activation of %s/%s: %s", *key, "; ".join(problems))

    async def close(self) -> None:
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def add_activation_route(app: web.Application, wake: Callable[[str, str], bool]) -> None:
    """Serve the push on `app`: 202 when the object is driven here, 404 when it is not."""

    async def activate(request: web.Request) -> web.Response:
        namespace = request.query.get("namespace", "")
        name = request.query.get("name", "")
        if not namespace or not name:
            return web.Response(status=400, text="namespace and name are required\n")
        if not wake(namespace, name):
            return web.Response(status=404, text=f"{namespace}/{name} is not driven here\n")
        return web.Response(status=202, text="polling now\n")

    app.router.add_post(ACTIVATE_PATH, activate)
