"""RabbitMQ queue backlog or publish rate (KEDA `rabbitmq` trigger). Metadata only.

KEDA's rules for the target: give `mode` and `value` together; the deprecated `queueLength`
alone means QueueLength mode with that value; neither means QueueLength 20. Every mode but
QueueLength, and `useRegex`, `excludeUnacknowledged` and `timeout`, need the management API
(protocol http).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote_plus, urlsplit

from pydantic import Field, ModelWrapValidatorHandler, model_validator

from scalers.base import (
    Boolean,
    MetricSpec,
    MetricType,
    NonEmptyString,
    NonNegativeNumber,
    PositiveInteger,
    PositiveNumber,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.registry import register

Mode = Literal[
    "QueueLength",
    "MessageRate",
    "DeliverGetRate",
    "PublishedToDeliveredRatio",
    "ExpectedQueueConsumptionTime",
]
DEFAULT_QUEUE_LENGTH = 20.0
_SCHEMES: dict[str, Literal["amqp", "http"]] = {
    "amqp": "amqp",
    "amqps": "amqp",
    "http": "http",
    "https": "http",
}


@register
class RabbitMQMetadata(TriggerMetadata):
    """KEDA's rabbitmq scaler metadata, with its names and defaults."""

    trigger_type = "rabbitmq"

    # the connection string may instead come from an env var or a TriggerAuthentication
    host: str = ""
    host_from_env: str = Field(default="", alias="hostFromEnv")
    protocol: Literal["auto", "amqp", "http"] = "auto"
    queue_name: NonEmptyString = Field(alias="queueName")
    mode: Mode | None = None
    value: PositiveNumber | None = None
    activation_value: NonNegativeNumber = Field(default=0.0, alias="activationValue")
    queue_length: PositiveNumber | None = Field(default=None, alias="queueLength")
    vhost_name: str = Field(default="", alias="vhostName")
    use_regex: Boolean = Field(default=False, alias="useRegex")
    exclude_unacknowledged: Boolean = Field(default=False, alias="excludeUnacknowledged")
    page_size: PositiveInteger = Field(default=100, alias="pageSize")
    operation: Literal["sum", "max", "avg"] = "sum"
    # milliseconds, overriding the global HTTP timeout; only the http protocol has one
    timeout: PositiveInteger | None = None
    unsafe_ssl: Boolean = Field(default=False, alias="unsafeSsl")
    username_from_env: str = Field(default="", alias="usernameFromEnv")
    password_from_env: str = Field(default="", alias="passwordFromEnv")

    @model_validator(mode="wrap")
    @classmethod
    def _keda_rules(
        cls, data: Any, handler: ModelWrapValidatorHandler[RabbitMQMetadata]
    ) -> RabbitMQMetadata:
        model = handler(data)
        # errors quote what the manifest says ("5"), not the parsed value (5.0)
        raw = dict(data) if isinstance(data, Mapping) else {}
        if model.host and model.protocol == "auto" and urlsplit(model.host).scheme not in _SCHEMES:
            # not echoed: the URL may carry a password. KEDA 1 read `host` as an env var name
            message = "must be an amqp(s):// or http(s):// URL; name an env var with hostFromEnv"
            raise field_error(("host",), message, None)
        if model.queue_length is not None and (model.mode is not None or model.value is not None):
            message = "is deprecated and cannot be combined with mode and value"
            raise field_error(("queueLength",), message, raw.get("queueLength"))
        if model.queue_length is None and (model.mode is None) != (model.value is None):
            missing = "mode" if model.mode is None else "value"
            other = "value" if missing == "mode" else "mode"
            raise field_error((missing,), f"required when {other} is set", None)
        model._http_only_features(raw)
        return model

    def _http_only_features(self, raw: dict[str, Any]) -> None:
        protocol = self.resolved_protocol
        if protocol is None or protocol == "http":
            return  # unknown until the host is resolved from the environment or auth
        if self.target_mode != "QueueLength":
            raise field_error(("mode",), f"{self.target_mode} needs protocol http", self.mode)
        for alias, used in (
            ("useRegex", self.use_regex),
            ("excludeUnacknowledged", self.exclude_unacknowledged),
            ("timeout", self.timeout is not None),
        ):
            if used:
                raise field_error((alias,), "needs protocol http", raw.get(alias))

    @property
    def resolved_protocol(self) -> Literal["amqp", "http"] | None:
        """amqp or http; with `auto`, read from the host's scheme (None if host is not here)."""
        if self.protocol != "auto":
            return self.protocol
        return _SCHEMES[urlsplit(self.host).scheme] if self.host else None

    @property
    def target_mode(self) -> Mode:
        return self.mode or "QueueLength"

    @property
    def target_value(self) -> float:
        """`value`, else the deprecated `queueLength`, else KEDA's default of 20."""
        if self.value is not None:
            return self.value
        return self.queue_length if self.queue_length is not None else DEFAULT_QUEUE_LENGTH

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        return MetricSpec(
            name=self.metric_name(ctx, quote_plus(self.queue_name)),
            target=self.target_value,
            activation_target=self.activation_value,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )
