"""The RabbitMQ, Redis and NATS JetStream readers against the real servers on loopback.

Every test makes its own uniquely named queues, lists, streams and users, and removes them.
RabbitMQ's management API refreshes its counts once per statistics interval (5 s), so
the HTTP tests poll the reader until the broker's figure arrives (bounded by a deadline);
nothing else waits.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiormq
import nats
import pytest
import redis.asyncio
from nats.js.api import AckPolicy, ConsumerConfig

from scaler.api import ScaledObject
from scaler.decision import ScalingState, TriggerReading, decide
from scaler.triggers import trigger_specs
from scalers.base import BadMetric, Scaler, ScalerError, SourceUnreachable, TriggerContext
from scalers.context import ScalerContext, Secret
from scalers.pools import CircuitOpen, Pools
from scalers.rabbitmq import Mode, QueueStats, combined, mode_value
from scalers.registry import build_scaler, parse_metadata
from tests.integration.ports import free_port

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
MANAGEMENT = "http://127.0.0.1:15672"
REDIS = "127.0.0.1:6379"
NATS_URL = "nats://127.0.0.1:4222"
GUEST = {"username": Secret("guest"), "password": Secret("guest")}
STATS_DEADLINE = 15.0  # seconds: three of the broker's statistics intervals


def unique(prefix: str) -> str:
    return f"ebbflow-test-{prefix}-{uuid.uuid4().hex[:10]}"


def reader(
    trigger_type: str,
    metadata: dict[str, str],
    pools: Pools,
    auth: dict[str, Secret] | None = None,
) -> Scaler:
    meta = parse_metadata(trigger_type, metadata)
    spec = meta.metric_spec(TriggerContext(index=0))
    context = ScalerContext(trigger_type, meta, spec, pools, auth=auth or {}, timeout=3.0)
    return build_scaler(context)


async def value_when(scaler: Scaler, expected: float) -> float:
    """Read until the reader reports `expected` (the broker publishes stats periodically)."""
    deadline = time.monotonic() + STATS_DEADLINE
    value: float | None = None
    while time.monotonic() < deadline:
        with contextlib.suppress(BadMetric):  # "no statistics yet" for a new queue
            value = await scaler.read()
            if value == expected:
                return value
        await asyncio.sleep(0.25)
    raise AssertionError(f"reader reported {value}, expected {expected}, for {STATS_DEADLINE}s")


# --- RabbitMQ ------------------------------------------------------------------------------


def _management_answers() -> bool:
    token = base64.b64encode(b"guest:guest").decode()
    request = urllib.request.Request(
        f"{MANAGEMENT}/api/overview", headers={"Authorization": f"Basic {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def rabbitmq_management() -> None:
    """The management plugin, which the http protocol needs: enabled here if it is not yet.

    `rabbitmq-plugins enable rabbitmq_management` changes the broker's enabled-plugins file,
    so it stays on for later runs on the same machine; CI runs it before the tests too.
    """
    if _management_answers():
        return
    if shutil.which("rabbitmq-plugins") is None:
        pytest.fail(
            "RabbitMQ management API is down; run: rabbitmq-plugins enable rabbitmq_management"
        )
    subprocess.run(
        ["rabbitmq-plugins", "enable", "rabbitmq_management"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    deadline = time.monotonic() + 60
    while not _management_answers():
        if time.monotonic() > deadline:
            pytest.fail("rabbitmq_management enabled, but port 15672 does not answer")
        time.sleep(0.5)


@pytest.fixture
async def channel() -> AsyncIterator[aiormq.abc.AbstractChannel]:
    connection = await aiormq.connect(AMQP_URL)
    yield await connection.channel()
    await connection.close()


@pytest.fixture
async def queues(channel: aiormq.abc.AbstractChannel) -> AsyncIterator[Callable[..., Any]]:
    """declare(name, messages): a fresh queue holding that many messages; deleted after."""
    declared: list[str] = []

    async def declare(name: str, messages: int) -> str:
        await channel.queue_declare(name, auto_delete=False)
        declared.append(name)
        for i in range(messages):
            await channel.basic_publish(f"job {i}".encode(), routing_key=name)
        return name

    yield declare
    connection = await aiormq.connect(AMQP_URL)
    cleanup = await connection.channel()
    for name in declared:
        await cleanup.queue_delete(name)
    await connection.close()


async def test_amqp_queue_length_is_the_number_of_published_messages(
    pools: Pools, queues: Callable[..., Any]
) -> None:
    name = await queues(unique("amqp"), 7)
    scaler = reader("rabbitmq", {"host": AMQP_URL, "queueName": name}, pools)
    assert await scaler.read() == 7.0


async def test_amqp_credentials_from_authentication_override_the_host(
    pools: Pools, queues: Callable[..., Any]
) -> None:
    name = await queues(unique("amqp-auth"), 2)
    host = "amqp://nobody:wrong@127.0.0.1:5672/%2F"
    scaler = reader("rabbitmq", {"host": host, "queueName": name}, pools, auth=GUEST)
    assert await scaler.read() == 2.0


async def test_http_queue_length_counts_unacknowledged_unless_excluded(
    rabbitmq_management: None,
    pools: Pools,
    queues: Callable[..., Any],
    channel: aiormq.abc.AbstractChannel,
) -> None:
    name = await queues(unique("http"), 6)
    for _ in range(2):  # delivered to us, never acknowledged while this channel lives
        await channel.basic_get(name, no_ack=False)
    http = {"host": f"{MANAGEMENT}/%2F", "protocol": "http", "queueName": name}
    everything = reader("rabbitmq", http, pools, auth=GUEST)
    ready_only = reader("rabbitmq", {**http, "excludeUnacknowledged": "true"}, pools, GUEST)
    publish_rate = reader(
        "rabbitmq", {**http, "mode": "MessageRate", "value": "10"}, pools, auth=GUEST
    )
    amqp = reader("rabbitmq", {"host": AMQP_URL, "queueName": name}, pools)

    assert await value_when(everything, 6.0) == 6.0
    assert await value_when(ready_only, 4.0) == 4.0
    assert await publish_rate.read() >= 0.0  # a rate needs two samples; its presence is what counts
    assert await amqp.read() == 4.0  # queue.declare-ok counts ready messages only


async def test_http_regex_sums_maxes_and_averages_the_matching_queues(
    rabbitmq_management: None, pools: Pools, queues: Callable[..., Any]
) -> None:
    prefix = unique("regex")
    await queues(f"{prefix}-a", 3)
    await queues(f"{prefix}-b", 5)
    await queues(unique("other"), 11)
    regex = {
        "host": "http://guest:guest@127.0.0.1:15672/",
        "queueName": f"^{prefix}-",
        "useRegex": "true",
    }
    total = reader("rabbitmq", {**regex, "operation": "sum"}, pools)
    assert await value_when(total, 8.0) == 8.0
    assert await reader("rabbitmq", {**regex, "operation": "max"}, pools).read() == 5.0
    assert await reader("rabbitmq", {**regex, "operation": "avg"}, pools).read() == 4.0
    nothing = reader("rabbitmq", {**regex, "queueName": f"^{prefix}-none$"}, pools)
    assert await nothing.read() == 0.0  # KEDA: no matching queue is an empty backlog


async def test_amqp_missing_queue_is_a_bad_metric_not_zero(pools: Pools) -> None:
    scaler = reader("rabbitmq", {"host": AMQP_URL, "queueName": unique("absent")}, pools)
    with pytest.raises(BadMetric, match="no such queue"):
        await scaler.read()
    # the failed declare closed only its own channel: the pooled connection still serves
    with pytest.raises(BadMetric):
        await scaler.read()


@pytest.mark.parametrize("host", ["amqp://127.0.0.1:5672/", "http://127.0.0.1:15672/"])
async def test_rabbitmq_refused_login_names_no_password(
    rabbitmq_management: None, pools: Pools, queues: Callable[..., Any], host: str
) -> None:
    name = await queues(unique("login"), 1)
    password = f"pw-{uuid.uuid4().hex}"
    auth = {"username": Secret("guest"), "password": Secret(password)}
    scaler = reader("rabbitmq", {"host": host, "queueName": name}, pools, auth=auth)
    with pytest.raises(ScalerError) as caught:
        await scaler.read()
    assert not isinstance(caught.value, SourceUnreachable)
    for text in (str(caught.value), repr(caught.value), repr(scaler), repr(vars(scaler))):
        assert password not in text


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis(host="127.0.0.1", port=6379, decode_responses=True)
    yield client
    await client.aclose()


async def test_redis_list_length_is_llen(pools: Pools, redis_client: redis.asyncio.Redis) -> None:
    name = unique("list")
    await redis_client.lpush(name, *range(9))
    try:
        scaler = reader("redis", {"address": REDIS, "listName": name}, pools)
        assert await scaler.read() == 9.0
        await redis_client.rpop(name, 4)
        assert await scaler.read() == 5.0
    finally:
        await redis_client.delete(name)


async def test_redis_streams_pending_lag_and_length(
    pools: Pools, redis_client: redis.asyncio.Redis
) -> None:
    stream, group = unique("stream"), "workers"
    for i in range(5):
        await redis_client.xadd(stream, {"job": i})
    await redis_client.xgroup_create(stream, group, id="0")
    # three delivered to a consumer that never acknowledges them
    await redis_client.xreadgroup(group, "worker-1", {stream: ">"}, count=3)
    try:
        base = {"host": "127.0.0.1", "port": "6379", "stream": stream}
        pending = reader("redis-streams", {**base, "consumerGroup": group}, pools)
        lag = reader("redis-streams", {**base, "consumerGroup": group, "lagCount": "2"}, pools)
        length = reader("redis-streams", base, pools)
        assert await pending.read() == 3.0
        assert await lag.read() == 2.0
        assert await length.read() == 5.0
        unknown = reader("redis-streams", {**base, "consumerGroup": "nobody"}, pools)
        with pytest.raises(BadMetric, match="NOGROUP"):
            await unknown.read()
    finally:
        await redis_client.delete(stream)


async def test_redis_login_and_database_index_from_authentication(
    pools: Pools, redis_client: redis.asyncio.Redis
) -> None:
    user, password = unique("user"), f"pw-{uuid.uuid4().hex}"
    name = unique("db3-list")
    await redis_client.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"]
    )
    db3 = redis.asyncio.Redis(host="127.0.0.1", port=6379, db=3)
    await db3.lpush(name, 1, 2, 3)
    try:
        metadata = {"address": REDIS, "listName": name, "databaseIndex": "3"}
        auth = {"username": Secret(user), "password": Secret(password)}
        assert await reader("redis", metadata, pools, auth=auth).read() == 3.0

        wrong = reader(
            "redis", metadata, pools, {"username": Secret(user), "password": Secret("x" + password)}
        )
        with pytest.raises(ScalerError) as caught:
            await wrong.read()
        assert not isinstance(caught.value, SourceUnreachable)
        assert "login refused" in str(caught.value)
        for text in (str(caught.value), repr(caught.value), repr(wrong), repr(vars(wrong))):
            assert password not in text
    finally:
        await db3.delete(name)
        await db3.aclose()
        await redis_client.acl_deluser(user)


async def test_redis_list_backlog_sets_the_replica_count(
    pools: Pools, redis_client: redis.asyncio.Redis
) -> None:
    name = unique("decide")
    await redis_client.lpush(name, *range(23))
    so = ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "worker"},
            "spec": {
                "scaleTargetRef": {"name": "worker"},
                "minReplicaCount": 0,
                "maxReplicaCount": 20,
                "triggers": [
                    {
                        "type": "redis",
                        "name": "jobs",
                        "metadata": {"address": REDIS, "listName": name, "listLength": "5"},
                    }
                ],
            },
        }
    )
    try:
        [(trigger_name, spec)] = trigger_specs(so)
        trigger = so.spec.triggers[0]
        meta = parse_metadata(trigger.type, trigger.metadata)
        scaler = build_scaler(ScalerContext(trigger.type, meta, spec, pools))
        value = await scaler.read()
        decision = decide(
            so, 0, [TriggerReading(trigger_name, spec, value=value)], ScalingState(), 0.0
        )
        # 23 jobs at 5 per replica: ceil(23 / 5), straight from zero
        assert (value, decision.desired_replicas, decision.active) == (23.0, 5, True)
    finally:
        await redis_client.delete(name)


# --- NATS JetStream ------------------------------------------------------------------------


@pytest.fixture
async def jetstream() -> AsyncIterator[Any]:
    client = await nats.connect(NATS_URL)
    yield client.jetstream()
    await client.close()


@pytest.fixture
async def stream(jetstream: Any) -> AsyncIterator[str]:
    """A fresh stream holding ten messages; deleted after."""
    name = unique("js").replace("-", "_").upper()
    await jetstream.add_stream(name=name, subjects=[f"{name}.>"])
    for i in range(10):
        await jetstream.publish(f"{name}.jobs", f"job {i}".encode())
    yield name
    await jetstream.delete_stream(name)


async def test_nats_backlog_is_pending_plus_unacknowledged(
    pools: Pools, jetstream: Any, stream: str
) -> None:
    await jetstream.add_consumer(
        stream, ConsumerConfig(durable_name="workers", ack_policy=AckPolicy.EXPLICIT)
    )
    subscription = await jetstream.pull_subscribe_bind("workers", stream=stream)
    fetched = await subscription.fetch(3, timeout=2)
    scaler = reader(
        "nats-jetstream",
        {"natsServer": NATS_URL, "account": "$G", "stream": stream, "consumer": "workers"},
        pools,
    )
    # 7 never delivered + 3 delivered and not acknowledged
    assert await scaler.read() == 10.0
    for message in fetched[:2]:
        await message.ack_sync()
    assert await scaler.read() == 8.0


async def test_nats_keda_manifest_reaches_the_client_port_of_the_monitoring_host(
    pools: Pools, stream: str
) -> None:
    # no consumer yet: KEDA counts the whole stream, so a workload at zero can start
    keda = {"natsServerMonitoringEndpoint": "127.0.0.1:8222", "account": "$G"}
    scaler = reader("nats-jetstream", {**keda, "stream": stream, "consumer": "absent"}, pools)
    assert await scaler.read() == 10.0


async def test_nats_missing_stream_is_a_bad_metric(pools: Pools) -> None:
    metadata = {"natsServer": NATS_URL, "stream": "EBBFLOW_ABSENT", "consumer": "c"}
    with pytest.raises(BadMetric, match="no such stream"):
        await reader("nats-jetstream", metadata, pools).read()


@pytest.fixture
def nats_with_login(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A second NATS server, on a free port, that wants user `keda` and a password."""
    binary = shutil.which("nats-server") or shutil.which("/usr/sbin/nats-server")
    if binary is None:
        pytest.skip("nats-server is not installed")
    port, password = free_port(), f"pw-{uuid.uuid4().hex}"
    server = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "--user", "keda", "--pass", password,
         "-js", "-sd", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nats-server did not start")
                time.sleep(0.02)
        yield f"nats://127.0.0.1:{port}", "keda", password
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_nats_login_from_authentication_and_a_refused_one(
    pools: Pools, nats_with_login: tuple[str, str, str]
) -> None:
    url, user, password = nats_with_login
    client = await nats.connect(url, user=user, password=password)
    js = client.jetstream()
    await js.add_stream(name="JOBS", subjects=["jobs.>"])
    for i in range(4):
        await js.publish("jobs.new", f"job {i}".encode())
    await client.close()
    metadata = {"natsServer": url, "stream": "JOBS", "consumer": "workers"}

    good = {"username": Secret(user), "password": Secret(password)}
    assert await reader("nats-jetstream", metadata, pools, auth=good).read() == 4.0

    bad = {"username": Secret(user), "password": Secret(password + "x")}
    refused = reader("nats-jetstream", metadata, pools, auth=bad)
    with pytest.raises(ScalerError) as caught:
        await refused.read()
    assert not isinstance(caught.value, SourceUnreachable)
    assert "login refused" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), repr(refused), repr(vars(refused))):
        assert password not in text


