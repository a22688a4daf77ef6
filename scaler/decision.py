"""The scaling decision: metric values in, a replica count with its reasons out. Pure.

KEDA's activation and cooldown, the HPA v2 arithmetic, `behavior`, fallback and the
paused annotations, in one function with time as an argument. Where ebbflow departs from
KEDA + HPA it says so:
- waking from zero (or idle) goes straight to the count the metrics ask for, not to 1;
- a failing trigger never counts as zero demand: it holds the current count (at least 1)
  until fallback takes over, and the object never cools down to zero while it fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from scaler.api import FallbackBehavior, ScaledObject, SelectPolicy
from scaler.behavior import (
    EffectiveBehavior,
    Rules,
    Sample,
    scale_down_limit,
    scale_up_limit,
    stabilize,
)
from scaler.formula import FormulaError, compiled
from scalers.base import MetricSource, MetricSpec, MetricType


@dataclass(frozen=True)
class TriggerReading:
    """One trigger's metric at this poll: a value, or the error that prevented reading it."""

    name: str
    spec: MetricSpec
    value: float | None = None
    error: str | None = None
    # what activation compares, when a source tells it apart from the metric (KEDA's kafka
    # counts persistent lag toward activity though it leaves it out of the metric)
    activity_value: float | None = None


@dataclass(frozen=True)
class ScalingState:
    """What a decision remembers between polls. Times are seconds on the caller's clock."""

    recommendations: tuple[Sample, ...] = ()
    scale_events: tuple[Sample, ...] = ()
    last_active: float | None = None  # None: never active, cooldown counts as elapsed
    created: float | None = None  # for initialCooldownPeriod; None: long ago
    failures: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerOutcome:
    name: str
    value: float | None
    target: float
    activation_target: float
    active: bool
    replicas: int | None
    error: str | None = None
    fallback: bool = False


@dataclass(frozen=True)
class Decision:
    desired_replicas: int
    active: bool
    reasons: tuple[str, ...]
    triggers: tuple[TriggerOutcome, ...]
    state: ScalingState
    fallback: bool = False
    paused: bool = False

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _ceil(x: float) -> int:
    # HPA computes in milli-units; rounding first keeps 1.1/0.1 from becoming 12
    return math.ceil(round(x, 9))


def _within(ratio: float, tolerance: float) -> bool:
    # the docs' rule |ratio - 1| <= tolerance, without float noise (1.1 - 1 > 0.1 in binary)
    return abs(round(ratio - 1.0, 9)) <= tolerance


def metric_replicas(spec: MetricSpec, value: float, current: int, tolerance: float) -> int:
    """The HPA v2 replica count one metric asks for (tolerance on the usage ratio)."""
    per_pod_total = spec.source is MetricSource.EXTERNAL and (
        spec.metric_type is MetricType.AVERAGE_VALUE
    )
    if per_pod_total:
        # External AverageValue: the metric is a total, the target is per pod
        if current > 0 and _within(value / (spec.target * current), tolerance):
            return current
        return _ceil(value / spec.target)
    # External Value and Resource metrics: the ratio scales the current count
    base = max(current, 1)
    ratio = value / spec.target
    if current > 0 and _within(ratio, tolerance):
        return current
    return _ceil(ratio * base)


def _fallback_replicas(behavior: FallbackBehavior, replicas: int, current: int) -> int:
    if behavior is FallbackBehavior.CURRENT_REPLICAS:
        return current
    if behavior is FallbackBehavior.CURRENT_REPLICAS_IF_HIGHER:
        return max(current, replicas)
    if behavior is FallbackBehavior.CURRENT_REPLICAS_IF_LOWER:
        return min(current, replicas)
    return replicas


@dataclass
class _Evaluation:
    outcomes: list[TriggerOutcome]
    proposal: int
    active: bool
    erroring: list[str]
    in_fallback: bool
    reasons: list[str]


def _failing_proposal(
    so: ScaledObject, name: str, spec: MetricSpec, failures: int, current: int, reasons: list[str]
) -> tuple[int, bool]:
    """Replicas for a trigger that failed `failures` polls in a row (never below 1)."""
    fallback = so.spec.fallback
    # KEDA: fallback once the consecutive failures exceed failureThreshold, for
    # AverageValue metrics (the others hold, as KEDA returns their error to the HPA)
    eligible = spec.metric_type is MetricType.AVERAGE_VALUE and spec.source is MetricSource.EXTERNAL
    if fallback is not None and eligible and failures > fallback.failure_threshold:
        replicas = max(1, _fallback_replicas(fallback.behavior, fallback.replicas, current))
        reasons.append(
            f"{name}: failed {failures} times (> failureThreshold {fallback.failure_threshold}), "
            f"fallback {fallback.behavior.value} -> {replicas}"
        )
        return replicas, True
    replicas = max(current, 1)
    reasons.append(
        f"{name}: failed ({failures} in a row), holding {replicas} (never zero on error)"
    )
    return replicas, False


