"""The predictive policy: the forecast only ever raises the reactive decision, and a stale or
failed fit is never acted on."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecasting.policy import (
    FitState,
    ForecastSnapshot,
    PredictiveInputs,
    Reason,
    forecast_replicas,
    peak_ahead_replicas,
    placeholder_pods,
    predictive_replicas,
    replicas_for,
)

STEP = 300.0


def snapshot(values: list[float], made_at: float = 0.0) -> ForecastSnapshot:
    return ForecastSnapshot(made_at, STEP, tuple(values), 0.9, "holt_winters", (288,))


def inputs(fit: FitState, **overrides: float | bool) -> PredictiveInputs:
    """Defaults: at 250 s, + 60 s of lead time reads step 1 of the forecast (from 300 s)."""
    fields: dict[str, float | bool] = {
        "reactive": 3,
        "current": 3,
        "now": 250.0,
        "lead_time": 60.0,
        "max_age": 7200.0,
        "target_per_replica": 10.0,
        "min_replicas": 0,
        "max_replicas": 50,
    }
    fields.update(overrides)
    return PredictiveInputs(fit=fit, **fields)  # type: ignore[arg-type]


def test_forecast_above_reactive_raises_to_what_it_needs() -> None:
    result = predictive_replicas(inputs(FitState(snapshot([72.0] * 10))))
    assert (result.desired, result.reason, result.forecast_replicas) == (8, Reason.FORECAST, 8)


def test_forecast_below_reactive_changes_nothing() -> None:
    result = predictive_replicas(inputs(FitState(snapshot([5.0] * 10)), reactive=6, current=9))
    assert (result.desired, result.reason, result.forecast_replicas) == (6, Reason.REACTIVE, 1)


def test_forecast_is_read_at_now_plus_lead_time() -> None:
    # step 0 covers [0, 300), step 1 [300, 600): at 250 + 60 the policy reads step 1
    fit = FitState(snapshot([10.0, 95.0, 10.0]))
    assert predictive_replicas(inputs(fit, now=250.0)).desired == 10
    # at 560 + 60 it reads step 2; its 10/s need 1 replica, the reactive 3 stand
    assert predictive_replicas(inputs(fit, now=560.0)).desired == 3


def test_a_begun_step_is_left_to_a_reactive_decision_that_reads_the_metric() -> None:
    fit = FitState(snapshot([95.0, 95.0]))
    # at 100 + 60 the step at [0, 300) has begun: the trigger observes it live
    result = predictive_replicas(inputs(fit, now=100.0))
    assert (result.desired, result.reason, result.forecast_replicas) == (3, Reason.REACTIVE, None)
    # a trigger on another metric (Kafka lag for a forecast of arrivals) does not observe it
    held = predictive_replicas(inputs(fit, now=100.0, reactive_reads_metric=False))
    assert (held.desired, held.reason) == (10, Reason.FORECAST)


def test_a_reactive_zero_does_not_release_a_begun_step() -> None:
    # below the activation threshold the reactive decision serves nothing it observes
    fit = FitState(snapshot([6.0, 6.0]))
    result = predictive_replicas(inputs(fit, now=100.0, reactive=0, current=0))
    assert (result.desired, result.reason) == (1, Reason.FORECAST)


def test_stale_fit_returns_exactly_the_reactive_decision() -> None:
    fit = FitState(snapshot([500.0] * 100))
    result = predictive_replicas(inputs(fit, now=7201.0, reactive=2, current=4))
    assert (result.desired, result.reason, result.forecast_replicas) == (2, Reason.STALE, None)


def test_failed_fit_is_not_used_even_when_an_older_forecast_is_fresh() -> None:
    fit = FitState(snapshot([500.0] * 10), error="ModelError: cannot fit")
    result = predictive_replicas(inputs(fit, reactive=2))
    assert (result.desired, result.reason) == (2, Reason.FAILED)
    assert "cannot fit" in result.message


def test_no_fit_yet_is_reactive() -> None:
    assert predictive_replicas(inputs(FitState(), reactive=4)).reason is Reason.NONE


def test_forecast_that_does_not_reach_the_lead_time_is_stale() -> None:
    result = predictive_replicas(inputs(FitState(snapshot([500.0])), reactive=1))
    assert (result.desired, result.reason) == (1, Reason.STALE)


def test_waking_on_a_forecast_goes_to_at_least_the_minimum() -> None:
    fit = FitState(snapshot([4.0] * 10))
    result = predictive_replicas(inputs(fit, reactive=0, current=0, min_replicas=2))
    assert (result.desired, result.reason) == (2, Reason.FORECAST)
    # no demand forecast: nothing wakes
    quiet = FitState(snapshot([0.0] * 10))
    assert predictive_replicas(inputs(quiet, reactive=0, current=0, min_replicas=2)).desired == 0


def test_forecast_is_capped_at_the_maximum() -> None:
    result = predictive_replicas(inputs(FitState(snapshot([10_000.0] * 10)), max_replicas=12))
    assert (result.desired, result.forecast_replicas) == (12, 1000)


def test_replicas_for_rounds_off_float_noise() -> None:
    assert replicas_for(1.1, 0.1) == 11
    assert replicas_for(0.0, 4.0) == 0
    with pytest.raises(ValueError, match="target_per_replica"):
        replicas_for(1.0, 0.0)


fits = st.one_of(
    st.just(FitState()),
    st.builds(
        lambda values, made_at, error: FitState(snapshot(values, made_at), error),
        st.lists(st.floats(0, 1e4), min_size=1, max_size=30),
        st.floats(-2e4, 2e4),
        st.one_of(st.none(), st.just("boom")),
    ),
)


@given(
    fit=fits,
    bounds=st.tuples(st.integers(0, 20), st.integers(0, 40)).map(
        lambda b: (b[0], b[0] + max(b[1], 1))
    ),
    reactive=st.integers(0, 60),
    current=st.integers(0, 60),
    now=st.floats(0, 2e4),
    lead=st.floats(0, 900),
    max_age=st.floats(1, 1e4),
    target=st.floats(0.5, 100),
    reads=st.booleans(),
)
def test_policy_properties(
    fit: FitState,
    bounds: tuple[int, int],
    reactive: int,
    current: int,
    now: float,
    lead: float,
    max_age: float,
    target: float,
    reads: bool,
) -> None:
    low, high = bounds
    reactive = min(max(reactive, low), high)  # the engine's decision is within its bounds
    result = predictive_replicas(
        PredictiveInputs(reactive, current, fit, now, lead, max_age, target, low, high, reads)
    )
    # the forecast can only raise, and never past maxReplicaCount
    assert result.desired >= reactive
    assert low <= result.desired <= high
    # scale-in is never driven by the forecast: below current only when reactive is too
    if result.desired < current:
        assert reactive < current
    # a failed, stale or missing fit is never acted on: exactly the reactive decision
    stale = fit.snapshot is not None and now - fit.snapshot.made_at > max_age
    if fit.failed or fit.snapshot is None or stale:
        assert result.desired == reactive
        assert not result.reason.uses_forecast
    if result.desired > reactive:
        assert result.reason is Reason.FORECAST


@given(forecast=st.one_of(st.none(), st.integers(0, 100)), current=st.integers(0, 100))
def test_placeholders_cover_only_the_pods_the_forecast_adds(
    forecast: int | None, current: int
) -> None:
    pods = placeholder_pods(forecast, current)
    assert pods >= 0
    if forecast is None or forecast <= current:
        assert pods == 0  # released when the forecast drops to what runs (or is unusable)
    else:
        assert current + pods == forecast


def test_placeholders_are_released_as_the_forecast_drops() -> None:
    assert [placeholder_pods(f, 4) for f in (10, 7, 4, 2, None)] == [6, 3, 0, 0, 0]


def test_node_capacity_follows_the_median_and_only_steps_not_yet_begun() -> None:
    # quantile 30, 60, 90 req/s and median 20, 40, 60 over steps from 0, 300, 600 s
    fit = FitState(replace(snapshot([30.0, 60.0, 90.0]), median=(20.0, 40.0, 60.0)))
    ahead = {"now": 250.0, "max_age": 7200.0, "target_per_replica": 10.0}
    assert forecast_replicas(fit, 310.0, **ahead) == 6  # the quantile, for pods
    assert forecast_replicas(fit, 310.0, **ahead, central=True) == 4
    # at 320 s the step from 300 s has begun: the reactive decision observes it
    late = {**ahead, "now": 320.0}
    assert forecast_replicas(fit, 330.0, **late, central=True) == 4
    assert forecast_replicas(fit, 330.0, **late, central=True, ahead_only=True) is None
    assert forecast_replicas(fit, 610.0, **late, central=True, ahead_only=True) == 6
    # a snapshot without a median (an older fit) uses its quantile
    assert forecast_replicas(FitState(snapshot([30.0])), 10.0, **ahead, central=True) == 3


def test_consolidation_peak_is_the_median_peak_of_the_steps_ahead() -> None:
    fit = FitState(replace(snapshot([0.0] * 4), median=(50.0, 20.0, 70.0, 90.0)))
    # at 250 s: steps from 300 and 600 s begin within 400 s; the begun one (50) is not read
    assert peak_ahead_replicas(fit, 250.0, 400.0, 7200.0, 10.0) == 7
    assert peak_ahead_replicas(fit, 250.0, 3600.0, 7200.0, 10.0) == 9  # to the last step
    assert peak_ahead_replicas(fit, 250.0, 10.0, 7200.0, 10.0) is None  # no step begins
    assert peak_ahead_replicas(fit, 8000.0, 400.0, 7200.0, 10.0) is None  # stale
    failed = FitState(fit.snapshot, "boom")
    assert peak_ahead_replicas(failed, 250.0, 400.0, 7200.0, 10.0) is None
