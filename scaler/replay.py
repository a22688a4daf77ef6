"""Replay a metric series through the decision engine, one poll per row. Pure.

Each row is one poll at its time; the desired count of one step is taken as the current
count of the next (the scale is applied at once), so history, cooldown, behavior and
stabilization all play out as they would in a controller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scaler.api import ScaledObject
from scaler.decision import Decision, ScalingState, TriggerReading, decide
from scalers.base import MetricSpec


@dataclass(frozen=True)
class SeriesRow:
    """One poll: seconds since the series began, and each trigger's value (None = failed)."""

    time: float
    values: Mapping[str, float | None]


@dataclass(frozen=True)
class ReplayStep:
    time: float
    current: int
    decision: Decision


def replay(
    so: ScaledObject,
    specs: list[tuple[str, MetricSpec]],
    rows: Iterable[SeriesRow],
    initial_replicas: int = 0,
) -> list[ReplayStep]:
    """Decisions over the series, starting from `initial_replicas` with no history."""
    current = initial_replicas
    state = ScalingState()
    steps = []
    for row in rows:
        readings = [
            TriggerReading(name, spec, value=row.values.get(name))
            if row.values.get(name) is not None
            else TriggerReading(name, spec, error="no value in the series")
            for name, spec in specs
        ]
        decision = decide(so, current, readings, state, row.time)
        steps.append(ReplayStep(row.time, current, decision))
        state = decision.state
        current = decision.desired_replicas
    return steps
