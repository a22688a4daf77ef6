"""`spec.predictive` of a ScaledObject, and the `ebbflow.io/predictive` annotation.

An ebbflow extension (KEDA has no such field): scale on a forecast of demand as well as on
the triggers. On a `keda.sh` manifest, the annotation `ebbflow.io/predictive: "true"` turns
it on with the defaults below, so the manifest still validates under KEDA unchanged.

    predictive:
      enabled: true
      model: auto              # or seasonal_naive, holt_winters, stl, mstl, sarimax_fourier
      lookback: 7d             # history each fit sees
      leadTime: 90s            # default: measured pod start-up + node launch + pollingInterval
      quantile: 0.9            # the forecast quantile capacity is planned for
      refitInterval: 1h        # a fit older than 2 x this is stale: reactive only
      step: 5m                 # resolution of the history (a Prometheus range query step)
      trigger: requests        # whose metric is forecast (default: the first trigger)
      query: sum(rate(...))    # PromQL of that metric's history (default: the trigger's query)
      serverAddress: http://prometheus:9090   # default: the trigger's serverAddress
      targetPerReplica: 8      # demand one replica serves (default: the trigger's target)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from scaler.durations import parse_duration

PREDICTIVE_ANNOTATION = "ebbflow.io/predictive"

ModelName = Literal["auto", "seasonal_naive", "holt_winters", "stl", "mstl", "sarimax_fourier"]


class PredictiveSpec(BaseModel):
    """The predictive policy of one ScaledObject (see the module doc); durations in seconds."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    enabled: bool = True
    model: ModelName = "auto"
    lookback: float = Field(default=7 * 86400.0, gt=0)
    lead_time: float | None = Field(default=None, ge=0)
    quantile: float = 0.9
    refit_interval: float = Field(default=3600.0, gt=0)
    step: float = Field(default=300.0, gt=0)
    trigger: str | None = None
    query: str | None = Field(default=None, min_length=1)
    server_address: str | None = Field(default=None, min_length=1)
    target_per_replica: float | None = Field(default=None, gt=0)

    @field_validator("lookback", "lead_time", "refit_interval", "step", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("quantile")
    @classmethod
    def _quantile(cls, value: float) -> float:
        # the upper bound of a central interval: a quantile at or below the median is not one
        if not 0.5 < value < 1:
            raise ValueError("must be between 0.5 and 1 (exclusive)")
        return value

    @property
    def max_age(self) -> float:
        """A fit older than this is stale: two refit intervals (one missed refit is tolerated)."""
        return 2 * self.refit_interval


def annotation_flag(annotations: dict[str, str]) -> bool | None:
    """The `ebbflow.io/predictive` annotation as a flag; None when absent. Raises ValueError
    for a value other than true/false."""
    value = annotations.get(PREDICTIVE_ANNOTATION)
    if value is None:
        return None
    flag = value.strip().lower()
    if flag not in {"true", "false"}:
        raise ValueError("must be true or false")
    return flag == "true"
