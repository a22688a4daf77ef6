"""Metadata of nats-jetstream, postgresql and redis-streams, from KEDA's docs and scalers;
and the connection settings their readers derive from it (pure: nothing connects here)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from scalers.base import MetricSpec, MetricType, TriggerContext
from scalers.context import ScalerContext, Secret
from scalers.pools import Pools
from scalers.postgresql import connect_arguments, parse_keyword_dsn
from scalers.registry import build_scaler, known_types, metric_spec, parse_metadata

AV, VALUE = MetricType.AVERAGE_VALUE, MetricType.VALUE
REQUIRED = "Field required"
POSITIVE = "must be a positive number"
POSITIVE_INT = "must be a positive integer"
NON_NEGATIVE = "must be a number >= 0"
BOOLEAN = "must be true or false"

# KEDA docs, nats-jetstream and postgresql pages (2.14), redis-cluster-streams page
NATS_KEDA = {
    "natsServerMonitoringEndpoint": "nats.nats.svc.cluster.local:8222",
    "account": "$G",
    "stream": "mystream",
    "consumer": "pull_consumer",
    "lagThreshold": "10",
    "activationLagThreshold": "15",
    "useHttps": "false",
}
POSTGRES_FROM_ENV = {
    "connectionFromEnv": "AIRFLOW_CONN_AIRFLOW_DB",
    "query": "SELECT ceil(COUNT(*)::decimal / 16) FROM task_instance WHERE state='running';",
    "targetQueryValue": "1.1",
    "activationTargetQueryValue": "5",
}
POSTGRES_PARTS = {
    "userName": "kedaUser",
    "passwordFromEnv": "PG_PASSWORD",
    "host": "postgres-svc.namespace.cluster.local",
    "port": "5432",
    "dbName": "test_db_name",
    "sslmode": "disable",
    "query": "SELECT ceil(COUNT(*)::decimal / 16) FROM task_instance WHERE state='queued';",
    "targetQueryValue": "2.2",
}
STREAMS_KEDA = {
    "address": "localhost:6379",
    "usernameFromEnv": "REDIS_USERNAME",
    "passwordFromEnv": "REDIS_PASSWORD",
    "stream": "my-stream",
    "consumerGroup": "my-consumer-group",
    "pendingEntriesCount": "10",
    "enableTLS": "false",
    "databaseIndex": "0",
}


def errors_of(trigger_type: str, metadata: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        parse_metadata(trigger_type, metadata)
    return [(e["loc"], e["msg"].removeprefix("Value error, ")) for e in caught.value.errors()]


def test_new_types_are_registered() -> None:
    assert {"nats-jetstream", "postgresql", "redis-streams"} <= set(known_types())


@pytest.mark.parametrize(
    ("trigger_type", "metadata"),
    [
        ("nats-jetstream", NATS_KEDA),
        ("postgresql", POSTGRES_FROM_ENV),
        ("postgresql", POSTGRES_PARTS),
        ("redis-streams", STREAMS_KEDA),
        ("redis-streams", {**STREAMS_KEDA, "lagCount": "5", "activationLagCount": "3"}),
    ],
)
def test_keda_documented_manifests_validate_with_no_unknown_keys(
    trigger_type: str, metadata: dict[str, str]
) -> None:
    assert parse_metadata(trigger_type, metadata).unknown_keys() == []


@pytest.mark.parametrize(
    ("trigger_type", "metadata", "expected"),
    [
        (
            "nats-jetstream",
            {"stream": "s", "consumer": "c"},
            {
                "lag_threshold": 10.0,
                "activation_lag_threshold": 0.0,
                "use_https": False,
                "nats_server": "",
                "account": "",
            },
        ),
        (
            "postgresql",
            {"query": "SELECT 1", "targetQueryValue": "3"},
            {"activation_target_query_value": 0.0, "connection_from_env": "", "sslmode": ""},
        ),
        (
            "redis-streams",
            {"stream": "s"},
            {
                "pending_entries_count": 5,
                "stream_length": 5,
                "lag_count": None,
                "activation_lag_count": 0,
                "database_index": 0,
                "enable_tls": False,
                "measure": "length",
            },
        ),
    ],
)
def test_defaults_are_kedas(
    trigger_type: str, metadata: dict[str, str], expected: dict[str, Any]
) -> None:
    parsed = parse_metadata(trigger_type, metadata)
    assert {k: getattr(parsed, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("trigger_type", "metadata", "index", "metric_type", "expected"),
    [
        (
            "nats-jetstream",
            NATS_KEDA,
            0,
            None,
            MetricSpec("s0-nats-jetstream-mystream", 10.0, 15.0, AV),
        ),
        (
            "nats-jetstream",
            {"stream": "ORDERS", "consumer": "c", "lagThreshold": "2.5"},
            3,
            VALUE,
            MetricSpec("s3-nats-jetstream-orders", 2.5, 0.0, VALUE),
        ),
        ("postgresql", POSTGRES_FROM_ENV, 0, None, MetricSpec("s0-postgresql", 1.1, 5.0, AV)),
        ("postgresql", POSTGRES_PARTS, 2, None, MetricSpec("s2-postgresql", 2.2, 0.0, AV)),
        (
            "postgresql",
            {"query": "SELECT 1", "targetQueryValue": "4", "activationTargetQueryValue": "-2.5"},
            0,
            None,
            MetricSpec("s0-postgresql", 4.0, -2.5, AV),
        ),
        # KEDA's choice of measure: pending entries with a group ...
        ("redis-streams", STREAMS_KEDA, 0, None, MetricSpec("s0-redis-streams-my-stream", 10.0)),
        # ... the lag when lagCount is set too, with its activation ...
        (
            "redis-streams",
            {**STREAMS_KEDA, "lagCount": "7", "activationLagCount": "3"},
            1,
            None,
            MetricSpec("s1-redis-streams-my-stream", 7.0, 3.0, AV),
        ),
        # ... the stream length without a group (a lagCount alone is ignored, as in KEDA)
        (
            "redis-streams",
            {"stream": "my-stream", "streamLength": "50", "lagCount": "9"},
            0,
            None,
            MetricSpec("s0-redis-streams-my-stream", 50.0, 0.0, AV),
        ),
    ],
)
def test_metric_spec_has_kedas_name_target_and_activation(
    trigger_type: str,
    metadata: dict[str, str],
    index: int,
    metric_type: MetricType | None,
    expected: MetricSpec,
) -> None:
    assert metric_spec(trigger_type, metadata, index, metric_type=metric_type) == expected


@pytest.mark.parametrize(
    ("trigger_type", "metadata", "field", "message"),
    [
        ("nats-jetstream", {"consumer": "c"}, "stream", REQUIRED),
        ("nats-jetstream", {"stream": "s"}, "consumer", REQUIRED),
        ("nats-jetstream", {"stream": "s", "consumer": " "}, "consumer", "must not be empty"),
        ("nats-jetstream", {**NATS_KEDA, "lagThreshold": "0"}, "lagThreshold", POSITIVE),
        (
            "nats-jetstream",
            {**NATS_KEDA, "activationLagThreshold": "-1"},
            "activationLagThreshold",
            NON_NEGATIVE,
        ),
        ("nats-jetstream", {**NATS_KEDA, "useHttps": "maybe"}, "useHttps", BOOLEAN),
        (
            "nats-jetstream",
            {**NATS_KEDA, "natsServer": "http://nats:4222"},
            "natsServer",
            "must be a nats://, tls://, ws:// or wss:// URL",
        ),
        (
            "nats-jetstream",
            {**NATS_KEDA, "natsServerMonitoringEndpoint": "http://nats:8222"},
            "natsServerMonitoringEndpoint",
            "must be host:port, without scheme or path (KEDA adds them)",
        ),
        ("postgresql", {"targetQueryValue": "1"}, "query", REQUIRED),
        ("postgresql", {"query": "SELECT 1"}, "targetQueryValue", REQUIRED),
        ("postgresql", {**POSTGRES_PARTS, "targetQueryValue": "0"}, "targetQueryValue", POSITIVE),
        ("postgresql", {**POSTGRES_PARTS, "targetQueryValue": "x"}, "targetQueryValue", POSITIVE),
        (
            "postgresql",
            {**POSTGRES_PARTS, "activationTargetQueryValue": "five"},
            "activationTargetQueryValue",
            "must be a number",
        ),
        (
            "postgresql",
            {**POSTGRES_PARTS, "port": "pg"},
            "port",
            "must be a port number (1-65535)",
        ),
        (
            "postgresql",
            {**POSTGRES_PARTS, "sslmode": "on"},
            "sslmode",
            "must be one of disable, allow, prefer, require, verify-ca, verify-full",
        ),
        ("redis-streams", {"address": "localhost:6379"}, "stream", REQUIRED),
        (
            "redis-streams",
            {**STREAMS_KEDA, "pendingEntriesCount": "1.5"},
            "pendingEntriesCount",
            POSITIVE_INT,
        ),
        ("redis-streams", {**STREAMS_KEDA, "lagCount": "0"}, "lagCount", POSITIVE_INT),
        (
            "redis-streams",
            {**STREAMS_KEDA, "activationLagCount": "-1"},
            "activationLagCount",
            "must be an integer >= 0",
        ),
        (
            "redis-streams",
            {**STREAMS_KEDA, "address": "localhost"},
            "address",
            "must be host:port, comma-separated",
        ),
    ],
)
def test_bad_metadata_names_the_field(
    trigger_type: str, metadata: dict[str, str], field: str, message: str
) -> None:
    assert errors_of(trigger_type, metadata) == [((field,), message)]


def test_nats_server_url_is_not_echoed_in_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_metadata("nats-jetstream", {**NATS_KEDA, "natsServer": "http://u:hunter2@nats"})
    assert "hunter2" not in str(caught.value)


# --- what the readers derive, before connecting --------------------------------------------


def build(
    trigger_type: str, metadata: dict[str, str], auth: dict[str, Secret] | None = None
) -> Any:
    meta = parse_metadata(trigger_type, metadata)
    spec = meta.metric_spec(TriggerContext(index=0))
    return build_scaler(ScalerContext(trigger_type, meta, spec, Pools(), auth=auth or {}))


def test_postgresql_without_a_connection_says_which_parts_are_missing() -> None:
    metadata = {"host": "db", "query": "SELECT 1", "targetQueryValue": "1"}
    with pytest.raises(ValueError, match="connectionFromEnv, or port, userName, dbName, sslmode"):
        build("postgresql", metadata)


def test_postgresql_parts_may_come_from_authentication() -> None:
    auth = {k: Secret(v) for k, v in POSTGRES_PARTS.items() if k != "query"}
    scaler = build("postgresql", {"query": "SELECT 1", "targetQueryValue": "1"}, auth)
    assert scaler.spec.name == "s0-postgresql"


def test_nats_needs_a_server_and_takes_the_client_port_of_the_monitoring_host() -> None:
    with pytest.raises(ValueError, match="natsServer"):
        build("nats-jetstream", {"stream": "s", "consumer": "c"})
    scaler = build("nats-jetstream", NATS_KEDA)
    assert "nats://nats.nats.svc.cluster.local:4222" in scaler.remote.name


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (
            "host=db port=5432 user=keda dbname=jobs sslmode=disable password=s3cret",
            {
                "host": "db",
                "port": "5432",
                "user": "keda",
                "dbname": "jobs",
                "sslmode": "disable",
                "password": "s3cret",
            },
        ),
        # KEDA quotes values with spaces, escaping quotes with a backslash
        (
            "host=db password='it\\'s a secret' dbname='my db'",
            {
                "host": "db",
                "password": "it's a secret",
                "dbname": "my db",
            },
        ),
        ("  host = db   connect_timeout=10 ", {"host": "db"}),
    ],
)
def test_keyword_connection_strings_parse_as_libpq_does(dsn: str, expected: dict[str, str]) -> None:
    assert parse_keyword_dsn(dsn) == expected


def test_connection_string_errors_name_keys_never_values() -> None:
    with pytest.raises(ValueError, match="'options'") as caught:
        parse_keyword_dsn("host=db password=hunter2 options=-csearch_path=x")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="not key=value") as caught:
        parse_keyword_dsn("host=db password=hunter2 'broken")
    assert "hunter2" not in str(caught.value)


def test_connect_arguments_map_libpq_names_to_asyncpg() -> None:
    assert connect_arguments("host=db port=6432 user=u dbname=d sslmode=require") == {
        "host": "db",
        "port": 6432,
        "user": "u",
        "database": "d",
        "ssl": "require",
    }
    assert connect_arguments("postgresql://u:p@db/d") == {"dsn": "postgresql://u:p@db/d"}
