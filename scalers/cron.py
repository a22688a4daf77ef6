"""A daily (or any cron-shaped) window of fixed capacity (KEDA `cron` trigger).

Inside the window `[start, end)` the trigger asks for `desiredReplicas`; outside it asks for
nothing and is inactive. KEDA decides "inside" by looking ahead: the window is open when the
next `end` comes no later than the next `start`. `value_at` does the same, purely.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from scalers.base import (
    MetricSpec,
    MetricType,
    NonEmptyString,
    PositiveInteger,
    TriggerContext,
    TriggerMetadata,
    field_error,
)
from scalers.context import ScalerContext
from scalers.registry import register, register_reader

_CRON_MESSAGE = "must be a 5-field cron expression (minute hour day-of-month month day-of-week)"


def _metric_part(expression: str) -> str:
    # KEDA's parseCronTimeFormat: drop spaces, `*` -> x, `/` -> Sl, `?` -> Qm
    for old, new in ((" ", ""), ("*", "x"), ("/", "Sl"), ("?", "Qm")):
        expression = expression.replace(old, new)
    return expression


@register
class CronMetadata(TriggerMetadata):
    """KEDA's cron scaler metadata, with its names; every field is required."""

    trigger_type = "cron"

    timezone: NonEmptyString
    start: NonEmptyString
    end: NonEmptyString
    # KEDA takes any integer, but 0 inside the window would read as "inactive" here
    desired_replicas: PositiveInteger = Field(alias="desiredReplicas")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone") from None
        return value

    @field_validator("start", "end")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        # KEDA's parser takes exactly minute..day-of-week: no seconds, no @daily descriptors
        fields = value.split()
        if len(fields) != 5 or not croniter.is_valid(" ".join(fields)):
            raise ValueError(_CRON_MESSAGE)
        return " ".join(fields)

    @model_validator(mode="after")
    def _distinct_start_end(self) -> CronMetadata:
        if self.start == self.end:
            raise field_error(("end",), "must differ from start", self.end)
        return self

    def value_at(self, when: datetime) -> float:
        """desiredReplicas inside the window `[start, end)`, 0 outside; `when` must be aware."""
        if when.tzinfo is None:
            raise ValueError("when must be timezone-aware")
        local = when.astimezone(ZoneInfo(self.timezone))
        next_start = croniter(self.start, local).get_next(datetime)
        next_end = croniter(self.end, local).get_next(datetime)
        # KEDA reports 1 (and inactive) outside; 0 gives the same replicas, as the HPA floor is 1
        return float(self.desired_replicas) if next_end <= next_start else 0.0

    def metric_spec(self, ctx: TriggerContext) -> MetricSpec:
        start, end = _metric_part(self.start), _metric_part(self.end)
        return MetricSpec(
            name=self.metric_name(ctx, self.timezone, start, end),
            # the metric is a replica count, so one replica per unit of it
            target=1.0,
            activation_target=0.0,
            metric_type=ctx.metric_type or MetricType.AVERAGE_VALUE,
        )


@register_reader("cron")
class CronScaler:
    """Reads the schedule at the clock's now: desiredReplicas inside the window, else 0."""

    def __init__(self, context: ScalerContext) -> None:
        assert isinstance(context.metadata, CronMetadata)
        self.spec = context.spec
        self._metadata = context.metadata
        self._now = context.now

    async def read(self) -> float:
        return self._metadata.value_at(datetime.fromtimestamp(self._now(), UTC))

    async def close(self) -> None:
        return None
