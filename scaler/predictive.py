"""The predictor: keeps the latest forecast of one ScaledObject's demand, refitting on schedule.

The shell around the pure parts (`forecasting.refit.fit_snapshot`, `forecasting.policy`):
every `refitInterval` (on the Clock port) it reads the history (a `HistorySource`: Prometheus
range queries in the operator, the trace in the simulator) and runs the fit through a
`FitExecutor`, a thread in the operator (statsmodels is CPU-bound: never on the event loop)
and inline in the simulator (in virtual time a thread would race the clock; inline fits are
deterministic). A failed refit is logged and kept in the fit state: the policy then falls back
to the reactive decision until a refit succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from forecasting.policy import (
    FitState,
    PredictiveDecision,
    PredictiveInputs,
    Reason,
    forecast_replicas,
    peak_ahead_replicas,
    predictive_replicas,
)
from forecasting.series import Series
from scaler.api import ScaledObject
from scaler.behavior import Sample
from scaler.clock import Clock
from scaler.decision import Decision
from scaler.loops import condition, rfc3339
from scaler.triggers import trigger_specs
from scalers.base import MetricType

log = logging.getLogger("ebbflow.predictive")

T = TypeVar("T")

RESELECT_AFTER = 86_400.0  # `model: auto` chooses again once a day; refits in between reuse it


class HistorySource(Protocol):
    async def fetch(self, start: float, end: float, step: float) -> Series:
        """The metric's values on a `step` grid between `start` and `end` (epoch seconds), known
        at `end`: value k is the demand over [series.start + k step, series.start + (k+1) step).
        Raises on a failed read; never returns made-up values."""
        ...


class FitExecutor(Protocol):
    def __call__(self, work: Callable[[], T]) -> Awaitable[T]:
        """Run the CPU-bound `work` and return its result."""
        ...


class ThreadExecutor:
    """Fits in a worker thread, off the event loop (the operator)."""

    def __init__(self, pool: Executor | None = None) -> None:
        self._pool = pool  # None: the loop's default thread pool

    async def __call__(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)


class InlineExecutor:
    """Fits in the calling task (the simulator: virtual time stands still while it runs)."""

    async def __call__(self, work: Callable[[], T]) -> T:
        return work()


class PredictiveConfigError(ValueError):
    """A predictive spec that cannot be driven; the message names the field."""


@dataclass(frozen=True)
class PredictorConfig:
    model: str
    quantile: float
    lookback: float
    refit_interval: float
    step: float
    lead_time: float
    target_per_replica: float
    min_replicas: int
    max_replicas: int
    reactive_reads_metric: bool = True  # see forecasting.policy.PredictiveInputs

    @property
    def max_age(self) -> float:
        return 2 * self.refit_interval

    @property
    def horizon_steps(self) -> int:
        """Steps a fit forecasts: until it is stale, plus the lead time, plus one step."""
        return math.ceil((self.max_age + self.lead_time) / self.step) + 1


def default_lead_time(pod_startup: float, node_launch: float, polling_interval: float) -> float:
    """How far ahead the forecast is read: a pod asked for now serves after its start-up (and
    its node's launch, when it needs one); the count decided now holds until the next poll."""
    return pod_startup + node_launch + polling_interval


def predictor_config(
    so: ScaledObject, pod_startup: float, node_launch: float, reads_metric: bool | None = None
) -> PredictorConfig:
    """The predictor settings of `so` (which must be predictive), its defaults resolved.
    `reads_metric`: whether the trigger reads the forecast metric live (default: when the
    history is the trigger's own query, no `query` of its own)."""
    spec = so.predictive
    if spec is None:
        raise PredictiveConfigError("spec.predictive: not enabled")
    names = so.trigger_names()
    trigger = spec.trigger or names[0]
    metric = trigger_specs(so)[names.index(trigger)][1]
    target = spec.target_per_replica
    if target is None:
        if metric.metric_type is MetricType.UTILIZATION:
            kind = so.spec.triggers[names.index(trigger)].type
            raise PredictiveConfigError(
                "spec.predictive.targetPerReplica: required to forecast a "
                f"{kind} trigger (its target is a percentage)"
            )
        target = metric.target
    lead = spec.lead_time
    if lead is None:
        lead = default_lead_time(pod_startup, node_launch, so.spec.polling_interval)
    return PredictorConfig(
        model=spec.model,
        quantile=spec.quantile,
        lookback=spec.lookback,
        refit_interval=spec.refit_interval,
        step=spec.step,
        lead_time=lead,
        target_per_replica=target,
        min_replicas=so.spec.min_replica_count,
        max_replicas=so.spec.max_replica_count,
        reactive_reads_metric=spec.query is None if reads_metric is None else reads_metric,
    )


class Predictor:
    """The latest forecast of one ScaledObject and the task that refits it (see module doc)."""

    def __init__(
        self,
        name: str,
        config: PredictorConfig,
        history: HistorySource,
        clock: Clock,
        executor: FitExecutor,
    ) -> None:
        self.name = name
        self.config = config
        self.history = history
        self.clock = clock
        self.executor = executor
        self.fit = FitState()
        self.fits = 0
        self.failures = 0
        self._chosen: tuple[str, float] | None = None  # auto's choice and when it was made
        self._task: asyncio.Task[None] | None = None

    async def refit(self) -> FitState:
        """Read the history up to now and fit it; a failure is kept in the state, not raised."""
        # statsmodels takes a second or two to import: only processes that forecast pay it
        from forecasting.refit import AUTO, FitRequest, fit_snapshot

        c = self.config
        now = self.clock.now()
        chosen = None
        if c.model == AUTO and self._chosen and now - self._chosen[1] < RESELECT_AFTER:
            chosen = self._chosen[0]
        request = FitRequest(c.model, c.quantile, c.horizon_steps, chosen)
        try:
            history = await self.history.fetch(now - c.lookback, now, c.step)
            snapshot = await self.executor(functools.partial(fit_snapshot, history, request))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the policy falls back to reactive and says why
            self.failures += 1
            self.fit = FitState(self.fit.snapshot, f"{type(exc).__name__}: {exc}")
            log.warning("forecast of %s failed: %s", self.name, self.fit.error)
            return self.fit
        self.fits += 1
        if c.model == AUTO and chosen is None:
            self._chosen = (snapshot.model, now)
        self.fit = FitState(snapshot)
        return self.fit

    async def run(self) -> None:
        """Refit now and every refitInterval, until cancelled."""
        while True:
            await self.refit()
            await self.clock.sleep(self.config.refit_interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"predictor/{self.name}"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def decide(self, reactive: int, current: int, now: float) -> PredictiveDecision:
        """The predictive policy over the reactive decision, with the latest fit."""
        c = self.config
        return predictive_replicas(
            PredictiveInputs(
                reactive=reactive,
                current=current,
                fit=self.fit,
                now=now,
                lead_time=c.lead_time,
                max_age=c.max_age,
                target_per_replica=c.target_per_replica,
                min_replicas=c.min_replicas,
                max_replicas=c.max_replicas,
                reactive_reads_metric=c.reactive_reads_metric,
            )
        )

    def peak_replicas(self, horizon: float) -> int | None:
        """The most replicas the forecast's median needs in the steps that begin within the next
        `horizon` seconds, capped at maxReplicaCount; None without a usable fit."""
        c = self.config
        now = self.clock.now()
        peak = peak_ahead_replicas(self.fit, now, horizon, c.max_age, c.target_per_replica)
        return None if peak is None else min(peak, c.max_replicas)

    def forecast_replicas(self, at: float) -> int | None:
        """Replicas the forecast's median needs at `at` (epoch seconds), capped at
        maxReplicaCount; None without a usable fit (none yet, failed, stale), when `at` is
        outside the forecast, or when the trigger reads the forecast metric and the step
        holding `at` has begun (the reactive decision has it). For the node provisioner:
        with `placeholder_pods`, capacity is launched a node lead time ahead of the pods."""
        c = self.config
        wanted = forecast_replicas(
            self.fit,
            at,
            self.clock.now(),
            c.max_age,
            c.target_per_replica,
            ahead_only=c.reactive_reads_metric,
            central=True,
        )
        return None if wanted is None else min(wanted, c.max_replicas)


class PredictorFactory(Protocol):
    """Builds the predictor of a predictive ScaledObject (its history source, lead time)."""

    async def __call__(self, so: ScaledObject) -> Predictor: ...


_FALLBACK_REASONS = {
    Reason.STALE: "StaleForecast",
    Reason.FAILED: "FailedFit",
    Reason.NONE: "NoForecast",
}


def predictive_condition(result: PredictiveDecision, fit: FitState, now: float) -> dict[str, Any]:
    """The `Predictive` status condition: True while a fresh forecast is consulted, False (with
    why) while the reactive decision stands alone. Its message changes only with the fit, so
    the status is not rewritten on every poll."""
    snapshot = fit.snapshot
    if result.reason.uses_forecast and snapshot is not None:
        message = (
            f"forecast in use: {snapshot.model}, quantile {snapshot.quantile:g}, periods "
            f"{list(snapshot.periods)}, fitted up to {rfc3339(snapshot.made_at)}"
        )
        return condition("Predictive", True, "ForecastInUse", message, now)
    return condition(
        "Predictive",
        False,
        _FALLBACK_REASONS[result.reason],
        f"reactive only: {result.message}",
        now,
    )


def with_prediction(
    decision: Decision, result: PredictiveDecision, current: int, now: float
) -> Decision:
    """`decision` raised to the policy's count; the engine's record of this poll's scale event
    becomes the change actually made, so behavior's rate limits count it."""
    if result.desired == decision.desired_replicas:
        return decision
    events = [e for e in decision.state.scale_events if e.at != now]
    if result.desired != current:
        events.append(Sample(now, result.desired - current))
    state = replace(decision.state, scale_events=tuple(events))
    reasons = (*decision.reasons, f"predictive: {result.message}")
    return replace(decision, desired_replicas=result.desired, reasons=reasons, state=state)
