"""Operator scale: N ScaledObjects polled every 30 s by one process, in real time.

The real Operator (Lease, controller, metrics observer) over the in-memory cluster, with
metric sources that answer at once, so the figures are the control path's own cost:
loop lag (how late polls start against their schedule) and CPU used per wall second.
The baseline, in the same run, is the same measurement at a tenth of the objects.
Prints one JSON object.
Run: .venv/bin/python bench/operator_scale.py [--objects 10000] [--seconds 90]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import time
from typing import Any

from ebbflow.operator.run import Operator
from ebbflow.settings import OperatorSettings
from kube.memory import MemoryCluster
from kube.port import DEPLOYMENTS, SCALED_OBJECTS
from scaler.api import ScaledObject
from scaler.clock import RealClock
from scalers.base import MetricSpec, Scaler


class Wobbling:
    """A metric that drifts, so decisions and scale patches keep happening."""

    def __init__(self, spec: MetricSpec, rng: random.Random) -> None:
        self.spec = spec
        self._rng = rng

    async def read(self) -> float:
        return self._rng.uniform(0, 400)

    async def close(self) -> None:
        return None


async def measure(objects: int, seconds: float, polling: int) -> dict[str, Any]:
    cluster = MemoryCluster(now=time.time)
    for i in range(objects):
        name = f"svc-{i}"
        await cluster.create(
            DEPLOYMENTS,
            {
                "metadata": {"name": name, "namespace": f"ns-{i % 50}"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}},
                },
            },
        )
        await cluster.create(
            SCALED_OBJECTS,
            {
                "apiVersion": "ebbflow.io/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": name, "namespace": f"ns-{i % 50}"},
                "spec": {
                    "scaleTargetRef": {"name": name},
                    "pollingInterval": polling,
                    "minReplicaCount": 1,
                    "maxReplicaCount": 50,
                    "triggers": [
                        {
                            "type": "kafka",
                            "name": "lag",
                            "metadata": {
                                "bootstrapServers": "kafka:9092",
                                "consumerGroup": name,
                                "lagThreshold": "10",
                            },
                        }
                    ],
                },
            },
        )
    rng = random.Random(1)

    async def scalers(so: ScaledObject, index: int, name: str, spec: MetricSpec) -> Scaler:
        return Wobbling(spec, rng)

    settings = OperatorSettings(identity="bench", metrics_port=0, metrics_host="127.0.0.1")
    operator = Operator(cluster, RealClock(), scalers, settings)
    stop = asyncio.Event()
    run = asyncio.create_task(operator.run(stop, serve_http=False))
    # warm-up: the first polls of every object start together; measure the steady state
    await asyncio.sleep(polling)
    histogram = operator.metrics.loop_lag
    before = _snapshot(histogram)
    polls_before = operator.controller.stats.polls
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = _snapshot(histogram)
    polls = operator.controller.stats.polls - polls_before
    stop.set()
    await run
    cluster.close()
    return {
        "objects": objects,
        "pollingIntervalSeconds": polling,
        "measuredSeconds": round(wall, 1),
        "polls": polls,
        "pollsPerSecond": round(polls / wall, 1),
        "cpuCores": round(cpu / wall, 3),
        "loopLagP50Seconds": _quantile(before, after, 0.50),
        "loopLagP99Seconds": _quantile(before, after, 0.99),
        "scalePatches": operator.controller.stats.scale_patches,
        "errors": sum(operator.controller.stats.errors.values()),
    }


def _snapshot(histogram: Any) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) pairs of a prometheus_client Histogram."""
    samples = histogram.collect()[0].samples
    return [(float(s.labels["le"]), s.value) for s in samples if s.name.endswith("_bucket")]


def _quantile(before: list[tuple[float, float]], after: list[tuple[float, float]], q: float) -> str:
    """The bucket bound under which a q share of the window's polls started (e.g. "<= 0.1")."""
    counts = [(bound, a - b) for (bound, b), (_, a) in zip(before, after, strict=True)]
    total = counts[-1][1]
    if total == 0:
        return "n/a"
    for bound, count in counts:
        if count >= q * total:
            return f"<= {bound:g}"
    return "> 30"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--polling", type=int, default=30)
    args = parser.parse_args()
    baseline = await measure(max(args.objects // 10, 1), args.seconds, args.polling)
    full = await measure(args.objects, args.seconds, args.polling)
    print(
        json.dumps(
            {
                "benchmark": "operator",
                "full": full,
                "baseline": baseline,
                "cpuRatioFullToBaseline": round(
                    full["cpuCores"] / max(baseline["cpuCores"], 1e-9), 2
                ),
                "goal": {"loopLagP99Seconds": "< 1", "cpuCores": "<= 1"},
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
