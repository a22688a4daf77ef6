"""A number from a PostgreSQL query (KEDA `postgresql` trigger): metadata and reader.

The connection is KEDA's: a whole connection string (the authentication parameter
`connection`, which `connectionFromEnv` or a TriggerAuthentication fills), else `host`,
`port`, `userName`, `dbName` and `sslmode` (authentication first, then metadata, as KEDA
orders them) with the password from authentication (`password`, `passwordFromEnv`). The
connection string may be a URL (`postgresql://user:pw@host/db`) or libpq's `key=value`
form. Triggers with the same connection share one small asyncpg pool.

The query must return exactly one row of one numeric column; anything else (no row, NULL,
text, two columns) is a `BadMetric`, never a zero. KEDA's docs suggest COALESCE for NULL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import asyncpg.exceptions
from pydantic import Field, model_validator

from scalers.base import (
    BadMetric,
    MetricSpec,
    MetricType,
    NonEmptyString,
    Number,
    PositiveNumber,
    ScalerError,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.context import ScalerContext, Secret
from scalers.registry import register, register_reader
from scalers.remote import PooledReader, Remote, auth_text

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_POOL_SIZE = 4


@register
class PostgreSQLMetadata(TriggerMetadata):
    """KEDA's postgresql scaler metadata, with its names and defaults."""

    trigger_type = "postgresql"

    query: NonEmptyString
    target_query_value: PositiveNumber = Field(alias="targetQueryValue")
    # a query may measure anything, negative included; KEDA parses a float
    activation_target_query_value: Number = Field(default=0.0, alias="activationTargetQueryValue")
    # the connection: a whole string from the environment (or authentication), or its parts
    connection_from_env: str = Field(default="", alias="connectionFromEnv")
    host: str = ""
    port: str = ""
    user_name: str = Field(default="", alias="userName")
    db_name: str = Field(default="", alias="dbName")
    sslmode: str = ""
    password_from_env: str = Field(default="", alias="passwordFromEnv")

    @model_validator(mode="after")
    def _connection_parts(self) -> PostgreSQLMetadata:
        port = self.port.strip()
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise field_error(("port",), "must be a port number (1-65535)", self.port)
        if self.sslmode and self.sslmode not in SSL_MODES:
            raise field_error(("sslmode",), f"must be one of {', '.join(SSL_MODES)}", self.sslmode)
        return self

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        return MetricSpec(
            name=self.metric_name(ctx),
            target=self.target_query_value,
            activation_target=self.activation_target_query_value,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )


# --- connection strings --------------------------------------------------------------------

# libpq keyword/value pairs: `key=value`, the value bare or single-quoted with \' and \\
_PAIR = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)")
# what asyncpg takes of libpq's keywords (others would be silently ignored: refuse them)
_KEYWORDS = {"host", "port", "user", "password", "dbname", "sslmode", "application_name"}


def parse_keyword_dsn(dsn: str) -> dict[str, str]:
    """libpq's `host=h port=5432 dbname='my db'` form as a dict. Errors name keys, not values."""
    params: dict[str, str] = {}
    position = 0
    text = dsn.strip()
    while position < len(text):
        match = _PAIR.match(text, position)
        if match is None:
            raise ValueError("postgresql: connection string is not key=value pairs")
        key, value = match.group(1), match.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if key == "connect_timeout":
            pass  # the trigger's own timeout applies
        elif key not in _KEYWORDS:
            raise ValueError(f"postgresql: connection string keyword {key!r} is not supported")
        else:
            params[key] = value
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return params


def connect_arguments(dsn: str) -> dict[str, Any]:
    """asyncpg.connect keyword arguments for a URL or a keyword/value connection string."""
    if dsn.startswith(("postgres://", "postgresql://")):
        return {"dsn": dsn}
    params = parse_keyword_dsn(dsn)
    arguments: dict[str, Any] = {
        "host": params.get("host") or None,
        "user": params.get("user") or None,
        "password": params.get("password") or None,
        "database": params.get("dbname") or None,
    }
    if params.get("port"):
        if not params["port"].isdigit():
            raise ValueError("postgresql: port must be a number")
        arguments["port"] = int(params["port"])
    if params.get("sslmode"):
        if params["sslmode"] not in SSL_MODES:
            raise ValueError(f"postgresql: sslmode must be one of {', '.join(SSL_MODES)}")
        arguments["ssl"] = params["sslmode"]
    if params.get("application_name"):
        arguments["server_settings"] = {"application_name": params["application_name"]}
    return {k: v for k, v in arguments.items() if v is not None}


