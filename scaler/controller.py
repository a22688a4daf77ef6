"""The scaling controller: one guarded task per ScaledObject, polling its triggers.

Each poll gathers (current replicas from `/scale`, one reading per trigger), calls the
pure engine, and applies the result: a `/scale` patch when the count changes, an Event,
and the status KEDA writes (conditions, lastActiveTime, health). The same code runs
against the in-memory cluster with a virtual clock (the simulator) and against a real
cluster; only the ports differ.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from kube.port import (
    SCALED_OBJECTS,
    Cluster,
    ClusterError,
    Kind,
    kind_for,
)
from scaler.api import ScaledObject
from scaler.clock import Clock
from scaler.decision import Decision, ScalingState, decide
from scaler.loops import (
    BACKOFF_MAX,
    BACKOFF_START,
    close_scaler,
    condition,
    key_of,
    parse_rfc3339,
    read_trigger,
    rfc3339,
    watch_objects,
)
from scaler.manifests import issues_from, validation_context
from scaler.predictive import Predictor, PredictorFactory, predictive_condition, with_prediction
from scaler.triggers import trigger_specs
from scalers.base import MetricSpec, Scaler

log = logging.getLogger("ebbflow.scaler")

# lastActiveTime is rewritten at most this often while active: after a restart, the
# cooldown may start up to this many seconds early, in exchange for far fewer writes
ACTIVE_REFRESH = 60.0

_CONDITION_TEXT = {
    ("Ready", True): (
        "ScaledObjectReady",
        "ScaledObject is defined correctly and is ready for scaling",
    ),
    ("Ready", False): ("TriggersFailing", "every trigger is failing"),
    ("Active", True): ("ScalerActive", "Scaling is performed because triggers are active"),
    ("Active", False): (
        "ScalerNotActive",
        "Scaling is not performed because triggers are not active",
    ),
    ("Fallback", True): (
        "FallbackExists",
        "At least one trigger is falling back on this scaled object",
    ),
    ("Fallback", False): ("NoFallbackFound", "No fallbacks are active on this scaled object"),
    ("Paused", True): ("ScaledObjectPaused", "ScaledObject is paused"),
    ("Paused", False): ("ScaledObjectUnpaused", "ScaledObject is not paused"),
}


class ScalerFactory(Protocol):
    """Builds the live metric source of one trigger of a ScaledObject (may resolve auth)."""

    async def __call__(
        self, so: ScaledObject, index: int, name: str, spec: MetricSpec
    ) -> Scaler: ...


@dataclass
class ControllerStats:
    """Counters a test or the operator's /metrics can read."""

    polls: int = 0
    scale_patches: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # by ScaledObject key
    invalid: Counter[str] = field(default_factory=Counter)


class ControllerObserver(Protocol):
    """What the controller reports as it works (the operator turns it into /metrics)."""

    def on_poll(
        self, key: tuple[str, str], so: ScaledObject, decision: Decision, lateness: float
    ) -> None: ...

    def on_error(self, key: tuple[str, str], error: BaseException) -> None: ...

    def on_forget(self, key: tuple[str, str]) -> None: ...


class _Quiet:
    def on_poll(
        self, key: tuple[str, str], so: ScaledObject, decision: Decision, lateness: float
    ) -> None:
        return None

    def on_error(self, key: tuple[str, str], error: BaseException) -> None:
        return None

    def on_forget(self, key: tuple[str, str]) -> None:
        return None


def _everything(namespace: str, name: str) -> bool:
    return True


def _spread(key: tuple[str, str], interval: float) -> float:
    """A stable offset in [0, interval) for `key` (the same on every replica and restart)."""
    digest = hashlib.blake2b(f"{key[0]}/{key[1]}".encode(), digest_size=4).digest()
    return interval * int.from_bytes(digest, "big") / 2**32


