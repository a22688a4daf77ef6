"""The trigger-type registry: type name -> metadata model, and type name -> reader factory.

Scaler modules register themselves; `known_types()` imports them all once. A registry
keyed by type replaces the long if/elif that builds scalers in other autoscalers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from scalers.base import MetricSpec, MetricType, Scaler, TriggerContext, TriggerMetadata
from scalers.context import ScalerContext

ReaderFactory = Callable[[ScalerContext], Scaler]

_MODULES = (
    "scalers.cpu_memory",
    "scalers.cron",
    "scalers.gpu",
    "scalers.http",
    "scalers.kafka",
    "scalers.nats_jetstream",
    "scalers.postgresql",
    "scalers.prometheus",
    "scalers.rabbitmq",
    "scalers.redis",
)

_REGISTRY: dict[str, type[TriggerMetadata]] = {}
_READERS: dict[str, ReaderFactory] = {}
_loaded = False


class UnknownTriggerType(ValueError):
    """A trigger names a type no scaler is registered for."""


def register(model: type[TriggerMetadata]) -> type[TriggerMetadata]:
    """Class decorator: make `model` the metadata model of `model.trigger_type`."""
    if not model.trigger_type:
        raise TypeError(f"{model.__name__} has no trigger_type")
    _REGISTRY[model.trigger_type] = model
    return model


def register_reader(*trigger_types: str) -> Callable[[ReaderFactory], ReaderFactory]:
    """Decorator: the factory (usually the Scaler class) that reads these trigger types."""

    def decorate(factory: ReaderFactory) -> ReaderFactory:
        for trigger_type in trigger_types:
            _READERS[trigger_type] = factory
        return factory

    return decorate


def build_scaler(context: ScalerContext) -> Scaler:
    """A live Scaler for one trigger (raises UnknownTriggerType when none reads it)."""
    _load()
    try:
        factory = _READERS[context.trigger_type]
    except KeyError:
        raise UnknownTriggerType(
            f"no live reader for trigger type {context.trigger_type!r}; "
            f"readers: {', '.join(sorted(_READERS))}"
        ) from None
    return factory(context)


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _MODULES:
            importlib.import_module(module)
        _loaded = True


def known_types() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def metadata_model(trigger_type: str) -> type[TriggerMetadata]:
    _load()
    try:
        return _REGISTRY[trigger_type]
    except KeyError:
        raise UnknownTriggerType(
            f"unknown trigger type {trigger_type!r}; known: {', '.join(known_types())}"
        ) from None


def parse_metadata(
    trigger_type: str, metadata: Mapping[str, Any], metric_type: MetricType | None = None
) -> TriggerMetadata:
    """Validate a trigger's string metadata into its typed model (raises ValidationError).

    `metric_type` is the trigger's own `metricType`, which some types' rules depend on.
    """
    context = {"metric_type": metric_type} if metric_type is not None else {}
    return metadata_model(trigger_type).model_validate(dict(metadata), context=context)


def metric_spec(
    trigger_type: str,
    metadata: Mapping[str, Any],
    index: int,
    name: str | None = None,
    metric_type: MetricType | None = None,
) -> MetricSpec:
    """The metric spec of one trigger: its name, target, activation and metric type."""
    parsed = parse_metadata(trigger_type, metadata, metric_type)
    return parsed.metric_spec(TriggerContext(index=index, name=name, metric_type=metric_type))
