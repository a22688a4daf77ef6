"""A PromQL query's value (KEDA `prometheus` trigger), and the one client that asks Prometheus.

Reading follows KEDA's scaler (pkg/scalers/prometheus_scaler.go, `ExecutePromQuery`):

- `GET {serverAddress}/api/v1/query` with `query`, `time` (now, RFC 3339), `namespace` when
  set (a query parameter, for Thanos Querier / prom-label-proxy tenancy), then every
  `queryParameters` pair; `customHeaders` go on the request. A Cortex or Mimir tenant
  (`X-Scope-OrgID`) is a custom header: KEDA dropped `cortexOrgID` for it in 2.12.
- `authModes` (comma-separated), credentials from the TriggerAuthentication: `bearer`
  (`bearerToken`), `basic` (`username`, optional `password`), `custom` (`customAuthHeader`,
  `customAuthValue`), `tls` (`cert`, `key`); `ca` is trusted whenever given. bearer and basic
  exclude each other (KEDA's GetAuthConfigs).
- Any status outside 2xx is an error that names the status; 5xx and connection failures are
  `SourceUnreachable`, so the endpoint's circuit breaker opens.
- An empty result, or an element without a value, is 0 when `ignoreNullValues` (default
  true), else an error; more than one element is an error; NaN or +-Inf is 0 when
  `ignoreNullValues`, else an error (kedacore/keda#3762 for Inf, #7576 for NaN).

Where we differ: a `time` in `queryParameters` replaces ours (KEDA sends both and Prometheus
reads the first), so a query can be pinned to an instant; a scalar result is read, as KEDA's
docs promise ("vector/scalar"), where KEDA's decoder fails; a range-vector result is an error,
where KEDA reads it as an empty value and, by default, as 0.
"""

from __future__ import annotations

import base64
import json
import math
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pydantic import BeforeValidator, Field, field_validator

from scalers.base import (
    BadMetric,
    Boolean,
    MetricSpec,
    MetricType,
    NonEmptyString,
    Number,
    PositiveInteger,
    PositiveNumber,
    ScalerError,
    SourceUnreachable,
    TriggerContext,
    TriggerMetadata,
)
from scalers.context import ScalerContext, Secret
from scalers.registry import register, register_reader


def _key_value_pairs(value: Any) -> dict[str, str]:
    # KEDA's typed config: `k1=v1,k2=v2`, each pair split on "=" into exactly two parts,
    # so a value that itself holds "=" (base64 padding) is rejected, as KEDA does.
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise ValueError("must be key=value pairs separated by commas")
    pairs: dict[str, str] = {}
    for item in value.split(","):
        parts = item.strip().split("=")
        if len(parts) != 2 or not parts[0].strip():
            raise ValueError("must be key=value pairs separated by commas")
        pairs[parts[0].strip()] = parts[1].strip()
    return pairs


KeyValuePairs = Annotated[dict[str, str], BeforeValidator(_key_value_pairs)]


def http_url(value: str) -> str:
    """`value` if it is an http(s) URL with a host; ValueError otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value


@dataclass(frozen=True)
class InstantQuery:
    """One PromQL instant query against one server, with KEDA's request options."""

    server_address: str
    query: str
    namespace: str = ""
    custom_headers: Mapping[str, str] = field(default_factory=dict)
    query_parameters: Mapping[str, str] = field(default_factory=dict)
    ignore_null_values: bool = True
    unsafe_ssl: bool = False
    timeout_ms: int | None = None
    auth_modes: str = ""


class PrometheusOptions(TriggerMetadata):
    """How to ask a Prometheus server: KEDA's prometheus options, shared by the gpu trigger."""

    namespace: str = ""
    custom_headers: KeyValuePairs = Field(default_factory=dict, alias="customHeaders")
    query_parameters: KeyValuePairs = Field(default_factory=dict, alias="queryParameters")
    ignore_null_values: Boolean = Field(default=True, alias="ignoreNullValues")
    unsafe_ssl: Boolean = Field(default=False, alias="unsafeSsl")
    # milliseconds, overriding the global HTTP timeout for this trigger only
    timeout: PositiveInteger | None = None
    auth_modes: str = Field(default="", alias="authModes")

    def instant_query(self) -> InstantQuery:
        """The query this trigger runs, with its request options."""
        raise NotImplementedError

    def _query_on(self, server_address: str, query: str) -> InstantQuery:
        return InstantQuery(
            server_address=server_address,
            query=query,
            namespace=self.namespace,
            custom_headers=dict(self.custom_headers),
            query_parameters=dict(self.query_parameters),
            ignore_null_values=self.ignore_null_values,
            unsafe_ssl=self.unsafe_ssl,
            timeout_ms=self.timeout,
            auth_modes=self.auth_modes,
        )


