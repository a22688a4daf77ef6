"""The metric spec of each trigger of a ScaledObject, through the scaler registry."""

from __future__ import annotations

from scaler.api import ScaledObject
from scalers import registry
from scalers.base import MetricSpec


def trigger_specs(so: ScaledObject) -> list[tuple[str, MetricSpec]]:
    """(name, spec) per trigger; unnamed triggers are named by their index ("0", "1")."""
    return [
        (name, registry.metric_spec(t.type, t.metadata, i, t.name, t.metric_type))
        for i, (name, t) in enumerate(zip(so.trigger_names(), so.spec.triggers, strict=True))
    ]