def _evaluate_triggers(
    so: ScaledObject,
    current: int,
    readings: Sequence[TriggerReading],
    failures: Mapping[str, int],
    tolerance_up: float,
    tolerance_down: float,
) -> _Evaluation:
    reasons: list[str] = []
    outcomes: list[TriggerOutcome] = []
    proposals: list[int] = []
    erroring: list[str] = []
    in_fallback = False
    any_active = False
    has_external = False
    for r in readings:
        external = r.spec.source is MetricSource.EXTERNAL
        has_external |= external
        if r.value is None:
            erroring.append(r.name)
            replicas, fell_back = _failing_proposal(
                so, r.name, r.spec, failures[r.name], current, reasons
            )
            in_fallback |= fell_back
            proposals.append(replicas)
            outcomes.append(
                TriggerOutcome(
                    r.name,
                    None,
                    r.spec.target,
                    r.spec.activation_target,
                    False,
                    replicas,
                    r.error or "unknown error",
                    fell_back,
                )
            )
            continue
        activity = r.value if r.activity_value is None else r.activity_value
        active = external and activity > r.spec.activation_target
        any_active |= active
        ratio = r.value / r.spec.target
        tolerance = tolerance_up if ratio >= 1 else tolerance_down
        replicas = metric_replicas(r.spec, r.value, current, tolerance)
        proposals.append(replicas)
        outcomes.append(
            TriggerOutcome(
                r.name, r.value, r.spec.target, r.spec.activation_target, active, replicas
            )
        )
        state = "active" if active else "inactive"
        reasons.append(
            f"{r.name}: {r.value:g} vs target {r.spec.target:g} "
            f"({r.spec.metric_type.value}) -> {replicas}, {state}"
        )
    # KEDA: cpu/memory triggers never decide activity; with only those, always active
    if not has_external:
        any_active = True
    return _Evaluation(outcomes, max(proposals), any_active, erroring, in_fallback, reasons)


def _evaluate_formula(
    so: ScaledObject,
    current: int,
    readings: Sequence[TriggerReading],
    failures: Mapping[str, int],
    tolerance_up: float,
    tolerance_down: float,
) -> _Evaluation:
    """scalingModifiers: one composite metric replaces the triggers (KEDA semantics)."""
    modifiers = so.spec.scaling_modifiers
    assert modifiers is not None
    base = _evaluate_triggers(so, current, readings, failures, tolerance_up, tolerance_down)
    spec = MetricSpec(
        name="formula",
        target=modifiers.target_value(),
        activation_target=modifiers.activation_target_value(),
        metric_type=modifiers.metric_type,
    )
    reasons = list(base.reasons)
    if base.erroring:
        # the formula needs every value; the worst-off failing trigger decides
        worst = max(base.erroring, key=lambda n: failures[n])
        replicas, fell_back = _failing_proposal(
            so, "formula", spec, failures[worst], current, reasons
        )
        outcome = TriggerOutcome(
            "formula",
            None,
            spec.target,
            spec.activation_target,
            False,
            replicas,
            f"input {worst} failed",
            fell_back,
        )
        return _Evaluation(
            [*base.outcomes, outcome], replicas, False, base.erroring, fell_back, reasons
        )
    values = {r.name: r.value for r in readings if r.value is not None}
    try:
        composite = compiled(modifiers.formula, tuple(sorted(values))).evaluate(values)
    except FormulaError as exc:
        replicas, fell_back = _failing_proposal(so, "formula", spec, 1, current, reasons)
        outcome = TriggerOutcome(
            "formula", None, spec.target, spec.activation_target, False, replicas, str(exc)
        )
        return _Evaluation([*base.outcomes, outcome], replicas, False, ["formula"], False, reasons)
    active = composite > spec.activation_target
    tolerance = tolerance_up if composite >= spec.target else tolerance_down
    replicas = metric_replicas(spec, composite, current, tolerance)
    reasons.append(
        f"formula {modifiers.formula!r} = {composite:g} vs target {spec.target:g} -> {replicas}, "
        f"{'active' if active else 'inactive'}"
    )
    outcome = TriggerOutcome(
        "formula", composite, spec.target, spec.activation_target, active, replicas
    )
    return _Evaluation([*base.outcomes, outcome], replicas, active, [], False, reasons)


