"""Redis lists, keys and streams (KEDA `redis` and `redis-streams` triggers): metadata and reader.

`redis`: exactly one of `listName` (LLEN, target `listLength`) and `keyName` (a number stored
at the key, target `keyValue`) is set, as KEDA's docs require.

`redis-streams`, as KEDA chooses its measure: with `consumerGroup` and `lagCount`, the group's
lag (XINFO GROUPS, Redis 7+); with `consumerGroup` alone, its pending entries (XPENDING,
target `pendingEntriesCount`); without a group, the stream length (XLEN, `streamLength`).

The server is `address` (`host:port`) or `host` plus `port`, each also readable from the
workload's environment (`...FromEnv`) or a TriggerAuthentication, so none of them is required
here. Several comma-separated addresses (a cluster) validate, but the reader takes one server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import redis.asyncio
import redis.exceptions
from pydantic import Field, model_validator
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from scalers.base import (
    BadMetric,
    Boolean,
    MetricSpec,
    MetricType,
    NonEmptyString,
    NonNegativeInteger,
    NonNegativeNumber,
    PositiveInteger,
    PositiveNumber,
    ScalerError,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.context import ScalerContext, Secret
from scalers.registry import register, register_reader
from scalers.remote import PooledReader, Remote, auth_text

DEFAULT_PORT = 6379


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",")] if text.strip() else []


def _is_port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536


class RedisServer(TriggerMetadata):
    """Where the Redis server is and how to log in: the fields every Redis trigger shares."""

    address: str = ""
    address_from_env: str = Field(default="", alias="addressFromEnv")
    host: str = ""
    host_from_env: str = Field(default="", alias="hostFromEnv")
    port: str = ""
    port_from_env: str = Field(default="", alias="portFromEnv")
    database_index: NonNegativeInteger = Field(default=0, alias="databaseIndex")
    enable_tls: Boolean = Field(default=False, alias="enableTLS")
    unsafe_ssl: Boolean = Field(default=False, alias="unsafeSsl")
    # auth parameters: KEDA reads them from metadata too, but a TriggerAuthentication or
    # the *FromEnv names keep the secret out of the manifest
    username: str = ""
    password: str = ""
    username_from_env: str = Field(default="", alias="usernameFromEnv")
    password_from_env: str = Field(default="", alias="passwordFromEnv")

    def _check_server(self) -> None:
        for address in _items(self.address):
            if not _is_port(address.rpartition(":")[2]):
                raise field_error(("address",), "must be host:port, comma-separated", address)
        hosts, ports = _items(self.host), _items(self.port)
        for port in ports:
            if not _is_port(port):
                raise field_error(("port",), "must be a port number (1-65535)", port)
        # KEDA joins hosts and ports pairwise
        if hosts and ports and len(hosts) != len(ports):
            message = f"must list as many ports as host lists hosts ({len(hosts)})"
            raise field_error(("port",), message, self.port)


@register
class RedisMetadata(RedisServer):
    """KEDA's redis (lists and keys) scaler metadata, with its names and defaults."""

    trigger_type = "redis"

    list_name: str = Field(default="", alias="listName")
    list_length: PositiveInteger = Field(default=5, alias="listLength")
    activation_list_length: NonNegativeInteger = Field(default=0, alias="activationListLength")
    key_name: str = Field(default="", alias="keyName")
    # KEDA's docs give no default for keyValue; listLength's is used
    key_value: PositiveNumber = Field(default=5.0, alias="keyValue")
    activation_value: NonNegativeNumber = Field(default=0.0, alias="activationValue")

    @model_validator(mode="after")
    def _source_and_address(self) -> RedisMetadata:
        if not self.list_name.strip() and not self.key_name.strip():
            raise field_error(("listName",), "required (or keyName)", None)
        if self.list_name.strip() and self.key_name.strip():
            raise field_error(("keyName",), "cannot be set together with listName", self.key_name)
        self._check_server()
        return self

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        if self.key_name.strip():
            target, activation = self.key_value, self.activation_value
        else:
            target, activation = float(self.list_length), float(self.activation_list_length)
        return MetricSpec(
            name=self.metric_name(ctx, self.key_name.strip() or self.list_name.strip()),
            target=target,
            activation_target=activation,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )


StreamMeasure = Literal["pending", "length", "lag"]


@register
class RedisStreamsMetadata(RedisServer):
    """KEDA's redis-streams scaler metadata, with its names and defaults."""

    trigger_type = "redis-streams"

    stream: NonEmptyString
    consumer_group: str = Field(default="", alias="consumerGroup")
    pending_entries_count: PositiveInteger = Field(default=5, alias="pendingEntriesCount")
    stream_length: PositiveInteger = Field(default=5, alias="streamLength")
    # setting lagCount (with a consumerGroup) is what selects the lag measure
    lag_count: PositiveInteger | None = Field(default=None, alias="lagCount")
    activation_lag_count: NonNegativeInteger = Field(default=0, alias="activationLagCount")

    @model_validator(mode="after")
    def _server(self) -> RedisStreamsMetadata:
        self._check_server()
        return self

    @property
    def measure(self) -> StreamMeasure:
        """KEDA's choice; a lagCount without a consumerGroup is ignored there, and here."""
        if not self.consumer_group.strip():
            return "length"
        return "lag" if self.lag_count is not None else "pending"

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        measure = self.measure
        if measure == "lag":
            target, activation = float(self.lag_count or 0), float(self.activation_lag_count)
        elif measure == "pending":
            target, activation = float(self.pending_entries_count), 0.0
        else:
            target, activation = float(self.stream_length), 0.0
        return MetricSpec(
            name=self.metric_name(ctx, self.stream),
            target=target,
            activation_target=activation,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )


# --- the live reader -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Server:
    host: str
    port: int
    db: int
    username: str
    tls: bool
    unsafe: bool
    ca: str
    password: str = field(repr=False)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not _is_port(port):
        raise ValueError("redis: address must be host:port")
    return host.strip("[]"), int(port)


def _resolve_server(meta: RedisServer, ctx: ScalerContext) -> _Server:
    """KEDA's reading: address, else host and port; metadata first, then authentication."""
    address = meta.address or auth_text(ctx, "address")
    if address:
        addresses = _items(address)
        if len(addresses) != 1:
            raise ValueError("redis: one host:port expected (a cluster is not supported)")
        host, port = _split_address(addresses[0])
    else:
        host = meta.host or auth_text(ctx, "host")
        port_text = meta.port or auth_text(ctx, "port")
        if not host:
            raise ValueError("redis: no server: set address, or host and port")
        if "," in host or "," in port_text:
            raise ValueError("redis: one host expected (a cluster is not supported)")
        if port_text and not _is_port(port_text.strip()):
            raise ValueError("redis: port must be a port number (1-65535)")
        port = int(port_text) if port_text else DEFAULT_PORT
    tls_param = auth_text(ctx, "tls")
    if tls_param not in ("", "enable", "disable"):
        raise ValueError("redis: authentication parameter tls must be enable or disable")
    tls = meta.enable_tls or tls_param == "enable"
    if tls and (ctx.param("cert") or ctx.param("key")):
        raise ValueError("redis: TLS client certificates (cert, key) are not supported yet")
    return _Server(
        host=host,
        port=port,
        db=meta.database_index,
        username=meta.username or auth_text(ctx, "username"),
        password=meta.password or auth_text(ctx, "password"),
        tls=tls,
        unsafe=meta.unsafe_ssl,
        ca=auth_text(ctx, "ca"),
    )


_UNREACHABLE = (OSError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@register_reader("redis", "redis-streams")
class RedisScaler(PooledReader):
    """Reads a list's length, a key's number, or a stream's pending entries, length or lag."""

    def __init__(self, ctx: ScalerContext) -> None:
        meta = ctx.metadata
        if not isinstance(meta, RedisMetadata | RedisStreamsMetadata):
            raise TypeError(f"redis reader given {type(meta).__name__}")
        self.spec = ctx.spec
        self._meta = meta
        self.pools = ctx.pools
        server = _resolve_server(meta, ctx)
        self._server = server
        if isinstance(meta, RedisMetadata):
            what = f"key {meta.key_name!r}" if meta.key_name.strip() else f"list {meta.list_name!r}"
        else:
            group = f" group {meta.consumer_group!r}" if meta.consumer_group.strip() else ""
            what = f"stream {meta.stream!r}{group} ({meta.measure})"
        self.remote = Remote(
            name=f"redis {what} at {server.host}:{server.port}/{server.db}",
            key=("redis", server.host, server.port),
            timeout=ctx.timeout,
            unreachable=_UNREACHABLE,
            secrets=(server.password,) if server.password else (),
        )
        # one client (with its own connection pool) per server, database and login
        self.client_key = (
            "redis", server.host, server.port, server.db, server.username,
            Secret(server.password), server.tls, server.unsafe,
        )  # fmt: skip

    async def _connect(self) -> redis.asyncio.Redis:
        s = self._server
        return redis.asyncio.Redis(
            host=s.host,
            port=s.port,
            db=s.db,
            username=s.username or None,
            password=s.password or None,
            ssl=s.tls,
            ssl_cert_reqs="none" if s.unsafe else "required",
            ssl_check_hostname=s.tls and not s.unsafe,
            ssl_ca_data=s.ca or None,
            socket_timeout=self.remote.timeout,
            socket_connect_timeout=self.remote.timeout,
            # one quick retry reconnects a pooled connection the server closed; no backoff:
            # the breaker paces retries of a dead server
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )

    async def read_once(self) -> float:
        client = await self.pools.shared(self.client_key, self._connect, _close_client)
        try:
            return await self._measure(client)
        except redis.exceptions.AuthenticationError:
            # a configuration error, not an outage: it must not open the circuit
            raise self.remote.error(ScalerError, "login refused (username or password)") from None
        except redis.exceptions.ResponseError as exc:
            if "WRONGPASS" in str(exc) or "NOAUTH" in str(exc) or "NOPERM" in str(exc):
                raise self.remote.error(ScalerError, self.remote.describe(exc)) from None
            raise self.remote.error(BadMetric, self.remote.describe(exc)) from None

    async def _measure(self, client: redis.asyncio.Redis) -> float:
        meta = self._meta
        if isinstance(meta, RedisMetadata):
            if meta.key_name.strip():
                return self._number_at_key(await client.get(meta.key_name.strip()))
            return float(await client.llen(meta.list_name.strip()))
        measure = meta.measure
        if measure == "length":
            return float(await client.xlen(meta.stream))
        if measure == "pending":
            summary = await client.xpending(meta.stream, meta.consumer_group)
            return float(summary["pending"])
        for group in await client.xinfo_groups(meta.stream):
            if group.get("name") == meta.consumer_group:
                lag = group.get("lag")
                if lag is None:
                    # Redis cannot count it after entries were deleted: not zero, unknown
                    raise self.remote.error(BadMetric, "Redis reports the group's lag as unknown")
                return float(lag)
        raise self.remote.error(BadMetric, "no such consumer group")

    def _number_at_key(self, value: object) -> float:
        if value is None:
            raise self.remote.error(BadMetric, "no such key")
        try:
            return float(str(value))
        except ValueError:
            raise self.remote.error(BadMetric, "the key does not hold a number") from None


async def _close_client(client: redis.asyncio.Redis) -> None:
    await client.aclose()
