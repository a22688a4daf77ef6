"""How many new Jobs one poll of a ScaledJob creates, as KEDA computes it. Pure.

The facts come from kedacore/keda: `pkg/scaling/scaledjob/metrics.go` (each trigger's
queueLength and maxValue, `multipleScalersCalculation`) and
`pkg/scaling/executor/scale_jobs.go` (`getScalingDecision`: minReplicaCount first, then the
scaling strategy; `createJobs`: create min(scaleTo, effectiveMaxScale)). Departures, each
marked where it happens:
- ceilings round to 9 decimals first (1.1 / 0.1 is 11 jobs, not 12), as `decision.py` does;
- a failing trigger counts as inactive: KEDA skips it, and every combination ignores
  inactive triggers, so its unknown queue never creates a Job;
- the result never takes the unfinished Jobs above maxReplicaCount. KEDA's `custom`
  strategy and its minReplicaCount offset can overshoot; its docs say they should not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scaler.api import ScaledJobSpec, ScalingStrategy
from scaler.decision import _ceil

Calculation = Literal["max", "min", "avg", "sum"]


@dataclass(frozen=True)
class TriggerQueue:
    """One trigger at this poll: the queue it reports, or the error that hid it."""

    name: str
    queue_length: float | None  # None: the trigger failed this poll
    target: float  # KEDA's targetAverageValue: the queue items one Job consumes
    activation_target: float = 0.0
    error: str | None = None

    @property
    def active(self) -> bool:
        # KEDA scalers: active when the value exceeds the activation threshold
        return self.queue_length is not None and self.queue_length > self.activation_target


@dataclass(frozen=True)
class QueueDemand:
    """The triggers combined: KEDA's isActive, scaleTo (queue length) and maxScale."""

    active: bool
    queue_length: int
    max_scale: int


@dataclass(frozen=True)
class JobDecision:
    """The number of Jobs to create now, with the figures that led to it."""

    new_jobs: int
    demand: QueueDemand
    effective_max_scale: int
    scale_to: int
    reasons: tuple[str, ...]

    @property
    def active(self) -> bool:
        return self.demand.active

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def trigger_max_scale(queue_length: float, target: float, max_replicas: int) -> float:
    """KEDA's maxValue of one trigger: queueLength / targetAverageValue, capped at max."""
    if target == 0:
        return 0.0  # KEDA: a trigger without an AverageValue target asks for nothing
    return min(queue_length / target, float(max_replicas))


def combined_demand(
    triggers: Sequence[TriggerQueue],
    calculation: Calculation,
    min_replicas: int,
    max_replicas: int,
) -> QueueDemand:
    """Combine the active triggers by `multipleScalersCalculation` (KEDA IsScaledJobActive)."""
    measured = [
        (t.queue_length, trigger_max_scale(t.queue_length, t.target, max_replicas))
        for t in triggers
        if t.active and t.queue_length is not None
    ]
    queue, scale, active = 0.0, 0.0, False
    if calculation == "min":
        for length, value in measured:
            # KEDA: a chosen queue of 0 counts as "none chosen yet"
            if queue == 0 or length < queue:
                queue, scale, active = length, value, True
    elif calculation in ("avg", "sum") and measured:
        queue = sum(length for length, _ in measured)
        scale = sum(value for _, value in measured)
        active = True
        if calculation == "avg":
            queue, scale = queue / len(measured), scale / len(measured)
    elif calculation == "max":
        for length, value in measured:
            if length > queue:
                queue, scale, active = length, value, True
    # KEDA: a ScaledJob with minReplicaCount > 0 is always active
    active = active or min_replicas > 0
    return QueueDemand(active, _ceil(queue), _ceil(min(scale, float(max_replicas))))


def running_job_percentage(strategy: ScalingStrategy) -> float | None:
    """customScalingRunningJobPercentage as a number; None when unset or not a finite number."""
    text = strategy.custom_scaling_running_job_percentage
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def effective_max_scale(
    strategy: ScalingStrategy,
    max_scale: int,
    running: int,
    pending: int,
    max_replicas: int,
    scale_to: int,
) -> tuple[int, int]:
    """KEDA's GetEffectiveMaxScale: (the most Jobs to create, the new scaleTo).

    `running` counts unfinished Jobs beyond minReplicaCount; `pending` those not started.
    """
    if strategy.strategy == "custom":
        percentage = running_job_percentage(strategy)
        # KEDA: custom without a parseable percentage falls back to default
        if percentage is not None:
            deduction = strategy.custom_scaling_queue_length_deduction or 0
            # Go's int64() conversion truncates toward zero, as int() does
            return min(max_scale - deduction - int(running * percentage), max_replicas), scale_to
    elif strategy.strategy == "accurate":
        if max_scale + running > max_replicas:
            return max_replicas - running, scale_to
        return max_scale - pending, scale_to
    elif strategy.strategy == "eager":
        # eager fills the free slots while the queue asks, and lifts scaleTo to the max
        return min(max_replicas - running - pending, max_scale), max_replicas
    return max_scale - running, scale_to


def jobs_to_create(
    spec: ScaledJobSpec, triggers: Sequence[TriggerQueue], running: int, pending: int
) -> JobDecision:
    """The number of new Jobs this poll: combine the triggers, apply minReplicaCount and
    the scaling strategy. `running` counts every unfinished Job, `pending` the unstarted."""
    strategy = spec.scaling_strategy or ScalingStrategy()
    low, high = spec.min_replica_count, spec.max_replica_count
    demand = combined_demand(triggers, strategy.multiple_scalers_calculation, low, high)
    reasons = [_demand_text(triggers, demand, strategy.multiple_scalers_calculation)]
    for t in triggers:
        if t.queue_length is None:
            reasons.append(f"{t.name}: failed ({t.error or 'unknown error'}), counted inactive")
    if running < low:
        effective = scale_to = low - running
        reasons.append(f"{running} unfinished < minReplicaCount {low}: create {effective}")
    else:
        effective, scale_to = effective_max_scale(
            strategy, demand.max_scale, running - low, pending, high, demand.queue_length
        )
        reasons.append(
            f"{strategy.strategy}: maxScale {demand.max_scale}, {running} unfinished "
            f"({pending} pending) -> at most {effective}, scaleTo {scale_to}"
        )
    effective = max(effective, 0)
    new_jobs = min(scale_to, effective) if demand.active and effective > 0 else 0
    room = max(high - running, 0)
    if new_jobs > room:
        # departure: maxReplicaCount bounds the unfinished Jobs (KEDA custom can overshoot)
        reasons.append(f"capped at maxReplicaCount {high} - {running} unfinished = {room}")
        new_jobs = room
    if not demand.active:
        reasons.append("inactive: no new Jobs")
    return JobDecision(new_jobs, demand, effective, scale_to, tuple(reasons))


def _demand_text(
    triggers: Sequence[TriggerQueue], demand: QueueDemand, calculation: Calculation
) -> str:
    parts = [
        f"{t.name}: {t.queue_length:g} / {t.target:g}" + ("" if t.active else " (inactive)")
        for t in triggers
        if t.queue_length is not None
    ]
    listing = ", ".join(parts) or "no readings"
    return f"{listing} -> {calculation}: queue {demand.queue_length}, maxScale {demand.max_scale}"