def decide(
    so: ScaledObject,
    current: int,
    readings: Sequence[TriggerReading],
    state: ScalingState,
    now: float,
) -> Decision:
    """The replica count `so` should have now, the reasons, and the state to keep."""
    failures = {
        r.name: (state.failures.get(r.name, 0) + 1 if r.value is None else 0) for r in readings
    }
    state = replace(state, failures=failures)
    paused = so.paused_replicas
    if paused is not None:
        reason = f"paused at {paused} replicas (autoscaling.keda.sh/paused-replicas)"
        return Decision(paused, False, (reason,), (), state, paused=True)
    if so.paused:
        reason = f"paused at the current {current} replicas (autoscaling.keda.sh/paused)"
        return Decision(current, False, (reason,), (), state, paused=True)

    spec = so.spec
    behavior = EffectiveBehavior.of(spec.behavior)
    evaluate = _evaluate_formula if spec.scaling_modifiers else _evaluate_triggers
    ev = evaluate(
        so, current, readings, failures, behavior.scale_up.tolerance, behavior.scale_down.tolerance
    )
    reasons = ev.reasons
    hpa_min = max(spec.min_replica_count, 1)  # the HPA cannot hold zero; KEDA does that
    # a failing poll may hide demand: it restarts the cooldown like an active one
    last_active = now if ev.active or ev.erroring else state.last_active
    idle = spec.idle_replica_count
    desired: int | None = None  # None: the HPA's reconcile decides

    if ev.active or ev.erroring:
        if current < hpa_min:
            desired = min(max(ev.proposal, hpa_min), spec.max_replica_count)
            reasons.append(f"waking from {current}: straight to {desired}")
    elif (idle is not None and current > idle) or (current > 0 and spec.min_replica_count == 0):
        target = idle if idle is not None else 0
        cooled = last_active is None or now - last_active >= spec.cooldown_period
        initial_done = state.created is None or now - state.created >= spec.initial_cooldown_period
        if cooled and initial_done:
            desired = target
            what = "idleReplicaCount" if idle is not None else "zero"
            reasons.append(
                f"no trigger active for cooldownPeriod {spec.cooldown_period}s: "
                f"to {what} ({target})"
            )
        else:
            wait = "initialCooldownPeriod" if cooled else "cooldownPeriod"
            reasons.append(f"inactive, within {wait}")
    elif current < (floor := idle if idle is not None else spec.min_replica_count):
        # KEDA lifts a target below minReplicaCount; we lift one below idle too
        desired = floor
        what = "idleReplicaCount" if idle is not None else "minReplicaCount"
        reasons.append(f"below {what}: to {desired}")
    elif current == 0 or current == idle:
        desired = current
        reasons.append(f"inactive, staying at {current}")
    hpa_step = desired is None
    if desired is None:
        desired = _hpa_step(
            ev.proposal, current, hpa_min, spec.max_replica_count, state, now, behavior, reasons
        )

    horizon = now - behavior.longest_memory
    recommendations = [s for s in state.recommendations if s.at > horizon]
    events = [s for s in state.scale_events if s.at > horizon]
    recommendations.append(Sample(now, ev.proposal if hpa_step else desired))
    if hpa_step and desired != current:
        events.append(Sample(now, desired - current))
    new_state = replace(
        state,
        recommendations=tuple(recommendations),
        scale_events=tuple(events),
        last_active=last_active,
    )
    return Decision(
        desired, ev.active, tuple(reasons), tuple(ev.outcomes), new_state, fallback=ev.in_fallback
    )


def _hpa_step(
    proposal: int,
    current: int,
    hpa_min: int,
    hpa_max: int,
    state: ScalingState,
    now: float,
    behavior: EffectiveBehavior,
    reasons: list[str],
) -> int:
    """The HPA's reconcile: bounds first, then stabilization, rate policies and clamps."""
    if current > hpa_max:
        reasons.append(f"above maxReplicaCount: to {hpa_max}")
        return hpa_max
    if current < hpa_min:
        reasons.append(f"below minReplicaCount: to {hpa_min}")
        return hpa_min
    stabilized = stabilize(proposal, current, state.recommendations, now, behavior)
    if stabilized != proposal:
        direction = behavior.scale_down if proposal < current else behavior.scale_up
        reasons.append(
            f"stabilization ({direction.stabilization_window_seconds}s window) keeps {stabilized} "
            f"instead of {proposal}"
        )
    desired = stabilized
    if desired > current:
        limit = scale_up_limit(current, state.scale_events, now, behavior.scale_up)
        allowed = min(limit, hpa_max)
        if desired > allowed:
            why = "maxReplicaCount" if allowed == hpa_max else _policy_text(behavior.scale_up, "up")
            reasons.append(f"scale up to {desired} limited to {allowed} by {why}")
            desired = allowed
    elif desired < current:
        limit = scale_down_limit(current, state.scale_events, now, behavior.scale_down)
        allowed = max(limit, hpa_min)
        if desired < allowed:
            why = (
                "minReplicaCount"
                if allowed == hpa_min and limit < hpa_min
                else _policy_text(behavior.scale_down, "down")
            )
            reasons.append(f"scale down to {desired} limited to {allowed} by {why}")
            desired = allowed
    if desired == current:
        reasons.append(f"holding {current}")
    else:
        reasons.append(f"scaling {current} -> {desired}")
    return desired


def _policy_text(rules: Rules, direction: str) -> str:
    if rules.select_policy is SelectPolicy.DISABLED:
        return f"scale{direction.capitalize()} selectPolicy Disabled"
    policies = ", ".join(p.describe() for p in rules.policies)
    return f"scale{direction.capitalize()} policies ({rules.select_policy.value}: {policies})"
