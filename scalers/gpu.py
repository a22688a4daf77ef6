"""GPU-driven scaling (our `gpu` trigger): GPU utilization, GPU memory, or an inference queue.

KEDA has no GPU trigger (kedacore/keda#7538 asks for one); users write a `prometheus` trigger
over dcgm-exporter metrics by hand. This trigger names the usual queries instead:

- `source`: `prometheus` (default) asks `serverAddress` with the prometheus trigger's options
  and client (`namespace`, `customHeaders`, `queryParameters`, `ignoreNullValues`,
  `unsafeSsl`, `timeout`, `authModes`); `nvml` reads this node's GPUs through NVML, for
  a node agent (utilization and memory only).
- `preset`: `utilization` (default; dcgm-exporter's `DCGM_FI_DEV_GPU_UTIL`, percent),
  `memory` (`DCGM_FI_DEV_FB_USED` in MiB, or with `unit: fraction` used / (used + free)
  from `DCGM_FI_DEV_FB_FREE`), `vllm-queue` (`vllm:num_requests_waiting`), `triton-queue`
  (`nv_inference_pending_request_count`), or `custom` with a `query`.
- `selector`: PromQL label matchers added to the preset's metric, e.g.
  `namespace="ml",pod=~"llm-.*"`. dcgm-exporter labels a GPU with the pod using it
  (`pod`, or `exported_pod` when the scrape does not honour labels): without a selector
  the query averages every GPU Prometheus knows.
- `aggregation`: `avg`, `max` or `sum` over the matching series (or local GPUs); `sum` for
  the queue presets, `avg` for utilization and memory, none for `custom` unless given.
- `targetValue` (required) and `activationTargetValue` (default 0), in the metric's unit.

Which HPA arithmetic fits, thought through as the HPA does for `cpu`:

- A queue is demand in requests, shared by the replicas: its total (`sum`) over a per-replica
  target is the replica count, so a sum is an External `AverageValue` metric
  (desired = ceil(total / targetValue)).
- Utilization and memory are levels per GPU. Summing them over a per-pod target miscounts
  as soon as a pod holds more than one GPU; their average over the workload's GPUs against a
  per-GPU target is what the HPA's Resource Utilization does with CPU, desired =
  ceil(current * average / targetValue): an External `Value` metric. `max` (the busiest GPU)
  works the same way, more eagerly.

So `sum` (and `custom` without aggregation, like a prometheus trigger) means `AverageValue`;
`avg` and `max` mean `Value`. The trigger's `metricType` overrides this. Utilization and
memory cannot wake a workload from zero: with no pods there are no GPU series to read (and
the empty result is 0 when ignoreNullValues). Nor can the queue presets, whose queue lives in
the inference server's pods: scale to zero on a queue that outlives them (the http trigger
through the interceptor, a broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Annotated, Any, Literal

import pynvml
from pydantic import BeforeValidator, Field, field_validator, model_validator

from scalers.base import (
    BadMetric,
    MetricSpec,
    MetricType,
    NonEmptyString,
    NonNegativeNumber,
    PositiveNumber,
    Scaler,
    SourceUnreachable,
    TriggerContext,
    field_error,
)
from scalers.context import ScalerContext
from scalers.prometheus import InstantQuery, PrometheusOptions, PrometheusScaler, http_url
from scalers.registry import register, register_reader

Preset = Literal["utilization", "memory", "vllm-queue", "triton-queue", "custom"]
Aggregation = Literal["avg", "max", "sum"]

# dcgm-exporter (etc/default-counters.csv), vLLM's /metrics, Triton's /metrics
_METRIC = {
    "utilization": "DCGM_FI_DEV_GPU_UTIL",
    "memory": "DCGM_FI_DEV_FB_USED",
    "vllm-queue": "vllm:num_requests_waiting",
    "triton-queue": "nv_inference_pending_request_count",
}
_FB_FREE = "DCGM_FI_DEV_FB_FREE"
_QUEUES = ("vllm-queue", "triton-queue")
_NVML_PRESETS = ("utilization", "memory")
_PROMETHEUS_ONLY = {
    "server_address": "serverAddress",
    "namespace": "namespace",
    "custom_headers": "customHeaders",
    "query_parameters": "queryParameters",
    "ignore_null_values": "ignoreNullValues",
    "unsafe_ssl": "unsafeSsl",
    "timeout": "timeout",
    "auth_modes": "authModes",
}

# PromQL label matchers: name, operator, quoted value; comma-separated
_MATCHER = (
    r"""\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*"""
)
_SELECTOR = re.compile(rf"{_MATCHER}(?:,{_MATCHER})*,?\s*")
_SELECTOR_MESSAGE = 'must be PromQL label matchers such as namespace="ml",pod=~"llm-.*"'


def _selector(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(_SELECTOR_MESSAGE)
    text = value.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text and not _SELECTOR.fullmatch(text):
        raise ValueError(_SELECTOR_MESSAGE)
    return text.rstrip(", ")


Selector = Annotated[str, BeforeValidator(_selector)]


@register
class GpuMetadata(PrometheusOptions):
    """Our gpu trigger's metadata (see the module docstring)."""

    trigger_type = "gpu"

    source: Literal["prometheus", "nvml"] = "prometheus"
    preset: Preset = "utilization"
    query: NonEmptyString | None = None
    server_address: NonEmptyString | None = Field(default=None, alias="serverAddress")
    selector: Selector = ""
    aggregation: Aggregation | None = None
    unit: Literal["MiB", "fraction"] | None = None
    target_value: PositiveNumber = Field(alias="targetValue")
    activation_target_value: NonNegativeNumber = Field(default=0.0, alias="activationTargetValue")

    @field_validator("server_address")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _fields_fit_source_and_preset(self) -> GpuMetadata:
        given = self.model_fields_set
        if self.source == "nvml":
            for name, alias in _PROMETHEUS_ONLY.items():
                if name in given:
                    raise field_error((alias,), "only applies when source is prometheus", None)
            if self.preset not in _NVML_PRESETS:
                message = "must be utilization or memory when source is nvml"
                raise field_error(("preset",), message, self.preset)
            if self.selector:
                raise field_error(("selector",), "only applies when source is prometheus", None)
        elif self.server_address is None:
            raise field_error(("serverAddress",), "required when source is prometheus", None)
        if self.preset == "custom":
            if self.query is None:
                raise field_error(("query",), "required when preset is custom", None)
            if self.selector:
                raise field_error(("selector",), "does not apply to preset custom", None)
        elif self.query is not None:
            raise field_error(("query",), "only applies when preset is custom", None)
        if self.unit is not None and self.preset != "memory":
            raise field_error(("unit",), "only applies when preset is memory", self.unit)
        return self

    @property
    def effective_aggregation(self) -> Aggregation | None:
        """The aggregation asked for, or the preset's: sum for queues, avg for levels."""
        if self.aggregation is not None or self.preset == "custom":
            return self.aggregation
        return "sum" if self.preset in _QUEUES else "avg"

    @property
    def fraction(self) -> bool:
        return self.unit == "fraction"

    def promql(self) -> str:
        """The PromQL this trigger runs against Prometheus."""
        aggregation = self.effective_aggregation
        if self.preset == "custom":
            assert self.query is not None
            return f"{aggregation}({self.query})" if aggregation else self.query
        matchers = f"{{{self.selector}}}" if self.selector else ""
        series = f"{_METRIC[self.preset]}{matchers}"
        if self.preset == "memory" and self.fraction:
            # used and free of one GPU share every label, so the division pairs them up
            series = f"{series} / ({series} + {_FB_FREE}{matchers})"
        return f"{aggregation}({series})"

    def instant_query(self) -> InstantQuery:
        if self.server_address is None:
            raise ValueError("the gpu trigger reads NVML, not Prometheus")
        return self._query_on(self.server_address, self.promql())

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        # a level per GPU (avg, max) scales the current count; a total divides by a per-pod target
        level = self.effective_aggregation in ("avg", "max")
        default = MetricType.VALUE if level else MetricType.AVERAGE_VALUE
        return MetricSpec(
            name=self.metric_name(ctx, self.preset),
            target=self.target_value,
            activation_target=self.activation_target_value,
            metric_type=ctx.metric_type or default,
        )


