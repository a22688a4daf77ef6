"""The ScaledJob controller: one guarded task per ScaledJob, creating Jobs as queues fill.

Each poll reads every trigger, counts the unfinished (and, where the strategy needs it,
pending) Jobs the ScaledJob owns, asks `scaler.job_strategy` how many new Jobs to create,
creates them from `jobTargetRef`, prunes finished Jobs beyond the history limits, and
writes KEDA's conditions and Events. The reference is KEDA's executor
(`pkg/scaling/executor/scale_jobs.go`) and reconciler (`controllers/keda/scaledjob_controller.go`).

Departures from KEDA:
- rollout (`rollout.strategy: default`) deletes the unfinished Jobs of an earlier generation
  (the `scaledjob.keda.sh/generation` annotation), not every Job on every reconcile: history
  survives, and an operator restart deletes nothing;
- the Cluster port has no propagationPolicy, so the cascade is done here: background deletes
  the Job and then its Pods, foreground the Pods first (batch/v1 would orphan them otherwise);
- the first failed Job creation of a poll ends that poll's creations (the next poll recounts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from kube.port import JOBS, JSON, PODS, SCALED_JOBS, Cluster, ClusterError, NotFound
from scaler.api import PAUSED_ANNOTATION, ScaledJob, ScalingStrategy
from scaler.clock import Clock
from scaler.controller import ACTIVE_REFRESH
from scaler.decision import TriggerReading
from scaler.job_strategy import JobDecision, TriggerQueue, jobs_to_create
from scaler.loops import (
    Key,
    close_scaler,
    condition,
    key_of,
    parse_rfc3339,
    poll_guarded,
    read_trigger,
    rfc3339,
    watch_objects,
)
from scaler.manifests import issues_from, validation_context
from scalers import registry
from scalers.base import MetricSource, MetricSpec, Scaler

log = logging.getLogger("ebbflow.jobs")

SCALED_JOB_LABEL = "scaledjob.keda.sh/name"
GENERATION_ANNOTATION = "scaledjob.keda.sh/generation"
EXCLUDED_LABELS_ANNOTATION = "scaledjob.keda.sh/job-excluded-labels"
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")  # set by the Job controller
_FALSE_WORDS = frozenset({"0", "f", "F", "FALSE", "false", "False"})  # strconv.ParseBool

try:
    _VERSION = package_metadata.version("ebbflow")
except package_metadata.PackageNotFoundError:  # pragma: no cover - running from a bare tree
    _VERSION = "unknown"

_CONDITION_TEXT = {
    ("Ready", "True"): (
        "ScaledJobReady",
        "ScaledJob is defined correctly and is ready for scaling",
    ),
    ("Ready", "Unknown"): (
        "PartialTriggerError",
        "Some triggers defined in ScaledJob are not working correctly",
    ),
    ("Ready", "False"): ("TriggerError", "Triggers defined in ScaledJob are not working correctly"),
    ("Active", "True"): ("ScalerActive", "Scaling is performed because triggers are active"),
    ("Active", "False"): (
        "ScalerNotActive",
        "Scaling is not performed because triggers are not active",
    ),
    ("Paused", "True"): ("ScaledJobPaused", "ScaledJob is paused"),
    ("Paused", "False"): ("ScaledJobUnpaused", "ScaledJob is not paused"),
}


class JobScalerFactory(Protocol):
    """Builds the live metric source of one trigger of a ScaledJob (may resolve auth)."""

    async def __call__(
        self, sj: ScaledJob, index: int, name: str, spec: MetricSpec, /
    ) -> Scaler: ...


@dataclass
class JobControllerStats:
    """Counters a test or the operator's /metrics can read."""

    polls: int = 0
    jobs_created: int = 0
    jobs_deleted: int = 0
    create_failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # failed polls, by ScaledJob key
    invalid: Counter[str] = field(default_factory=Counter)
    trigger_failures: Counter[str] = field(default_factory=Counter)  # by "ns/name/trigger"


