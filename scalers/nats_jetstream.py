"""NATS JetStream consumer backlog (KEDA `nats-jetstream` trigger): metadata and reader.

The metric is KEDA's: a consumer's `num_pending + num_ack_pending` (messages not yet
delivered, plus delivered but not yet acknowledged). When the consumer does not exist yet,
KEDA counts the whole stream (its last sequence) so that a workload at zero can start and
create it; so do we. A missing stream is an error.

KEDA reads these numbers from the server's HTTP monitoring port (`/jsz`). We ask the
JetStream API over the client connection instead (`$JS.API.CONSUMER.INFO`), which needs no
monitoring port, returns the same counters, and always answers from the consumer's leader
in a cluster (KEDA has to search the nodes for it). So the reader connects to the client
port, given by:

- `natsServer` (ours; or the TriggerAuthentication parameter `natsServer`): a client URL
  such as `nats://nats.messaging:4222`, with user and password in it if the server wants
  them (or the parameters `username`/`password`, or `token`);
- otherwise KEDA's `natsServerMonitoringEndpoint` (`host:8222`), whose host we reach on the
  standard client port 4222. A KEDA manifest therefore works unchanged when the monitoring
  and client ports are on the same host.

`account` / `accountID` are accepted for compatibility: over the client API the account is
the one the credentials log into. `useHttps` only concerns the monitoring port, unused here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from pydantic import Field, model_validator

from scalers.base import (
    BadMetric,
    Boolean,
    MetricSpec,
    MetricType,
    NonEmptyString,
    NonNegativeNumber,
    PositiveNumber,
    ScalerError,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.context import ScalerContext, Secret
from scalers.registry import register, register_reader
from scalers.remote import PooledReader, Remote, auth_text, display_url

CLIENT_PORT = 4222
_CLIENT_SCHEMES = ("nats", "tls", "ws", "wss")


@register
class NatsJetStreamMetadata(TriggerMetadata):
    """KEDA's nats-jetstream scaler metadata, with its names and defaults, plus `natsServer`."""

    trigger_type = "nats-jetstream"

    # KEDA requires the monitoring endpoint (from metadata or authentication); we need one of
    # it and natsServer, which may also come from authentication: neither is required here
    nats_server_monitoring_endpoint: str = Field(default="", alias="natsServerMonitoringEndpoint")
    nats_server: str = Field(default="", alias="natsServer")
    account: str = ""
    account_id: str = Field(default="", alias="accountID")
    stream: NonEmptyString
    consumer: NonEmptyString
    lag_threshold: PositiveNumber = Field(default=10.0, alias="lagThreshold")
    activation_lag_threshold: NonNegativeNumber = Field(default=0.0, alias="activationLagThreshold")
    use_https: Boolean = Field(default=False, alias="useHttps")

    @model_validator(mode="after")
    def _endpoints(self) -> NatsJetStreamMetadata:
        if self.nats_server and urlsplit(self.nats_server).scheme not in _CLIENT_SCHEMES:
            # not echoed: the URL may carry a password
            message = "must be a nats://, tls://, ws:// or wss:// URL"
            raise field_error(("natsServer",), message, None)
        endpoint = self.nats_server_monitoring_endpoint
        if endpoint and ("://" in endpoint or "/" in endpoint):
            message = "must be host:port, without scheme or path (KEDA adds them)"
            raise field_error(("natsServerMonitoringEndpoint",), message, endpoint)
        return self

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        return MetricSpec(
            name=self.metric_name(ctx, self.stream),
            target=self.lag_threshold,
            activation_target=self.activation_lag_threshold,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )


@dataclass(frozen=True)
class _Login:
    url: str  # without user-info
    user: str
    password: str = field(repr=False)
    token: str = field(repr=False)


