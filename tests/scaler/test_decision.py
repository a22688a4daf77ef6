"""The decision engine, table by table, from the Kubernetes HPA and KEDA documentation."""

from __future__ import annotations

from typing import Any

import pytest

from scaler.api import ScaledObject
from scaler.behavior import Sample
from scaler.decision import ScalingState, TriggerReading, decide, metric_replicas
from scalers.base import MetricSource, MetricSpec, MetricType


def make_so(
    triggers: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> ScaledObject:
    return ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "worker", "annotations": annotations or {}},
            "spec": {
                "scaleTargetRef": {"name": "worker"},
                "triggers": triggers or [{"type": "kafka", "name": "lag", "metadata": {}}],
                **spec,
            },
        }
    )


def reading(
    value: float | None,
    name: str = "lag",
    target: float = 10,
    activation: float = 0,
    metric_type: MetricType = MetricType.AVERAGE_VALUE,
    source: MetricSource = MetricSource.EXTERNAL,
    error: str | None = None,
) -> TriggerReading:
    spec = MetricSpec(name, target, activation, metric_type, source)
    if value is None:
        return TriggerReading(name, spec, error=error or "connection refused")
    return TriggerReading(name, spec, value=value)


NO_HISTORY = ScalingState()


def recs(*pairs: tuple[float, int]) -> tuple[Sample, ...]:
    return tuple(Sample(at, n) for at, n in pairs)


# --- HPA arithmetic -------------------------------------------------------------------------

HPA_ARITHMETIC = [
    # (metric type, source, value, target, current, expected, why)
    # HPA docs: 200m against 100m doubles; 50m halves
    (MetricType.UTILIZATION, MetricSource.RESOURCE, 200, 100, 4, 8, "ratio 2 doubles"),
    (MetricType.UTILIZATION, MetricSource.RESOURCE, 50, 100, 4, 2, "ratio 0.5 halves"),
    # HPA docs: within the 0.1 tolerance nothing changes
    (MetricType.UTILIZATION, MetricSource.RESOURCE, 105, 100, 4, 4, "1.05 within tolerance"),
    (MetricType.UTILIZATION, MetricSource.RESOURCE, 110, 100, 10, 10, "1.1 on the edge: within"),
    (MetricType.UTILIZATION, MetricSource.RESOURCE, 111, 100, 10, 12, "1.11 outside: ceil(11.1)"),
    (MetricType.UTILIZATION, MetricSource.RESOURCE, 90, 100, 10, 10, "0.9 on the edge: within"),
    # External AverageValue: ceil(total / per-pod target)
    (MetricType.AVERAGE_VALUE, MetricSource.EXTERNAL, 95, 10, 3, 10, "ceil(9.5)"),
    (MetricType.AVERAGE_VALUE, MetricSource.EXTERNAL, 31, 10, 3, 3, "ratio 1.03 within"),
    (MetricType.AVERAGE_VALUE, MetricSource.EXTERNAL, 1.1, 0.1, 3, 11, "no float noise"),
    # External Value: the ratio scales the current count
    (MetricType.VALUE, MetricSource.EXTERNAL, 60, 20, 3, 9, "ratio 3 triples"),
    (MetricType.VALUE, MetricSource.EXTERNAL, 60, 20, 0, 3, "from zero counts as one"),
]


@pytest.mark.parametrize(
    ("mtype", "source", "value", "target", "current", "expected", "why"), HPA_ARITHMETIC
)
def test_metric_replicas_follows_hpa_arithmetic(
    mtype: MetricType,
    source: MetricSource,
    value: float,
    target: float,
    current: int,
    expected: int,
    why: str,
) -> None:
    spec = MetricSpec("m", target, 0, mtype, source)
    assert metric_replicas(spec, value, current, 0.1) == expected, why


def test_the_highest_trigger_wins() -> None:
    so = make_so(
        [
            {"type": "kafka", "name": "a", "metadata": {}},
            {"type": "kafka", "name": "b", "metadata": {}},
        ]
    )
    d = decide(so, 4, [reading(30, "a"), reading(70, "b")], NO_HISTORY, 0)
    assert d.desired_replicas == 7
    assert [t.replicas for t in d.triggers] == [3, 7]


# --- behavior: defaults and policies ---------------------------------------------------------

