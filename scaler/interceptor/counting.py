"""Request counting per route: concurrency now, and request rate over a sliding window.

The add-on's two metrics: `concurrency` (requests in flight, held ones included, since a
request waiting for a cold start is demand) and `requestRate` (requests per second over
`window`, kept in buckets of `granularity`). The counters are plain numbers updated on the
hot path; readers (the scaler, /queue) take a `RouteMetrics` snapshot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

Key = tuple[str, str]


@dataclass(frozen=True)
class RouteMetrics:
    """One route's counts at one instant: what /queue serves and the http trigger reads."""

    concurrency: int = 0  # in flight, held requests included
    pending: int = 0  # held for a cold start
    rate: float = 0.0  # requests per second over the route's window
    total: int = 0  # requests since the counter started

    def value(self, metric: str) -> float:
        """The number a `concurrency` or `requestRate` trigger scales on."""
        return float(self.concurrency) if metric == "concurrency" else self.rate

    def to_json(self) -> dict[str, float | int]:
        return {
            "concurrency": self.concurrency,
            "pending": self.pending,
            "requestRate": round(self.rate, 6),
            "total": self.total,
        }


class CountsSource(Protocol):
    """Where the http trigger reads a route's counts (in process, pulled, or pushed)."""

    async def metrics(self, key: Key) -> RouteMetrics:
        """The route's counts now; raises when they cannot be known (never a made-up 0)."""
        ...


class RouteCounter:
    """Concurrency and a bucketed sliding-window request rate for one route."""

    __slots__ = ("_buckets", "_slots", "granularity", "in_flight", "pending", "total", "window")

    def __init__(self, window: float = 60.0, granularity: float = 1.0) -> None:
        self.window = window
        self.granularity = granularity
        self._slots = max(1, round(window / granularity))
        self._buckets: deque[list[int]] = deque()  # [slot number, requests in it]
        self.in_flight = 0
        self.pending = 0
        self.total = 0

    def arrived(self, now: float) -> None:
        """Count one request that arrived at `now` (monotonic seconds)."""
        slot = int(now // self.granularity)
        buckets = self._buckets
        if buckets and buckets[-1][0] == slot:
            buckets[-1][1] += 1
        else:
            buckets.append([slot, 1])
            self._trim(slot)
        self.total += 1

    def _trim(self, slot: int) -> None:
        oldest = slot - self._slots
        buckets = self._buckets
        while buckets and buckets[0][0] <= oldest:
            buckets.popleft()

    def rate(self, now: float) -> float:
        """Requests per second over the last `window` seconds."""
        self._trim(int(now // self.granularity))
        return sum(count for _, count in self._buckets) / self.window

    def snapshot(self, now: float) -> RouteMetrics:
        return RouteMetrics(self.in_flight, self.pending, self.rate(now), self.total)


class RequestCounts:
    """Every route's counter; the interceptor's in-process CountsSource."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self._counters: dict[Key, RouteCounter] = {}

    def counter(self, key: Key, window: float = 60.0, granularity: float = 1.0) -> RouteCounter:
        """The route's counter, created (or re-created when its window changes) on demand."""
        counter = self._counters.get(key)
        if counter is None or (counter.window, counter.granularity) != (window, granularity):
            # the add-on too starts a route's window afresh when window/granularity change
            counter = RouteCounter(window, granularity)
            self._counters[key] = counter
        return counter

    def forget(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self._counters.pop(key, None)

    def snapshot(self) -> dict[Key, RouteMetrics]:
        now = self.now()
        return {key: counter.snapshot(now) for key, counter in self._counters.items()}

    async def metrics(self, key: Key) -> RouteMetrics:
        counter = self._counters.get(key)
        return counter.snapshot(self.now()) if counter is not None else RouteMetrics()


def queue_json(snapshot: dict[Key, RouteMetrics]) -> dict[str, dict[str, float | int]]:
    """The /queue body: `{"namespace/name": {concurrency, pending, requestRate, total}}`."""
    return {f"{ns}/{name}": metrics.to_json() for (ns, name), metrics in sorted(snapshot.items())}


def parse_queue_json(body: object) -> dict[Key, RouteMetrics]:
    """The inverse of `queue_json` (raises ValueError on a body of another shape)."""
    if not isinstance(body, dict):
        raise ValueError("queue: expected a JSON object")
    result: dict[Key, RouteMetrics] = {}
    for route, fields in body.items():
        namespace, _, name = str(route).partition("/")
        if not name or not isinstance(fields, dict):
            raise ValueError(f"queue: {route!r}: expected namespace/name -> counts")
        try:
            result[(namespace, name)] = RouteMetrics(
                int(fields.get("concurrency", 0)),
                int(fields.get("pending", 0)),
                float(fields.get("requestRate", 0.0)),
                int(fields.get("total", 0)),
            )
        except (TypeError, ValueError):
            raise ValueError(f"queue: {route}: counts must be numbers") from None
    return result
