"""Kafka consumer-group lag (KEDA `kafka` and `apache-kafka` triggers): metadata and reader.

The arithmetic follows KEDA's sarama scaler (pkg/scalers/kafka_scaler.go, `getLagForPartition`
and `getTotalLag`) in `total_lag`, a pure function; `KafkaScaler` only gathers offsets. Where
ebbflow departs from KEDA it says so in a comment that starts with "ebbflow:".
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    NodeNotReadyError,
    RequestTimedOutError,
    for_code,
)
from aiokafka.protocol.commit import OffsetFetchRequest
from aiokafka.protocol.coordination import FindCoordinatorRequest
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.offset import OffsetRequest
from pydantic import Field, field_validator, model_validator

from scalers.base import (
    BadMetric,
    Boolean,
    MetricSpec,
    MetricType,
    NonEmptyString,
    NonNegativeNumber,
    PositiveNumber,
    ScalerError,
    SourceUnreachable,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.context import ScalerContext, Secret
from scalers.registry import register, register_reader

T = TypeVar("T")

NO_OFFSET = -1  # what OffsetFetch returns for a partition the group never committed


def parse_partitions(text: str) -> frozenset[int]:
    """KEDA's partitionLimitation: `1,2,10-12` -> {1, 2, 10, 11, 12} (ranges inclusive)."""
    partitions: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        bounds = part.split("-") if "-" in part else [part, part]
        if len(bounds) != 2 or not all(b.strip().isdigit() for b in bounds):
            raise ValueError(
                f"must be partition numbers or ranges like 1,2,10-12; bad part {part!r}"
            )
        # KEDA: a reversed range (12-10) adds nothing; it is not an error there either
        partitions.update(range(int(bounds[0]), int(bounds[1]) + 1))
    return frozenset(partitions)


@register
class KafkaMetadata(TriggerMetadata):
    """KEDA's kafka scaler metadata, with its names and defaults."""

    trigger_type = "kafka"

    bootstrap_servers: NonEmptyString = Field(alias="bootstrapServers")
    consumer_group: NonEmptyString = Field(alias="consumerGroup")
    topic: str = ""
    lag_threshold: PositiveNumber = Field(default=10.0, alias="lagThreshold")
    activation_lag_threshold: NonNegativeNumber = Field(default=0.0, alias="activationLagThreshold")
    offset_reset_policy: Literal["latest", "earliest"] = Field(
        default="latest", alias="offsetResetPolicy"
    )
    allow_idle_consumers: Boolean = Field(default=False, alias="allowIdleConsumers")
    exclude_persistent_lag: Boolean = Field(default=False, alias="excludePersistentLag")
    scale_to_zero_on_invalid_offset: Boolean = Field(
        default=False, alias="scaleToZeroOnInvalidOffset"
    )
    limit_to_partitions_with_lag: Boolean = Field(default=False, alias="limitToPartitionsWithLag")
    partition_limitation: str = Field(default="", alias="partitionLimitation")
    ensure_even_distribution_of_partitions: Boolean = Field(
        default=False, alias="ensureEvenDistributionOfPartitions"
    )
    # connection settings, passed through to the client
    version: str = "1.0.0"
    sasl: Literal[
        "none", "plaintext", "scram_sha256", "scram_sha512", "oauthbearer", "gssapi", "aws_msk_iam"
    ] = "none"
    tls: Literal["enable", "disable"] = "disable"
    unsafe_ssl: Boolean = Field(default=False, alias="unsafeSsl")

    @field_validator("partition_limitation")
    @classmethod
    def _partition_list(cls, value: str) -> str:
        if value.strip():
            parse_partitions(value)
        return value

    @model_validator(mode="after")
    def _keda_rules(self) -> KafkaMetadata:
        # KEDA kafkaMetadata.Validate: these combinations are rejected
        if self.limit_to_partitions_with_lag:
            if self.allow_idle_consumers:
                message = "cannot be true together with allowIdleConsumers"
                raise field_error(("limitToPartitionsWithLag",), message, None)
            if not self.topics:
                raise field_error(("limitToPartitionsWithLag",), "needs a topic", None)
        if self.ensure_even_distribution_of_partitions:
            if self.limit_to_partitions_with_lag:
                message = "cannot be true together with limitToPartitionsWithLag"
                raise field_error(("ensureEvenDistributionOfPartitions",), message, None)
            if not self.topics:
                raise field_error(("ensureEvenDistributionOfPartitions",), "needs a topic", None)
        return self

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics to read; empty: every topic the group has committed offsets for."""
        return tuple(t.strip() for t in self.topic.split(",") if t.strip())

    @property
    def partitions(self) -> frozenset[int] | None:
        """partitionLimitation parsed; None: all. KEDA ignores it when no topic is named."""
        if not self.partition_limitation.strip() or not self.topics:
            return None
        return parse_partitions(self.partition_limitation)

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        return MetricSpec(
            name=self.metric_name(ctx, self.topic or self.consumer_group),
            target=self.lag_threshold,
            activation_target=self.activation_lag_threshold,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )


@register
class ApacheKafkaMetadata(KafkaMetadata):
    """KEDA's experimental kafka-go scaler (`apache-kafka`): kafka's metadata plus awsRegion."""

    trigger_type = "apache-kafka"

    aws_region: str = Field(default="", alias="awsRegion")


# --- the lag arithmetic (pure) -------------------------------------------------------------


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition's latest (high-watermark) offset and the group's committed offset."""

    topic: str
    partition: int
    latest: int
    committed: int  # NO_OFFSET: the group has not committed one


