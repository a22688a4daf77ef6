"""RabbitMQ queue backlog or message rates (KEDA `rabbitmq` trigger): metadata and reader.

KEDA's rules for the target: give `mode` and `value` together; the deprecated `queueLength`
alone means QueueLength mode with that value; neither means QueueLength 20. Every mode but
QueueLength, and `useRegex`, `excludeUnacknowledged` and `timeout`, need the management API
(protocol http).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, quote_plus, unquote, urlencode, urlsplit

import aiohttp
import aiormq
import aiormq.abc
import aiormq.exceptions
import yarl
from pydantic import Field, ModelWrapValidatorHandler, model_validator

from scalers.base import (
    BadMetric,
    Boolean,
    MetricSpec,
    MetricType,
    NonEmptyString,
    NonNegativeNumber,
    PositiveInteger,
    PositiveNumber,
    ScalerError,
    SourceUnreachable,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.context import ScalerContext, Secret
from scalers.registry import register, register_reader
from scalers.remote import PooledReader, Remote, auth_text

Mode = Literal[
    "QueueLength",
    "MessageRate",
    "DeliverGetRate",
    "PublishedToDeliveredRatio",
    "ExpectedQueueConsumptionTime",
]
DEFAULT_QUEUE_LENGTH = 20.0
_SCHEMES: dict[str, Literal["amqp", "http"]] = {
    "amqp": "amqp",
    "amqps": "amqp",
    "http": "http",
    "https": "http",
}


@register
class RabbitMQMetadata(TriggerMetadata):
    """KEDA's rabbitmq scaler metadata, with its names and defaults."""

    trigger_type = "rabbitmq"

    # the connection string may instead come from an env var or a TriggerAuthentication
    host: str = ""
    host_from_env: str = Field(default="", alias="hostFromEnv")
    protocol: Literal["auto", "amqp", "http"] = "auto"
    queue_name: NonEmptyString = Field(alias="queueName")
    mode: Mode | None = None
    value: PositiveNumber | None = None
    activation_value: NonNegativeNumber = Field(default=0.0, alias="activationValue")
    queue_length: PositiveNumber | None = Field(default=None, alias="queueLength")
    vhost_name: str = Field(default="", alias="vhostName")
    use_regex: Boolean = Field(default=False, alias="useRegex")
    exclude_unacknowledged: Boolean = Field(default=False, alias="excludeUnacknowledged")
    page_size: PositiveInteger = Field(default=100, alias="pageSize")
    operation: Literal["sum", "max", "avg"] = "sum"
    # milliseconds, overriding the global HTTP timeout; only the http protocol has one
    timeout: PositiveInteger | None = None
    unsafe_ssl: Boolean = Field(default=False, alias="unsafeSsl")
    username_from_env: str = Field(default="", alias="usernameFromEnv")
    password_from_env: str = Field(default="", alias="passwordFromEnv")

    @model_validator(mode="wrap")
    @classmethod
    def _keda_rules(
        cls, data: Any, handler: ModelWrapValidatorHandler[RabbitMQMetadata]
    ) -> RabbitMQMetadata:
        model = handler(data)
        # errors quote what the manifest says ("5"), not the parsed value (5.0)
        raw = dict(data) if isinstance(data, Mapping) else {}
        if model.host and model.protocol == "auto" and urlsplit(model.host).scheme not in _SCHEMES:
            # not echoed: the URL may carry a password. KEDA 1 read `host` as an env var name
            message = "must be an amqp(s):// or http(s):// URL; name an env var with hostFromEnv"
            raise field_error(("host",), message, None)
        if model.queue_length is not None and (model.mode is not None or model.value is not None):
            message = "is deprecated and cannot be combined with mode and value"
            raise field_error(("queueLength",), message, raw.get("queueLength"))
        if model.queue_length is None and (model.mode is None) != (model.value is None):
            missing = "mode" if model.mode is None else "value"
            other = "value" if missing == "mode" else "mode"
            raise field_error((missing,), f"required when {other} is set", None)
        model._http_only_features(raw)
        return model

    def _http_only_features(self, raw: dict[str, Any]) -> None:
        protocol = self.resolved_protocol
        if protocol is None or protocol == "http":
            return  # unknown until the host is resolved from the environment or auth
        if self.target_mode != "QueueLength":
            raise field_error(("mode",), f"{self.target_mode} needs protocol http", self.mode)
        for alias, used in (
            ("useRegex", self.use_regex),
            ("excludeUnacknowledged", self.exclude_unacknowledged),
            ("timeout", self.timeout is not None),
        ):
            if used:
                raise field_error((alias,), "needs protocol http", raw.get(alias))

    @property
    def resolved_protocol(self) -> Literal["amqp", "http"] | None:
        """amqp or http; with `auto`, read from the host's scheme (None if host is not here)."""
        if self.protocol != "auto":
            return self.protocol
        return _SCHEMES[urlsplit(self.host).scheme] if self.host else None

    @property
    def target_mode(self) -> Mode:
        return self.mode or "QueueLength"

    @property
    def target_value(self) -> float:
        """`value`, else the deprecated `queueLength`, else KEDA's default of 20."""
        if self.value is not None:
            return self.value
        return self.queue_length if self.queue_length is not None else DEFAULT_QUEUE_LENGTH

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        return MetricSpec(
            name=self.metric_name(ctx, quote_plus(self.queue_name)),
            target=self.target_value,
            activation_target=self.activation_value,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )


# --- the live reader -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueueStats:
    """What the management API says of a queue (or of the queues a regex matched, combined)."""

    messages: float
    messages_ready: float
    publish_rate: float
    deliver_get_rate: float


def _queue_stats(item: Mapping[str, Any]) -> QueueStats:
    # a queue created within the last statistics interval has no counts yet: not zero
    if not isinstance(item.get("messages"), int | float):
        raise ValueError(f"queue {item.get('name', '?')!r} has no statistics yet")
    stats = item.get("message_stats") or {}
    return QueueStats(
        messages=float(item["messages"]),
        messages_ready=float(item.get("messages_ready") or 0),
        publish_rate=float((stats.get("publish_details") or {}).get("rate") or 0.0),
        deliver_get_rate=float((stats.get("deliver_get_details") or {}).get("rate") or 0.0),
    )


def combined(queues: list[QueueStats], operation: Literal["sum", "max", "avg"]) -> QueueStats:
    """KEDA's useRegex `operation`, field by field; no matching queue counts as all zeros.

    KEDA averages the counts in integers; we keep the fraction (at most one message apart).
    """
    if not queues:
        return QueueStats(0.0, 0.0, 0.0, 0.0)
    columns = list(
        zip(
            *((q.messages, q.messages_ready, q.publish_rate, q.deliver_get_rate) for q in queues),
            strict=True,
        )
    )
    if operation == "sum":
        values = [sum(c) for c in columns]
    elif operation == "max":
        values = [max(c) for c in columns]
    else:
        values = [sum(c) / len(c) for c in columns]
    return QueueStats(*values)


def mode_value(
    mode: Mode, stats: QueueStats, exclude_unacknowledged: bool, activation: float
) -> float:
    """The metric of each KEDA trigger mode, with KEDA's stand-ins where a rate is zero.

    KEDA reports `activationValue` for PublishedToDeliveredRatio when messages are published
    but none delivered, and for ExpectedQueueConsumptionTime when nothing is delivered.
    """
    messages = stats.messages_ready if exclude_unacknowledged else stats.messages
    publish, deliver = stats.publish_rate, stats.deliver_get_rate
    if mode == "QueueLength":
        return messages
    if mode == "MessageRate":
        return publish
    if mode == "DeliverGetRate":
        return deliver
    if mode == "PublishedToDeliveredRatio":
        if publish > 0 and deliver == 0:
            return activation
        return publish / deliver if publish > 0 else 0.0
    if deliver == 0:  # ExpectedQueueConsumptionTime
        return activation
    return (publish - deliver) / deliver + messages / deliver


@dataclass(frozen=True)
class _Broker:
    """The resolved connection: where, as whom, over what."""

    protocol: Literal["amqp", "http"]
    scheme: str
    host: str
    port: int | None
    path_prefix: str  # http only: what precedes /api
    vhost: str  # amqp: the vhost itself; http: its path segment, already escaped
    username: str
    password: str = field(repr=False)

    @property
    def shown(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}{self.path_prefix}"


