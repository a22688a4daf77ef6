"""The gpu trigger's metadata, table by table: values, defaults, PromQL, metric specs, errors."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from scalers.base import MetricSpec, MetricType
from scalers.gpu import GpuMetadata
from scalers.registry import known_types, metric_spec, parse_metadata

PROM = {"serverAddress": "http://prometheus:9090", "targetValue": "60"}
NVML = {"source": "nvml", "targetValue": "60"}
ML = 'namespace="ml",pod=~"llm-.*"'
PROM_ONLY = "only applies when source is prometheus"
AV, VALUE = MetricType.AVERAGE_VALUE, MetricType.VALUE


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def gpu(metadata: dict[str, Any]) -> GpuMetadata:
    parsed = parse_metadata("gpu", metadata)
    assert isinstance(parsed, GpuMetadata)
    return parsed


def test_gpu_is_a_registered_trigger_type() -> None:
    assert "gpu" in known_types()


@pytest.mark.parametrize(
    ("metadata", "attribute", "expected"),
    [
        (with_(PROM, targetValue="75.5"), "target_value", 75.5),
        (with_(PROM, activationTargetValue="10"), "activation_target_value", 10.0),
        (with_(PROM, preset="vllm-queue"), "preset", "vllm-queue"),
        (with_(PROM, aggregation="max"), "aggregation", "max"),
        (with_(PROM, selector=f" {ML} "), "selector", ML),
        (with_(PROM, selector="{" + ML + "}"), "selector", ML),  # braces are optional
        (with_(PROM, selector=ML + ","), "selector", ML),
        (
            with_(PROM, selector="gpu!='0', UUID!~\"GPU-1.*\""),
            "selector",
            "gpu!='0', UUID!~\"GPU-1.*\"",
        ),
        (with_(PROM, preset="memory", unit="fraction"), "fraction", True),
        (with_(PROM, ignoreNullValues="false"), "ignore_null_values", False),
        (with_(PROM, customHeaders="X-Scope-OrgID=ml"), "custom_headers", {"X-Scope-OrgID": "ml"}),
        (with_(NVML, preset="memory"), "preset", "memory"),
    ],
)
def test_string_values_parse(metadata: dict[str, Any], attribute: str, expected: Any) -> None:
    assert getattr(gpu(metadata), attribute) == expected


@pytest.mark.parametrize(
    ("metadata", "defaults"),
    [
        (
            PROM,
            {
                "source": "prometheus",
                "preset": "utilization",
                "selector": "",
                "aggregation": None,
                "effective_aggregation": "avg",
                "unit": None,
                "fraction": False,
                "activation_target_value": 0.0,
                "ignore_null_values": True,
                "namespace": "",
                "timeout": None,
            },
        ),
        (with_(PROM, preset="memory"), {"effective_aggregation": "avg", "fraction": False}),
        (with_(PROM, preset="vllm-queue"), {"effective_aggregation": "sum"}),
        (with_(PROM, preset="triton-queue"), {"effective_aggregation": "sum"}),
        (with_(PROM, preset="custom", query="up"), {"effective_aggregation": None}),
        (NVML, {"server_address": None, "effective_aggregation": "avg"}),
    ],
)
def test_defaults_apply(metadata: dict[str, Any], defaults: dict[str, Any]) -> None:
    parsed = gpu(metadata)
    assert {name: getattr(parsed, name) for name in defaults} == defaults


@pytest.mark.parametrize(
    ("metadata", "promql"),
    [
        (PROM, "avg(DCGM_FI_DEV_GPU_UTIL)"),
        (with_(PROM, selector=ML), f"avg(DCGM_FI_DEV_GPU_UTIL{{{ML}}})"),
        (with_(PROM, selector=ML, aggregation="max"), f"max(DCGM_FI_DEV_GPU_UTIL{{{ML}}})"),
        (with_(PROM, preset="memory", selector='pod="a"'), 'avg(DCGM_FI_DEV_FB_USED{pod="a"})'),
        (
            with_(PROM, preset="memory", unit="fraction", selector='pod="a"'),
            'avg(DCGM_FI_DEV_FB_USED{pod="a"} / '
            '(DCGM_FI_DEV_FB_USED{pod="a"} + DCGM_FI_DEV_FB_FREE{pod="a"}))',
        ),
        (
            with_(PROM, preset="memory", unit="fraction"),
            "avg(DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE))",
        ),
        (with_(PROM, preset="memory", unit="MiB"), "avg(DCGM_FI_DEV_FB_USED)"),
        (
            with_(PROM, preset="vllm-queue", selector='model_name="llama"'),
            'sum(vllm:num_requests_waiting{model_name="llama"})',
        ),
        (
            with_(PROM, preset="triton-queue", selector='model="resnet50"'),
            'sum(nv_inference_pending_request_count{model="resnet50"})',
        ),
        (
            with_(PROM, preset="triton-queue", aggregation="max"),
            "max(nv_inference_pending_request_count)",
        ),
        (with_(PROM, preset="custom", query="sum(rate(x[1m]))"), "sum(rate(x[1m]))"),
        (with_(PROM, preset="custom", query="x", aggregation="avg"), "avg(x)"),
    ],
)
def test_presets_build_promql(metadata: dict[str, Any], promql: str) -> None:
    parsed = gpu(metadata)
    assert parsed.promql() == promql
    assert parsed.instant_query().query == promql
    assert parsed.instant_query().server_address == "http://prometheus:9090"


@pytest.mark.parametrize(
    ("metadata", "index", "metric_type", "expected"),
    [
        # a level per GPU (avg, max) scales the current count: Value
        (PROM, 0, None, MetricSpec("s0-gpu-utilization", 60.0, 0.0, VALUE)),
        (
            with_(PROM, aggregation="max", activationTargetValue="5"),
            1,
            None,
            MetricSpec("s1-gpu-utilization", 60.0, 5.0, VALUE),
        ),
        (with_(NVML, preset="memory"), 0, None, MetricSpec("s0-gpu-memory", 60.0, 0.0, VALUE)),
        # a total (sum; a queue by default) is divided by a per-pod target: AverageValue
        (with_(PROM, preset="vllm-queue"), 2, None, MetricSpec("s2-gpu-vllm-queue", 60.0)),
        (with_(PROM, preset="triton-queue"), 0, None, MetricSpec("s0-gpu-triton-queue", 60.0)),
        (
            with_(PROM, aggregation="sum"),
            0,
            None,
            MetricSpec("s0-gpu-utilization", 60.0, 0.0, AV),
        ),
        (with_(PROM, preset="custom", query="up"), 0, None, MetricSpec("s0-gpu-custom", 60.0)),
        (
            with_(PROM, preset="custom", query="up", aggregation="avg"),
            0,
            None,
            MetricSpec("s0-gpu-custom", 60.0, 0.0, VALUE),
        ),
        # the trigger's metricType wins
        (PROM, 0, AV, MetricSpec("s0-gpu-utilization", 60.0, 0.0, AV)),
        (
            with_(PROM, preset="vllm-queue"),
            0,
            VALUE,
            MetricSpec("s0-gpu-vllm-queue", 60.0, 0.0, VALUE),
        ),
    ],
)
def test_metric_spec_follows_the_aggregation(
    metadata: dict[str, Any], index: int, metric_type: MetricType | None, expected: MetricSpec
) -> None:
    assert metric_spec("gpu", metadata, index, metric_type=metric_type) == expected


def errors_of(metadata: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        parse_metadata("gpu", metadata)
    return [(e["loc"], e["msg"].removeprefix("Value error, ")) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("metadata", "field", "message"),
    [
        ({"serverAddress": "http://p:9090"}, "targetValue", "Field required"),
        (with_(PROM, targetValue="0"), "targetValue", "must be a positive number"),
        (with_(PROM, targetValue="sixty"), "targetValue", "must be a positive number"),
        (with_(PROM, activationTargetValue="-1"), "activationTargetValue", "must be a number >= 0"),
        ({"targetValue": "60"}, "serverAddress", "required when source is prometheus"),
        (
            with_(PROM, serverAddress="prometheus:9090"),
            "serverAddress",
            "must be an http:// or https:// URL",
        ),
        (with_(PROM, source="dcgm"), "source", "Input should be 'prometheus' or 'nvml'"),
        (
            with_(PROM, preset="gpu-util"),
            "preset",
            "Input should be 'utilization', 'memory', 'vllm-queue', 'triton-queue' or 'custom'",
        ),
        (with_(PROM, aggregation="mean"), "aggregation", "Input should be 'avg', 'max' or 'sum'"),
        (with_(PROM, preset="memory", unit="GiB"), "unit", "Input should be 'MiB' or 'fraction'"),
        (with_(PROM, unit="fraction"), "unit", "only applies when preset is memory"),
        (with_(PROM, preset="custom"), "query", "required when preset is custom"),
        (with_(PROM, query="up"), "query", "only applies when preset is custom"),
        (
            with_(PROM, preset="custom", query="up", selector='pod="a"'),
            "selector",
            "does not apply to preset custom",
        ),
        (
            with_(PROM, selector="namespace=ml"),
            "selector",
            'must be PromQL label matchers such as namespace="ml",pod=~"llm-.*"',
        ),
        (
            with_(PROM, selector='pod="a"} or vector(1) or up{x="y"'),
            "selector",
            'must be PromQL label matchers such as namespace="ml",pod=~"llm-.*"',
        ),
        (with_(PROM, ignoreNullValues="maybe"), "ignoreNullValues", "must be true or false"),
        (with_(NVML, serverAddress="http://p:9090"), "serverAddress", PROM_ONLY),
        (with_(NVML, authModes="bearer"), "authModes", PROM_ONLY),
        (with_(NVML, ignoreNullValues="false"), "ignoreNullValues", PROM_ONLY),
        (with_(NVML, selector='gpu="0"'), "selector", PROM_ONLY),
        (
            with_(NVML, preset="vllm-queue"),
            "preset",
            "must be utilization or memory when source is nvml",
        ),
        (
            with_(NVML, preset="custom", query="up"),
            "preset",
            "must be utilization or memory when source is nvml",
        ),
    ],
)
def test_bad_value_fails_at_its_camel_case_field(
    metadata: dict[str, Any], field: str, message: str
) -> None:
    assert errors_of(metadata) == [((field,), message)]


@pytest.mark.parametrize(
    "metadata",
    [
        # the examples of the module docstring
        with_(PROM, selector=ML, targetValue="70", activationTargetValue="5"),
        with_(PROM, preset="memory", unit="fraction", selector=ML, targetValue="0.8"),
        with_(PROM, preset="vllm-queue", selector='model_name="meta-llama/Llama-3.1-8B"'),
        with_(PROM, preset="triton-queue", aggregation="sum", targetValue="4"),
        with_(
            PROM,
            preset="custom",
            query='sum(vllm:num_requests_running{namespace="ml"})',
            namespace="ml",
            customHeaders="X-Scope-OrgID=ml",
            authModes="bearer",
            timeout="2000",
        ),
        with_(NVML, preset="memory", unit="MiB", aggregation="max"),
    ],
)
def test_documented_combinations_are_accepted(metadata: dict[str, Any]) -> None:
    gpu(metadata)


def test_nvml_source_has_no_prometheus_query() -> None:
    with pytest.raises(ValueError, match="reads NVML"):
        gpu(NVML).instant_query()