@dataclass(frozen=True)
class Lag:
    """What one read yields: the metric, KEDA's activity figure and the replica cap."""

    value: float  # the metric the HPA arithmetic sees, after KEDA's caps
    with_persistent: float  # KEDA compares this, not `value`, with activationLagThreshold
    replica_cap: int | None  # most replicas this trigger may ask for; None: no cap
    committed: Mapping[tuple[str, int], int]  # for excludePersistentLag on the next read


def partition_lag(
    meta: KafkaMetadata, p: PartitionOffsets, previous: Mapping[tuple[str, int], int]
) -> tuple[int, int]:
    """(lag, lag including persistent lag) of one partition, as KEDA's getLagForPartition."""
    if p.committed < 0:
        if meta.scale_to_zero_on_invalid_offset:
            return 0, 0
        if meta.offset_reset_policy == "latest":
            return 1, 1  # KEDA: lag 1, so a consumer starts and commits
        return p.latest, p.latest  # KEDA (earliest): the latest offset, not latest - earliest
    # ebbflow: a committed offset past the latest (truncated log) is lag 0, not negative
    lag = max(p.latest - p.committed, 0)
    if meta.exclude_persistent_lag and previous.get((p.topic, p.partition)) == p.committed:
        return 0, lag  # the group did not move since the last read: stuck, don't scale on it
    return lag, lag


def _even_factor(lag: float, partitions: int, threshold: float) -> int:
    # KEDA getNextFactorThatBalancesConsumersToTopicPartitions
    for factor in range(1, partitions + 1):
        if partitions % factor == 0 and factor * threshold >= lag:
            return factor
    return partitions


def total_lag(
    meta: KafkaMetadata,
    offsets: Sequence[PartitionOffsets],
    previous: Mapping[tuple[str, int], int],
) -> Lag:
    """The group's lag over `offsets`, capped as KEDA's getTotalLag caps it."""
    lags = [partition_lag(meta, p, previous) for p in offsets]
    value: float = sum(lag for lag, _ in lags)
    with_persistent = sum(full for _, full in lags)
    committed = dict(previous)
    committed.update({(p.topic, p.partition): p.committed for p in offsets if p.committed >= 0})
    cap = None
    even = meta.ensure_even_distribution_of_partitions
    if not meta.allow_idle_consumers or meta.limit_to_partitions_with_lag or even:
        # more consumers than partitions would sit idle: don't ask for them
        cap = len(offsets)
        threshold = meta.lag_threshold
        if even and value > 0:  # ebbflow: no lag stays 0 (KEDA rounds it up to 1 factor)
            value = _even_factor(value, len(offsets), threshold) * threshold
        if meta.limit_to_partitions_with_lag:
            cap = sum(1 for lag, _ in lags if lag > 0)
        # ebbflow: true division; KEDA's integer division lets 25/10 on 2 partitions ask for 3
        if value / threshold > cap:
            value = cap * threshold
    return Lag(value, with_persistent, cap, committed)