def _resolve_broker(meta: RabbitMQMetadata, ctx: ScalerContext) -> _Broker:
    """KEDA's reading of host, protocol, vhostName, username and password (metadata first)."""
    host = meta.host or auth_text(ctx, "host")
    if not host:
        raise ValueError(
            "rabbitmq: no host: set metadata host, hostFromEnv, or the TriggerAuthentication "
            "parameter host"
        )
    parts = urlsplit(host)
    chosen: str = meta.protocol
    if chosen == "auto" and auth_text(ctx, "protocol"):
        chosen = auth_text(ctx, "protocol")
    if chosen == "auto":
        if parts.scheme not in _SCHEMES:
            raise ValueError("rabbitmq: host must be an amqp(s):// or http(s):// URL")
        chosen = _SCHEMES[parts.scheme]
    if chosen not in ("amqp", "http"):
        raise ValueError("rabbitmq: protocol must be auto, amqp or http")
    protocol: Literal["amqp", "http"] = "amqp" if chosen == "amqp" else "http"
    vhost_name = meta.vhost_name or auth_text(ctx, "vhostName")
    username, password = auth_text(ctx, "username"), auth_text(ctx, "password")
    if bool(username) != bool(password):
        raise ValueError("rabbitmq: username and password must be given together")
    # KEDA: credentials from authentication override those in the host URL
    user = username or unquote(parts.username or "")
    secret = password or unquote(parts.password or "")
    raw_path = parts.path
    if protocol == "http":
        # KEDA: the last path segment is the vhost, what precedes it a path prefix
        prefix, _, segment = raw_path.rpartition("/")
        if vhost_name:
            segment = quote(vhost_name, safe="")
        vhost = segment or "%2F"
        path_prefix = prefix.rstrip("/")
    else:
        vhost = vhost_name or unquote(raw_path[1:]) or "/"
        path_prefix = ""
    try:
        port = parts.port
    except ValueError:
        raise ValueError("rabbitmq: host has an invalid port") from None
    return _Broker(
        protocol, parts.scheme, parts.hostname or "", port, path_prefix, vhost, user, secret
    )


def _ssl_context(ctx: ScalerContext, unsafe: bool) -> ssl.SSLContext | None:
    """The TriggerAuthentication's `tls`/`ca`, and `unsafeSsl`; client certificates unsupported."""
    tls = auth_text(ctx, "tls")
    if tls not in ("", "enable", "disable"):
        raise ValueError("rabbitmq: authentication parameter tls must be enable or disable")
    enabled = tls == "enable"
    if enabled and (auth_text(ctx, "cert") or auth_text(ctx, "key")):
        raise ValueError("rabbitmq: TLS client certificates (cert, key) are not supported yet")
    if not enabled and not unsafe:
        return None
    context = ssl.create_default_context(cadata=auth_text(ctx, "ca") or None)
    if unsafe:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


_HTTP_UNREACHABLE = (OSError, aiohttp.ClientConnectionError)
_AMQP_UNREACHABLE = (
    OSError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ConnectionClosed,
    aiormq.exceptions.ChannelInvalidStateError,
)