@register_reader("gpu")
def gpu_scaler(context: ScalerContext) -> Scaler:
    """The gpu trigger's reader: a Prometheus query, or this node's GPUs through NVML."""
    assert isinstance(context.metadata, GpuMetadata)
    if context.metadata.source == "nvml":
        return NvmlScaler(context)
    return PrometheusScaler(context)


class NvmlScaler:
    """This node's GPUs, read through NVML in a worker thread (its calls block)."""

    def __init__(self, context: ScalerContext) -> None:
        metadata = context.metadata
        assert isinstance(metadata, GpuMetadata)
        self.spec = context.spec
        self._preset = metadata.preset
        self._fraction = metadata.fraction
        self._aggregation = metadata.effective_aggregation or "avg"
        self._initialised = False
        self._lock = asyncio.Lock()

    async def read(self) -> float:
        async with self._lock:  # one NVML sweep at a time; init happens once
            values = await asyncio.to_thread(self._sample)
        if self._aggregation == "sum":
            return sum(values)
        if self._aggregation == "max":
            return max(values)
        return sum(values) / len(values)

    def _sample(self) -> list[float]:
        if not self._initialised:
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as exc:
                raise SourceUnreachable(f"NVML unavailable: {exc}") from None
            self._initialised = True
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        except pynvml.NVMLError as exc:
            raise SourceUnreachable(f"NVML: cannot count GPUs: {exc}") from None
        if count == 0:
            raise BadMetric("NVML sees no GPUs on this node")
        return [self._device_value(index) for index in range(count)]

    def _device_value(self, index: int) -> float:
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            if self._preset == "utilization":
                # percent of the last sample period with a kernel running, as DCGM's GPU_UTIL
                return float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            if self._fraction:
                return float(memory.used) / float(memory.total)
            return float(memory.used) / 2**20  # MiB, as DCGM_FI_DEV_FB_USED
        except pynvml.NVMLError as exc:
            raise BadMetric(f"NVML: GPU {index}: {exc}") from None

    async def close(self) -> None:
        if self._initialised:
            self._initialised = False
            with contextlib.suppress(pynvml.NVMLError):  # a lost driver has nothing to release
                await asyncio.to_thread(pynvml.nvmlShutdown)