BEHAVIOR_TABLE = [
    # (behavior, current, value, state, expected, why)
    (None, 1, 200, NO_HISTORY, 5, "default scale-up: max(100%, 4 pods) from 1 is 5"),
    (None, 10, 500, NO_HISTORY, 20, "default scale-up: max(100%, 4 pods) from 10 is 20"),
    (
        None,
        10,
        20,
        ScalingState(recommendations=recs((-100, 10))),
        10,
        "default scale-down: 300 s window keeps the highest recent recommendation",
    ),
    (
        None,
        10,
        20,
        ScalingState(recommendations=recs((-301, 10))),
        2,
        "default scale-down: outside the window the drop goes through",
    ),
    (None, 10, 20, NO_HISTORY, 2, "default scale-down policy allows 100% per 15 s"),
    (
        {
            "scaleDown": {
                "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 60},
                    {"type": "Percent", "value": 10, "periodSeconds": 60},
                ]
            }
        },
        80,
        10,
        NO_HISTORY,
        72,
        "HPA docs: selectPolicy Max takes the larger change (10% of 80)",
    ),
    (
        {
            "scaleDown": {
                "selectPolicy": "Min",
                "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 60},
                    {"type": "Percent", "value": 10, "periodSeconds": 60},
                ],
            }
        },
        80,
        10,
        NO_HISTORY,
        76,
        "selectPolicy Min takes the smaller change (4 pods)",
    ),
    (
        {"scaleDown": {"selectPolicy": "Disabled"}},
        10,
        10,
        NO_HISTORY,
        10,
        "scale-down Disabled never removes pods",
    ),
    (
        {"scaleUp": {"selectPolicy": "Disabled"}},
        2,
        500,
        NO_HISTORY,
        2,
        "scale-up Disabled never adds pods",
    ),
    (
        {"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}},
        8,
        500,
        ScalingState(scale_events=recs((-30, 4))),
        8,
        "4 pods per 60 s already spent 30 s ago: no more this period",
    ),
    (
        {"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}},
        8,
        500,
        ScalingState(scale_events=recs((-61, 4))),
        12,
        "the period has passed: 4 more",
    ),
    (
        {"scaleUp": {"stabilizationWindowSeconds": 120}},
        4,
        200,
        ScalingState(recommendations=recs((-60, 6))),
        6,
        "scale-up window takes the lowest recent recommendation",
    ),
    (
        {"scaleDown": {"stabilizationWindowSeconds": 0}},
        10,
        50,
        NO_HISTORY,
        5,
        "no scale-down window: drop at once",
    ),
]


@pytest.mark.parametrize(
    ("behavior", "current", "value", "state", "expected", "why"), BEHAVIOR_TABLE
)
def test_behavior_policies_and_stabilization(
    behavior: dict[str, Any] | None,
    current: int,
    value: float,
    state: ScalingState,
    expected: int,
    why: str,
) -> None:
    advanced = {"horizontalPodAutoscalerConfig": {"behavior": behavior}} if behavior else None
    so = make_so(minReplicaCount=1, advanced=advanced)
    d = decide(so, current, [reading(value)], state, 0)
    assert d.desired_replicas == expected, f"{why}: {d.reason}"


def test_max_replica_count_caps_scale_up() -> None:
    so = make_so(maxReplicaCount=6)
    assert decide(so, 4, [reading(1000)], NO_HISTORY, 0).desired_replicas == 6


def test_a_scale_event_is_recorded_for_the_rate_policies() -> None:
    so = make_so()
    first = decide(so, 2, [reading(1000)], NO_HISTORY, 0)
    assert first.desired_replicas == 6  # max(2*2, 2+4)
    second = decide(so, 6, [reading(1000)], first.state, 5)
    assert second.desired_replicas == 6, "the 15 s periods still count the +4"
    third = decide(so, 6, [reading(1000)], second.state, 16)
    assert third.desired_replicas == 12


# --- KEDA activation, cooldown, idle ---------------------------------------------------------

KEDA_TABLE = [
    # (spec, current, value, state, now, expected, why)
    ({}, 5, 0, NO_HISTORY, 0, 0, "inactive and cooldown elapsed (no history): to zero"),
    (
        {},
        5,
        0,
        ScalingState(last_active=-100),
        0,
        1,
        "inactive within cooldownPeriod 300: the HPA keeps working (floor 1)",
    ),
    ({}, 5, 0, ScalingState(last_active=-300), 0, 0, "cooldownPeriod reached: to zero"),
    ({"cooldownPeriod": 30}, 5, 0, ScalingState(last_active=-31), 0, 0, "custom cooldown"),
    (
        {"minReplicaCount": 3, "idleReplicaCount": 1},
        5,
        0,
        NO_HISTORY,
        0,
        1,
        "idleReplicaCount when no trigger is active",
    ),
    (
        {"minReplicaCount": 3, "idleReplicaCount": 1},
        1,
        50,
        NO_HISTORY,
        0,
        5,
        "from idle, activation goes straight to the formula's 5",
    ),
    (
        {"minReplicaCount": 3, "idleReplicaCount": 1},
        1,
        5,
        NO_HISTORY,
        0,
        3,
        "from idle, at least minReplicaCount",
    ),
    (
        {"minReplicaCount": 3, "idleReplicaCount": 1},
        0,
        0,
        NO_HISTORY,
        0,
        1,
        "below idle: lifted to idle",
    ),
    ({}, 0, 120, NO_HISTORY, 0, 12, "from zero straight to ceil(120/10), not 1"),
    ({}, 0, 3, NO_HISTORY, 0, 1, "from zero, at least one"),
    ({}, 0, 0, NO_HISTORY, 0, 0, "inactive at zero stays at zero"),
    ({"maxReplicaCount": 5}, 0, 1000, NO_HISTORY, 0, 5, "from zero, within max"),
    ({"minReplicaCount": 2}, 0, 0, NO_HISTORY, 0, 2, "below minReplicaCount: lifted to min"),
    (
        {"minReplicaCount": 2},
        6,
        0,
        NO_HISTORY,
        0,
        2,
        "min > 0: no cooldown to zero, the HPA scales down to min",
    ),
    (
        {"initialCooldownPeriod": 600},
        5,
        0,
        ScalingState(created=-100),
        0,
        1,
        "initialCooldownPeriod holds off scale to zero after creation",
    ),
    (
        {"initialCooldownPeriod": 600},
        5,
        0,
        ScalingState(created=-600),
        0,
        0,
        "initialCooldownPeriod over",
    ),
]


@pytest.mark.parametrize(
    ("spec", "current", "value", "state", "now", "expected", "why"), KEDA_TABLE
)
def test_keda_activation_cooldown_and_idle(
    spec: dict[str, Any],
    current: int,
    value: float,
    state: ScalingState,
    now: float,
    expected: int,
    why: str,
) -> None:
    d = decide(make_so(**spec), current, [reading(value)], state, now)
    assert d.desired_replicas == expected, f"{why}: {d.reason}"


def test_activation_threshold_decides_activity() -> None:
    so = make_so()
    below = decide(so, 0, [reading(5, activation=5)], NO_HISTORY, 0)
    above = decide(so, 0, [reading(6, activation=5)], NO_HISTORY, 0)
    assert (below.active, below.desired_replicas) == (False, 0)
    assert (above.active, above.desired_replicas) == (True, 1)


def test_being_active_refreshes_last_active_time() -> None:
    so = make_so()
    d = decide(so, 2, [reading(20)], ScalingState(last_active=-500), 42)
    assert d.state.last_active == 42


def test_cpu_only_objects_are_always_active() -> None:
    so = make_so(
        [{"type": "cpu", "metadata": {"value": "50"}, "metricType": "Utilization"}],
        minReplicaCount=1,
    )
    cpu = reading(
        10, "0", target=50, metric_type=MetricType.UTILIZATION, source=MetricSource.RESOURCE
    )
    d = decide(so, 4, [cpu], NO_HISTORY, 0)
    assert d.active
    assert d.desired_replicas == 1  # ceil(4 * 10/50)


def test_cpu_does_not_keep_a_mixed_object_active() -> None:
    so = make_so(
        [
            {"type": "cpu", "metadata": {"value": "50"}},
            {"type": "kafka", "name": "lag", "metadata": {}},
        ]
    )
    cpu = reading(
        90, "0", target=50, metric_type=MetricType.UTILIZATION, source=MetricSource.RESOURCE
    )
    d = decide(so, 4, [cpu, reading(0)], NO_HISTORY, 0)
    assert not d.active
    assert d.desired_replicas == 0


# --- fallback and errors ---------------------------------------------------------------------

FALLBACK_TABLE = [
    # (fallback behavior, current, expected)
    ("static", 7, 3),
    ("currentReplicas", 7, 7),
    ("currentReplicasIfHigher", 7, 7),
    ("currentReplicasIfHigher", 2, 3),
    ("currentReplicasIfLower", 7, 3),
    ("currentReplicasIfLower", 2, 2),
]


@pytest.mark.parametrize(("behavior", "current", "expected"), FALLBACK_TABLE)
def test_fallback_behaviors(behavior: str, current: int, expected: int) -> None:
    so = make_so(
        fallback={"failureThreshold": 2, "replicas": 3, "behavior": behavior},
        advanced={
            "horizontalPodAutoscalerConfig": {
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}
            }
        },
    )
    state = ScalingState(failures={"lag": 2})  # this poll's failure makes 3 > 2
    d = decide(so, current, [reading(None)], state, 0)
    assert d.fallback
    assert d.desired_replicas == expected, d.reason


