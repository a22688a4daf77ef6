"""The predictive policy in the simulator: history from the trace, fits inline in virtual time.

`TraceHistory` answers the predictor's range queries from a workload's trace (its scenario
`history` included), and only with what is known at the query's end: block k is the mean
arrival rate over [t_k, t_k + step), given once t_k + step <= end, on a grid aligned to the
trace's first row, the last (end - start) // step of them. Whatever a scenario's ScaledObject
says about Prometheus, the simulator forecasts the workload's arrivals per second, so
`targetPerReplica` (or the trigger's target) must be in arrivals per second per replica.
"""

from __future__ import annotations

import math

import numpy as np

from ebbflow.sim.scenario import Scenario, Signal, Workload
from ebbflow.sim.trace import Trace
from forecasting.errors import SeriesError
from forecasting.series import Series
from scaler.api import ScaledObject
from scaler.clock import Clock
from scaler.predictive import InlineExecutor, Predictor, predictor_config


class TraceHistory:
    """A HistorySource over a trace: offsets are seconds after `trace.start` (epoch)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        offsets = np.asarray(trace.offsets, dtype=np.float64)
        rates = np.asarray(trace.rates, dtype=np.float64)
        self._offsets = offsets
        self._rates = rates
        # the integral of the step function at each row's offset: block means are differences
        self._area = np.concatenate([[0.0], np.cumsum(rates[:-1] * np.diff(offsets))])

    def _integral(self, x: np.ndarray) -> np.ndarray:
        row = np.clip(np.searchsorted(self._offsets, x, side="right") - 1, 0, None)
        return np.asarray(self._area[row] + self._rates[row] * (x - self._offsets[row]))

    async def fetch(self, start: float, end: float, step: float) -> Series:
        last = math.floor((min(end - self.trace.start, self.trace.end)) / step)  # exclusive
        # the last whole lookback of complete blocks, as many as a Prometheus range query over
        # [start, end] returns: a lookback that is not on the grid loses no step (three weeks
        # are 1,008 half-hours, not 1,007, so the weekly season is still detected)
        first = max(last - math.floor((end - start) / step), 0)
        if last <= first:
            raise SeriesError(f"no complete {step:g}s step of the trace before {end:g}")
        edges = np.arange(first, last + 1, dtype=np.float64) * step
        means = np.diff(self._integral(edges)) / step
        return Series(means.astype(np.float64), step, self.trace.start + first * step)


def pod_startup(workload: Workload) -> float:
    """The longest start-up a pod of the workload takes (the simulator knows it exactly)."""
    pod = workload.spec.pod
    return pod.startup_seconds + pod.startup_jitter_seconds


class SimulatedPredictors:
    """The PredictorFactory of the simulator: each predictive ScaledObject forecasts its
    workload's trace, fitting inline. `predictors` maps workload names to their predictor (the
    node layer asks them for `forecast_replicas`)."""

    def __init__(self, scenario: Scenario, clock: Clock, node_launch: float = 0.0) -> None:
        self._workloads = {w.so.spec.scale_target_ref.name: w for w in scenario.workloads}
        self._clock = clock
        self._node_launch = node_launch
        self.predictors: dict[str, Predictor] = {}

    async def __call__(self, so: ScaledObject) -> Predictor:
        workload = self._workloads[so.spec.scale_target_ref.name]
        spec = so.predictive
        trigger = (spec.trigger if spec else None) or so.trigger_names()[0]
        # the trace is arrivals: a trigger on the arrival rate reads it live, one on a backlog
        # (Kafka lag) does not
        reads = workload.signals[trigger] is Signal.ARRIVAL_RATE
        config = predictor_config(so, pod_startup(workload), self._node_launch, reads)
        predictor = Predictor(
            workload.spec.name,
            config,
            TraceHistory(workload.full_trace),
            self._clock,
            InlineExecutor(),
        )
        self.predictors[workload.spec.name] = predictor
        return predictor


def is_predictive(scenario: Scenario) -> bool:
    """Whether any workload of the scenario scales predictively."""
    return any(w.so.predictive is not None for w in scenario.workloads)
