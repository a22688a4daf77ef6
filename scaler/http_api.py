"""HTTPScaledObject: the KEDA HTTP add-on's CRD (`http.keda.sh/v1alpha1`), field for field.

Accepted unchanged under `http.keda.sh` and under our group `ebbflow.io`, with the add-on's
defaults: `replicas` 0..100, `scaledownPeriod` 300 s, `scalingMetric` concurrency 100 when
absent (the add-on's rule), `requestRate` window 1m and granularity 1s. `to_scaled_object`
turns one into the ScaledObject with one `http` trigger that the decision engine drives.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from provisioner.durations import go_duration_seconds
from scaler.api import EBBFLOW_GROUP, KubeModel, ObjectMeta, ScaledObject
from scalers.base import field_error


def _duration(value: Any) -> timedelta:
    # metav1.Duration: Go's syntax (`500ms`, `1m`, `1h30m`); here it must be positive
    if isinstance(value, timedelta):
        return value
    message = "must be a duration such as 500ms, 30s or 1m"
    try:
        seconds = go_duration_seconds(value) if isinstance(value, str) else None
    except ValueError:
        raise ValueError(message) from None
    if seconds is None or seconds <= 0:
        raise ValueError(message)
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(_duration)]

HTTP_ADDON_GROUP = "http.keda.sh"
HTTP_API_VERSIONS = (f"{HTTP_ADDON_GROUP}/v1alpha1", f"{EBBFLOW_GROUP}/v1alpha1")

# ScaledObjects derived from an HTTPScaledObject poll this often; activation is pushed
# by the interceptor at once, so the interval only paces scaling between replica counts.
HTTP_POLLING_INTERVAL = 5


class HTTPScaleTargetRef(KubeModel):
    name: str = Field(min_length=1)
    api_version: str = "apps/v1"
    kind: str = "Deployment"
    service: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    port_name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _port_or_name(self) -> HTTPScaleTargetRef:
        # the add-on's CEL rule: has(self.portName) != has(self.port)
        if (self.port is None) == (self.port_name is None):
            raise field_error(("port",), "must define either the 'portName' or the 'port'", None)
        return self


class ColdStartTimeoutFailoverRef(KubeModel):
    service: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    port_name: str | None = Field(default=None, min_length=1)
    timeout_seconds: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _port_or_name(self) -> ColdStartTimeoutFailoverRef:
        if (self.port is None) == (self.port_name is None):
            raise field_error(("port",), "must define either the 'portName' or the 'port'", None)
        return self


class Replicas(KubeModel):
    min: int = Field(default=0, ge=0)
    max: int = Field(default=100, ge=1)


class RequestRateMetric(KubeModel):
    target_value: int = Field(default=100, gt=0)
    window: Duration = timedelta(minutes=1)
    granularity: Duration = timedelta(seconds=1)

    @model_validator(mode="after")
    def _granularity_fits(self) -> RequestRateMetric:
        if self.granularity > self.window:
            message = f"must not be longer than window ({self.window.total_seconds():g}s)"
            raise field_error(("granularity",), message, None)
        return self


class ConcurrencyMetric(KubeModel):
    target_value: int = Field(default=100, gt=0)


class ScalingMetric(KubeModel):
    concurrency: ConcurrencyMetric | None = None
    request_rate: RequestRateMetric | None = None

    @model_validator(mode="after")
    def _exclusive(self) -> ScalingMetric:
        if self.concurrency is not None and self.request_rate is not None:
            raise field_error(
                ("requestRate",), "concurrency and requestRate are mutually exclusive", None
            )
        return self


class Timeouts(KubeModel):
    condition_wait: Duration | None = None
    response_header: Duration | None = None


class HeaderMatch(KubeModel):
    name: str = Field(min_length=1)
    value: str | None = None


class PlaceholderConfig(KubeModel):
    """Accepted for compatibility; ebbflow holds requests instead of serving a placeholder."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )

    enabled: bool = False


class HTTPScaledObjectSpec(KubeModel):
    hosts: list[str] = Field(default_factory=list)
    path_prefixes: list[str] = Field(default_factory=list)
    headers: list[HeaderMatch] = Field(default_factory=list)
    scale_target_ref: HTTPScaleTargetRef
    cold_start_timeout_failover_ref: ColdStartTimeoutFailoverRef | None = None
    replicas: Replicas = Field(default_factory=Replicas)
    target_pending_requests: int | None = Field(default=None, gt=0)  # deprecated by the add-on
    scaledown_period: int = Field(default=300, ge=0)
    initial_cooldown_period: int = Field(default=0, ge=0)
    scaling_metric: ScalingMetric | None = None
    timeouts: Timeouts | None = None
    placeholder_config: PlaceholderConfig | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPScaledObjectSpec:
        if self.replicas.min > self.replicas.max:
            raise field_error(
                ("replicas", "min"),
                f"must not exceed replicas.max ({self.replicas.max})",
                self.replicas.min,
            )
        for i, prefix in enumerate(self.path_prefixes):
            if not prefix.startswith("/"):
                raise field_error(("pathPrefixes", i), "must start with /", prefix)
        return self

    @property
    def metric(self) -> Literal["concurrency", "requestRate"]:
        metric = self.scaling_metric
        return "requestRate" if metric is not None and metric.request_rate else "concurrency"

    @property
    def target_value(self) -> int:
        metric = self.scaling_metric
        if metric is not None and metric.request_rate is not None:
            return metric.request_rate.target_value
        if metric is not None and metric.concurrency is not None:
            return metric.concurrency.target_value
        return self.target_pending_requests or 100


class HTTPScaledObject(KubeModel):
    api_version: Literal["http.keda.sh/v1alpha1", "ebbflow.io/v1alpha1"]
    kind: Literal["HTTPScaledObject"]
    metadata: ObjectMeta
    spec: HTTPScaledObjectSpec
    status: dict[str, Any] | None = None


def _go_duration(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


def http_trigger_metadata(hso: HTTPScaledObject) -> dict[str, str]:
    """The `http` trigger metadata (scalers/http.py) equivalent to `hso`'s scaling metric."""
    spec = hso.spec
    metadata = {"scalingMetric": spec.metric, "targetValue": str(spec.target_value)}
    rate = spec.scaling_metric.request_rate if spec.scaling_metric else None
    if rate is not None:
        metadata["window"] = _go_duration(rate.window)
        metadata["granularity"] = _go_duration(rate.granularity)
    if spec.hosts:
        metadata["hosts"] = ",".join(spec.hosts)
    if spec.path_prefixes:
        metadata["pathPrefixes"] = ",".join(spec.path_prefixes)
    return metadata


def to_scaled_object(hso: HTTPScaledObject) -> ScaledObject:
    """The ScaledObject the add-on would create for `hso`: one http trigger, same bounds."""
    spec = hso.spec
    target = spec.scale_target_ref
    return ScaledObject.model_validate(
        {
            "apiVersion": f"{EBBFLOW_GROUP}/v1alpha1",
            "kind": "ScaledObject",
            "metadata": hso.metadata.model_dump(by_alias=True, exclude_none=True),
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": target.api_version,
                    "kind": target.kind,
                    "name": target.name,
                },
                "pollingInterval": HTTP_POLLING_INTERVAL,
                "cooldownPeriod": spec.scaledown_period,
                "initialCooldownPeriod": spec.initial_cooldown_period,
                "minReplicaCount": spec.replicas.min,
                "maxReplicaCount": spec.replicas.max,
                "triggers": [
                    {"type": "http", "name": "http", "metadata": http_trigger_metadata(hso)}
                ],
            },
        }
    )