def _where(arguments: dict[str, Any]) -> tuple[str, str]:
    """(host:port, database) of a connection, for messages and the breaker: no credentials."""
    if "dsn" in arguments:
        parts = urlsplit(arguments["dsn"])
        host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        return host, unquote(parts.path.lstrip("/"))
    return f"{arguments.get('host', 'localhost')}:{arguments.get('port', 5432)}", str(
        arguments.get("database", "")
    )


def _connection_string(meta: PostgreSQLMetadata, ctx: ScalerContext) -> tuple[str, str]:
    """(connection string, password), KEDA's way: `connection`, else the parts."""
    connection = auth_text(ctx, "connection")
    if connection:
        if connection.startswith(("postgres://", "postgresql://")):
            return connection, unquote(urlsplit(connection).password or "")
        return connection, parse_keyword_dsn(connection).get("password", "")
    parts = {
        "host": auth_text(ctx, "host") or meta.host,
        "port": auth_text(ctx, "port") or meta.port,
        "user": auth_text(ctx, "userName") or meta.user_name,
        "dbname": auth_text(ctx, "dbName") or meta.db_name,
        "sslmode": auth_text(ctx, "sslmode") or meta.sslmode,
    }
    names = {"host": "host", "port": "port", "user": "userName", "dbname": "dbName"}
    missing = [names[k] for k in names if not parts[k]]
    if missing or not parts["sslmode"]:
        missing += [] if parts["sslmode"] else ["sslmode"]
        raise ValueError(
            f"postgresql: no connection: set connectionFromEnv, or {', '.join(missing)}"
        )
    password = auth_text(ctx, "password")
    pairs = {**parts, "password": password}
    return " ".join(f"{k}={_quoted(v)}" for k, v in pairs.items() if v), password


def _quoted(value: str) -> str:
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- the reader ----------------------------------------------------------------------------

_UNREACHABLE = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
)
# the server answered: these are configuration errors, not outages (no circuit opening)
_REFUSED = (
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
)


def query_value(rows: list[Any]) -> float:
    """The one number of a one-row, one-column result (raises ValueError otherwise)."""
    if len(rows) != 1:
        raise ValueError(f"the query returned {len(rows)} rows, not 1")
    row = rows[0]
    if len(row) != 1:
        raise ValueError(f"the query returned {len(row)} columns, not 1")
    value = row[0]
    if value is None:
        raise ValueError("the query returned NULL (COALESCE(..., 0) makes it a number)")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"the query returned a {type(value).__name__}, not a number")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"the query returned {result}")
    return result


@register_reader("postgresql")
class PostgreSQLScaler(PooledReader):
    """Runs the trigger's query on a pooled connection and returns its one number."""

    def __init__(self, ctx: ScalerContext) -> None:
        meta = ctx.metadata
        if not isinstance(meta, PostgreSQLMetadata):
            raise TypeError(f"postgresql reader given {type(meta).__name__}")
        self.spec = ctx.spec
        self._meta = meta
        self.pools = ctx.pools
        dsn, password = _connection_string(meta, ctx)
        arguments = connect_arguments(dsn)
        host, database = _where(arguments)
        # credentials stay wrapped (printing as ***) until the pool is created
        self._arguments = {
            k: Secret(v) if k in ("dsn", "password") else v for k, v in arguments.items()
        }
        self.remote = Remote(
            name=f"postgresql query at {host}/{database}",
            key=("postgresql", host),
            timeout=ctx.timeout,
            unreachable=_UNREACHABLE,
            secrets=(password,) if password else (),
        )
        # one pool per connection string (credentials included), shared by all triggers
        self.client_key: Hashable = ("postgresql", Secret(dsn))

    async def _create_pool(self) -> asyncpg.Pool:
        # min_size 0: connections open on first use, so a failure surfaces in a read
        pool = asyncpg.create_pool(
            min_size=0,
            max_size=_POOL_SIZE,
            timeout=self.remote.timeout,
            command_timeout=self.remote.timeout,
            **{k: v.reveal if isinstance(v, Secret) else v for k, v in self._arguments.items()},
        )
        return await pool

    async def read_once(self) -> float:
        pool = await self.pools.shared(self.client_key, self._create_pool, _close_pool)
        try:
            rows = await pool.fetch(self._meta.query)
        except _REFUSED as exc:
            raise self.remote.error(ScalerError, self.remote.describe(exc)) from None
        except asyncpg.exceptions.PostgresError as exc:
            if isinstance(exc, _UNREACHABLE):
                raise
            raise self.remote.error(BadMetric, self.remote.describe(exc)) from None
        try:
            return query_value(rows)
        except ValueError as exc:
            raise self.remote.error(BadMetric, str(exc)) from None


async def _close_pool(pool: asyncpg.Pool) -> None:
    await pool.close()