def test_fallback_waits_for_more_than_failure_threshold_failures() -> None:
    so = make_so(fallback={"failureThreshold": 3, "replicas": 9})
    d = decide(so, 4, [reading(None)], ScalingState(failures={"lag": 2}), 0)
    assert not d.fallback
    assert d.desired_replicas == 4, "third failure: hold, fallback comes after the fourth"
    assert d.state.failures["lag"] == 3


def test_a_success_resets_the_failure_count() -> None:
    so = make_so(fallback={"failureThreshold": 3, "replicas": 9})
    d = decide(so, 4, [reading(40)], ScalingState(failures={"lag": 7}), 0)
    assert d.state.failures["lag"] == 0


def test_failing_trigger_never_scales_to_zero() -> None:
    so = make_so()
    d = decide(so, 3, [reading(None)], ScalingState(last_active=-10_000), 0)
    assert d.desired_replicas == 3
    assert "never zero on error" in d.reason


def test_failing_trigger_wakes_a_target_at_zero_to_one() -> None:
    d = decide(make_so(), 0, [reading(None)], NO_HISTORY, 0)
    assert d.desired_replicas == 1


def test_failing_trigger_blocks_scale_down_from_the_others() -> None:
    so = make_so(
        [
            {"type": "kafka", "name": "a", "metadata": {}},
            {"type": "kafka", "name": "b", "metadata": {}},
        ]
    )
    d = decide(so, 8, [reading(None, "a"), reading(10, "b")], NO_HISTORY, 0)
    assert d.desired_replicas == 8


