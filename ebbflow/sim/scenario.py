"""Scenario files: what to simulate, validated with errors that name the file and field."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ebbflow.sim.provisioning import ProvisioningSpec, load_node_pools
from ebbflow.sim.scenario_base import Model, parse_duration
from ebbflow.sim.trace import Trace, TraceError, load_trace
from provisioner.api import NodePool
from scaler.api import ScaledObject
from scaler.http_api import HTTPScaledObject, to_scaled_object
from scaler.manifests import (
    ManifestError,
    ManifestIssue,
    format_path,
    issues_from,
    load_scaled_object,
    validation_context,
)
from scalers.base import field_error


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


class TraceSpec(Model):
    path: str
    column: str = "value"
    time_column: str | None = None
    # value x scale = arrivals per second (a 5-minute count needs scale 1/300)
    scale: float = Field(default=1.0, gt=0)
    time_compression: float = Field(default=1.0, gt=0)


def _default_requests() -> dict[str, str | int | float]:
    return {"cpu": "500m", "memory": "1Gi"}


class PodSpec(Model):
    startup_seconds: float = 30.0
    startup_jitter_seconds: float = 0.0
    shutdown_seconds: float = 10.0
    capacity_per_second: float = Field(gt=0)
    # mean time a request spends in a pod: in-flight requests for HTTP concurrency (sim/http.py)
    request_seconds: float = Field(default=0.1, gt=0)
    # what each pod asks of a node (used when the scenario provisions nodes)
    resources: dict[str, str | int | float] = Field(default_factory=_default_requests)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)

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
    provisioning: ProvisioningSpec | None = None
    # the first `history` of each trace is not simulated: forecasts see it as the past
    history: float = 0.0

    @field_validator("duration", "history", mode="before")
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
        self,
        spec: WorkloadSpec,
        so: ScaledObject,
        trace: Trace,
        signals: dict[str, Signal],
        full_trace: Trace | None = None,
    ) -> None:
        self.spec = spec
        self.so = so
        self.trace = trace  # the simulated part
        self.signals = signals
        self.full_trace = full_trace or trace  # with the scenario's history before it


class Scenario:
    def __init__(
        self,
        spec: ScenarioSpec,
        workloads: list[Workload],
        source: str,
        node_pools: list[NodePool] | None = None,
    ) -> None:
        self.spec = spec
        self.workloads = workloads
        self.source = source
        self.node_pools = node_pools or []
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
        full_trace = trace
        try:
            trace = full_trace.after(spec.history)
        except TraceError as exc:
            raise _issue(file, ("history",), str(exc)) from None
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
        workloads.append(Workload(w, so, trace, signals, full_trace))
    pools = None
    if spec.provisioning is not None:
        pools = load_node_pools(spec.provisioning, file, base)
    return Scenario(spec, workloads, file, pools)


def _scaled_object(
    file: str, base: Path, where: tuple[str | int, ...], w: WorkloadSpec
) -> ScaledObject:
    if w.scaled_object_file is not None:
        path = base / w.scaled_object_file
        if not path.is_file():
            raise _issue(file, (*where, "scaledObjectFile"), f"no such file: {path}")
        return load_scaled_object(path)
    try:
        if (w.scaled_object or {}).get("kind") == "HTTPScaledObject":  # its http trigger
            return to_scaled_object(HTTPScaledObject.model_validate(w.scaled_object))
        return ScaledObject.model_validate(w.scaled_object, context=validation_context())
    except ValidationError as exc:
        issues = issues_from(exc, file, 1)
        prefix = f"workloads[{where[1]}].scaledObject."
        raise ManifestError(
            [ManifestIssue(i.file, 1, prefix + i.path, i.message) for i in issues]
        ) from None
