"""The Scaler protocol, metric specs, and typed parsing of KEDA's string metadata.

KEDA trigger metadata is a map of strings (`lagThreshold: "10"`). Each trigger type
declares a pydantic model with KEDA's field names and defaults; the annotated types
below parse those strings the way KEDA does and fail with messages that read well
after a field path (`...lagThreshold: must be a positive number, got "ten"`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


class MetricType(StrEnum):
    """How the HPA compares a metric with its target (autoscaling/v2 MetricTargetType)."""

    AVERAGE_VALUE = "AverageValue"
    VALUE = "Value"
    UTILIZATION = "Utilization"


class MetricSource(StrEnum):
    """External metrics are totals over the workload; Resource metrics are per-pod averages."""

    EXTERNAL = "External"
    RESOURCE = "Resource"


@dataclass(frozen=True)
class MetricSpec:
    """What one trigger asks of the HPA arithmetic: its metric, target and activation."""

    name: str
    target: float
    activation_target: float = 0.0
    metric_type: MetricType = MetricType.AVERAGE_VALUE
    source: MetricSource = MetricSource.EXTERNAL


@dataclass(frozen=True)
class TriggerContext:
    """The parts of a trigger outside its metadata that shape its metric spec."""

    index: int
    name: str | None = None
    metric_type: MetricType | None = None


class Scaler(Protocol):
    """A live metric source for one trigger.

    `read` returns the metric's current value or raises (a ScalerError, or whatever the
    client raised): a failure is never reported as 0. The engine decides activity by
    comparing the value with `spec.activation_target`; a reader whose activity figure
    differs from its metric (kafka's persistent lag) sets an `activity_value` attribute
    on each read, which the controller passes on instead.
    """

    spec: MetricSpec

    async def read(self) -> float: ...

    async def close(self) -> None:
        """Release what this scaler holds alone (pooled clients belong to the Pools)."""
        ...


@dataclass(frozen=True)
class PodUsage:
    """One pod's use of a resource (cores or bytes), and its request when it has one."""

    usage: float
    request: float | None = None


class ResourceMetrics(Protocol):
    """The metrics API (metrics.k8s.io) as the cpu/memory triggers need it."""

    async def pod_usage(
        self, namespace: str, selector: str, resource: str, container: str | None
    ) -> list[PodUsage]:
        """Usage of `resource` ("cpu" or "memory") by each ready pod matching `selector`."""
        ...


class ScalerError(Exception):
    """A metric source failed. Messages name the source, never a credential."""


class SourceUnreachable(ScalerError):
    """Could not connect, or timed out: worth another try next poll."""


class BadMetric(ScalerError):
    """The source answered, but not with a usable number (empty result, NaN, wrong shape)."""


class TriggerMetadata(BaseModel):
    """Base of every trigger type's metadata model.

    Unknown keys are kept, not rejected: KEDA ignores metadata it does not know, and
    manifests written for KEDA must validate unchanged. `unknown_keys` lists them so
    `ebbflow validate` can warn.
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    trigger_type: ClassVar[str] = ""

    def unknown_keys(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        raise NotImplementedError

    @classmethod
    def metric_name(cls, ctx: TriggerContext, *parts: str) -> str:
        """KEDA's naming: `s{index}-{type}-{parts}`, sanitised for the external metrics API."""
        tail = "-".join(p for p in parts if p)
        raw = f"s{ctx.index}-{cls.trigger_type}" + (f"-{tail}" if tail else "")
        cleaned = "".join(c if c.isalnum() or c in "-." else "-" for c in raw.lower())
        return cleaned.strip("-")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    else:
        raise ValueError("must be a number")
    if not math.isfinite(result):
        raise ValueError("must be a finite number")
    return result


def _positive_number(value: Any) -> float:
    try:
        result = _number(value)
    except ValueError:
        raise ValueError("must be a positive number") from None
    if result <= 0:
        raise ValueError("must be a positive number")
    return result


def _non_negative_number(value: Any) -> float:
    try:
        result = _number(value)
    except ValueError:
        raise ValueError("must be a number >= 0") from None
    if result < 0:
        raise ValueError("must be a number >= 0")
    return result


def _integer(value: Any) -> int:
    try:
        result = _number(value)
    except ValueError:
        raise ValueError("must be an integer") from None
    if result != int(result):
        raise ValueError("must be an integer")
    return int(result)


def _positive_integer(value: Any) -> int:
    try:
        result = _integer(value)
    except ValueError:
        raise ValueError("must be a positive integer") from None
    if result <= 0:
        raise ValueError("must be a positive integer")
    return result


def _non_negative_integer(value: Any) -> int:
    try:
        result = _integer(value)
    except ValueError:
        raise ValueError("must be an integer >= 0") from None
    if result < 0:
        raise ValueError("must be an integer >= 0")
    return result


# strconv.ParseBool, which KEDA uses for boolean metadata
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.strip() in _TRUE:
            return True
        if value.strip() in _FALSE:
            return False
    raise ValueError("must be true or false")


def _non_empty_string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string")
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


Number = Annotated[float, BeforeValidator(_number)]
PositiveNumber = Annotated[float, BeforeValidator(_positive_number)]
NonNegativeNumber = Annotated[float, BeforeValidator(_non_negative_number)]
Integer = Annotated[int, BeforeValidator(_integer)]
PositiveInteger = Annotated[int, BeforeValidator(_positive_integer)]
NonNegativeInteger = Annotated[int, BeforeValidator(_non_negative_integer)]
Boolean = Annotated[bool, BeforeValidator(_boolean)]
NonEmptyString = Annotated[str, BeforeValidator(_non_empty_string)]


def field_error(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A ValidationError at `loc` below the model being validated.

    Raised inside a validator, pydantic nests it under the current location, so
    cross-field rules report the exact field (`spec.minReplicaCount`), not the object.
    """
    return ValidationError.from_exception_data(
        "ebbflow",
        [
            InitErrorDetails(
                type=PydanticCustomError("ebbflow_rule", "{message}", {"message": message}),
                loc=loc,
                input=value,
            )
        ],
    )
