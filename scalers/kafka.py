"""Kafka consumer-group lag (KEDA `kafka` trigger). Metadata only; lag reading comes later."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scalers.base import (
    Boolean,
    MetricSpec,
    MetricType,
    NonEmptyString,
    NonNegativeNumber,
    PositiveNumber,
    TriggerContext,
    TriggerMetadata,
)
from scalers.registry import register


@register
class KafkaMetadata(TriggerMetadata):
    """KEDA's kafka scaler metadata, with its names and defaults."""

    trigger_type = "kafka"

    bootstrap_servers: NonEmptyString = Field(alias="bootstrapServers")
    consumer_group: NonEmptyString = Field(alias="consumerGroup")
    topic: str = ""
    lag_threshold: PositiveNumber = Field(default=10.0, alias="lagThreshold")
    activation_lag_threshold: NonNegativeNumber = Field(default=0.0, alias="activationLagThreshold")
    offset_reset_policy: Literal["latest", "earliest"] = Field(
        default="latest", alias="offsetResetPolicy"
    )
    allow_idle_consumers: Boolean = Field(default=False, alias="allowIdleConsumers")
    exclude_persistent_lag: Boolean = Field(default=False, alias="excludePersistentLag")
    scale_to_zero_on_invalid_offset: Boolean = Field(
        default=False, alias="scaleToZeroOnInvalidOffset"
    )
    limit_to_partitions_with_lag: Boolean = Field(default=False, alias="limitToPartitionsWithLag")
    partition_limitation: str = Field(default="", alias="partitionLimitation")
    ensure_even_distribution_of_partitions: Boolean = Field(
        default=False, alias="ensureEvenDistributionOfPartitions"
    )
    # connection settings, passed through to the client
    version: str = "1.0.0"
    sasl: Literal[
        "none", "plaintext", "scram_sha256", "scram_sha512", "oauthbearer", "gssapi", "aws_msk_iam"
    ] = "none"
    tls: Literal["enable", "disable"] = "disable"
    unsafe_ssl: Boolean = Field(default=False, alias="unsafeSsl")

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        return MetricSpec(
            name=self.metric_name(ctx, self.topic or self.consumer_group),
            target=self.lag_threshold,
            activation_target=self.activation_lag_threshold,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )


@register
class ApacheKafkaMetadata(KafkaMetadata):
    """KEDA's experimental kafka-go scaler (`apache-kafka`): kafka's metadata plus awsRegion."""

    trigger_type = "apache-kafka"

    aws_region: str = Field(default="", alias="awsRegion")
