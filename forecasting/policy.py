"""The predictive policy: a reactive decision and a forecast in, a replica count out. Pure.

Desired = max(reactive, the replicas the forecast's quantile needs at now + lead time), within
[min, max]. The forecast can only raise the count: scale-in is never driven by the forecast
alone, and a fit that failed, is stale, or does not reach now + lead time is not used at all
(the reactive decision stands, and the reason says why).

Also the pure half of "nodes ahead of pods": `placeholder_pods`, the low-priority pods that
hold node capacity for the pods the forecast expects (the over-provisioning pattern).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why the policy returned what it did."""

    FORECAST = "forecast"  # the forecast asked for more than the reactive decision
    REACTIVE = "reactive"  # a usable forecast asked for no more than the reactive decision
    STALE = "stale-forecast"  # the last fit is older than the staleness limit, or too short
    FAILED = "failed-fit"  # the last fit attempt failed
    NONE = "no-forecast"  # no fit yet (or the object is paused)

    @property
    def uses_forecast(self) -> bool:
        return self in (Reason.FORECAST, Reason.REACTIVE)


@dataclass(frozen=True)
class ForecastSnapshot:
    """The `quantile` quantile of a forecast: `values[k]` is the demand expected over
    [made_at + k * step_seconds, made_at + (k + 1) * step_seconds), where `made_at` is the end
    of the history the fit saw (the time of the fit)."""

    made_at: float
    step_seconds: float
    values: tuple[float, ...]
    quantile: float
    model: str = ""
    periods: tuple[int, ...] = ()
    # the point forecast (the median where the model fits on a log scale) of the same steps,
    # for node capacity (see `placeholder_pods`); empty: `values` stand in
    median: tuple[float, ...] = ()

    def step_begins(self, at: float) -> float:
        """When the forecast step holding `at` begins."""
        return self.made_at + math.floor((at - self.made_at) / self.step_seconds) * (
            self.step_seconds
        )

    def value_at(self, at: float, central: bool = False) -> float | None:
        """The forecast demand at `at` (its quantile; `central`: its median); None outside the
        forecast (before its start, or after its last step)."""
        if at < self.made_at:
            return None
        values = self.central if central else self.values
        index = math.floor((at - self.made_at) / self.step_seconds)
        return values[index] if index < len(values) else None

    @property
    def central(self) -> tuple[float, ...]:
        return self.median or self.values


@dataclass(frozen=True)
class FitState:
    """What the predictor knows: the last good forecast, and whether the last attempt failed."""

    snapshot: ForecastSnapshot | None = None
    error: str | None = None  # the last attempt's error; None when it succeeded

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class PredictiveInputs:
    reactive: int  # the reactive decision (engine's desired replicas)
    current: int
    fit: FitState
    now: float
    lead_time: float  # seconds: pods (and nodes) must be asked for this long before they serve
    max_age: float  # seconds: a fit older than this is stale (e.g. 2 x refitInterval)
    target_per_replica: float  # demand one replica serves: replicas = ceil(value / target)
    min_replicas: int
    max_replicas: int
    # the reactive decision reads the forecast metric live (the trigger's own query): then a
    # forecast step that has begun is left to it, and the forecast only acts ahead of a step
    reactive_reads_metric: bool = True


@dataclass(frozen=True)
class PredictiveDecision:
    desired: int
    reason: Reason
    forecast_replicas: int | None  # what the forecast asked for; None when not used
    message: str


def replicas_for(value: float, target_per_replica: float) -> int:
    """Replicas that serve `value` at `target_per_replica` each (0 for no demand)."""
    if not target_per_replica > 0:
        raise ValueError(f"target_per_replica must be > 0, got {target_per_replica}")
    # as the HPA: round off float noise first, so 1.1 / 0.1 is 11, not 12
    return max(0, math.ceil(round(value / target_per_replica, 9)))


def _usable(fit: FitState, now: float, max_age: float) -> ForecastSnapshot | None:
    """The fit's forecast when it may be acted on at `now` (not failed, not stale)."""
    snapshot = fit.snapshot
    if fit.failed or snapshot is None or now - snapshot.made_at > max_age:
        return None
    return snapshot


