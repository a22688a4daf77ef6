"""A PromQL query's value (KEDA `prometheus` trigger). Metadata only; querying comes later."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator

from scalers.base import (
    Boolean,
    MetricSpec,
    MetricType,
    NonEmptyString,
    Number,
    PositiveInteger,
    PositiveNumber,
    TriggerContext,
    TriggerMetadata,
)
from scalers.registry import register


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


@register
class PrometheusMetadata(TriggerMetadata):
    """KEDA's prometheus scaler metadata, with its names and defaults."""

    trigger_type = "prometheus"

    server_address: NonEmptyString = Field(alias="serverAddress")
    query: NonEmptyString
    # KEDA parses any float; a target <= 0 is refused later by the HPA, so refuse it here
    threshold: PositiveNumber
    # PromQL values can be negative, and KEDA accepts a negative activation threshold
    activation_threshold: Number = Field(default=0.0, alias="activationThreshold")
    namespace: str = ""
    custom_headers: KeyValuePairs = Field(default_factory=dict, alias="customHeaders")
    query_parameters: KeyValuePairs = Field(default_factory=dict, alias="queryParameters")
    ignore_null_values: Boolean = Field(default=True, alias="ignoreNullValues")
    unsafe_ssl: Boolean = Field(default=False, alias="unsafeSsl")
    # milliseconds, overriding the global HTTP timeout for this trigger only
    timeout: PositiveInteger | None = None
    auth_modes: str = Field(default="", alias="authModes")
    aws_region: str = Field(default="", alias="awsRegion")
    identity_owner: str = Field(default="", alias="identityOwner")

    @field_validator("server_address")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        return MetricSpec(
            name=self.metric_name(ctx),
            target=self.threshold,
            activation_target=self.activation_threshold,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )
