"""Trigger metadata of every KEDA type we model, table by table, from KEDA's docs and scalers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from scalers.base import MetricSource, MetricSpec, MetricType
from scalers.cron import CronMetadata
from scalers.registry import known_types, metadata_model, metric_spec, parse_metadata

PROMETHEUS = {"serverAddress": "http://prometheus:9090", "query": "up", "threshold": "100"}
CRON = {
    "timezone": "Asia/Kolkata",
    "start": "0 6 * * *",
    "end": "0 20 * * *",
    "desiredReplicas": "10",
}
AMQP = {"host": "amqp://guest:secret@rabbitmq:5672/vhost", "queueName": "hello"}

POSITIVE = "must be a positive number"
POSITIVE_INT = "must be a positive integer"
REQUIRED = "Field required"
BOOLEAN = "must be true or false"
PAIRS = "must be key=value pairs separated by commas"
QUANTITY = "must be a positive quantity, e.g. 60, 500m or 512Mi"
CRON_FIELDS = "must be a 5-field cron expression (minute hour day-of-month month day-of-week)"
DURATION = "must be a duration such as 30s, 1m or 1h30m"
HTTP_ONLY = "needs protocol http"
RATE_ONLY = "only applies when scalingMetric is requestRate"


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def errors_of(trigger_type: str, metadata: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        parse_metadata(trigger_type, metadata)
    return [(e["loc"], e["msg"].removeprefix("Value error, ")) for e in caught.value.errors()]


def test_every_modelled_type_is_registered() -> None:
    assert {"cpu", "memory", "cron", "http", "prometheus", "rabbitmq", "redis"} <= set(
        known_types()
    )


@pytest.mark.parametrize(
    ("trigger_type", "metadata", "attribute", "expected"),
    [
        ("prometheus", with_(PROMETHEUS, threshold="100.50"), "threshold", 100.5),
        ("prometheus", with_(PROMETHEUS, activationThreshold="-5.5"), "activation_threshold", -5.5),
        ("prometheus", with_(PROMETHEUS, ignoreNullValues="false"), "ignore_null_values", False),
        ("prometheus", with_(PROMETHEUS, unsafeSsl="true"), "unsafe_ssl", True),
        ("prometheus", with_(PROMETHEUS, timeout="1000"), "timeout", 1000),
        (
            "prometheus",
            with_(PROMETHEUS, customHeaders="X-Client-Id=cid, X-Tenant-Id=tid"),
            "custom_headers",
            {"X-Client-Id": "cid", "X-Tenant-Id": "tid"},
        ),
        (
            "prometheus",
            with_(PROMETHEUS, queryParameters="key-1=value-1,key-2=value-2"),
            "query_parameters",
            {"key-1": "value-1", "key-2": "value-2"},
        ),
        ("cpu", {"value": "60", "containerName": "foo"}, "container_name", "foo"),
        ("cpu", {"value": "60", "type": "AverageValue"}, "legacy_type", "AverageValue"),
        ("cron", CRON, "desired_replicas", 10),
        ("cron", with_(CRON, start="0  6 * * *"), "start", "0 6 * * *"),
        ("rabbitmq", with_(AMQP, mode="QueueLength", value="100.50"), "value", 100.5),
        ("rabbitmq", with_(AMQP, activationValue="10.5"), "activation_value", 10.5),
        ("rabbitmq", with_(AMQP, queueLength="5"), "queue_length", 5.0),
        ("rabbitmq", {"queueName": "q", "protocol": "http", "useRegex": "true"}, "use_regex", True),
        ("rabbitmq", {"queueName": "q", "pageSize": "50"}, "page_size", 50),
        (
            "rabbitmq",
            {"queueName": "q", "protocol": "http", "excludeUnacknowledged": "1"},
            "exclude_unacknowledged",
            True,
        ),
        ("redis", {"listName": "l", "listLength": "10"}, "list_length", 10),
        ("redis", {"listName": "l", "databaseIndex": "2"}, "database_index", 2),
        ("redis", {"listName": "l", "enableTLS": "True"}, "enable_tls", True),
        ("redis", {"keyName": "k", "keyValue": "1.5"}, "key_value", 1.5),
        ("http", {"targetValue": "0.5"}, "target_value", 0.5),
        ("http", {"window": "1m30s"}, "window", timedelta(seconds=90)),
        ("http", {"granularity": "500ms"}, "granularity", timedelta(milliseconds=500)),
        (
            "http",
            {"hosts": "a.example.com, b.example.com"},
            "hosts",
            ("a.example.com", "b.example.com"),
        ),
        ("http", {"pathPrefixes": "/api,/v2"}, "path_prefixes", ("/api", "/v2")),
    ],
)
def test_keda_string_values_parse(
    trigger_type: str, metadata: dict[str, Any], attribute: str, expected: Any
) -> None:
    assert getattr(parse_metadata(trigger_type, metadata), attribute) == expected


@pytest.mark.parametrize(
    ("trigger_type", "metadata", "defaults"),
    [
        (
            "prometheus",
            PROMETHEUS,
            {
                "activation_threshold": 0.0,
                "ignore_null_values": True,
                "unsafe_ssl": False,
                "custom_headers": {},
                "query_parameters": {},
                "namespace": "",
                "timeout": None,
            },
        ),
        (
            "cpu",
            {"value": "60"},
            {"activation_value": "0", "container_name": "", "legacy_type": None},
        ),
        ("memory", {"value": "60"}, {"activation_value": "0", "container_name": ""}),
        (
            "rabbitmq",
            AMQP,
            {
                "protocol": "auto",
                "activation_value": 0.0,
                "page_size": 100,
                "operation": "sum",
                "use_regex": False,
                "exclude_unacknowledged": False,
                "target_mode": "QueueLength",
                "target_value": 20.0,
                "resolved_protocol": "amqp",
            },
        ),
        (
            "redis",
            {"listName": "mylist"},
            {
                "list_length": 5,
                "activation_list_length": 0,
                "database_index": 0,
                "enable_tls": False,
                "unsafe_ssl": False,
            },
        ),
        (
            "http",
            {},
            {
                "scaling_metric": "requestRate",
                "target_value": 100.0,
                "activation_target_value": 0.0,
                "window": timedelta(minutes=1),
                "granularity": timedelta(seconds=1),
                "hosts": (),
                "path_prefixes": ("/",),
            },
        ),
    ],
)
def test_defaults_apply(
    trigger_type: str, metadata: dict[str, Any], defaults: dict[str, Any]
) -> None:
    parsed = parse_metadata(trigger_type, metadata)
    assert {name: getattr(parsed, name) for name in defaults} == defaults


AV, UTIL, VALUE = MetricType.AVERAGE_VALUE, MetricType.UTILIZATION, MetricType.VALUE
RESOURCE = MetricSource.RESOURCE


@pytest.mark.parametrize(
    ("trigger_type", "metadata", "index", "metric_type", "expected"),
    [
        (
            "prometheus",
            with_(PROMETHEUS, threshold="100.50", activationThreshold="5.5"),
            0,
            None,
            MetricSpec("s0-prometheus", 100.5, 5.5, AV),
        ),
        ("prometheus", PROMETHEUS, 3, VALUE, MetricSpec("s3-prometheus", 100.0, 0.0, VALUE)),
        ("cpu", {"value": "60"}, 0, None, MetricSpec("cpu", 60.0, 0.0, UTIL, RESOURCE)),
        (
            "cpu",
            {"value": "50", "activationValue": "30"},
            1,
            UTIL,
            MetricSpec("cpu", 50.0, 30.0, UTIL, RESOURCE),
        ),
        # the deprecated metadata `type` still picks the metric type when metricType is unset
        (
            "cpu",
            {"value": "500m", "type": "AverageValue"},
            0,
            None,
            MetricSpec("cpu", 0.5, 0.0, AV, RESOURCE),
        ),
        # ... and the trigger's metricType wins over it
        (
            "cpu",
            {"value": "60", "type": "AverageValue"},
            0,
            UTIL,
            MetricSpec("cpu", 60.0, 0.0, UTIL, RESOURCE),
        ),
        (
            "memory",
            {"value": "512Mi"},
            0,
            AV,
            MetricSpec("memory", 512 * 2**20, 0.0, AV, RESOURCE),
        ),
        (
            "memory",
            {"value": "1G", "activationValue": "256Mi"},
            0,
            AV,
            MetricSpec("memory", 1e9, 256 * 2**20, AV, RESOURCE),
        ),
        ("memory", {"value": "80"}, 0, None, MetricSpec("memory", 80.0, 0.0, UTIL, RESOURCE)),
        ("cron", CRON, 2, None, MetricSpec("s2-cron-asia-kolkata-06xxx-020xxx", 1.0, 0.0, AV)),
        (
            "cron",
            with_(CRON, timezone="Etc/UTC", start="*/30 9 * * 1-5", end="0 17 * * 1-5"),
            0,
            None,
            MetricSpec("s0-cron-etc-utc-xsl309xx1-5-017xx1-5", 1.0, 0.0, AV),
        ),
        ("rabbitmq", AMQP, 0, None, MetricSpec("s0-rabbitmq-hello", 20.0, 0.0, AV)),
        ("rabbitmq", with_(AMQP, queueLength="5"), 0, None, MetricSpec("s0-rabbitmq-hello", 5.0)),
        (
            "rabbitmq",
            {"queueName": "hello", "protocol": "http", "mode": "MessageRate", "value": "100"},
            1,
            None,
            MetricSpec("s1-rabbitmq-hello", 100.0, 0.0, AV),
        ),
        (
            "rabbitmq",
            with_(AMQP, queueName="orders/eu", mode="QueueLength", value="7", activationValue="2"),
            0,
            VALUE,
            MetricSpec("s0-rabbitmq-orders-2feu", 7.0, 2.0, VALUE),
        ),
        (
            "redis",
            {
                "address": "redis:6379",
                "listName": "mylist",
                "listLength": "10",
                "activationListLength": "2",
            },
            1,
            None,
            MetricSpec("s1-redis-mylist", 10.0, 2.0, AV),
        ),
        (
            "redis",
            {"keyName": "mykey", "keyValue": "1.5", "activationValue": "0.5"},
            0,
            None,
            MetricSpec("s0-redis-mykey", 1.5, 0.5, AV),
        ),
        ("http", {}, 0, None, MetricSpec("s0-http-requestrate", 100.0, 0.0, AV)),
        (
            "http",
            {"scalingMetric": "concurrency", "targetValue": "20", "activationTargetValue": "1"},
            4,
            None,
            MetricSpec("s4-http-concurrency", 20.0, 1.0, AV),
        ),
    ],
)
def test_metric_spec_has_kedas_name_target_and_activation(
    trigger_type: str,
    metadata: dict[str, Any],
    index: int,
    metric_type: MetricType | None,
    expected: MetricSpec,
) -> None:
    assert metric_spec(trigger_type, metadata, index, metric_type=metric_type) == expected


@pytest.mark.parametrize(
    ("trigger_type", "metadata", "field", "message"),
    [
        ("prometheus", with_(PROMETHEUS, threshold="ten"), "threshold", POSITIVE),
        ("prometheus", with_(PROMETHEUS, threshold="0"), "threshold", POSITIVE),
        ("prometheus", {"serverAddress": "http://p:9090", "query": "up"}, "threshold", REQUIRED),
        ("prometheus", with_(PROMETHEUS, serverAddress=""), "serverAddress", "must not be empty"),
        (
            "prometheus",
            with_(PROMETHEUS, serverAddress="localhost:9090"),
            "serverAddress",
            "must be an http:// or https:// URL",
        ),
        ("prometheus", with_(PROMETHEUS, query=" "), "query", "must not be empty"),
        (
            "prometheus",
            with_(PROMETHEUS, activationThreshold="one"),
            "activationThreshold",
            "must be a number",
        ),
        ("prometheus", with_(PROMETHEUS, ignoreNullValues="xxxx"), "ignoreNullValues", BOOLEAN),
        ("prometheus", with_(PROMETHEUS, customHeaders="key1=value1,key2"), "customHeaders", PAIRS),
        (
            "prometheus",
            with_(PROMETHEUS, queryParameters="key1=value1,key2"),
            "queryParameters",
            PAIRS,
        ),
        ("prometheus", with_(PROMETHEUS, timeout="-1"), "timeout", POSITIVE_INT),
        ("prometheus", with_(PROMETHEUS, timeout="a"), "timeout", POSITIVE_INT),
        ("cpu", {}, "value", REQUIRED),
        ("cpu", {"value": ""}, "value", "must not be empty"),
        ("cpu", {"value": "sixty"}, "value", QUANTITY),
        ("cpu", {"value": "0"}, "value", QUANTITY),
        (
            "cpu",
            {"value": "60", "type": "Percent"},
            "type",
            "Input should be 'Utilization' or 'AverageValue'",
        ),
        ("cpu", {"value": "500m", "type": "Utilization"}, "value", POSITIVE_INT),
        (
            "memory",
            {"value": "1Gi", "activationValue": "-1Mi"},
            "activationValue",
            "must be a quantity >= 0, e.g. 0, 250m or 256Mi",
        ),
        ("cron", with_(CRON, timezone="Mars/Olympus_Mons"), "timezone", "unknown time zone"),
        ("cron", with_(CRON, timezone="../etc/passwd"), "timezone", "unknown time zone"),
        ("cron", with_(CRON, start="0 6 * *"), "start", CRON_FIELDS),
        ("cron", with_(CRON, start="0 0 6 * * *"), "start", CRON_FIELDS),
        ("cron", with_(CRON, end="@daily"), "end", CRON_FIELDS),
        ("cron", with_(CRON, end="61 20 * * *"), "end", CRON_FIELDS),
        ("cron", with_(CRON, end="0 6 * * *"), "end", "must differ from start"),
        ("cron", with_(CRON, desiredReplicas="0"), "desiredReplicas", POSITIVE_INT),
        ("cron", with_(CRON, desiredReplicas="ten"), "desiredReplicas", POSITIVE_INT),
        ("cron", {k: v for k, v in CRON.items() if k != "timezone"}, "timezone", REQUIRED),
        ("rabbitmq", {"host": "amqp://h"}, "queueName", REQUIRED),
        (
            "rabbitmq",
            with_(AMQP, queueLength="5", mode="QueueLength", value="5"),
            "queueLength",
            "is deprecated and cannot be combined with mode and value",
        ),
        (
            "rabbitmq",
            with_(AMQP, queueLength="5", value="5"),
            "queueLength",
            "is deprecated and cannot be combined with mode and value",
        ),
        ("rabbitmq", with_(AMQP, mode="QueueLength"), "value", "required when mode is set"),
        ("rabbitmq", with_(AMQP, value="10"), "mode", "required when value is set"),
        ("rabbitmq", with_(AMQP, mode="QueueLength", value="0"), "value", POSITIVE),
        (
            "rabbitmq",
            with_(AMQP, mode="MessageRate", value="10"),
            "mode",
            "MessageRate needs protocol http",
        ),
        (
            "rabbitmq",
            with_(AMQP, mode="DeliverGetRate", value="10"),
            "mode",
            "DeliverGetRate needs protocol http",
        ),
        (
            "rabbitmq",
            {"queueName": "q", "protocol": "amqp", "useRegex": "true"},
            "useRegex",
            HTTP_ONLY,
        ),
        ("rabbitmq", with_(AMQP, excludeUnacknowledged="true"), "excludeUnacknowledged", HTTP_ONLY),
        ("rabbitmq", with_(AMQP, timeout="1000"), "timeout", HTTP_ONLY),
        (
            "rabbitmq",
            with_(AMQP, host="RabbitMqHost"),
            "host",
            "must be an amqp(s):// or http(s):// URL; name an env var with hostFromEnv",
        ),
        ("rabbitmq", with_(AMQP, pageSize="0"), "pageSize", POSITIVE_INT),
        (
            "rabbitmq",
            with_(AMQP, protocol="ftp"),
            "protocol",
            "Input should be 'auto', 'amqp' or 'http'",
        ),
        (
            "rabbitmq",
            with_(AMQP, operation="average"),
            "operation",
            "Input should be 'sum', 'max' or 'avg'",
        ),
        ("rabbitmq", with_(AMQP, unsafeSsl="maybe"), "unsafeSsl", BOOLEAN),
        ("redis", {"address": "redis:6379"}, "listName", "required (or keyName)"),
        (
            "redis",
            {"listName": "l", "keyName": "k"},
            "keyName",
            "cannot be set together with listName",
        ),
        ("redis", {"listName": "l", "listLength": "5.5"}, "listLength", POSITIVE_INT),
        ("redis", {"listName": "l", "listLength": "0"}, "listLength", POSITIVE_INT),
        (
            "redis",
            {"listName": "l", "activationListLength": "-1"},
            "activationListLength",
            "must be an integer >= 0",
        ),
        (
            "redis",
            {"listName": "l", "databaseIndex": "-1"},
            "databaseIndex",
            "must be an integer >= 0",
        ),
        ("redis", {"listName": "l", "enableTLS": "yes"}, "enableTLS", BOOLEAN),
        ("redis", {"keyName": "k", "keyValue": "none"}, "keyValue", POSITIVE),
        (
            "redis",
            {"listName": "l", "address": "localhost"},
            "address",
            "must be host:port, comma-separated",
        ),
        (
            "redis",
            {"listName": "l", "host": "a,b", "port": "6379"},
            "port",
            "must list as many ports as host lists hosts (2)",
        ),
        (
            "redis",
            {"listName": "l", "host": "a", "port": "http"},
            "port",
            "must be a port number (1-65535)",
        ),
        (
            "http",
            {"scalingMetric": "rps"},
            "scalingMetric",
            "Input should be 'requestRate' or 'concurrency'",
        ),
        ("http", {"targetValue": "0"}, "targetValue", POSITIVE),
        ("http", {"activationTargetValue": "-1"}, "activationTargetValue", "must be a number >= 0"),
        ("http", {"window": "1x"}, "window", DURATION),
        ("http", {"window": "-1m"}, "window", DURATION),
        ("http", {"window": "0s"}, "window", DURATION),
        ("http", {"window": "60"}, "window", DURATION),
        ("http", {"scalingMetric": "concurrency", "window": "30s"}, "window", RATE_ONLY),
        ("http", {"scalingMetric": "concurrency", "granularity": "1s"}, "granularity", RATE_ONLY),
        ("http", {"granularity": "2m"}, "granularity", "must not be longer than window (60s)"),
        (
            "http",
            {"pathPrefixes": "api"},
            "pathPrefixes",
            "must be paths starting with /, comma-separated",
        ),
    ],
)
def test_bad_value_fails_at_its_camel_case_field(
    trigger_type: str, metadata: dict[str, Any], field: str, message: str
) -> None:
    assert errors_of(trigger_type, metadata) == [((field,), message)]


@pytest.mark.parametrize(
    ("trigger_type", "metadata"),
    [
        # the host may come from the environment or auth: protocol rules wait for it
        (
            "rabbitmq",
            {
                "queueName": "q",
                "hostFromEnv": "RABBITMQ_HOST",
                "mode": "MessageRate",
                "value": "100",
            },
        ),
        (
            "rabbitmq",
            {
                "queueName": "q",
                "host": "https://rmq:15672/",
                "mode": "MessageRate",
                "value": "100",
                "useRegex": "true",
                "operation": "max",
                "timeout": "500",
            },
        ),
        (
            "rabbitmq",
            {
                "queueName": "q",
                "protocol": "http",
                "mode": "PublishedToDeliveredRatio",
                "value": "1.5",
            },
        ),
        ("cpu", {"value": "60", "type": "Utilization", "containerName": ""}),
        ("redis", {"listName": "l", "host": "a,b", "port": "6379,6380"}),
        ("redis", {"listName": "l", "address": "[::1]:6379,redis-2:6380"}),
        ("http", {"scalingMetric": "concurrency", "hosts": "app.example.com"}),
        ("cron", with_(CRON, start="0 22 * * *", end="0 6 * * *")),
    ],
)
def test_documented_combinations_are_accepted(trigger_type: str, metadata: dict[str, Any]) -> None:
    parse_metadata(trigger_type, metadata)


def test_memory_utilization_needs_a_whole_percentage_once_metric_type_is_known() -> None:
    # a quantity is fine until the trigger's metricType says Utilization
    metric_spec("memory", {"value": "512Mi"}, 0, metric_type=MetricType.AVERAGE_VALUE)
    with pytest.raises(ValidationError) as caught:
        metric_spec("memory", {"value": "512Mi"}, 0, metric_type=MetricType.UTILIZATION)
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [
        (("value",), "must be a positive integer")
    ]


@pytest.mark.parametrize(
    ("metadata", "field", "quoted"),
    [
        (with_(AMQP, timeout="1000"), "timeout", "1000"),
        (with_(AMQP, queueLength="5", mode="QueueLength", value="5"), "queueLength", "5"),
        ({"queueName": "q", "protocol": "amqp", "useRegex": "true"}, "useRegex", "true"),
        # a host URL may hold a password: never echoed
        (with_(AMQP, host="user:secret@rabbitmq"), "host", None),
    ],
)
def test_cross_field_error_quotes_what_the_manifest_says(
    metadata: dict[str, Any], field: str, quoted: str | None
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_metadata("rabbitmq", metadata)
    assert [(e["loc"], e["input"]) for e in caught.value.errors()] == [((field,), quoted)]


@pytest.mark.parametrize(
    ("context", "value", "rejected"),
    [
        (None, "60.5", False),  # metricType unknown: any quantity waits for metric_spec
        ({"metric_type": None}, "60.5", True),  # no metricType: Utilization by default
        ({"metric_type": "Utilization"}, "60.5", True),
        ({"metric_type": MetricType.UTILIZATION}, "500m", True),
        ({"metric_type": "AverageValue"}, "60.5", False),
        ({"metric_type": "Utilization"}, "60", False),
    ],
)
def test_cpu_value_is_checked_against_the_triggers_metric_type_when_given(
    context: dict[str, Any] | None, value: str, rejected: bool
) -> None:
    model = metadata_model("cpu")
    if not rejected:
        model.model_validate({"value": value}, context=context)
        return
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"value": value}, context=context)
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [(("value",), POSITIVE_INT)]


@pytest.mark.parametrize(
    ("trigger_type", "metadata"),
    [
        # each trigger's full example from KEDA's docs: every key is one we know
        (
            "prometheus",
            with_(
                PROMETHEUS,
                activationThreshold="5.5",
                namespace="example",
                customHeaders="X-Client-Id=cid",
                ignoreNullValues="false",
                queryParameters="k=v",
                unsafeSsl="false",
                authModes="bearer",
                awsRegion="eu-west-1",
                identityOwner="operator",
                timeout="1000",
            ),
        ),
        (
            "cpu",
            {"type": "Utilization", "value": "60", "activationValue": "30", "containerName": ""},
        ),
        ("cron", CRON),
        (
            "rabbitmq",
            {
                "host": "amqp://localhost:5672/vhost",
                "protocol": "auto",
                "mode": "QueueLength",
                "value": "100.50",
                "activationValue": "10.5",
                "queueName": "testqueue",
                "vhostName": "/",
                "hostFromEnv": "RABBITMQ_HOST",
                "usernameFromEnv": "RABBITMQ_USERNAME",
                "passwordFromEnv": "RABBITMQ_PASSWORD",
                "unsafeSsl": "true",
                "pageSize": "100",
            },
        ),
        (
            "redis",
            {
                "address": "localhost:6379",
                "usernameFromEnv": "REDIS_USERNAME",
                "passwordFromEnv": "REDIS_PASSWORD",
                "listName": "mylist",
                "listLength": "5",
                "activationListLength": "5",
                "enableTLS": "false",
                "unsafeSsl": "false",
                "databaseIndex": "0",
                "addressFromEnv": "REDIS_HOST",
            },
        ),
    ],
)
def test_documented_keys_are_all_known(trigger_type: str, metadata: dict[str, Any]) -> None:
    assert parse_metadata(trigger_type, metadata).unknown_keys() == []


def test_unknown_keys_are_kept_for_a_warning() -> None:
    parsed = parse_metadata("prometheus", with_(PROMETHEUS, metricName="http_requests_total"))
    assert parsed.unknown_keys() == ["metricName"]


KOLKATA = ZoneInfo("Asia/Kolkata")
BERLIN = ZoneInfo("Europe/Berlin")
OVERNIGHT = with_(
    CRON, timezone="Europe/Berlin", start="0 22 * * *", end="0 6 * * *", desiredReplicas="3"
)
WEEKDAYS = with_(
    CRON, timezone="Etc/UTC", start="0 9 * * 1-5", end="0 17 * * 1-5", desiredReplicas="4"
)


@pytest.mark.parametrize(
    ("metadata", "when", "expected"),
    [
        (CRON, datetime(2024, 3, 1, 5, 59, 59, tzinfo=KOLKATA), 0.0),
        (CRON, datetime(2024, 3, 1, 6, 0, 0, tzinfo=KOLKATA), 10.0),  # start is inside
        (CRON, datetime(2024, 3, 1, 13, 0, 0, tzinfo=KOLKATA), 10.0),
        (CRON, datetime(2024, 3, 1, 19, 59, 59, tzinfo=KOLKATA), 10.0),
        (CRON, datetime(2024, 3, 1, 20, 0, 0, tzinfo=KOLKATA), 0.0),  # end is outside
        (CRON, datetime(2024, 3, 1, 0, 30, tzinfo=UTC), 10.0),  # 06:00 in Kolkata
        (CRON, datetime(2024, 3, 1, 0, 29, tzinfo=UTC), 0.0),
        (OVERNIGHT, datetime(2024, 3, 1, 21, 0, tzinfo=BERLIN), 0.0),
        (OVERNIGHT, datetime(2024, 3, 1, 22, 0, tzinfo=BERLIN), 3.0),
        (OVERNIGHT, datetime(2024, 3, 2, 3, 0, tzinfo=BERLIN), 3.0),
        (OVERNIGHT, datetime(2024, 3, 2, 6, 0, tzinfo=BERLIN), 0.0),
        (WEEKDAYS, datetime(2024, 3, 2, 10, 0, tzinfo=UTC), 0.0),  # a Saturday
        (WEEKDAYS, datetime(2024, 3, 4, 10, 0, tzinfo=UTC), 4.0),  # a Monday
    ],
)
def test_cron_value_is_desired_replicas_inside_the_window_only(
    metadata: dict[str, Any], when: datetime, expected: float
) -> None:
    parsed = parse_metadata("cron", metadata)
    assert isinstance(parsed, CronMetadata)
    assert parsed.value_at(when) == expected


def test_cron_value_refuses_a_naive_time() -> None:
    parsed = parse_metadata("cron", CRON)
    assert isinstance(parsed, CronMetadata)
    with pytest.raises(ValueError, match="timezone-aware"):
        parsed.value_at(datetime(2024, 3, 1, 12, 0))
