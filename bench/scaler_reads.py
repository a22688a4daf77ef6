"""Scaler read throughput: 1,000 triggers of one type sharing one connection pool.

For each type, 1,000 triggers read the same real server concurrently, round after round,
through one `Pools` (one client per server, as in the operator). The baseline, in the same
run, is one trigger reading the same server one read after another. Prints JSON.
Servers: Redis, PostgreSQL, RabbitMQ and NATS at their standard loopback ports (as on the
development machines); Prometheus and tansu are started here, as the tests start them.
Run: .venv/bin/python bench/scaler_reads.py [--triggers 1000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "integration")]  # the tests' servers

from scalers.base import Scaler, TriggerContext  # noqa: E402
from scalers.context import ScalerContext, Secret  # noqa: E402
from scalers.pools import Pools  # noqa: E402
from scalers.registry import build_scaler, parse_metadata  # noqa: E402


def scaler(kind: str, metadata: dict[str, str], pools: Pools, auth: dict[str, str]) -> Scaler:
    meta = parse_metadata(kind, metadata)
    spec = meta.metric_spec(TriggerContext(index=0))
    secrets = {k: Secret(v) for k, v in auth.items()}
    return build_scaler(ScalerContext(kind, meta, spec, pools, auth=secrets, timeout=10.0))


async def rate(read: Callable[[], Awaitable[float]], seconds: float, batch: int) -> float:
    """Reads per second of `batch` concurrent reads per round, for `seconds`."""
    reads, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        await read()
        reads += batch
    return reads / (time.perf_counter() - began)


async def measure(
    kind: str, metadata: dict[str, str], auth: dict[str, str], triggers: int, seconds: float
) -> dict[str, Any]:
    pools = Pools()
    try:
        many = [scaler(kind, metadata, pools, auth) for _ in range(triggers)]
        await asyncio.gather(*(s.read() for s in many))  # connect once, warm up

        async def round_of_all() -> float:
            await asyncio.gather(*(s.read() for s in many))
            return 0.0

        shared = await rate(round_of_all, seconds, triggers)
        one = scaler(kind, metadata, pools, auth)
        single = await rate(one.read, seconds, 1)
        value = await one.read()
    finally:
        await pools.close()
    return {
        "readsPerSecond": round(shared),
        "baselineSingleTriggerReadsPerSecond": round(single),
        "ratioToBaseline": round(shared / single, 2),
        "value": value,
    }


@contextlib.asynccontextmanager
async def sources(folder: Path) -> AsyncIterator[dict[str, tuple[dict[str, str], dict[str, str]]]]:
    import asyncpg
    import nats
    import redis.asyncio
    from aiormq import connect

    name = f"bench-{uuid.uuid4().hex[:8]}"
    r = redis.asyncio.Redis(host="127.0.0.1", port=6379)
    await r.rpush(name, *range(50))
    pg = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    amqp = await connect("amqp://guest:guest@127.0.0.1:5672/")
    channel = await amqp.channel()
    await channel.queue_declare(name, auto_delete=False)
    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"{name}.>"])
    await js.add_consumer(name, durable_name="bench")
    from prometheus_server import Series, running_prometheus  # type: ignore[import-not-found]
    from test_kafka import start_tansu  # type: ignore[import-not-found]

    end = int(time.time())
    series = [Series("bench_requests", {"app": "bench"}, lambda age: 120.0)]
    tansu = start_tansu(folder / "tansu.log")
    try:
        with running_prometheus(folder / "prom", series, end) as prometheus_url:
            yield {
                "redis": ({"address": "127.0.0.1:6379", "listName": name, "listLength": "5"}, {}),
                "postgresql": (
                    {
                        "host": "127.0.0.1",
                        "port": "5432",
                        "userName": "postgres",
                        "dbName": "postgres",
                        "sslmode": "disable",
                        "query": "SELECT 42",
                        "targetQueryValue": "10",
                    },
                    {},
                ),
                "rabbitmq": (
                    {
                        "host": "amqp://127.0.0.1:5672/",
                        "queueName": name,
                        "mode": "QueueLength",
                        "value": "5",
                    },
                    {"username": "guest", "password": "guest"},
                ),
                "nats-jetstream": (
                    {
                        "natsServer": "nats://127.0.0.1:4222",
                        "stream": name,
                        "consumer": "bench",
                        "lagThreshold": "10",
                    },
                    {},
                ),
                "prometheus": (
                    {
                        "serverAddress": prometheus_url,
                        "query": "sum(bench_requests)",
                        "threshold": "10",
                    },
                    {},
                ),
                "kafka": (
                    {
                        "bootstrapServers": tansu.bootstrap,
                        "consumerGroup": name,
                        "topic": "",
                        "lagThreshold": "10",
                    },
                    {},
                ),
            }
    finally:
        tansu.stop()
        await r.delete(name)
        await r.aclose()
        await pg.close()
        await channel.queue_delete(name)
        await amqp.close()
        await js.delete_stream(name)
        await nc.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        async with sources(Path(folder)) as configured:
            for kind, (metadata, auth) in configured.items():
                try:
                    results[kind] = await measure(kind, metadata, auth, args.triggers, args.seconds)
                except Exception as exc:  # one server's trouble is reported, not fatal
                    results[kind] = {"error": f"{type(exc).__name__}: {exc}"}
    print(
        json.dumps(
            {
                "benchmark": "scalers",
                "triggersPerType": args.triggers,
                "secondsPerMeasurement": args.seconds,
                "results": results,
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