@register_reader("rabbitmq")
class RabbitMQScaler(PooledReader):
    """Reads a queue's backlog or rates, over AMQP or the management HTTP API.

    AMQP (QueueLength only): a passive queue.declare on a channel of the pooled connection
    returns the ready-message count. HTTP: `GET {host}/api/queues/{vhost}/{queue}` (or the
    regex listing), whose counts refresh once per broker statistics interval (5 s default).
    """

    def __init__(self, ctx: ScalerContext) -> None:
        meta = ctx.metadata
        if not isinstance(meta, RabbitMQMetadata):
            raise TypeError(f"rabbitmq reader given {type(meta).__name__}")
        self.spec = ctx.spec
        self._meta = meta
        self.pools = ctx.pools
        broker = _resolve_broker(meta, ctx)
        self._broker = broker
        if broker.protocol == "amqp":
            for feature, used in (
                (f"mode {meta.target_mode}", meta.target_mode != "QueueLength"),
                ("useRegex", meta.use_regex),
                ("excludeUnacknowledged", meta.exclude_unacknowledged),
                ("timeout", meta.timeout is not None),
            ):
                if used:
                    raise ValueError(f"rabbitmq: {feature} needs protocol http")
        self._ssl = _ssl_context(ctx, meta.unsafe_ssl)
        timeout = ctx.timeout if meta.timeout is None else meta.timeout / 1000
        secrets = (broker.password,) if broker.password else ()
        where = f"{broker.shown} vhost {unquote(broker.vhost)!r}"
        self.remote = Remote(
            name=f"rabbitmq queue {meta.queue_name!r} at {where}",
            key=("rabbitmq", broker.protocol, broker.host, broker.port),
            timeout=timeout,
            unreachable=_HTTP_UNREACHABLE if broker.protocol == "http" else _AMQP_UNREACHABLE,
            secrets=secrets,
        )
        # one AMQP connection per broker, vhost and credentials, shared by all triggers
        self.client_key = (
            "rabbitmq-amqp",
            broker.scheme,
            broker.host,
            broker.port,
            broker.vhost,
            broker.username,
            Secret(broker.password),
        )

    async def read_once(self) -> float:
        if self._broker.protocol == "amqp":
            return await self._read_amqp()
        return await self._read_http()

    async def _connect(self) -> aiormq.abc.AbstractConnection:
        b = self._broker
        url = yarl.URL.build(
            scheme=b.scheme,
            user=quote(b.username, safe="") or None,
            password=quote(b.password, safe="") or None,
            host=b.host,
            port=b.port,
            path="/" + quote(b.vhost, safe=""),
            encoded=True,
        )
        try:
            return await aiormq.connect(url, context=self._ssl)
        except aiormq.exceptions.ProbableAuthenticationError:
            # not worth another try each poll: a configuration error, not an outage
            raise self.remote.error(ScalerError, "login refused (username or password)") from None

    async def _read_amqp(self) -> float:
        connection = await self.pools.shared(self.client_key, self._connect, _close_amqp)
        if connection.is_closed:
            await self.discard()
            connection = await self.pools.shared(self.client_key, self._connect, _close_amqp)
        channel = await connection.channel()
        try:
            declared = await channel.queue_declare(self._meta.queue_name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise self.remote.error(BadMetric, "no such queue") from None
        finally:
            if not channel.is_closed:
                await channel.close()
        count = declared.message_count
        if count is None:
            raise self.remote.error(BadMetric, "queue.declare-ok carried no message count")
        return float(count)

    def _http_url(self) -> str:
        b, meta = self._broker, self._meta
        port = f":{b.port}" if b.port else ""
        base = f"{b.scheme}://{b.host}{port}{b.path_prefix}/api/queues/{b.vhost}"
        if meta.use_regex:
            query = urlencode(
                {
                    "page": 1,
                    "use_regex": "true",
                    "pagination": "false",
                    "name": meta.queue_name,
                    "page_size": meta.page_size,
                }
            )
            return f"{base}?{query}"
        return f"{base}/{quote(meta.queue_name, safe='')}"

    async def _read_http(self) -> float:
        b, meta = self._broker, self._meta
        headers = {"Accept": "application/json"}
        if b.username or b.password:
            token = base64.b64encode(f"{b.username}:{b.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        session = self.pools.http()
        ssl_arg: ssl.SSLContext | bool = self._ssl if self._ssl is not None else True
        url = yarl.URL(self._http_url(), encoded=True)  # keep %2F (the default vhost) escaped
        async with session.get(url, headers=headers, ssl=ssl_arg) as response:
            if response.status >= 500:
                raise self.remote.error(SourceUnreachable, f"HTTP {response.status}")
            if response.status == 404:
                raise self.remote.error(BadMetric, "HTTP 404: no such vhost or queue")
            if response.status in (401, 403):
                raise self.remote.error(ScalerError, f"HTTP {response.status}: not authorized")
            if response.status != 200:
                raise self.remote.error(ScalerError, f"HTTP {response.status}")
            try:
                body = await response.json(content_type=None)
            except ValueError:
                raise self.remote.error(BadMetric, "the answer is not JSON") from None
        try:
            stats = self._stats_of(body)
        except (ValueError, TypeError, KeyError) as exc:
            raise self.remote.error(BadMetric, str(exc)) from None
        return mode_value(
            meta.target_mode, stats, meta.exclude_unacknowledged, meta.activation_value
        )

    def _stats_of(self, body: Any) -> QueueStats:
        if not self._meta.use_regex:
            if not isinstance(body, dict):
                raise ValueError("expected a queue object")
            return _queue_stats(body)
        if isinstance(body, dict):
            if int(body.get("page_count") or 1) > 1:
                raise ValueError(
                    f"the regex matches more queues than pageSize {self._meta.page_size}"
                )
            items = body.get("items")
        else:
            items = body
        if not isinstance(items, list):
            raise ValueError("expected a list of queues")
        return combined([_queue_stats(item) for item in items], self._meta.operation)


async def _close_amqp(connection: aiormq.abc.AbstractConnection) -> None:
    await connection.close()
