"""Scenario files: what to simulate, validated with errors that name the file and field."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ebbflow.sim.trace import Trace, TraceError, load_trace
from scaler.api import ScaledObject
from scaler.manifests import (
    ManifestError,
    ManifestIssue,
    format_path,
    issues_from,
    load_scaled_object,
    validation_context,
)
from scalers.base import field_error

_DURATION = re.compile(
    r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$"
)


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"15m"`, `"2d1h"`."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30s, 15m, 2h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match or not any(match.groups()):
            raise ValueError("must be a duration like 30s, 15m, 2h or 7d")
        d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = d * 86400 + h * 3600 + m * 60 + s
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


class Signal(StrEnum):
    """What a simulated trigger reads from its workload."""

    BACKLOG = "backlog"  # items waiting: Kafka lag, queue length
    ARRIVAL_RATE = "arrivalRate"  # arrivals per second: request rate
    UTILIZATION = "utilization"  # percent of ready capacity in use: cpu
    SCHEDULE = "schedule"  # the trigger's own schedule: cron


DEFAULT_SIGNALS = {
    "kafka": Signal.BACKLOG,
    "apache-kafka": Signal.BACKLOG,
    "rabbitmq": Signal.BACKLOG,
    "redis": Signal.BACKLOG,
    "prometheus": Signal.ARRIVAL_RATE,
    "http": Signal.ARRIVAL_RATE,
    "cpu": Signal.UTILIZATION,
    "memory": Signal.UTILIZATION,
    "cron": Signal.SCHEDULE,
}


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class TraceSpec(Model):
    path: str
    column: str = "value"
    time_column: str | None = None
    # value x scale = arrivals per second (a 5-minute count needs scale 1/300)
    scale: float = Field(default=1.0, gt=0)
    time_compression: float = Field(default=1.0, gt=0)


class PodSpec(Model):
    startup_seconds: float = 30.0
    startup_jitter_seconds: float = 0.0
    shutdown_seconds: float = 10.0
    capacity_per_second: float = Field(gt=0)

    @field_validator("startup_seconds", "startup_jitter_seconds", "shutdown_seconds", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class Slo(Model):
    max_queue_wait_seconds: float = Field(default=1.0, gt=0)


class Fault(Model):
    """Reads of `trigger` fail from `from_` to `to` (seconds or durations from the start)."""

    trigger: str
    from_: float = Field(alias="from")
    to: float

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _ordered(self) -> Fault:
        if self.to <= self.from_:
            raise field_error(("to",), "must be after `from`", self.to)
        return self


class WorkloadSpec(Model):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    trace: TraceSpec
    pod: PodSpec
    initial_replicas: int = Field(default=1, ge=0)
    slo: Slo = Field(default_factory=Slo)
    signals: dict[str, Signal] = Field(default_factory=dict)
    scaled_object: dict[str, Any] | None = None
    scaled_object_file: str | None = None
    faults: list[Fault] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_scaled_object(self) -> WorkloadSpec:
        if (self.scaled_object is None) == (self.scaled_object_file is None):
            raise field_error(
                ("scaledObject",), "give exactly one of scaledObject or scaledObjectFile", None
            )
        return self


class ScenarioSpec(Model):
    name: str
    description: str = ""
    duration: float | None = None
    seed: int = 0
    workloads: list[WorkloadSpec] = Field(min_length=1)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _unique_names(self) -> ScenarioSpec:
        names = [w.name for w in self.workloads]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise field_error(("workloads", i, "name"), "duplicates another workload", name)
        return self


class Workload:
    """A workload ready to simulate: its spec, ScaledObject, trace and trigger signals."""

    def __init__(
        self, spec: WorkloadSpec, so: ScaledObject, trace: Trace, signals: dict[str, Signal]
    ) -> None:
        self.spec = spec
        self.so = so
        self.trace = trace
        self.signals = signals


class Scenario:
    def __init__(self, spec: ScenarioSpec, workloads: list[Workload], source: str) -> None:
        self.spec = spec
        self.workloads = workloads
        self.source = source
        traces_end = min(w.trace.end for w in workloads)
        self.duration = spec.duration if spec.duration is not None else traces_end
        self.start = min(w.trace.start for w in workloads)


def _issue(file: str, loc: tuple[str | int, ...], message: str) -> ManifestError:
    return ManifestError([ManifestIssue(file, 1, format_path(loc), message)])


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario: its fields, traces, ScaledObjects and trigger signals."""
    file = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise _issue(file, (), f"cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise _issue(file, (), f"invalid YAML: {exc}") from None
    try:
        spec = ScenarioSpec.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(issues_from(exc, file, 1)) from None
    base = path.parent
    workloads = []
    for i, w in enumerate(spec.workloads):
        where: tuple[str | int, ...] = ("workloads", i)
        try:
            trace = load_trace(
                base / w.trace.path,
                w.trace.column,
                w.trace.time_column,
                w.trace.scale,
                w.trace.time_compression,
            )
        except TraceError as exc:
            raise _issue(file, (*where, "trace", "path"), str(exc)) from None
        so = _scaled_object(file, base, where, w)
        names = so.trigger_names()
        signals = {}
        for name, trigger in zip(names, so.spec.triggers, strict=True):
            signal = w.signals.get(name) or DEFAULT_SIGNALS.get(trigger.type)
            if signal is None:
                raise _issue(
                    file,
                    (*where, "signals", name),
                    f"no simulated signal for trigger type {trigger.type!r}; "
                    f"choose one of {', '.join(s.value for s in Signal)}",
                )
            signals[name] = signal
        for name in w.signals:
            if name not in names:
                raise _issue(file, (*where, "signals", name), f"no trigger named {name!r}")
        for j, fault in enumerate(w.faults):
            if fault.trigger not in names:
                raise _issue(
                    file, (*where, "faults", j, "trigger"), f"no trigger named {fault.trigger!r}"
                )
        workloads.append(Workload(w, so, trace, signals))
    return Scenario(spec, workloads, file)


def _scaled_object(
    file: str, base: Path, where: tuple[str | int, ...], w: WorkloadSpec
) -> ScaledObject:
    if w.scaled_object_file is not None:
        path = base / w.scaled_object_file
        if not path.is_file():
            raise _issue(file, (*where, "scaledObjectFile"), f"no such file: {path}")
        return load_scaled_object(path)
    try:
        return ScaledObject.model_validate(w.scaled_object, context=validation_context())
    except ValidationError as exc:
        issues = issues_from(exc, file, 1)
        prefix = f"workloads[{where[1]}].scaledObject."
        raise ManifestError(
            [ManifestIssue(i.file, 1, prefix + i.path, i.message) for i in issues]
        ) from None