def _resolve_login(meta: NatsJetStreamMetadata, ctx: ScalerContext) -> _Login:
    """natsServer (metadata, then authentication), else the monitoring endpoint's host."""
    server = meta.nats_server or auth_text(ctx, "natsServer")
    if not server:
        endpoint = meta.nats_server_monitoring_endpoint or auth_text(
            ctx, "natsServerMonitoringEndpoint"
        )
        if not endpoint:
            raise ValueError(
                "nats-jetstream: no server: set natsServer (nats://host:4222) or "
                "natsServerMonitoringEndpoint"
            )
        host = urlsplit(f"//{endpoint}").hostname or ""
        if not host:
            raise ValueError("nats-jetstream: natsServerMonitoringEndpoint must be host:port")
        server = f"nats://{host}:{CLIENT_PORT}"
    parts = urlsplit(server)
    if parts.scheme not in _CLIENT_SCHEMES or not parts.hostname:
        raise ValueError("nats-jetstream: natsServer must be a nats://host:port URL")
    user = auth_text(ctx, "username") or unquote(parts.username or "")
    password = auth_text(ctx, "password") or unquote(parts.password or "")
    return _Login(display_url(server), user, password, auth_text(ctx, "token"))


async def _ignore_error(_: Exception) -> None:
    """The client's background errors surface as failed reads; the default logs tracebacks."""


_UNREACHABLE = (
    OSError,
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.StaleConnectionError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,  # JetStream not enabled, or its leader not elected yet
)


@register_reader("nats-jetstream")
class NatsJetStreamScaler(PooledReader):
    """Reads a JetStream consumer's pending plus unacknowledged messages."""

    def __init__(self, ctx: ScalerContext) -> None:
        meta = ctx.metadata
        if not isinstance(meta, NatsJetStreamMetadata):
            raise TypeError(f"nats-jetstream reader given {type(meta).__name__}")
        self.spec = ctx.spec
        self._meta = meta
        self.pools = ctx.pools
        login = _resolve_login(meta, ctx)
        self._login = login
        self.remote = Remote(
            name=f"nats-jetstream consumer {meta.stream}/{meta.consumer} at {login.url}",
            key=("nats", login.url),
            timeout=ctx.timeout,
            unreachable=_UNREACHABLE,
            secrets=tuple(s for s in (login.password, login.token) if s),
        )
        # one connection per server and login, shared by all triggers
        self.client_key = ("nats", login.url, login.user, Secret(login.password),
                            Secret(login.token))  # fmt: skip

    async def _connect(self) -> NATS:
        login = self._login
        options: dict[str, Any] = {}
        if login.token:
            options["token"] = login.token
        elif login.user:
            options["user"], options["password"] = login.user, login.password
        try:
            return await nats.connect(
                servers=[login.url],
                connect_timeout=self.remote.timeout,
                # a dropped connection is replaced on the next read, not reconnected behind
                # our back; the initial connect tries the server once (the breaker paces it)
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=_ignore_error,
                **options,
            )
        except nats.errors.Error as exc:
            refused = isinstance(exc, nats.errors.AuthorizationError)
            if refused or "authorization violation" in str(exc).lower():
                raise self.remote.error(ScalerError, "login refused (credentials)") from None
            raise

    async def read_once(self) -> float:
        client = await self.pools.shared(self.client_key, self._connect, _close_client)
        if client.is_closed:
            await self.discard()
            client = await self.pools.shared(self.client_key, self._connect, _close_client)
        js = client.jetstream(timeout=self.remote.timeout)
        meta = self._meta
        try:
            info = await js.consumer_info(meta.stream, meta.consumer)
        except nats.js.errors.NotFoundError:
            return await self._stream_backlog(client)
        return float((info.num_pending or 0) + (info.num_ack_pending or 0))

    async def _stream_backlog(self, client: NATS) -> float:
        """KEDA: before the consumer exists, all of the stream is backlog (its last sequence)."""
        js = client.jetstream(timeout=self.remote.timeout)
        try:
            info = await js.stream_info(self._meta.stream)
        except nats.js.errors.NotFoundError:
            raise self.remote.error(BadMetric, "no such stream") from None
        return float(info.state.last_seq)


async def _close_client(client: NATS) -> None:
    await client.close()