# --- a dead endpoint opens its circuit -----------------------------------------------------


def dead_endpoints() -> Iterator[tuple[str, str, dict[str, str]]]:
    port = free_port()
    yield "rabbitmq", "amqp", {"host": f"amqp://guest:guest@127.0.0.1:{port}/", "queueName": "q"}
    yield "rabbitmq", "http", {"host": f"http://127.0.0.1:{port}/", "queueName": "q"}
    yield "redis", "redis", {"address": f"127.0.0.1:{port}", "listName": "l"}
    yield (
        "nats-jetstream",
        "nats",
        {"natsServer": f"nats://127.0.0.1:{port}", "stream": "S", "consumer": "c"},
    )


@pytest.mark.parametrize(("trigger_type", "label", "metadata"), list(dead_endpoints()))
async def test_closed_port_is_unreachable_then_the_circuit_opens(
    trigger_type: str, label: str, metadata: dict[str, str]
) -> None:
    clock = [1000.0]
    pools = Pools(now=lambda: clock[0], open_seconds=30)
    try:
        scaler = reader(
            trigger_type,
            metadata,
            pools,
            auth={"password": Secret("pw-dead")} if label == "redis" else None,
        )
        with pytest.raises(SourceUnreachable) as first:
            await scaler.read()
        assert not isinstance(first.value, CircuitOpen)
        with pytest.raises(CircuitOpen):
            await scaler.read()
        clock[0] += 31  # the interval passed: one read goes through to the endpoint again
        with pytest.raises(SourceUnreachable) as retried:
            await scaler.read()
        assert not isinstance(retried.value, CircuitOpen)
    finally:
        await pools.close()


