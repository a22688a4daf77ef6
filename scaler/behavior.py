"""HPA v2 `behavior`: stabilization windows and scaling-rate policies. Pure.

Mirrors the Kubernetes HorizontalPodAutoscaler controller: a recommendation is first
stabilized against the recent recommendations (scale-up takes the minimum over its
window, scale-down the maximum over its window), then limited by the scale-up or
scale-down policies over the scale events of each policy's period, then clamped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scaler.api import Behavior, PolicyType, ScalingRules, SelectPolicy

DEFAULT_TOLERANCE = 0.1  # HPA: --horizontal-pod-autoscaler-tolerance


@dataclass(frozen=True)
class Policy:
    type: PolicyType
    value: int
    period_seconds: int

    def describe(self) -> str:
        unit = "%" if self.type is PolicyType.PERCENT else " pods"
        return f"{self.value}{unit} per {self.period_seconds}s"


@dataclass(frozen=True)
class Rules:
    """One direction's rules with Kubernetes' defaults filled in."""

    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[Policy, ...]
    tolerance: float


# HPA defaults (autoscaling/v2): scale up by max(100%, 4 pods) per 15 s, no stabilization;
# scale down by 100% per 15 s after a 300 s stabilization window.
DEFAULT_SCALE_UP = Rules(
    0,
    SelectPolicy.MAX,
    (Policy(PolicyType.PERCENT, 100, 15), Policy(PolicyType.PODS, 4, 15)),
    DEFAULT_TOLERANCE,
)
DEFAULT_SCALE_DOWN = Rules(
    300, SelectPolicy.MAX, (Policy(PolicyType.PERCENT, 100, 15),), DEFAULT_TOLERANCE
)


def _merge(given: ScalingRules | None, default: Rules) -> Rules:
    if given is None:
        return default
    policies = (
        tuple(Policy(p.type, p.value, p.period_seconds) for p in given.policies)
        if given.policies
        else default.policies
    )
    return Rules(
        stabilization_window_seconds=(
            given.stabilization_window_seconds
            if given.stabilization_window_seconds is not None
            else default.stabilization_window_seconds
        ),
        select_policy=given.select_policy or default.select_policy,
        policies=policies,
        tolerance=given.tolerance if given.tolerance is not None else default.tolerance,
    )


@dataclass(frozen=True)
class EffectiveBehavior:
    scale_up: Rules
    scale_down: Rules

    @classmethod
    def of(cls, behavior: Behavior | None) -> EffectiveBehavior:
        if behavior is None:
            return cls(DEFAULT_SCALE_UP, DEFAULT_SCALE_DOWN)
        return cls(
            _merge(behavior.scale_up, DEFAULT_SCALE_UP),
            _merge(behavior.scale_down, DEFAULT_SCALE_DOWN),
        )

    @property
    def longest_memory(self) -> int:
        """Seconds of history the rules can look at: windows and policy periods."""
        spans = [self.scale_up.stabilization_window_seconds]
        spans.append(self.scale_down.stabilization_window_seconds)
        spans += [p.period_seconds for p in self.scale_up.policies + self.scale_down.policies]
        return max(spans)


@dataclass(frozen=True)
class Sample:
    """A timestamped recommendation (replicas) or scale event (signed change)."""

    at: float
    value: int


def stabilize(
    proposal: int,
    current: int,
    recommendations: Sequence[Sample],
    now: float,
    behavior: EffectiveBehavior,
) -> int:
    """Bring `proposal` within the bounds set by the recent recommendations."""
    up_cutoff = now - behavior.scale_up.stabilization_window_seconds
    down_cutoff = now - behavior.scale_down.stabilization_window_seconds
    # HPA: scale up no further than the lowest, down no further than the highest,
    # recommendation seen inside the respective window (this one included)
    up_bound = min([proposal] + [r.value for r in recommendations if r.at > up_cutoff])
    down_bound = max([proposal] + [r.value for r in recommendations if r.at > down_cutoff])
    result = current
    result = max(result, up_bound)
    result = min(result, down_bound)
    return result


def _period_start(current: int, events: Sequence[Sample], now: float, period: int) -> int:
    """The replica count at the start of a policy's period: undo the changes made since."""
    recent = [e.value for e in events if e.at > now - period]
    return current - sum(recent)


def scale_up_limit(current: int, events: Sequence[Sample], now: float, rules: Rules) -> int:
    """The most replicas the scale-up policies allow now."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for policy in rules.policies:
        start = _period_start(current, events, now, policy.period_seconds)
        if policy.type is PolicyType.PODS:
            proposals.append(start + policy.value)
        else:  # HPA rounds up so that a small Percent can always add a pod
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
    limit = min(proposals) if rules.select_policy is SelectPolicy.MIN else max(proposals)
    return max(limit, current)


def scale_down_limit(current: int, events: Sequence[Sample], now: float, rules: Rules) -> int:
    """The fewest replicas the scale-down policies allow now."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for policy in rules.policies:
        start = _period_start(current, events, now, policy.period_seconds)
        if policy.type is PolicyType.PODS:
            proposals.append(start - policy.value)
        else:  # HPA truncates toward zero here (int32 conversion)
            proposals.append(int(start * (1 - policy.value / 100)))
    limit = max(proposals) if rules.select_policy is SelectPolicy.MIN else min(proposals)
    return min(limit, current)
