"""HTTPScaledObject workloads in the simulator read the interceptor's counts (sim/http.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from ebbflow.sim.http import HTTPRoutesFirst, SimulatedCounts
from ebbflow.sim.runner import simulate
from ebbflow.sim.scenario import load_scenario
from ebbflow.sim.workload import SimulatedDeployment
from scaler.api import ScaledObject
from scaler.http_scaling import RouteScaler
from scalers.base import MetricSpec, Scaler

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "http-addon-elb.yaml"
KEY = ("web", "checkout")


def deployment(path: Path = EXAMPLE) -> SimulatedDeployment:
    return SimulatedDeployment(load_scenario(path).workloads[0], random.Random(0))


def counts(d: SimulatedDeployment, now: float, window: float = 60.0) -> SimulatedCounts:
    return SimulatedCounts({KEY: d}, {KEY: window}, lambda: now)


async def test_at_zero_the_backlog_is_held_and_counts_as_concurrency() -> None:
    d = deployment()
    d.advance(3)  # no pod: three seconds of 4.7 requests/s wait at the interceptor
    metrics = await counts(d, 3).metrics(KEY)
    assert d.ready == 0
    assert metrics.pending == metrics.concurrency == 15  # ceil(14.1)


async def test_with_ready_pods_concurrency_is_the_requests_in_flight() -> None:
    d = deployment()
    d.scale_to(2, 0)  # ready after 8-12 s
    d.advance(60)
    metrics = await counts(d, 60).metrics(KEY)
    assert d.backlog == 0 and metrics.pending == 0
    # Little's law: 4.7 requests/s served x 0.5 s each
    assert metrics.concurrency == 3


async def test_request_rate_is_the_arrivals_over_the_window() -> None:
    d = deployment()
    source = counts(d, 330)
    # (300 - 270) s at 4.7/s, then (330 - 300) s at 2.8/s, over a 60 s window
    assert (await source.metrics(KEY)).rate == pytest.approx((30 * 4.7 + 30 * 2.8) / 60)
    # before the window is full, the missing part counts 0, as in the interceptor
    assert (await counts(d, 30).metrics(KEY)).rate == pytest.approx(30 * 4.7 / 60)


async def test_http_workloads_get_a_route_scaler_and_others_the_fallback() -> None:
    d = deployment()
    calls: list[str] = []

    async def fallback(so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        calls.append(so.metadata.name)
        raise AssertionError("an HTTP workload must not reach the fallback")

    factory = HTTPRoutesFirst(fallback, {"checkout": d}, lambda: 0.0)
    so = d.workload.so
    spec = MetricSpec("s0-http", 2.0)
    scaler = await factory(so, 0, "http", spec)
    assert isinstance(scaler, RouteScaler) and scaler.metric == "concurrency"
    assert calls == []


async def test_an_http_scaled_object_scales_from_zero_on_held_requests(tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["workloads"][0]["trace"]["path"] = str(
        EXAMPLE.parents[1] / "traces" / "nab-elb_request_count_8c0756.csv"
    )
    raw["duration"] = "1h"
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = await simulate(load_scenario(path))
    workload = result.workloads[0]
    assert result.controller_errors == 0
    first_time, first_replicas = workload.scale_history[0]
    # the first poll at t=0 sees nothing yet; the next (5 s later) sees held requests
    assert first_time <= 5 and first_replicas >= 1