# --- the reader ----------------------------------------------------------------------------

_SASL_MECHANISMS = {
    "plaintext": "PLAIN",
    "scram_sha256": "SCRAM-SHA-256",
    "scram_sha512": "SCRAM-SHA-512",
}


@dataclass(frozen=True)
class _Security:
    """How to reach the brokers. Hashable, so it keys the shared client; secrets print as ***."""

    sasl: str = "none"
    username: Secret | None = None
    password: Secret | None = None
    tls: bool = False
    ca: Secret | None = None
    cert: Secret | None = None
    key: Secret | None = None
    key_password: Secret | None = None
    unsafe_ssl: bool = False

    @classmethod
    def of(cls, meta: KafkaMetadata, auth: Mapping[str, Secret]) -> _Security:
        """KEDA's lookup: sasl and tls from metadata, else auth params; credentials from auth."""
        sasl = meta.sasl if "sasl" in meta.model_fields_set else auth.get("sasl", "none").strip()
        tls = meta.tls if "tls" in meta.model_fields_set else auth.get("tls", "disable").strip()
        where = f"kafka trigger (bootstrapServers {meta.bootstrap_servers})"
        if sasl not in ("none", *_SASL_MECHANISMS):
            supported = ", ".join(["none", *_SASL_MECHANISMS])
            raise ScalerError(f"{where}: sasl {sasl!r} is not supported; use one of {supported}")
        if tls not in ("enable", "disable"):
            raise ScalerError(f"{where}: tls must be enable or disable, got {tls!r}")
        security = cls(
            sasl=sasl,
            username=auth.get("username") or None,
            password=auth.get("password") or None,
            tls=tls == "enable",
            ca=auth.get("ca") or None,
            cert=auth.get("cert") or None,
            key=auth.get("key") or None,
            key_password=auth.get("keyPassword") or None,
            unsafe_ssl=meta.unsafe_ssl,
        )
        if sasl != "none" and not (security.username and security.password):
            raise ScalerError(f"{where}: sasl {sasl} needs username and password auth params")
        if security.tls and bool(security.cert) != bool(security.key):
            raise ScalerError(f"{where}: tls cert and key must be given together")
        return security

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context (blocking: it writes the client cert to a private temp dir)."""
        try:
            return self._ssl_context()
        except (ssl.SSLError, ValueError) as exc:  # bad PEM: a setting to fix, not an outage
            raise ScalerError(f"kafka tls: ca, cert or key could not be loaded: {exc}") from None

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca.reveal if self.ca else None)
        if self.cert and self.key:
            # ssl loads a client certificate only from files
            with tempfile.TemporaryDirectory(prefix="ebbflow-kafka-") as folder:
                cert_file, key_file = os.path.join(folder, "cert"), os.path.join(folder, "key")
                for path, secret in ((cert_file, self.cert), (key_file, self.key)):
                    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
                        out.write(secret.reveal)
                password = self.key_password.reveal if self.key_password else None
                context.load_cert_chain(cert_file, key_file, password=password)
        if self.unsafe_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


async def _connect(servers: tuple[str, ...], security: _Security, wait_s: float) -> Any:
    """A bootstrapped low-level client (aiokafka's admin client is built on the same one)."""
    sasl = security.sasl != "none"
    protocol = {
        (False, False): "PLAINTEXT",
        (False, True): "SSL",
        (True, False): "SASL_PLAINTEXT",
        (True, True): "SASL_SSL",
    }[(sasl, security.tls)]
    context = await asyncio.to_thread(security.ssl_context) if security.tls else None
    client = AIOKafkaClient(
        bootstrap_servers=list(servers),
        client_id="ebbflow",
        request_timeout_ms=max(int(wait_s * 1000), 1000),
        security_protocol=protocol,
        ssl_context=context,
        sasl_mechanism=_SASL_MECHANISMS.get(security.sasl, "PLAIN"),
        sasl_plain_username=security.username.reveal if security.username else None,
        sasl_plain_password=security.password.reveal if security.password else None,
    )
    try:
        await client.bootstrap()
    except BaseException:
        await client.close()
        raise
    return client


async def _close(client: Any) -> None:
    await client.close()


async def _concurrently(first: Awaitable[T], second: Awaitable[Any]) -> tuple[T, Any]:
    """Both results; the first failure cancels the other."""
    tasks = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    try:
        done = await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return done[0], done[1]


def _check(code: int, what: str) -> None:
    """Raise for a Kafka error code: retriable ones are SourceUnreachable, others BadMetric."""
    if code:
        error = for_code(code)
        kind = SourceUnreachable if error.retriable else BadMetric
        raise kind(f"{what}: {error.__name__}")


@register_reader("kafka", "apache-kafka")
class KafkaScaler:
    """Consumer-group lag read from the brokers; one client per brokers and credentials."""

    def __init__(self, ctx: ScalerContext) -> None:
        if not isinstance(ctx.metadata, KafkaMetadata):
            raise TypeError(f"kafka reader got {type(ctx.metadata).__name__} metadata")
        self.spec: MetricSpec = ctx.spec
        self._meta = ctx.metadata
        self._pools = ctx.pools
        self._timeout = ctx.timeout
        servers = self._meta.bootstrap_servers.split(",")
        self._servers = tuple(sorted(s.strip() for s in servers if s.strip()))
        self._security = _Security.of(self._meta, ctx.auth)
        self._where = f"kafka {','.join(self._servers)} group {self._meta.consumer_group!r}"
        self._committed: Mapping[tuple[str, int], int] = {}
        self._replica_cap: int | None = None
        self._activity_value: float | None = None

    @property
    def client_key(self) -> tuple[str, tuple[str, ...], _Security]:
        """The key of the shared client and of the circuit breaker: brokers and credentials."""
        return ("kafka", self._servers, self._security)

    @property
    def replica_cap(self) -> int | None:
        """Most replicas this trigger may ask for (partitions, or partitions with lag); None:
        no cap (allowIdleConsumers), or the last read failed."""
        return self._replica_cap

    @property
    def activity_value(self) -> float | None:
        """The lag including persistent lag, which KEDA compares with activationLagThreshold
        (`read()` returns the capped lag the HPA sees); None when the last read failed."""
        return self._activity_value

    async def read(self) -> float:
        self._replica_cap = self._activity_value = None  # a failed read leaves no stale cap
        lag = await self._pools.breaker.call(self.client_key, self._read_once)
        self._committed = lag.committed
        self._replica_cap = lag.replica_cap
        self._activity_value = lag.with_persistent
        return lag.value

    async def close(self) -> None:
        """Nothing of its own: the client belongs to the Pools."""

    async def _read_once(self) -> Lag:
        try:
            async with asyncio.timeout(self._timeout):
                client = await self._pools.shared(
                    self.client_key,
                    lambda: _connect(self._servers, self._security, self._timeout),
                    _close,
                )
                offsets = await self._offsets(client)
        except TimeoutError:
            await self._pools.discard(self.client_key)
            raise SourceUnreachable(f"{self._where}: no answer within {self._timeout:g}s") from None
        except OSError as exc:
            await self._pools.discard(self.client_key)
            raise SourceUnreachable(f"{self._where}: {type(exc).__name__}: {exc}") from None
        except (KafkaConnectionError, NodeNotReadyError, RequestTimedOutError) as exc:
            await self._pools.discard(self.client_key)  # a fresh client next time
            raise SourceUnreachable(f"{self._where}: {exc}") from None  # str names the class
        except KafkaError as exc:
            kind = SourceUnreachable if exc.retriable else BadMetric
            raise kind(f"{self._where}: {exc}") from None
        return total_lag(self._meta, offsets, self._committed)

    async def _offsets(self, client: Any) -> list[PartitionOffsets]:
        """Latest and committed offsets of the partitions KEDA considers."""
        node = client.get_random_node()
        if node is None:
            raise SourceUnreachable(f"{self._where}: no broker is reachable")
        topics = self._meta.topics
        # never auto-create: a misspelt topic must be an error, not a new empty topic
        request = MetadataRequest(list(topics) or None, allow_auto_topic_creation=False)
        metadata, coordinator = await _concurrently(
            client.send(node, request),
            client.send(node, FindCoordinatorRequest(self._meta.consumer_group, 0)),
        )
        client.cluster.update_metadata(metadata)  # leaders and broker addresses, fresh
        _check(coordinator.error_code, f"{self._where}: finding the group coordinator")
        leaders = self._partitions(metadata)
        if topics:
            committed, latest = await _concurrently(
                self._committed_offsets(client, coordinator.coordinator_id, leaders),
                self._latest_offsets(client, leaders),
            )
        else:
            # KEDA asks OffsetFetch with null topics ("all the group committed"); tansu breaks
            # the connection on that form, so we ask for every topic's partitions by name and
            # keep the topics with a commit: the same set on real Kafka, which drops a deleted
            # topic's offsets, at the cost of a larger request.
            committed = await self._committed_offsets(client, coordinator.coordinator_id, leaders)
            kept = {topic for (topic, _), offset in committed.items() if offset >= 0}
            leaders = {tp: leader for tp, leader in leaders.items() if tp[0] in kept}
            latest = await self._latest_offsets(client, leaders)
        return [
            PartitionOffsets(topic, partition, offset, committed.get((topic, partition), NO_OFFSET))
            for (topic, partition), offset in sorted(latest.items())
        ]

    def _partitions(self, metadata: Any) -> dict[tuple[str, int], int]:
        """(topic, partition) -> leader node, after partitionLimitation."""
        wanted = self._meta.partitions
        leaders: dict[tuple[str, int], int] = {}
        for topic in metadata.to_object()["topics"]:
            name = topic["topic"]
            if topic["error_code"] == 3:  # UNKNOWN_TOPIC_OR_PARTITION
                raise BadMetric(f"{self._where}: topic {name!r} does not exist")
            _check(topic["error_code"], f"{self._where}: describing topic {name!r}")
            if topic.get("is_internal") and not self._meta.topics:
                continue  # __consumer_offsets and friends are not a group's input
            found = {p["partition"]: p["leader"] for p in topic["partitions"]}
            chosen = {p: leader for p, leader in found.items() if wanted is None or p in wanted}
            if self._meta.topics and not chosen:
                raise BadMetric(
                    f"{self._where}: partitionLimitation {self._meta.partition_limitation!r} "
                    f"matches none of topic {name!r}'s partitions {sorted(found)}"
                )
            leaders.update({(name, p): leader for p, leader in chosen.items()})
        return leaders

    async def _committed_offsets(
        self, client: Any, coordinator: int, leaders: Mapping[tuple[str, int], int]
    ) -> dict[tuple[str, int], int]:
        by_topic: dict[str, list[int]] = {}
        for topic, partition in leaders:
            by_topic.setdefault(topic, []).append(partition)
        if not by_topic:
            return {}
        request = OffsetFetchRequest(self._meta.consumer_group, list(by_topic.items()))
        response = await client.send(coordinator, request)
        what = f"{self._where}: fetching committed offsets"
        _check(getattr(response, "error_code", 0), what)  # top-level error from v2 on
        committed: dict[tuple[str, int], int] = {}
        for topic, partitions in response.topics:
            for partition, offset, _metadata, error_code in partitions:
                _check(error_code, f"{what} of {topic}/{partition}")
                committed[(topic, partition)] = int(offset)
        return committed

    async def _latest_offsets(
        self, client: Any, leaders: Mapping[tuple[str, int], int]
    ) -> dict[tuple[str, int], int]:
        """High watermarks (ListOffsets latest, read_uncommitted as KEDA), one request a leader."""
        by_leader: dict[int, dict[str, list[tuple[int, int]]]] = {}
        for (topic, partition), leader in leaders.items():
            if leader < 0:
                raise SourceUnreachable(f"{self._where}: {topic}/{partition} has no leader")
            by_leader.setdefault(leader, {}).setdefault(topic, []).append((partition, -1))
        responses = await asyncio.gather(
            *(
                client.send(leader, OffsetRequest(-1, 0, list(topics.items())))
                for leader, topics in by_leader.items()
            )
        )
        latest: dict[tuple[str, int], int] = {}
        for response in responses:
            for topic, partitions in response.topics:
                for partition, error_code, *info in partitions:
                    _check(error_code, f"{self._where}: latest offset of {topic}/{partition}")
                    if response.API_VERSION == 0:  # v0: a list of offsets
                        if info[0]:
                            latest[(topic, partition)] = int(info[0][0])
                    else:  # v1+: timestamp, offset
                        latest[(topic, partition)] = int(info[1])
        return latest