@dataclass
class _Driven:
    """What the controller keeps per ScaledJob; it outlives a restart of the task."""

    sj: ScaledJob
    raw: JSON
    scalers: list[tuple[str, MetricSpec, Scaler]]
    task: asyncio.Task[None] | None = None
    failures: dict[str, int] = field(default_factory=dict)
    conditions: dict[str, JSON] = field(default_factory=dict)
    last_active: float | None = None
    written_active: float | None = None
    last_flags: dict[str, str] | None = None
    last_decision: JobDecision | None = None


# --- the loops every controller runs (candidates for a shared module) -----------------------


# --- the controller -----------------------------------------------------------------------


class ScaledJobController:
    """Drives every ScaledJob in `namespace` (or all namespaces)."""

    def __init__(
        self,
        cluster: Cluster,
        clock: Clock,
        scalers: JobScalerFactory,
        namespace: str | None = None,
        owns: Callable[[str, str], bool] = lambda namespace, name: True,
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.scaler_factory = scalers
        self.namespace = namespace
        self.stats = JobControllerStats()
        self._owns = owns
        self._driven: dict[Key, _Driven] = {}
        self._seen: dict[Key, JSON] = {}  # every ScaledJob, driven here or not (shards)

    async def set_ownership(self, owns: Callable[[str, str], bool]) -> None:
        """Drive only the ScaledJobs `owns(namespace, name)` accepts; re-sort them now."""
        self._owns = owns
        for raw in list(self._seen.values()):
            await self.upsert(raw)

    async def run(self) -> None:
        """List and watch ScaledJobs, keeping one polling task per object, until cancelled."""
        try:
            await watch_objects(
                self.cluster,
                self.clock,
                SCALED_JOBS,
                self.namespace,
                self.upsert,
                self.forget,
                lambda: list(self._seen),
            )
        finally:
            await self.stop()

    async def upsert(self, raw: JSON) -> None:
        """Start driving `raw`, or restart on its new spec; an invalid object is reported."""
        key = key_of(raw)
        self._seen[key] = raw
        if not self._owns(*key):  # another shard's
            await self.remove(key)
            return
        old = self._driven.get(key)
        if (
            old is not None
            and old.raw.get("spec") == raw.get("spec")
            and old.raw["metadata"].get("annotations") == raw["metadata"].get("annotations")
        ):
            old.raw = raw  # a status or metadata-only change: nothing to rebuild
            return
        try:
            sj = ScaledJob.model_validate(raw, context=validation_context())
        except ValidationError as exc:
            message = "; ".join(f"{i.path}: {i.message}" for i in issues_from(exc, "", 0))
            await self._reject(key, raw, message)
            return
        problem = keda_job_rules(sj)
        if problem is not None:
            await self._reject(key, raw, problem)
            return
        scalers: list[tuple[str, MetricSpec, Scaler]] = []
        try:
            for index, name, spec in job_trigger_specs(sj):
                scalers.append((name, spec, await self.scaler_factory(sj, index, name, spec)))
        except Exception as exc:  # e.g. a missing TriggerAuthentication: report, don't crash
            for _, _, scaler in scalers:
                await close_scaler(scaler)
            await self._reject(key, raw, f"{type(exc).__name__}: {exc}")
            return
        driven = _Driven(sj, raw, scalers)
        if old is not None:
            await self._stop_driving(old)
            driven.failures, driven.conditions = old.failures, old.conditions
            driven.last_active, driven.written_active = old.last_active, old.written_active
        else:
            driven.last_active = parse_rfc3339((raw.get("status") or {}).get("lastActiveTime"))
        self._driven[key] = driven
        # a new task polls at once, so a new spec (and its rollout) applies without waiting
        driven.task = asyncio.get_running_loop().create_task(
            poll_guarded(
                self.clock,
                f"ScaledJob {key[0]}/{key[1]}",
                lambda: self._poll_once(key),
                lambda exc: self.stats.errors.update([f"{key[0]}/{key[1]}"]),
            ),
            name=f"scaledjob/{key[0]}/{key[1]}",
        )

    async def forget(self, key: Key) -> None:
        """The ScaledJob is gone from the cluster."""
        self._seen.pop(key, None)
        await self.remove(key)

    async def remove(self, key: Key) -> None:
        """Stop driving `key` (it stays known, for a later change of shards)."""
        driven = self._driven.pop(key, None)
        if driven is not None:
            await self._stop_driving(driven)

    async def stop(self) -> None:
        for key in list(self._driven):
            await self.remove(key)

    async def _stop_driving(self, driven: _Driven) -> None:
        if driven.task is not None:
            driven.task.cancel()
            await asyncio.gather(driven.task, return_exceptions=True)
        for _, _, scaler in driven.scalers:
            await close_scaler(scaler)

    async def _reject(self, key: Key, raw: JSON, message: str) -> None:
        """Stop driving `key`; say why in its Ready condition and a Warning event."""
        self.stats.invalid[f"{key[0]}/{key[1]}"] += 1
        log.warning("ScaledJob %s/%s is not driven: %s", key[0], key[1], message)
        await self.remove(key)
        ready = condition("Ready", False, "ScaledJobCheckFailed", message, self.clock.now())
        try:
            await self.cluster.patch_status(SCALED_JOBS, key[1], {"conditions": [ready]}, key[0])
            await self.cluster.record_event(raw, "ScaledJobCheckFailed", message, "Warning")
        except ClusterError as err:
            log.warning("cannot report invalid ScaledJob %s/%s: %s", key[0], key[1], err)

    # --- polling ------------------------------------------------------------------------

    async def _poll_once(self, key: Key) -> float | None:
        driven = self._driven.get(key)
        if driven is None:
            return None
        await self.poll(key)
        return float(driven.sj.spec.polling_interval)

    async def poll(self, key: Key) -> JobDecision | None:
        """One poll: read, count, decide, create, prune, report. Raises on cluster errors."""
        driven = self._driven[key]
        sj = driven.sj
        now = self.clock.now()
        self.stats.polls += 1
        if paused(sj):  # KEDA: a paused ScaledJob's scale loop is stopped
            await self._write_status(driven, {"Paused": "True"}, now)
            return None
        readings = [await read_trigger(name, spec, scaler) for name, spec, scaler in driven.scalers]
        queues = [self._queue(driven, reading) for reading in readings]
        jobs = await self._owned_jobs(sj)
        unfinished = [job for job in jobs if finished_type(job) is None]
        unfinished = await self._roll_out(driven, unfinished)
        strategy = sj.spec.scaling_strategy or ScalingStrategy()
        pending = 0
        if unfinished and strategy.strategy in ("accurate", "eager"):
            pods = await self._pods_by_job(sj)
            pending = sum(
                is_pending(job, pods.get(_name(job), []), strategy.pending_pod_conditions)
                for job in unfinished
            )
        decision = jobs_to_create(sj.spec, queues, len(unfinished), pending)
        for reading in readings:
            if reading.error is not None and driven.failures.get(reading.name) == 1:
                message = f"{reading.name}: {reading.error}"
                await self.cluster.record_event(driven.raw, "KEDAScalerFailed", message, "Warning")
        await self._create_jobs(driven, decision.new_jobs)
        await self._delete_jobs(sj, beyond_history(sj, jobs), "background")
        if decision.active:
            driven.last_active = now
        failing = any(reading.error is not None for reading in readings)
        ready = "True" if not failing else "Unknown" if decision.active else "False"
        flags = {"Ready": ready, "Active": str(decision.active), "Paused": "False"}
        await self._write_status(driven, flags, now)
        driven.last_decision = decision
        return decision

    def _queue(self, driven: _Driven, reading: TriggerReading) -> TriggerQueue:
        """A trigger's reading as the arithmetic takes it; a failure is counted, never a zero."""
        if reading.error is not None:
            driven.failures[reading.name] = driven.failures.get(reading.name, 0) + 1
            meta = driven.sj.metadata
            self.stats.trigger_failures[f"{meta.namespace}/{meta.name}/{reading.name}"] += 1
        else:
            driven.failures[reading.name] = 0
        spec = reading.spec
        return TriggerQueue(
            reading.name, reading.value, spec.target, spec.activation_target, reading.error
        )

    async def _owned_jobs(self, sj: ScaledJob) -> list[JSON]:
        items, _ = await self.cluster.list(
            JOBS, sj.metadata.namespace, f"{SCALED_JOB_LABEL}={sj.metadata.name}"
        )
        return [job for job in items if owned_by(job, sj)]

    async def _pods_by_job(self, sj: ScaledJob) -> dict[str, list[JSON]]:
        """The Pods of this ScaledJob's Jobs (KEDA labels the pod template), by Job name."""
        pods, _ = await self.cluster.list(
            PODS, sj.metadata.namespace, f"{SCALED_JOB_LABEL}={sj.metadata.name}"
        )
        grouped: dict[str, list[JSON]] = {}
        for pod in pods:
            job = pod_job_name(pod)
            if job is not None:
                grouped.setdefault(job, []).append(pod)
        return grouped

    async def _roll_out(self, driven: _Driven, unfinished: list[JSON]) -> list[JSON]:
        """KEDA rollout `default`: Jobs of an earlier generation go; `gradual` keeps them."""
        sj = driven.sj
        rollout = sj.spec.rollout
        strategy = sj.spec.rollout_strategy or (rollout.strategy if rollout else "default")
        generation = sj.metadata.generation
        if strategy == "gradual" or generation is None:
            return unfinished
        stale = [
            job
            for job in unfinished
            if _annotations(job).get(GENERATION_ANNOTATION, str(generation)) != str(generation)
        ]
        if stale:
            policy = rollout.propagation_policy if rollout else "background"
            log.info("ScaledJob %s: rollout deletes %d older Jobs", sj.metadata.name, len(stale))
            await self._delete_jobs(sj, stale, policy)
        gone = {_name(job) for job in stale}
        return [job for job in unfinished if _name(job) not in gone]

    async def _create_jobs(self, driven: _Driven, count: int) -> None:
        created = 0
        for _ in range(count):
            try:
                await self.cluster.create(JOBS, job_manifest(driven.sj))
            except ClusterError as exc:
                self.stats.create_failures += 1
                message = f"Failed to create job {driven.sj.metadata.name}-: {exc}"
                await self.cluster.record_event(
                    driven.raw, "KEDAJobCreateFailed", message, "Warning"
                )
                break  # the rest would fail alike; the next poll recounts and retries
            created += 1
        if created:
            self.stats.jobs_created += created
            await self.cluster.record_event(
                driven.raw, "KEDAJobsCreated", f"Created {created} jobs"
            )

    async def _delete_jobs(
        self, sj: ScaledJob, jobs: Sequence[JSON], policy: Literal["background", "foreground"]
    ) -> None:
        """Delete Jobs with their Pods; foreground removes the Pods before the Job."""
        if not jobs:
            return
        pods = await self._pods_by_job(sj)
        namespace = sj.metadata.namespace
        for job in jobs:
            dependents = [(PODS, _name(pod)) for pod in pods.get(_name(job), [])]
            steps = [(JOBS, _name(job)), *dependents]
            for kind, name in reversed(steps) if policy == "foreground" else steps:
                # NotFound: already gone, or collected by the cluster's own GC
                with contextlib.suppress(NotFound):
                    await self.cluster.delete(kind, name, namespace)
            self.stats.jobs_deleted += 1

    async def _write_status(self, driven: _Driven, flags: dict[str, str], now: float) -> None:
        """Patch conditions when they change; lastActiveTime at most once a minute."""
        if "Ready" not in flags:  # paused: the other conditions keep their last values
            flags = {"Ready": "True", "Active": "False", **flags}
        last_active = driven.last_active
        stale = last_active is not None and (
            driven.written_active is None or last_active - driven.written_active >= ACTIVE_REFRESH
        )
        if flags == driven.last_flags and not stale:
            return
        status: JSON = {
            "conditions": [
                self._transition(driven, kind, value, now) for kind, value in flags.items()
            ]
        }
        if last_active is not None:
            status["lastActiveTime"] = rfc3339(last_active)
        meta = driven.sj.metadata
        await self.cluster.patch_status(SCALED_JOBS, meta.name, status, meta.namespace)
        driven.last_flags, driven.written_active = flags, last_active

    @staticmethod
    def _transition(driven: _Driven, kind: str, value: str, now: float) -> JSON:
        """A condition whose lastTransitionTime moves only when its status changes."""
        previous = driven.conditions.get(kind)
        if previous is None or previous["status"] != value:
            reason, message = _CONDITION_TEXT[(kind, value)]
            previous = {**condition(kind, value == "True", reason, message, now), "status": value}
            driven.conditions[kind] = previous
        return previous

    # --- introspection for tests and the simulator ---------------------------------------

    def driven(self) -> list[Key]:
        return sorted(self._driven)

    def last_decision(self, namespace: str, name: str) -> JobDecision | None:
        driven = self._driven.get((namespace, name))
        return driven.last_decision if driven else None


# --- reading ScaledJobs and Jobs (pure) ------------------------------------------------------


def keda_job_rules(sj: ScaledJob) -> str | None:
    """KEDA's reconciler rules the model does not check: no metricType on ScaledJob triggers."""
    for index, trigger in enumerate(sj.spec.triggers):
        if trigger.metric_type is not None:
            return (
                f"spec.triggers[{index}].metricType: cannot be set in a ScaledJob trigger, "
                f'got "{trigger.metric_type.value}"'
            )
    return None


def job_trigger_specs(sj: ScaledJob) -> list[tuple[int, str, MetricSpec]]:
    """(index, name, spec) of each trigger that can create Jobs; KEDA skips cpu/memory ones."""
    found = []
    for index, trigger in enumerate(sj.spec.triggers):
        name = trigger.name or str(index)
        spec = registry.metric_spec(trigger.type, trigger.metadata, index, trigger.name)
        if spec.source is MetricSource.EXTERNAL:
            found.append((index, name, spec))
    return found


def paused(sj: ScaledJob) -> bool:
    """KEDA's paused annotation, read with strconv.ParseBool; an unreadable value pauses."""
    value = sj.metadata.annotations.get(PAUSED_ANNOTATION)
    return value is not None and value not in _FALSE_WORDS


def job_manifest(sj: ScaledJob) -> JSON:
    """A new batch/v1 Job from `jobTargetRef`, labelled, annotated and owned as KEDA does."""
    meta = sj.metadata
    excluded = {
        label.strip()
        for label in meta.annotations.get(EXCLUDED_LABELS_ANNOTATION, "").split(",")
        if label.strip()
    }
    labels = {
        "app.kubernetes.io/name": meta.name,
        "app.kubernetes.io/version": _VERSION,
        "app.kubernetes.io/part-of": meta.name,
        "app.kubernetes.io/managed-by": "ebbflow",
        **{key: value for key, value in meta.labels.items() if key not in excluded},
        SCALED_JOB_LABEL: meta.name,  # last: the label that finds the Jobs again must hold
    }
    annotations = {GENERATION_ANNOTATION: str(meta.generation or 0), **meta.annotations}
    spec = sj.spec.job_target_ref.model_dump(by_alias=True, exclude_none=True, mode="json")
    template = spec["template"]
    pod_meta = template.setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), SCALED_JOB_LABEL: meta.name}
    pod_spec = template.setdefault("spec", {})
    if not pod_spec.get("restartPolicy"):
        # KEDA: Jobs reject the client default "Always"
        pod_spec["restartPolicy"] = "OnFailure"
    job_meta: JSON = {
        "generateName": f"{meta.name}-",
        "namespace": meta.namespace,
        "labels": labels,
        "annotations": annotations,
    }
    if meta.uid:
        job_meta["ownerReferences"] = [
            {
                "apiVersion": sj.api_version,
                "kind": "ScaledJob",
                "name": meta.name,
                "uid": meta.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {"apiVersion": JOBS.api_version, "kind": JOBS.kind, "metadata": job_meta, "spec": spec}


def owned_by(job: JSON, sj: ScaledJob) -> bool:
    """Whether `job` (found by label) is this ScaledJob's: not controlled by anything else."""
    for ref in job["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            if ref.get("kind") != "ScaledJob" or ref.get("name") != sj.metadata.name:
                return False
            return not (ref.get("uid") and sj.metadata.uid) or ref["uid"] == sj.metadata.uid
    return True  # KEDA counts by label alone


def finished_type(job: JSON) -> str | None:
    """ "Complete" or "Failed" once a entry of that type is True; None while unfinished."""
    for entry in (job.get("status") or {}).get("conditions") or ():
        if entry.get("type") in ("Complete", "Failed") and entry.get("status") == "True":
            return str(entry["type"])
    return None


def is_pending(job: JSON, pods: Sequence[JSON], conditions: Sequence[str]) -> bool:
    """KEDA's pending Job: unfinished, and no pod has started (or met every listed condition).

    Without pendingPodConditions the Job's own ready/succeeded counters count as started
    pods too: the Job controller keeps them from the same pods, and a cluster that shows no
    Pods (the simulator) has only them.
    """
    if finished_type(job) is not None:
        return False
    if conditions:
        return not any(
            all(_pod_condition_true(pod, wanted) for wanted in conditions) for pod in pods
        )
    status = job.get("status") or {}
    if (status.get("ready") or 0) > 0 or (status.get("succeeded") or 0) > 0:
        return False
    return not any(
        (pod.get("status") or {}).get("phase") in ("Running", "Succeeded") for pod in pods
    )


def beyond_history(sj: ScaledJob, jobs: Sequence[JSON]) -> list[JSON]:
    """Finished Jobs past successful/failedJobsHistoryLimit, oldest first (KEDA cleanUp)."""
    excess: list[JSON] = []
    limits = (
        ("Complete", sj.spec.successful_jobs_history_limit),
        ("Failed", sj.spec.failed_jobs_history_limit),
    )
    for kind, limit in limits:
        done = sorted((job for job in jobs if finished_type(job) == kind), key=_finished_at)
        excess.extend(done[: max(len(done) - limit, 0)])
    return excess


def pod_job_name(pod: JSON) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or ():
        if ref.get("kind") == "Job" and ref.get("name"):
            return str(ref["name"])
    labels = pod["metadata"].get("labels") or {}
    for label in JOB_NAME_LABELS:
        if labels.get(label):
            return str(labels[label])
    return None


def _finished_at(job: JSON) -> tuple[float, str]:
    # KEDA sorts by completionTime, which failed Jobs lack: the finishing entry's
    # transition time stands in, then the creation time
    status = job.get("status") or {}
    stamp = status.get("completionTime")
    for entry in status.get("conditions") or ():
        if not stamp and entry.get("type") in ("Complete", "Failed"):
            stamp = entry.get("lastTransitionTime")
    stamp = stamp or job["metadata"].get("creationTimestamp")
    return parse_rfc3339(stamp) or 0.0, _name(job)


def _pod_condition_true(pod: JSON, kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def _name(obj: JSON) -> str:
    return str(obj["metadata"]["name"])


def _annotations(obj: JSON) -> dict[str, Any]:
    return dict(obj["metadata"].get("annotations") or {})


__all__ = ["JobControllerStats", "JobScalerFactory", "ScaledJobController"]