@register
class PrometheusMetadata(PrometheusOptions):
    """KEDA's prometheus scaler metadata, with its names and defaults."""

    trigger_type = "prometheus"

    server_address: NonEmptyString = Field(alias="serverAddress")
    query: NonEmptyString
    # KEDA parses any float; a target <= 0 is refused later by the HPA, so refuse it here
    threshold: PositiveNumber
    # PromQL values can be negative, and KEDA accepts a negative activation threshold
    activation_threshold: Number = Field(default=0.0, alias="activationThreshold")
    aws_region: str = Field(default="", alias="awsRegion")
    identity_owner: str = Field(default="", alias="identityOwner")

    @field_validator("server_address")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        return MetricSpec(
            name=self.metric_name(ctx),
            target=self.threshold,
            activation_target=self.activation_threshold,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )

    def instant_query(self) -> InstantQuery:
        return self._query_on(self.server_address, self.query)


# --- reading -----------------------------------------------------------------------------

_AUTH_MODES = ("bearer", "basic", "tls", "custom")


@dataclass(frozen=True)
class RequestAuth:
    """What `authModes` adds to each request: headers, and a TLS context when certificates apply."""

    headers: Mapping[str, str]
    ssl_context: ssl.SSLContext | None


def _param(params: Mapping[str, Secret], name: str, mode: str) -> str:
    value = params.get(name)
    if value is None or not value.reveal:
        raise ScalerError(f"authModes {mode} needs the auth parameter {name}")
    return value.reveal


def request_auth(auth_modes: str, params: Mapping[str, Secret]) -> RequestAuth:
    """Headers and TLS settings for `authModes`, from the resolved auth parameters.

    Raises ScalerError naming the mode and the missing parameter, never a value.
    """
    headers: dict[str, str] = {}
    modes = [m.strip() for m in auth_modes.split(",")] if auth_modes.strip() else []
    for mode in modes:
        if mode not in _AUTH_MODES:
            raise ScalerError(
                f"authModes: {mode!r} is not supported by prometheus; use {', '.join(_AUTH_MODES)}"
            )
    if {"bearer", "basic"} <= set(modes):
        raise ScalerError("authModes: bearer and basic cannot both be set")
    cert = key = None
    for mode in modes:
        if mode == "bearer":
            token = _param(params, "bearerToken", mode).removesuffix("\n")
            headers["Authorization"] = f"Bearer {token}"
        elif mode == "basic":
            username = _param(params, "username", mode)
            # the password may be empty: some servers take an API key as the username
            password = params.get("password")
            pair = f"{username}:{password.reveal if password else ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif mode == "custom":
            name = _param(params, "customAuthHeader", mode)
            headers[name] = _param(params, "customAuthValue", mode)
        else:
            cert, key = _param(params, "cert", mode), _param(params, "key", mode)
    ca = params.get("ca")
    context = None
    if cert is not None or (ca is not None and ca.reveal):
        context = _tls_context(ca.reveal if ca else "", cert, key)
    return RequestAuth(headers, context)


def _tls_context(ca: str, cert: str | None, key: str | None) -> ssl.SSLContext:
    # KEDA trusts the system roots plus `ca`, and presents `cert`/`key` when tls is on
    context = ssl.create_default_context()
    try:
        if ca:
            context.load_verify_locations(cadata=ca)
        if cert is not None and key is not None:
            # ssl loads a client certificate from files only: a private directory, removed at once
            with tempfile.TemporaryDirectory() as folder:
                cert_file, key_file = os.path.join(folder, "cert"), os.path.join(folder, "key")
                for path, text in ((cert_file, cert), (key_file, key)):
                    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
                        out.write(text)
                context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, ValueError) as exc:
        raise ScalerError(f"auth parameters ca/cert/key are not usable PEM: {exc}") from None
    return context


def _redacted(address: str) -> str:
    """The server address without any user:password part, for messages."""
    parts = urlsplit(address)
    if "@" not in parts.netloc:
        return address
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def sample_value(payload: Any, query: str, ignore_null_values: bool) -> float:
    """The number in an instant-query answer, by KEDA's rules (see the module docstring)."""
    if not isinstance(payload, dict) or payload.get("status") != "success":
        detail = payload.get("error", "no status") if isinstance(payload, dict) else "not JSON"
        raise BadMetric(f"query {query!r} failed: {detail}")
    data = payload.get("data")
    result_type = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if result_type == "scalar":
        return _number(result, query, ignore_null_values)
    if result_type != "vector" or not isinstance(result, list):
        raise BadMetric(
            f"query {query!r} returned a {result_type or 'malformed'} result; "
            "it must return an instant vector or a scalar"
        )
    if not result:
        if ignore_null_values:
            return 0.0
        raise BadMetric(f"query {query!r} returned no data: its target may be lost")
    if len(result) > 1:
        raise BadMetric(
            f"query {query!r} returned {len(result)} elements; it must return one "
            "(aggregate it, e.g. with sum() or max())"
        )
    element = result[0]
    value = element.get("value") if isinstance(element, dict) else None
    return _number(value, query, ignore_null_values)


def _number(value: Any, query: str, ignore_null_values: bool) -> float:
    if not value:  # an element without a value: KEDA's "the value list is empty"
        if ignore_null_values:
            return 0.0
        raise BadMetric(f"query {query!r} returned an element without a value")
    if not isinstance(value, list) or len(value) < 2 or not isinstance(value[1], str):
        raise BadMetric(f"query {query!r} returned a malformed value: {value!r}")
    try:
        number = float(value[1])
    except ValueError:
        raise BadMetric(f"query {query!r} returned {value[1]!r}, not a number") from None
    if not math.isfinite(number):
        if ignore_null_values:
            return 0.0
        raise BadMetric(f"query {query!r} returned {value[1]}")
    return number


class PrometheusClient:
    """Runs one instant query against one server: the one place that does HTTP to Prometheus.

    Requests go through the process's shared session and the endpoint's circuit breaker
    (keyed by serverAddress); credentials are sent, and never appear in an error.
    """

    def __init__(self, query: InstantQuery, context: ScalerContext) -> None:
        self.query = query
        self._pools = context.pools
        self._now = context.now
        seconds = query.timeout_ms / 1000 if query.timeout_ms else context.timeout
        self._seconds = seconds
        self._timeout = aiohttp.ClientTimeout(total=seconds)
        auth = request_auth(query.auth_modes, context.auth)
        self._headers = {**query.custom_headers, **auth.headers}
        self._ssl: ssl.SSLContext | bool = auth.ssl_context or True
        if query.unsafe_ssl:
            self._ssl = _unverified(auth.ssl_context) if auth.ssl_context else False
        # what an echoing proxy could hand back: the parameters and the headers built from them
        sent = {v for header in auth.headers.values() for v in (header, header.split(" ")[-1])}
        secrets = {s.reveal for s in context.auth.values()} | sent
        self._secrets = sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True)
        self._url = query.server_address.rstrip("/") + "/api/v1/query"
        self._where = f"prometheus {_redacted(query.server_address)}"

    async def value(self) -> float:
        """The query's value now; raises SourceUnreachable, CircuitOpen or BadMetric."""
        return await self._pools.breaker.call(self.query.server_address, self._fetch)

    def _params(self) -> list[tuple[str, str]]:
        params = [("query", self.query.query)]
        if "time" not in self.query.query_parameters:
            now = datetime.fromtimestamp(self._now(), UTC)
            params.append(("time", now.strftime("%Y-%m-%dT%H:%M:%SZ")))
        if self.query.namespace:
            params.append(("namespace", self.query.namespace))
        params.extend(self.query.query_parameters.items())
        return params

    async def _fetch(self) -> float:
        try:
            async with self._pools.http().get(
                self._url,
                params=self._params(),
                headers=self._headers,
                timeout=self._timeout,
                ssl=self._ssl,
            ) as response:
                status = response.status
                body = await response.text(errors="replace")
        except TimeoutError:
            raise SourceUnreachable(f"{self._where}: no answer within {self._seconds:g}s") from None
        except aiohttp.ClientError as exc:
            raise SourceUnreachable(f"{self._where}: {self._scrub(str(exc))}") from None
        if not 200 <= status <= 299:
            message = f"{self._where}: query API answered HTTP {status}: {self._detail(body)}"
            # a server error may pass; a 4xx is the query's or the credentials' fault
            raise SourceUnreachable(message) if status >= 500 else BadMetric(message)
        try:
            payload = json.loads(body)
        except ValueError:
            raise BadMetric(f"{self._where}: answer is not JSON: {self._detail(body)}") from None
        return sample_value(payload, self.query.query, self.query.ignore_null_values)

    def _detail(self, body: str) -> str:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and "error" in payload:
            text = f"{payload.get('errorType', 'error')}: {payload['error']}"
        else:
            text = " ".join(body.split())[:200] or "(empty body)"
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        # a proxy may echo the request back: no credential leaves in a message
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _unverified(context: ssl.SSLContext) -> ssl.SSLContext:
    # unsafeSsl keeps the client certificate but skips verifying the server's
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@register_reader("prometheus")
class PrometheusScaler:
    """Reads a trigger whose metadata names an instant query (prometheus, gpu via Prometheus)."""

    def __init__(self, context: ScalerContext) -> None:
        assert isinstance(context.metadata, PrometheusOptions)
        self.spec = context.spec
        self.client = PrometheusClient(context.metadata.instant_query(), context)

    async def read(self) -> float:
        return await self.client.value()

    async def close(self) -> None:
        return None  # the HTTP session belongs to the Pools
