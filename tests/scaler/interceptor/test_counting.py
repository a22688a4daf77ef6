"""Sliding-window request rate and concurrency per route."""

from __future__ import annotations

import pytest

from scaler.interceptor.counting import (
    RequestCounts,
    RouteCounter,
    RouteMetrics,
    parse_queue_json,
    queue_json,
)


def test_rate_counts_only_the_window() -> None:
    counter = RouteCounter(window=10, granularity=1)
    for t in (0.1, 0.2, 5.0, 9.9):
        counter.arrived(t)
    assert counter.rate(9.9) == pytest.approx(4 / 10)
    assert counter.rate(10.5) == pytest.approx(2 / 10)  # the bucket of second 0 left
    assert counter.rate(25.0) == 0.0
    assert counter.total == 4


def test_a_new_window_starts_the_counter_afresh() -> None:
    counts = RequestCounts(now=lambda: 0.0)
    counts.counter(("ns", "a")).arrived(0.0)
    assert counts.counter(("ns", "a"), window=30).total == 0


async def test_metrics_of_an_unseen_route_are_zero_and_queue_json_round_trips() -> None:
    counts = RequestCounts(now=lambda: 1.0)
    counter = counts.counter(("ns", "a"), window=2)
    counter.arrived(0.5)
    counter.in_flight, counter.pending = 3, 2
    assert await counts.metrics(("ns", "b")) == RouteMetrics()
    snapshot = counts.snapshot()
    assert snapshot[("ns", "a")] == RouteMetrics(3, 2, 0.5, 1)
    assert parse_queue_json(queue_json(snapshot)) == snapshot
    assert snapshot[("ns", "a")].value("concurrency") == 3.0
    assert snapshot[("ns", "a")].value("requestRate") == 0.5


@pytest.mark.parametrize("body", [[], {"no-slash": {}}, {"ns/a": {"concurrency": "x"}}])
def test_a_malformed_queue_body_is_an_error(body: object) -> None:
    with pytest.raises(ValueError, match="queue"):
        parse_queue_json(body)
