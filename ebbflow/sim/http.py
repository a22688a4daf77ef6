"""HTTPScaledObject workloads in the simulator: the interceptor's counts, from simulated pods.

A workload whose `scaledObject` is an HTTPScaledObject is scaled as `ebbflow operator`
scales it: its http trigger is a `RouteScaler` reading the route's `RouteMetrics` through
the `CountsSource` interface the interceptor serves on /queue. The fluid model stands in
for real requests, with the interceptor's definitions:

- concurrency: requests held or in flight, the backlog (held by the interceptor while no
  pod is ready, queued in the pods otherwise) plus the requests being served (served per
  second x `pod.requestSeconds`, Little's law);
- pending: the backlog while no pod is ready;
- requestRate: the trace's arrivals over the route's `window`, divided by the window (as
  the interceptor's buckets are; before the window is full, the missing part counts 0).

The simulator does not model the push: the object is polled every HTTP polling interval.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

from ebbflow.sim.workload import SimulatedDeployment
from scaler.api import ScaledObject
from scaler.controller import ScalerFactory
from scaler.http_scaling import RouteScaler
from scaler.interceptor.counting import Key, RouteMetrics
from scalers.base import MetricSpec, Scaler

EPSILON = 1e-9  # fluid leftovers below this are no request


def is_http(deployment: SimulatedDeployment) -> bool:
    """Whether the workload's scaledObject is an HTTPScaledObject."""
    return (deployment.workload.spec.scaled_object or {}).get("kind") == "HTTPScaledObject"


def window_rate(deployment: SimulatedDeployment, now: float, window: float) -> float:
    """Arrivals per second over (now - window, now], the missing part before 0 counted 0."""
    trace = deployment.workload.trace
    offsets, rates = trace.offsets, trace.rates
    begin = max(now - window, 0.0)
    index = max(bisect.bisect_right(offsets, begin) - 1, 0)
    arrived, at = 0.0, begin
    while at < now:
        step_end = offsets[index + 1] if index + 1 < len(offsets) else now
        until = min(step_end, now)
        arrived += rates[index] * (until - at)
        at = until
        index += 1
    return arrived / window


class SimulatedCounts:
    """The interceptor's CountsSource over the simulated deployments of HTTP workloads."""

    def __init__(
        self,
        deployments: dict[Key, SimulatedDeployment],
        windows: dict[Key, float],
        elapsed: Callable[[], float],
    ) -> None:
        self.deployments = deployments
        self.windows = windows
        self.elapsed = elapsed  # seconds since the scenario's start

    async def metrics(self, key: Key) -> RouteMetrics:
        d = self.deployments[key]
        pod = d.workload.spec.pod
        served = d.utilization * d.ready * pod.capacity_per_second
        in_flight = served * pod.request_seconds
        held = d.backlog if d.ready == 0 else 0.0
        now = self.elapsed()
        # a fraction of a request is one sometimes in flight: the interceptor, sampling at
        # each poll, would see it within a cooldown, so any demand counts as at least one
        return RouteMetrics(
            concurrency=math.ceil(d.backlog + in_flight - EPSILON),
            pending=math.ceil(held - EPSILON),
            rate=window_rate(d, now, self.windows[key]),
            total=0,
        )


class _FaultyRoute:
    """A RouteScaler whose reads fail within the scenario's fault windows."""

    def __init__(
        self, route: RouteScaler, faults: list[tuple[float, float]], elapsed: Callable[[], float]
    ) -> None:
        self.spec = route.spec
        self.route = route
        self.faults = faults
        self.elapsed = elapsed

    async def read(self) -> float:
        now = self.elapsed()
        if any(begin <= now < end for begin, end in self.faults):
            raise ConnectionError("injected fault: interceptor unreachable")
        return await self.route.read()

    async def close(self) -> None:
        return None


class HTTPRoutesFirst:
    """The simulator's ScalerFactory: HTTP workloads read `SimulatedCounts`, others `fallback`."""

    def __init__(
        self,
        fallback: ScalerFactory,
        deployments: dict[str, SimulatedDeployment],
        elapsed: Callable[[], float],
    ) -> None:
        self.fallback = fallback
        self.by_target = deployments
        self.elapsed = elapsed
        routes: dict[Key, SimulatedDeployment] = {}
        windows: dict[Key, float] = {}
        for d in deployments.values():
            if is_http(d):
                meta = d.workload.so.metadata
                key = (meta.namespace, meta.name)
                routes[key] = d
                trigger = d.workload.so.spec.triggers[0].metadata
                windows[key] = _seconds(str(trigger.get("window", "60s")))
        self.counts = SimulatedCounts(routes, windows, elapsed)

    async def __call__(self, so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        key = (so.metadata.namespace, so.metadata.name)
        if key not in self.counts.deployments:
            return await self.fallback(so, index, name, spec)
        d = self.counts.deployments[key]
        metric = str(so.spec.triggers[index].metadata.get("scalingMetric", "concurrency"))
        faults = [(f.from_, f.to) for f in d.workload.spec.faults if f.trigger == name]
        route = RouteScaler(spec, self.counts, key, metric)
        return _FaultyRoute(route, faults, self.elapsed) if faults else route


def _seconds(duration: str) -> float:
    # http_trigger_metadata writes windows as `<seconds>s`
    return float(duration.removesuffix("s"))