def forecast_replicas(
    fit: FitState,
    at: float,
    now: float,
    max_age: float,
    target_per_replica: float,
    ahead_only: bool = False,
    central: bool = False,
) -> int | None:
    """Replicas the forecast needs at `at`, when the fit is usable at `now`; else None.
    `ahead_only`: also None when the step holding `at` has begun by `now` (the reactive
    decision observes that step, as `predictive_replicas` leaves it to it). `central`: from
    the median rather than the quantile."""
    snapshot = _usable(fit, now, max_age)
    if snapshot is None:
        return None
    if ahead_only and snapshot.step_begins(at) <= now:
        return None
    value = snapshot.value_at(at, central)
    return None if value is None else replicas_for(value, target_per_replica)


def predictive_replicas(inputs: PredictiveInputs) -> PredictiveDecision:
    """The replica count of the predictive policy (see the module doc)."""
    i = inputs
    snapshot = i.fit.snapshot
    if i.fit.failed:
        return PredictiveDecision(
            i.reactive, Reason.FAILED, None, f"last fit failed: {i.fit.error}"
        )
    if snapshot is None:
        return PredictiveDecision(i.reactive, Reason.NONE, None, "no forecast yet")
    age = i.now - snapshot.made_at
    if age > i.max_age:
        return PredictiveDecision(
            i.reactive,
            Reason.STALE,
            None,
            f"forecast is {age:.0f}s old (limit {i.max_age:.0f}s)",
        )
    at = i.now + i.lead_time
    if at < snapshot.made_at:
        # the step at now + lead time is the one last observed: the reactive decision has it
        return PredictiveDecision(
            i.reactive, Reason.REACTIVE, None, "now + lead time is in the last observed step"
        )
    if i.reactive_reads_metric and snapshot.step_begins(at) <= i.now and i.reactive > 0:
        # the step at now + lead time has begun: the reactive decision observes it. Not at a
        # reactive zero: below its activation threshold (or cooled down) it serves nothing of
        # what it observes, and the forecast's pods still hold
        return PredictiveDecision(
            i.reactive, Reason.REACTIVE, None, "the step at now + lead time has begun"
        )
    wanted = forecast_replicas(i.fit, at, i.now, i.max_age, i.target_per_replica)
    if wanted is None:
        return PredictiveDecision(
            i.reactive, Reason.STALE, None, f"forecast does not reach now + {i.lead_time:.0f}s"
        )
    # waking from zero (or idle) on a forecast goes to at least minReplicaCount, as the engine
    # does on an activation; a forecast at or below the reactive count changes nothing
    bounded = min(max(wanted, i.min_replicas), i.max_replicas)
    if wanted > i.reactive and bounded > i.reactive:
        message = (
            f"forecast q{snapshot.quantile:g} ({snapshot.model}) at +{i.lead_time:.0f}s "
            f"needs {wanted}"
        )
        return PredictiveDecision(bounded, Reason.FORECAST, wanted, message)
    return PredictiveDecision(
        i.reactive, Reason.REACTIVE, wanted, f"forecast needs {wanted}, reactive {i.reactive}"
    )


def peak_ahead_replicas(
    fit: FitState, now: float, horizon: float, max_age: float, target_per_replica: float
) -> int | None:
    """The most replicas the forecast's median needs in the steps that begin within (now,
    now + horizon]; None without a usable fit or without such a step. What consolidation
    keeps room for: a node removed now that the forecast needs back within the horizon is
    evicted and relaunched for nothing."""
    snapshot = _usable(fit, now, max_age)
    if snapshot is None:
        return None
    central = snapshot.central
    first = max(math.floor((now - snapshot.made_at) / snapshot.step_seconds) + 1, 0)
    last = math.floor((now + horizon - snapshot.made_at) / snapshot.step_seconds)
    values = central[first : min(last, len(central) - 1) + 1]
    if not values:
        return None
    return replicas_for(max(values), target_per_replica)


def placeholder_pods(forecast_pods: int | None, current_pods: int) -> int:
    """Low-priority placeholder pods that hold node capacity for the pods the forecast expects
    at now + node lead time and that do not exist yet: forecast - current, never below zero.
    The caller reads the forecast's median there (pods scale to its quantile where there is
    room; a node launched for the quantile's margin is billed whole, for as long as budgets
    keep it), and nothing once that step has begun where the reactive decision reads the
    forecast metric (the pods then follow the observed demand). Zero without a usable
    forecast; recomputed on each forecast, so placeholders are released as soon as the
    forecast drops (or the real pods arrive and take their place)."""
    if forecast_pods is None:
        return 0
    return max(forecast_pods - current_pods, 0)