# --- KEDA's formulas for the rate modes (pure) ---------------------------------------------


@pytest.mark.parametrize(
    ("mode", "publish", "deliver", "expected"),
    [
        ("QueueLength", 4.0, 2.0, 30.0),
        ("MessageRate", 4.0, 2.0, 4.0),
        ("DeliverGetRate", 4.0, 2.0, 2.0),
        ("PublishedToDeliveredRatio", 4.0, 2.0, 2.0),
        ("PublishedToDeliveredRatio", 0.0, 2.0, 0.0),
        ("PublishedToDeliveredRatio", 4.0, 0.0, 1.5),  # KEDA: activationValue stands in
        # (publish - deliver) / deliver + messages / deliver = 1 + 15
        ("ExpectedQueueConsumptionTime", 4.0, 2.0, 16.0),
        ("ExpectedQueueConsumptionTime", 4.0, 0.0, 1.5),  # nothing delivered: activationValue
    ],
)
def test_rate_modes_follow_keda(
    mode: Mode, publish: float, deliver: float, expected: float
) -> None:
    stats = QueueStats(messages=30.0, messages_ready=25.0, publish_rate=publish,
                       deliver_get_rate=deliver)  # fmt: skip
    assert mode_value(mode, stats, exclude_unacknowledged=False, activation=1.5) == expected


def test_regex_operations_combine_field_by_field() -> None:
    a, b = QueueStats(3.0, 1.0, 2.0, 0.0), QueueStats(5.0, 4.0, 0.0, 6.0)
    assert combined([a, b], "sum") == QueueStats(8.0, 5.0, 2.0, 6.0)
    assert combined([a, b], "max") == QueueStats(5.0, 4.0, 2.0, 6.0)
    assert combined([a, b], "avg") == QueueStats(4.0, 2.5, 1.0, 3.0)
    assert combined([], "avg") == QueueStats(0.0, 0.0, 0.0, 0.0)
