"""HTTP request-driven scaling (our `http` trigger), fed by the interceptor's counters.

KEDA has no trigger of this name: its HTTP add-on configures this in an HTTPScaledObject.
We take the add-on's `spec.scalingMetric` semantics as flat trigger metadata:

- `scalingMetric`: `requestRate` (default) scales on requests per second averaged over
  `window` (default `1m`) in buckets of `granularity` (default `1s`); `concurrency` scales
  on in-flight requests, and takes no window or granularity.
- `targetValue` (default 100): the rate or concurrency one replica should handle.
- `activationTargetValue` (default 0): above it the workload wakes from zero.
- `hosts`, `pathPrefixes`: comma-separated; which requests count (no hosts: every host;
  path prefixes default to `/`, every path).

Durations use Go's syntax, as the add-on's CRD does: `500ms`, `30s`, `1m`, `1h30m`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from scalers.base import (
    MetricSpec,
    MetricType,
    NonNegativeNumber,
    PositiveNumber,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.registry import register

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_MESSAGE = "must be a duration such as 30s, 1m or 1h30m"


def _duration(value: Any) -> timedelta:
    # Go's time.ParseDuration, positive values only: one or more number+unit parts
    if isinstance(value, timedelta):
        return value
    text = value.strip() if isinstance(value, str) else ""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(_DURATION_MESSAGE)
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(_DURATION_MESSAGE)
    return timedelta(seconds=seconds)


def _comma_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ValueError("must be a comma-separated list")
    return tuple(item.strip() for item in value.split(",") if item.strip())


Duration = Annotated[timedelta, BeforeValidator(_duration)]
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]


@register
class HttpMetadata(TriggerMetadata):
    """Our http trigger's metadata, with the HTTP add-on's names and defaults."""

    trigger_type = "http"

    scaling_metric: Literal["requestRate", "concurrency"] = Field(
        default="requestRate", alias="scalingMetric"
    )
    target_value: PositiveNumber = Field(default=100.0, alias="targetValue")
    activation_target_value: NonNegativeNumber = Field(default=0.0, alias="activationTargetValue")
    window: Duration = timedelta(minutes=1)
    granularity: Duration = timedelta(seconds=1)
    hosts: CommaList = ()
    path_prefixes: CommaList = Field(default=("/",), alias="pathPrefixes")

    @field_validator("path_prefixes")
    @classmethod
    def _absolute_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not prefix.startswith("/") for prefix in value):
            raise ValueError("must be paths starting with /, comma-separated")
        return value

    @model_validator(mode="after")
    def _window_fits_metric(self) -> HttpMetadata:
        if self.scaling_metric == "concurrency":
            for name in ("window", "granularity"):
                if name in self.model_fields_set:
                    message = "only applies when scalingMetric is requestRate"
                    raise field_error((name,), message, None)
        elif self.granularity > self.window:
            message = f"must not be longer than window ({self.window.total_seconds():g}s)"
            raise field_error(("granularity",), message, None)
        return self

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        return MetricSpec(
            name=self.metric_name(ctx, self.scaling_metric),
            target=self.target_value,
            activation_target=self.activation_target_value,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )
