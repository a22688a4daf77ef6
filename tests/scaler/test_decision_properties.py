"""Properties of the decision engine over generated objects, states and readings."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.api import ScaledObject
from scaler.behavior import Sample
from scaler.decision import ScalingState, TriggerReading, decide
from scalers.base import MetricSpec, MetricType

NAMES = ("a", "b", "c")


@st.composite
def scaled_objects(draw: st.DrawFn) -> ScaledObject:
    count = draw(st.integers(1, 3))
    min_replicas = draw(st.integers(0, 10))
    max_replicas = draw(st.integers(max(min_replicas, 1), 60))
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": "w"},
        "minReplicaCount": min_replicas,
        "maxReplicaCount": max_replicas,
        "cooldownPeriod": draw(st.integers(0, 600)),
        "triggers": [{"type": "kafka", "name": n, "metadata": {}} for n in NAMES[:count]],
    }
    if min_replicas > 0 and draw(st.booleans()):
        spec["idleReplicaCount"] = draw(st.integers(0, min_replicas - 1))
    if draw(st.booleans()):
        spec["fallback"] = {
            "failureThreshold": draw(st.integers(0, 5)),
            "replicas": draw(st.integers(0, 80)),
            "behavior": draw(
                st.sampled_from(
                    [
                        "static",
                        "currentReplicas",
                        "currentReplicasIfHigher",
                        "currentReplicasIfLower",
                    ]
                )
            ),
        }
    if draw(st.booleans()):
        rules = st.fixed_dictionaries(
            {
                "stabilizationWindowSeconds": st.integers(0, 600),
                "selectPolicy": st.sampled_from(["Max", "Min", "Disabled"]),
                "policies": st.lists(
                    st.fixed_dictionaries(
                        {
                            "type": st.sampled_from(["Pods", "Percent"]),
                            "value": st.integers(1, 200),
                            "periodSeconds": st.integers(1, 120),
                        }
                    ),
                    min_size=1,
                    max_size=3,
                ),
            }
        )
        spec["advanced"] = {
            "horizontalPodAutoscalerConfig": {
                "behavior": {"scaleUp": draw(rules), "scaleDown": draw(rules)}
            }
        }
    return ScaledObject.model_validate(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "w"},
            "spec": spec,
        }
    )


values = st.floats(0, 5000, allow_nan=False)
maybe_values = st.one_of(st.none(), values)


@st.composite
def states(draw: st.DrawFn) -> ScalingState:
    samples = st.lists(st.builds(Sample, st.floats(-900, 0), st.integers(0, 80)), max_size=6)
    events = st.lists(
        st.builds(Sample, st.floats(-900, 0), st.integers(-40, 40).filter(bool)), max_size=6
    )
    return ScalingState(
        recommendations=tuple(draw(samples)),
        scale_events=tuple(draw(events)),
        last_active=draw(st.one_of(st.none(), st.floats(-2000, 0))),
        failures={n: draw(st.integers(0, 8)) for n in NAMES},
    )


def readings_for(so: ScaledObject, raw: list[float | None], target: float) -> list[TriggerReading]:
    out = []
    for trigger, value in zip(so.spec.triggers, raw, strict=False):
        name = trigger.name or ""
        spec = MetricSpec(name, target, 1.0, MetricType.AVERAGE_VALUE)
        out.append(
            TriggerReading(name, spec, value=value, error=None if value is not None else "x")
        )
    return out


@settings(max_examples=400, deadline=None)
@given(
    scaled_objects(),
    st.integers(0, 100),
    st.lists(maybe_values, min_size=3, max_size=3),
    st.floats(0.5, 50),
    states(),
)
def test_desired_is_within_min_max_or_idle(
    so: ScaledObject, current: int, raw: list[float | None], target: float, state: ScalingState
) -> None:
    d = decide(so, current, readings_for(so, raw, target), state, 0.0)
    spec = so.spec
    within = spec.min_replica_count <= d.desired_replicas <= spec.max_replica_count
    assert within or d.desired_replicas == spec.idle_replica_count, d.reason


@settings(max_examples=400, deadline=None)
@given(
    scaled_objects(),
    st.integers(0, 100),
    st.lists(maybe_values, min_size=3, max_size=3),
    st.floats(0.5, 50),
    states(),
)
def test_never_zero_while_a_trigger_errors(
    so: ScaledObject, current: int, raw: list[float | None], target: float, state: ScalingState
) -> None:
    readings = readings_for(so, raw, target)
    d = decide(so, current, readings, state, 0.0)
    if any(r.value is None for r in readings):
        assert d.desired_replicas >= 1, d.reason


@settings(max_examples=400, deadline=None)
@given(
    scaled_objects(),
    st.integers(0, 100),
    st.lists(values, min_size=3, max_size=3),
    st.integers(0, 2),
    values,
    st.floats(0.5, 50),
    states(),
)
def test_monotone_in_the_metric_value(
    so: ScaledObject,
    current: int,
    raw: list[float],
    which: int,
    extra: float,
    target: float,
    state: ScalingState,
) -> None:
    higher = list(raw)
    higher[which] += extra
    low = decide(so, current, readings_for(so, list(raw), target), state, 0.0)
    high = decide(so, current, readings_for(so, list(higher), target), state, 0.0)
    assert low.desired_replicas <= high.desired_replicas, (low.reason, high.reason)


@settings(max_examples=200, deadline=None)
@given(
    scaled_objects(),
    st.integers(0, 100),
    st.integers(0, 100),
    st.lists(maybe_values, min_size=3, max_size=3),
)
def test_paused_replicas_always_wins(
    so: ScaledObject, paused: int, current: int, raw: list[float | None]
) -> None:
    annotated = so.model_copy(
        update={
            "metadata": so.metadata.model_copy(
                update={"annotations": {"autoscaling.keda.sh/paused-replicas": str(paused)}}
            )
        }
    )
    d = decide(annotated, current, readings_for(so, raw, 10), ScalingState(), 0.0)
    assert (d.desired_replicas, d.paused) == (paused, True)
