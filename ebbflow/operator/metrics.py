"""Prometheus metrics of the operator, with KEDA's names where KEDA has one."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scaler.api import ScaledObject
from scaler.decision import Decision

LABELS = ("namespace", "scaledObject")
TRIGGER_LABELS = (*LABELS, "scaler", "metric", "type")


class OperatorMetrics:
    """A ControllerObserver that keeps the /metrics families up to date."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.metric_value = Gauge(
            "keda_scaler_metrics_value",
            "The current value of each trigger's metric.",
            TRIGGER_LABELS,
            registry=r,
        )
        self.active = Gauge(
            "keda_scaler_active",
            "1 when the trigger is active, else 0.",
            TRIGGER_LABELS,
            registry=r,
        )
        self.scaler_errors = Counter(
            "keda_scaler_errors",
            "Failed reads of each trigger's metric.",
            TRIGGER_LABELS,
            registry=r,
        )
        self.object_errors = Counter(
            "keda_scaled_object_errors", "Failed polls of each ScaledObject.", LABELS, registry=r
        )
        self.paused = Gauge(
            "keda_scaled_object_paused", "1 when the ScaledObject is paused.", LABELS, registry=r
        )
        self.desired = Gauge(
            "ebbflow_desired_replicas", "The replica count last decided.", LABELS, registry=r
        )
        self.loop_lag = Histogram(
            "ebbflow_loop_lag_seconds",
            "How late each poll started against its schedule.",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self._series: dict[tuple[str, str], list[tuple[str, ...]]] = {}

    def on_poll(
        self, key: tuple[str, str], so: ScaledObject, decision: Decision, lateness: float
    ) -> None:
        names = {str(i): t.type for i, t in enumerate(so.spec.triggers)}
        names.update({t.name: t.type for t in so.spec.triggers if t.name})
        series: list[tuple[str, ...]] = []
        for t in decision.triggers:
            labels = (*key, names.get(t.name, "formula"), t.name, "scaledobject")
            series.append(labels)
            if t.error is not None:
                self.scaler_errors.labels(*labels).inc()
            if t.value is not None:
                self.metric_value.labels(*labels).set(t.value)
            self.active.labels(*labels).set(1 if t.active else 0)
        self._series[key] = series
        self.paused.labels(*key).set(1 if decision.paused else 0)
        self.desired.labels(*key).set(decision.desired_replicas)
        self.loop_lag.observe(lateness)

    def on_error(self, key: tuple[str, str], error: BaseException) -> None:
        self.object_errors.labels(*key).inc()

    def on_forget(self, key: tuple[str, str]) -> None:
        """Drop the gauges of an object this replica no longer drives (deleted or re-sharded)."""
        for labels in self._series.pop(key, []):
            for family in (self.metric_value, self.active):
                with contextlib.suppress(KeyError):
                    family.remove(*labels)
        for family in (self.paused, self.desired):
            with contextlib.suppress(KeyError):
                family.remove(*key)