@dataclass
class _Driven:
    """What the controller keeps per ScaledObject."""

    so: ScaledObject
    raw: dict[str, Any]
    scalers: list[tuple[str, MetricSpec, Scaler]]
    task: asyncio.Task[None] | None = None
    state: ScalingState = field(default_factory=ScalingState)
    last_status: dict[str, Any] | None = None
    last_flags: dict[str, bool] | None = None
    written_active: float | None = None
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    original: int | None = None  # the target's replicas before it was first scaled
    predictor: Predictor | None = None  # spec.predictive: the forecast and its refit task
    predictive: dict[str, Any] | None = None  # the Predictive condition
    written_predictive: dict[str, Any] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # a pushed activation


class ScalingController:
    """Drives every ScaledObject in `namespace` (or all namespaces)."""

    # hooks for controllers of kinds that become a ScaledObject (scaler/http_scaling.py)
    kind: Kind = SCALED_OBJECTS
    wakeable = False  # True: `wake` cuts a polling interval short

    def parse(self, raw: dict[str, Any]) -> ScaledObject:
        """The ScaledObject that `raw` (an object of `kind`) asks for; raises ValidationError."""
        return ScaledObject.model_validate(raw, context=validation_context())

    def wake(self, namespace: str, name: str) -> bool:
        """Poll namespace/name now rather than at its next interval (with `wakeable`)."""
        driven = self._driven.get((namespace, name))
        if driven is None:
            return False
        driven.wake.set()
        return True

    def __init__(
        self,
        cluster: Cluster,
        clock: Clock,
        scalers: ScalerFactory,
        namespace: str | None = None,
        observer: ControllerObserver | None = None,
        owns: Callable[[str, str], bool] = _everything,
        stagger: bool = False,
        predictors: PredictorFactory | None = None,
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.scaler_factory = scalers
        self.namespace = namespace
        self.observer: ControllerObserver = observer or _Quiet()
        self.stats = ControllerStats()
        self._owns = owns
        self.stagger = stagger
        self.predictors = predictors  # None: spec.predictive is ignored (reactive only)
        self._resorting = False
        self._driven: dict[tuple[str, str], _Driven] = {}
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}  # every object, driven or not
        self.listed = False  # the first list is done: the operator is ready

    async def set_ownership(self, owns: Callable[[str, str], bool]) -> None:
        """Drive only the objects `owns(namespace, name)` accepts (shards); re-sort them now."""
        self._owns = owns
        self._resorting = True  # a shard change starts many objects at once: spread them
        try:
            for raw in list(self._seen.values()):
                await self.upsert(raw)
        finally:
            self._resorting = False

    # --- watching ScaledObjects ---------------------------------------------------------

    async def run(self) -> None:
        """List and watch ScaledObjects, keeping one polling task per object, until cancelled."""

        try:
            await watch_objects(
                self.cluster,
                self.clock,
                self.kind,
                self.namespace,
                self.upsert,
                self.remove,
                lambda: list(self._seen),
                on_listed=self._mark_listed,
            )
        finally:
            await self.stop()

    def _mark_listed(self) -> None:
        self.listed = True

    async def upsert(self, raw: dict[str, Any]) -> None:
        """Start driving `raw`, or pick up its new spec; an invalid object is reported, not run."""
        key = key_of(raw)
        self._seen[key] = raw
        if not self._owns(*key):  # another shard's: make sure we are not driving it
            if key in self._driven:
                await self.remove(key, forget=False)
            return
        driven = self._driven.get(key)
        if (
            driven is not None
            and driven.raw.get("spec") == raw.get("spec")
            and (driven.raw["metadata"].get("annotations") == raw["metadata"].get("annotations"))
        ):
            driven.raw = raw  # a status or metadata-only change: nothing to rebuild
            return
        try:
            so = self.parse(raw)
        except ValidationError as exc:
            await self._reject(key, raw, exc)
            return
        try:
            scalers = [
                (name, spec, await self.scaler_factory(so, i, name, spec))
                for i, (name, spec) in enumerate(trigger_specs(so))
            ]
        except Exception as exc:  # e.g. a missing TriggerAuthentication: report, don't crash
            await self._reject_message(key, raw, f"{type(exc).__name__}: {exc}")
            return
        status = raw.get("status") or {}
        if driven is None:
            state = ScalingState(
                last_active=parse_rfc3339(status.get("lastActiveTime")),
                created=parse_rfc3339(raw["metadata"].get("creationTimestamp")),
            )
            driven = _Driven(so, raw, scalers, state=state)
            original = status.get("originalReplicaCount")
            driven.original = original if isinstance(original, int) else None
            self._driven[key] = driven
            await self._start_predictor(driven)
            # objects started together (first list, a change of shards) would all poll in
            # the same instant, every interval: spread them (a new object polls at once)
            bulk = not self.listed or self._resorting
            delay = _spread(key, so.spec.polling_interval) if self.stagger and bulk else 0
            driven.task = asyncio.get_running_loop().create_task(
                self._drive(key, delay), name=f"scaledobject/{key[0]}/{key[1]}"
            )
        else:
            old = driven.scalers
            driven.so, driven.raw, driven.scalers = so, raw, scalers
            for _, _, scaler in old:
                await close_scaler(scaler)
            await self._start_predictor(driven)

    async def remove(self, key: tuple[str, str], forget: bool = True) -> None:
        """Stop driving `key`; `forget` also drops it from the objects seen (it was deleted)."""
        if forget:
            self._seen.pop(key, None)
        driven = self._driven.pop(key, None)
        self.observer.on_forget(key)
        if driven is None:
            return
        if driven.task is not None:
            driven.task.cancel()
            await asyncio.gather(driven.task, return_exceptions=True)
        if driven.predictor is not None:
            await driven.predictor.stop()
        for _, _, scaler in driven.scalers:
            await close_scaler(scaler)
        if forget:
            await self._restore(driven)

    async def _restore(self, driven: _Driven) -> None:
        """KEDA's advanced.restoreToOriginalReplicaCount: a deleted ScaledObject hands its
        target back at the count it had before it was first scaled."""
        so = driven.so
        if not (so.spec.advanced and so.spec.advanced.restore_to_original_replica_count):
            return
        if driven.original is None:
            return
        target = so.spec.scale_target_ref
        try:
            kind = kind_for(target.api_version, target.kind)
            await self.cluster.patch_scale(
                kind, target.name, so.metadata.namespace, driven.original
            )
        except ClusterError as exc:
            log.warning(
                "could not restore %s/%s to %d replicas: %s",
                so.metadata.namespace,
                target.name,
                driven.original,
                exc,
            )

    async def stop(self) -> None:
        """Stop driving everything (shutdown): objects are not deleted, nothing is restored."""
        for key in list(self._driven):
            await self.remove(key, forget=False)

    async def _reject(
        self, key: tuple[str, str], raw: dict[str, Any], exc: ValidationError
    ) -> None:
        message = "; ".join(f"{i.path}: {i.message}" for i in issues_from(exc, "", 0))
        await self._reject_message(key, raw, message)

    async def _reject_message(
        self, key: tuple[str, str], raw: dict[str, Any], message: str
    ) -> None:
        """Stop driving `key`; say why in its Ready condition and a Warning event."""
        self.stats.invalid[f"{key[0]}/{key[1]}"] += 1
        log.warning("ScaledObject %s/%s is not driven: %s", key[0], key[1], message)
        await self.remove(key, forget=False)
        ready = condition("Ready", False, "ScaledObjectCheckFailed", message, 0)
        try:
            await self.cluster.patch_status(self.kind, key[1], {"conditions": [ready]}, key[0])
            await self.cluster.record_event(raw, "ScaledObjectCheckFailed", message, "Warning")
        except ClusterError as err:
            log.warning("cannot report invalid ScaledObject %s/%s: %s", key[0], key[1], err)

    # --- polling ------------------------------------------------------------------------

    async def _drive(self, key: tuple[str, str], delay: float = 0.0) -> None:
        """Poll forever; an exception is logged, counted and retried with backoff."""
        failures = 0
        due = self.clock.now() + delay
        first = self._driven.get(key)
        if delay and first is not None:
            await self._pause(first, delay)  # a pushed activation cuts the stagger short too
        while True:
            driven = self._driven.get(key)
            if driven is None:
                return
            try:
                await self.poll(key, lateness=max(0.0, self.clock.now() - due))
                failures = 0
                due = self.clock.now() + driven.so.spec.polling_interval
                await self._pause(driven, driven.so.spec.polling_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the guard: one object's failure never stops the others
                failures += 1
                self.stats.errors[f"{key[0]}/{key[1]}"] += 1
                self.observer.on_error(key, exc)
                backoff = min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_MAX)
                log.warning(
                    "poll of %s/%s failed (%s: %s); retrying in %.0fs",
                    key[0],
                    key[1],
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                due = self.clock.now() + backoff
                await self.clock.sleep(backoff)

    async def _pause(self, driven: _Driven, seconds: float) -> None:
        """Sleep until the next poll, or until `wake` (only when `wakeable`)."""
        if not self.wakeable:
            await self.clock.sleep(seconds)
            return
        if not driven.wake.is_set():
            sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
            woken = asyncio.ensure_future(driven.wake.wait())
            try:
                await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                woken.cancel()
        driven.wake.clear()

    async def _start_predictor(self, driven: _Driven) -> None:
        """(Re)build the predictor of a predictive object; a spec change restarts its fits."""
        if driven.predictor is not None:
            await driven.predictor.stop()
            driven.predictor = None
        so = driven.so
        if self.predictors is None or so.predictive is None:
            driven.predictive = None
            return
        try:
            driven.predictor = await self.predictors(so)
        except Exception as exc:  # reactive only, and the status says why
            message = f"reactive only: cannot forecast: {type(exc).__name__}: {exc}"
            log.warning("%s/%s: %s", so.metadata.namespace, so.metadata.name, message)
            now = self.clock.now()
            driven.predictive = condition("Predictive", False, "FailedFit", message, now)
            return
        driven.predictor.start()

    def _predict(self, driven: _Driven, decision: Decision, current: int, now: float) -> Decision:
        """spec.predictive: the forecast may raise the reactive decision (scaler/predictive.py)."""
        predictor = driven.predictor
        if predictor is None or decision.paused:
            return decision
        result = predictor.decide(decision.desired_replicas, current, now)
        kept = predictive_condition(result, predictor.fit, now)
        previous = driven.predictive
        if previous is not None and previous["status"] == kept["status"]:
            kept["lastTransitionTime"] = previous["lastTransitionTime"]
        driven.predictive = kept
        return with_prediction(decision, result, current, now)

    async def poll(self, key: tuple[str, str], lateness: float = 0.0) -> Decision:
        """One poll of one ScaledObject: read, decide, apply. Raises on cluster errors."""
        driven = self._driven[key]
        so = driven.so
        namespace = so.metadata.namespace
        target = so.spec.scale_target_ref
        kind = kind_for(target.api_version, target.kind)
        scale = await self.cluster.get_scale(kind, target.name, namespace)
        if driven.original is None:
            driven.original = scale.replicas
        readings = [await read_trigger(name, spec, scaler) for name, spec, scaler in driven.scalers]
        now = self.clock.now()
        decision = decide(so, scale.replicas, readings, driven.state, now)
        decision = self._predict(driven, decision, scale.replicas, now)
        self.stats.polls += 1
        if decision.desired_replicas != scale.replicas:
            await self.cluster.patch_scale(kind, target.name, namespace, decision.desired_replicas)
            self.stats.scale_patches += 1
            await self._scaled_event(driven, kind, scale.replicas, decision)
        for reading in readings:
            if reading.error is not None and decision.state.failures.get(reading.name) == 1:
                await self.cluster.record_event(
                    driven.raw, "KEDAScalerFailed", f"{reading.name}: {reading.error}", "Warning"
                )
        driven.state = decision.state
        await self._write_status(driven, kind, decision, now)
        self.observer.on_poll(key, so, decision, lateness)
        return decision

    async def _scaled_event(
        self, driven: _Driven, kind: Kind, before: int, decision: Decision
    ) -> None:
        target = driven.so.spec.scale_target_ref
        what = f"{kind.api_version}.{kind.kind} {driven.so.metadata.namespace}/{target.name}"
        after = decision.desired_replicas
        if before == 0:
            reason, message = "KEDAScaleTargetActivated", f"Scaled {what} from 0 to {after}"
        elif after == 0:
            reason, message = "KEDAScaleTargetDeactivated", f"Scaled {what} from {before} to 0"
        else:
            reason = "SuccessfulRescale"
            message = (
                f"New size: {after}; reason: {decision.reasons[-1] if decision.reasons else ''}"
            )
        await self.cluster.record_event(driven.raw, reason, message)

    async def _write_status(
        self, driven: _Driven, kind: Kind, decision: Decision, now: float
    ) -> None:
        """Patch status when it changes, as KEDA does; lastActiveTime at most once a minute."""
        so = driven.so
        failures = decision.state.failures
        health = {
            spec.name: {
                "numberOfFailures": failures.get(name, 0),
                "status": "Failing" if failures.get(name, 0) else "Happy",
            }
            for name, spec, _ in driven.scalers
        }
        all_failing = bool(driven.scalers) and all(failures.get(n, 0) for n, _, _ in driven.scalers)
        flags = {
            "Ready": not all_failing,
            "Active": decision.active,
            "Fallback": decision.fallback,
            "Paused": decision.paused,
        }
        core: dict[str, Any] = {
            "scaleTargetKind": f"{kind.api_version}.{kind.kind}",
            "scaleTargetGVKR": {
                "group": kind.group,
                "version": kind.version,
                "kind": kind.kind,
                "resource": kind.plural,
            },
            "externalMetricNames": [spec.name for _, spec, _ in driven.scalers],
            "health": health,
        }
        if so.paused_replicas is not None:
            core["pausedReplicaCount"] = so.paused_replicas
        if driven.original is not None:
            core["originalReplicaCount"] = driven.original
        last_active = decision.state.last_active
        stale = last_active is not None and (
            driven.written_active is None or last_active - driven.written_active >= ACTIVE_REFRESH
        )
        unchanged = core == driven.last_status and flags == driven.last_flags
        if unchanged and driven.predictive == driven.written_predictive and not stale:
            return
        status = dict(core)
        status["conditions"] = [
            self._condition(driven, kind_, ok, now) for kind_, ok in flags.items()
        ]
        if driven.predictive is not None:
            status["conditions"].append(driven.predictive)
        driven.written_predictive = driven.predictive
        if last_active is not None:
            status["lastActiveTime"] = rfc3339(last_active)
        await self.cluster.patch_status(self.kind, so.metadata.name, status, so.metadata.namespace)
        driven.last_status, driven.last_flags = core, flags
        driven.written_active = last_active

    @staticmethod
    def _condition(driven: _Driven, kind: str, ok: bool, now: float) -> dict[str, Any]:
        """A KEDA condition; its lastTransitionTime moves only when its status flips."""
        reason, message = _CONDITION_TEXT[(kind, ok)]
        previous = driven.conditions.get(kind)
        if previous is None or previous["status"] != ("True" if ok else "False"):
            previous = condition(kind, ok, reason, message, now)
            driven.conditions[kind] = previous
        return previous

    # --- introspection for tests and the simulator ---------------------------------------

    def state_of(self, namespace: str, name: str) -> ScalingState | None:
        driven = self._driven.get((namespace, name))
        return driven.state if driven else None

    def driven(self) -> list[tuple[str, str]]:
        return sorted(self._driven)
