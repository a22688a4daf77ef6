"""Pod CPU and memory (KEDA `cpu` and `memory` triggers): Resource metrics for the HPA.

`value` is a percentage of the pods' requests for Utilization, and a Kubernetes quantity
(`500m` cores, `512Mi` bytes) for AverageValue. The metric type is the trigger's
`metricType`; KEDA still reads the deprecated metadata `type` when that is unset.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from scalers.base import (
    BadMetric,
    MetricSource,
    MetricSpec,
    MetricType,
    NonEmptyString,
    SourceUnreachable,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.context import ScalerContext
from scalers.registry import register, register_reader

_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0,
    "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}  # fmt: skip
# apimachinery's resource.Quantity grammar: a number, then a binary/decimal suffix or exponent
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?")


def quantity(text: str) -> float:
    """A Kubernetes quantity in base units (`500m` -> 0.5, `1Ki` -> 1024); ValueError if not one."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a quantity: {text!r}")
    number, suffix = match.group(1), match.group(2) or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return float(number + suffix)
    return float(number) * _SUFFIXES[suffix]


def _percent(text: str) -> int | None:
    # KEDA: strconv.ParseInt(value, 10, 32) for Utilization, so "60" but not "60.0" or "60%"
    stripped = text.strip()
    return int(stripped) if re.fullmatch(r"[+-]?\d+", stripped) else None


class _ResourceMetadata(TriggerMetadata):
    """Shared by cpu and memory: KEDA parses both with one metadata struct."""

    value: NonEmptyString
    activation_value: NonEmptyString = Field(default="0", alias="activationValue")
    container_name: str = Field(default="", alias="containerName")
    # deprecated in KEDA in favour of the trigger's metricType, which wins when both are set
    legacy_type: Literal["Utilization", "AverageValue"] | None = Field(default=None, alias="type")

    @field_validator("value")
    @classmethod
    def _positive_quantity(cls, value: str) -> str:
        try:
            amount = quantity(value)
        except ValueError:
            raise ValueError("must be a positive quantity, e.g. 60, 500m or 512Mi") from None
        if amount <= 0:
            raise ValueError("must be a positive quantity, e.g. 60, 500m or 512Mi")
        return value

    @field_validator("activation_value")
    @classmethod
    def _non_negative_quantity(cls, value: str) -> str:
        try:
            amount = quantity(value)
        except ValueError:
            raise ValueError("must be a quantity >= 0, e.g. 0, 250m or 256Mi") from None
        if amount < 0:
            raise ValueError("must be a quantity >= 0, e.g. 0, 250m or 256Mi")
        return value

    @model_validator(mode="after")
    def _percent_for_utilization(self, info: ValidationInfo) -> _ResourceMetadata:
        # the trigger's metricType lives beside the metadata: a caller may pass it as context
        context = info.context or {}
        declared = context.get("metric_type")
        if declared is not None and MetricType(declared) is MetricType.VALUE:
            return self  # the trigger itself reports that mistake
        if "metric_type" in context or self.legacy_type is not None:
            ctx = TriggerContext(index=0, metric_type=MetricType(declared) if declared else None)
            self._targets(self.resolved_metric_type(ctx))
        return self

    def resolved_metric_type(self, ctx: TriggerContext) -> MetricType:
        """The trigger's metricType, else the deprecated metadata `type`, else Utilization."""
        chosen = ctx.metric_type or (MetricType(self.legacy_type) if self.legacy_type else None)
        chosen = chosen or MetricType.UTILIZATION
        if chosen is MetricType.VALUE:
            raise ValueError(f"{self.trigger_type} triggers take Utilization or AverageValue")
        return chosen

    def _targets(self, metric_type: MetricType) -> tuple[float, float]:
        if metric_type is not MetricType.UTILIZATION:
            return quantity(self.value), quantity(self.activation_value)
        target, activation = _percent(self.value), _percent(self.activation_value)
        if target is None or target <= 0:
            raise field_error(("value",), "must be a positive integer", self.value)
        if activation is None or activation < 0:
            raise field_error(
                ("activationValue",), "must be an integer >= 0", self.activation_value
            )
        return float(target), float(activation)

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        metric_type = self.resolved_metric_type(ctx)
        target, activation = self._targets(metric_type)
        return MetricSpec(
            name=self.trigger_type,
            target=target,
            activation_target=activation,
            metric_type=metric_type,
            source=MetricSource.RESOURCE,
        )


@register
class CpuMetadata(_ResourceMetadata):
    """KEDA's cpu trigger: average CPU of the workload's pods (or of one container)."""

    trigger_type = "cpu"


@register
class MemoryMetadata(_ResourceMetadata):
    """KEDA's memory trigger: average memory of the workload's pods (or of one container)."""

    trigger_type = "memory"


@register_reader("cpu", "memory")
class ResourceScaler:
    """Average use of the target's pods through the metrics API, as the HPA computes it.

    Utilization: total usage over total requests, in percent. AverageValue: total usage
    over the number of pods, in cores or bytes. No pods, or a pod without a request for a
    Utilization target, is an error: never a zero.
    """

    def __init__(self, context: ScalerContext) -> None:
        assert isinstance(context.metadata, _ResourceMetadata)
        self.spec = context.spec
        self._context = context
        self._resource = context.trigger_type
        self._container = context.metadata.container_name or None

    async def read(self) -> float:
        source = self._context.resource_metrics
        if source is None:
            raise SourceUnreachable(f"no metrics API configured for {self._resource} triggers")
        pods = await source.pod_usage(
            self._context.namespace, self._context.selector, self._resource, self._container
        )
        if not pods:
            raise BadMetric(f"no ready pods report {self._resource} usage")
        total = sum(p.usage for p in pods)
        if self.spec.metric_type is not MetricType.UTILIZATION:
            return total / len(pods)
        requests = [p.request for p in pods]
        if any(r is None or r <= 0 for r in requests):
            raise BadMetric(
                f"Utilization needs a {self._resource} request on every pod"
                + (f" (container {self._container})" if self._container else "")
            )
        return 100.0 * total / sum(r for r in requests if r is not None)

    async def close(self) -> None:
        return None
