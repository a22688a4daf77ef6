"""KEDA's ScaledJob arithmetic: tables from KEDA's docs and unit tests, and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaler.api import ScaledJobSpec, ScalingStrategy
from scaler.job_strategy import (
    Calculation,
    TriggerQueue,
    combined_demand,
    effective_max_scale,
    jobs_to_create,
    trigger_max_scale,
)


def spec(**fields: Any) -> ScaledJobSpec:
    return ScaledJobSpec.model_validate(
        {
            "jobTargetRef": {"template": {}},
            "triggers": [{"type": "cron", "metadata": {}}],
            **fields,
        }
    )


def queue(length: float | None, target: float = 1.0, name: str = "q") -> TriggerQueue:
    return TriggerQueue(name, length, target, error=None if length is not None else "down")


# keda.sh/docs/2.16/reference/scaledjob-spec "maxReplicaCount": the scaling logic table
@pytest.mark.parametrize(
    ("queue_length", "max_replicas", "target", "running", "created"),
    [
        (10, 3, 1, 0, 3),
        (10, 3, 2, 0, 3),
        (10, 3, 1, 1, 2),
        (10, 100, 1, 0, 10),
        (4, 3, 5, 0, 1),
    ],
)
def test_keda_docs_max_replica_count_table(
    queue_length: float, max_replicas: int, target: float, running: int, created: int
) -> None:
    decision = jobs_to_create(
        spec(maxReplicaCount=max_replicas), [queue(queue_length, target)], running, 0
    )
    assert decision.new_jobs == created


def test_keda_docs_min_replica_count_example() -> None:
    # docs "minReplicaCount": 2 running permanently, targetValue 1, 3 messages -> 3 more Jobs
    two = spec(minReplicaCount=2)
    assert jobs_to_create(two, [queue(0.0)], 0, 0).new_jobs == 2  # idle: keep 2 running
    assert jobs_to_create(two, [queue(3.0)], 2, 0).new_jobs == 3
    assert jobs_to_create(two, [queue(0.0)], 1, 0).new_jobs == 1  # topped back up to 2


def strategy(name: str, deduction: int | None = None, percentage: str | None = None) -> Any:
    return ScalingStrategy.model_validate(
        {
            "strategy": name,
            "customScalingQueueLengthDeduction": deduction,
            "customScalingRunningJobPercentage": percentage,
        }
    )


# kedacore/keda pkg/scaling/executor/scale_jobs_test.go: GetEffectiveMaxScale(maxScale,
# running, pending, maxReplicaCount, scaleTo) -> (effective max scale, scaleTo)
@pytest.mark.parametrize(
    ("chosen", "args", "expected"),
    [
        (strategy("default"), (3, 2, 0, 5, 1), (1, 1)),
        (strategy("default"), (2, 0, 0, 5, 1), (2, 1)),
        (strategy("custom", 1, "0.5"), (3, 2, 0, 5, 1), (1, 1)),
        (strategy("custom", 1, "0.5"), (10, 0, 0, 10, 1), (9, 1)),
        (strategy("custom"), (3, 2, 0, 5, 1), (1, 1)),  # no parameters: default
        (strategy("custom"), (2, 0, 0, 5, 1), (2, 1)),
        (strategy("custom", 2, "0"), (3, 2, 0, 5, 1), (1, 1)),
        (strategy("custom", -2, "0"), (3, 2, 0, 4, 1), (4, 1)),  # capped at maxReplicaCount
        (strategy("accurate"), (3, 2, 0, 5, 1), (3, 1)),
        (strategy("accurate"), (5, 2, 0, 5, 1), (3, 1)),
        (strategy("accurate"), (3, 4, 2, 10, 1), (1, 1)),
        (strategy("accurate"), (5, 4, 2, 5, 1), (1, 1)),
        (strategy("eager"), (4, 3, 0, 10, 1), (4, 10)),
        (strategy("eager"), (4, 0, 3, 10, 1), (4, 10)),
        (strategy("eager"), (4, 7, 0, 10, 1), (3, 10)),
        (strategy("eager"), (4, 1, 6, 10, 1), (3, 10)),
        (strategy("eager"), (15, 0, 0, 10, 1), (10, 10)),
    ],
)
def test_keda_effective_max_scale_table(
    chosen: ScalingStrategy, args: tuple[int, int, int, int, int], expected: tuple[int, int]
) -> None:
    assert effective_max_scale(chosen, *args) == expected


# scale_jobs_test.go: getScalingDecision with minReplicaCount
@pytest.mark.parametrize(
    ("low", "running", "queue_length", "created"),
    [(2, 0, 0.0, 2), (2, 1, 0.0, 1), (1, 1, 2.0, 2)],
)
def test_keda_min_replica_count_decision(
    low: int, running: int, queue_length: float, created: int
) -> None:
    decision = jobs_to_create(spec(minReplicaCount=low), [queue(queue_length)], running, 0)
    assert decision.new_jobs == created


def test_trigger_max_scale_caps_and_ignores_targetless_triggers() -> None:
    assert trigger_max_scale(10, 3, 100) == pytest.approx(10 / 3)
    assert trigger_max_scale(10, 1, 4) == 4
    assert trigger_max_scale(10, 0, 4) == 0  # KEDA: no AverageValue target, no demand


@pytest.mark.parametrize(
    ("calculation", "length", "scale"),
    [("max", 9, 2), ("min", 3, 3), ("avg", 6, 3), ("sum", 12, 5)],
)
def test_multiple_scalers_calculation(calculation: Calculation, length: int, scale: int) -> None:
    # maxValues: 3/1 = 3 and 9/5 = 1.8; the inactive 50 counts nowhere
    triggers = [
        queue(3.0, 1.0, "a"),
        queue(9.0, 5.0, "b"),
        TriggerQueue("idle", 50.0, 1.0, activation_target=100.0),
    ]
    demand = combined_demand(triggers, calculation, 0, 100)
    assert (demand.active, demand.queue_length, demand.max_scale) == (True, length, scale)


def test_min_replica_count_makes_a_scaled_job_active() -> None:
    assert not combined_demand([queue(0.0)], "max", 0, 10).active
    assert combined_demand([queue(0.0)], "max", 1, 10).active


def test_ceilings_do_not_suffer_binary_noise() -> None:
    # 1.1 / 0.1 is 11.000000000000002 in binary; KEDA's maxScale would be 12
    assert combined_demand([queue(1.1, 0.1)], "max", 0, 100).max_scale == 11


def test_failing_trigger_counts_as_inactive_and_creates_nothing() -> None:
    alone = jobs_to_create(spec(), [queue(None)], 0, 0)
    assert (alone.new_jobs, alone.active) == (0, False)
    assert "failed (down), counted inactive" in alone.reason
    # with min, skipping the failed trigger equals KEDA's treatment of an inactive one
    minimum = spec(scalingStrategy={"multipleScalersCalculation": "min"})
    assert jobs_to_create(minimum, [queue(None, name="x"), queue(4.0)], 0, 0).new_jobs == 4


def test_custom_overshoot_is_capped_at_max_replica_count() -> None:
    # KEDA's custom strategy would create min(3 + 2 - 0, 4) = 4 with 2 running: 6 > 4
    custom = spec(
        maxReplicaCount=4,
        scalingStrategy={
            "strategy": "custom",
            "customScalingQueueLengthDeduction": -2,
            "customScalingRunningJobPercentage": "0",
        },
    )
    decision = jobs_to_create(custom, [queue(10.0)], 2, 0)
    assert (decision.effective_max_scale, decision.new_jobs) == (4, 2)
    assert "capped at maxReplicaCount 4 - 2 unfinished = 2" in decision.reason


# --- properties -----------------------------------------------------------------------------

readings = st.lists(
    st.builds(
        TriggerQueue,
        name=st.sampled_from(["a", "b", "c"]),
        queue_length=st.one_of(st.none(), st.floats(0, 10_000, allow_nan=False)),
        target=st.floats(0, 100, allow_nan=False),
        activation_target=st.floats(0, 10, allow_nan=False),
    ),
    min_size=1,
    max_size=4,
)
strategies = st.fixed_dictionaries(
    {
        "strategy": st.sampled_from(["default", "custom", "accurate", "eager"]),
        "customScalingQueueLengthDeduction": st.one_of(st.none(), st.integers(-20, 20)),
        "customScalingRunningJobPercentage": st.one_of(
            st.none(), st.floats(-2, 2, allow_nan=False).map(str)
        ),
        "multipleScalersCalculation": st.sampled_from(["max", "min", "avg", "sum"]),
    }
)


@st.composite
def situations(draw: st.DrawFn) -> tuple[ScaledJobSpec, list[TriggerQueue], int, int]:
    high = draw(st.integers(0, 50))
    low = draw(st.integers(0, high))
    running = draw(st.integers(0, 60))
    pending = draw(st.integers(0, running))
    chosen = spec(minReplicaCount=low, maxReplicaCount=high, scalingStrategy=draw(strategies))
    return chosen, draw(readings), running, pending


@given(situations())
def test_never_negative_and_never_above_max_replica_count(
    case: tuple[ScaledJobSpec, list[TriggerQueue], int, int],
) -> None:
    chosen, triggers, running, pending = case
    created = jobs_to_create(chosen, triggers, running, pending).new_jobs
    assert created >= 0
    assert running + created <= max(running, chosen.max_replica_count)


@given(situations())
def test_a_failing_trigger_never_adds_jobs(
    case: tuple[ScaledJobSpec, list[TriggerQueue], int, int],
) -> None:
    chosen, triggers, running, pending = case
    healthy = [t for t in triggers if t.queue_length is not None]
    with_failures = jobs_to_create(chosen, triggers, running, pending).new_jobs
    assert with_failures == jobs_to_create(chosen, healthy, running, pending).new_jobs


@given(situations())
def test_inactive_without_min_replicas_creates_nothing(
    case: tuple[ScaledJobSpec, list[TriggerQueue], int, int],
) -> None:
    chosen, triggers, running, pending = case
    decision = jobs_to_create(chosen, triggers, running, pending)
    if chosen.min_replica_count == 0 and not any(t.active for t in triggers):
        assert decision.new_jobs == 0
