"""HTTPScaledObjects through the ScaledObject machinery: the same engine, one http trigger.

`HTTPScalingController` is the ScalingController over the HTTPScaledObject kind: each
object becomes the ScaledObject the add-on would create (`to_scaled_object`), whose one
`http` trigger reads the interceptor's counts for that route. The interceptor pushes an
activation (`wake`) the moment a request arrives at zero, so the poll that scales up runs
at once instead of at the next interval. Status and events go to the HTTPScaledObject.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from kube.port import HTTP_SCALED_OBJECTS, Kind
from scaler.api import ScaledObject
from scaler.controller import ScalingController
from scaler.http_api import HTTPScaledObject, to_scaled_object
from scaler.interceptor.counting import CountsSource, Key, RouteMetrics, parse_queue_json
from scalers.base import BadMetric, MetricSpec, Scaler, SourceUnreachable


class HTTPScalingController(ScalingController):
    """Drives every HTTPScaledObject; `wake(namespace, name)` polls one now."""

    kind: Kind = HTTP_SCALED_OBJECTS
    wakeable = True

    def parse(self, raw: dict[str, Any]) -> ScaledObject:
        return to_scaled_object(HTTPScaledObject.model_validate(raw))


class RouteScaler:
    """The http trigger of one HTTPScaledObject: its route's concurrency or request rate."""

    def __init__(self, spec: MetricSpec, source: CountsSource, key: Key, metric: str) -> None:
        self.spec = spec
        self.source = source
        self.key = key
        self.metric = metric

    async def read(self) -> float:
        return (await self.source.metrics(self.key)).value(self.metric)

    async def close(self) -> None:
        return None


class RouteScalers:
    """The ScalerFactory of HTTPScalingController: every trigger reads `source`."""

    def __init__(self, source: CountsSource) -> None:
        self.source = source

    async def __call__(self, so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        metric = str(so.spec.triggers[index].metadata.get("scalingMetric", "requestRate"))
        return RouteScaler(spec, self.source, (so.metadata.namespace, so.metadata.name), metric)


class PulledCounts:
    """Counts pulled from the interceptors' `/queue`, summed over replicas.

    One GET per interceptor serves every route read within `max_age` seconds. A failed or
    malformed answer raises: an unknown count is never taken as zero demand. Without a
    `session`, one is opened on the first read and closed by `close`.
    """

    def __init__(
        self,
        urls: Sequence[str],
        session: aiohttp.ClientSession | None = None,
        timeout: float = 2.0,
        max_age: float = 0.05,
    ) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self._session = session
        self._owned: aiohttp.ClientSession | None = None
        self.timeout = timeout
        self.max_age = max_age
        self._fetched = -1.0
        self._counts: dict[Key, RouteMetrics] = {}
        self._stale = False
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """The next read pulls afresh (an activation was pushed: the cache predates it)."""
        self._stale = True

    async def metrics(self, key: Key) -> RouteMetrics:
        async with self._lock:
            if self._stale or time.monotonic() - self._fetched > self.max_age:
                self._stale = False  # an invalidate() during the pull makes the next read pull
                self._counts = await self._pull()
                self._fetched = time.monotonic()
        return self._counts.get(key, RouteMetrics())

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._owned = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._owned is not None:
            await self._owned.close()
            self._session = self._owned = None

    async def _pull(self) -> dict[Key, RouteMetrics]:
        if not self.urls:
            raise SourceUnreachable("no interceptor admin URL to read /queue from")
        totals: dict[Key, RouteMetrics] = {}
        for url in self.urls:
            try:
                async with asyncio.timeout(self.timeout):
                    async with self.session.get(f"{url}/queue") as response:
                        if response.status != 200:
                            raise BadMetric(f"{url}/queue: HTTP {response.status}")
                        body = await response.json()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise SourceUnreachable(f"{url}/queue: {type(exc).__name__}: {exc}") from None
            try:
                counts = parse_queue_json(body)
            except ValueError as exc:
                raise BadMetric(f"{url}/queue: {exc}") from None
            for key, m in counts.items():
                t = totals.get(key, RouteMetrics())
                totals[key] = RouteMetrics(
                    t.concurrency + m.concurrency,
                    t.pending + m.pending,
                    t.rate + m.rate,
                    t.total + m.total,
                )
        return totals