def test_static_fallback_of_zero_replicas_still_keeps_one() -> None:
    so = make_so(fallback={"failureThreshold": 0, "replicas": 0})
    d = decide(so, 5, [reading(None)], NO_HISTORY, 0)
    assert d.desired_replicas == 1


# --- paused ----------------------------------------------------------------------------------


def test_paused_replicas_annotation_sets_the_count() -> None:
    so = make_so(annotations={"autoscaling.keda.sh/paused-replicas": "4"})
    d = decide(so, 9, [reading(1000)], NO_HISTORY, 0)
    assert (d.desired_replicas, d.paused) == (4, True)


def test_paused_annotation_keeps_the_current_count() -> None:
    so = make_so(annotations={"autoscaling.keda.sh/paused": "true"})
    assert decide(so, 9, [reading(0)], NO_HISTORY, 0).desired_replicas == 9


def test_paused_replicas_wins_over_paused() -> None:
    so = make_so(
        annotations={
            "autoscaling.keda.sh/paused": "true",
            "autoscaling.keda.sh/paused-replicas": "2",
        }
    )
    assert decide(so, 9, [reading(0)], NO_HISTORY, 0).desired_replicas == 2


def test_paused_false_does_not_pause() -> None:
    so = make_so(annotations={"autoscaling.keda.sh/paused": "false"})
    assert decide(so, 0, [reading(50)], NO_HISTORY, 0).desired_replicas == 5


# --- scalingModifiers ------------------------------------------------------------------------


def modifiers_so(formula: str, target: str = "10", activation: str = "") -> ScaledObject:
    return make_so(
        [
            {"type": "kafka", "name": "a", "metadata": {}},
            {"type": "kafka", "name": "b", "metadata": {}},
        ],
        advanced={
            "scalingModifiers": {
                "formula": formula,
                "target": target,
                "activationTarget": activation,
            }
        },
    )


MODIFIER_TABLE = [
    # (formula, a, b, current, expected)
    ("a + b", 30, 50, 0, 8),
    ("(a + b) / 2", 30, 50, 0, 4),
    ("max(a, b)", 30, 50, 0, 5),
    ("a > 20 ? a : b", 30, 50, 0, 3),
    ("a > 40 ? a : b", 30, 50, 0, 5),
]


@pytest.mark.parametrize(("formula", "a", "b", "current", "expected"), MODIFIER_TABLE)
def test_scaling_modifiers_formula(
    formula: str, a: float, b: float, current: int, expected: int
) -> None:
    d = decide(modifiers_so(formula), current, [reading(a, "a"), reading(b, "b")], NO_HISTORY, 0)
    assert d.desired_replicas == expected, d.reason
    assert d.triggers[-1].name == "formula"


def test_scaling_modifiers_activation_target() -> None:
    so = modifiers_so("a + b", activation="100")
    d = decide(so, 0, [reading(30, "a"), reading(50, "b")], NO_HISTORY, 0)
    assert not d.active
    assert d.desired_replicas == 0


def test_scaling_modifiers_division_by_zero_is_an_error_not_zero() -> None:
    so = modifiers_so("a / b")
    d = decide(so, 4, [reading(30, "a"), reading(0, "b")], NO_HISTORY, 0)
    assert d.desired_replicas == 4
    assert d.triggers[-1].error == "division by zero"


def test_activity_value_decides_activation_when_given() -> None:
    so = make_so()
    spec = MetricSpec("lag", 10, 5)
    # the metric leaves persistent lag out (0) but the activity figure counts it (40)
    d = decide(so, 3, [TriggerReading("lag", spec, value=0.0, activity_value=40.0)], NO_HISTORY, 0)
    assert d.active
    assert d.desired_replicas == 1  # active, so no cooldown to zero; the metric asks for 0
