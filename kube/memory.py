"""An in-memory Kubernetes cluster that behaves like kube-apiserver, behind the Cluster port.

What it keeps from the API server: one global resourceVersion, uid/generation/
creationTimestamp, 409 on a stale update, merge and JSON patch, the /scale and /status
subresources (writes to the main resource keep the stored status), finalizers (delete marks
deletionTimestamp until they are gone), no-op updates that change nothing, and watches that
resume from a resourceVersion (410 Gone once it has left the history window) and turn a
label-selector mismatch into DELETED. Pods can be evicted (PodDisruptionBudgets checked as in
kube/disruption_budgets.py, 429 when one forbids it) and bound to a node (409 once bound).

Simplified: namespaces need not exist; without finalizers deletion is immediate (no grace
periods, no garbage collection of owned objects); create keeps the status it is given (handy
for seeding); a watch with no resourceVersion starts at the call, not with synthetic ADDED
events (ask for "0" for those). Every result is deterministic for a given `now` and call
sequence: uids and generated names come from counters, never from randomness or the clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from kube.disruption_budgets import eviction_refusal
from kube.patches import copy_object, ingest_object, json_patch, merge_patch
from kube.port import (
    EVENTS,
    JSON,
    POD_DISRUPTION_BUDGETS,
    PODS,
    AlreadyExists,
    Cluster,
    ClusterError,
    Conflict,
    Gone,
    Invalid,
    Kind,
    NotFound,
    PatchType,
    Scale,
    WatchEvent,
)
from kube.selectors import (
    Selector,
    is_dns_subdomain,
    label_key_error,
    label_value_error,
    parse_selector,
    render_label_selector,
)

HISTORY_LIMIT = 1000  # watch events kept per kind for resuming a watch
VERBS = frozenset(
    {"get", "list", "watch", "create", "replace", "patch", "delete"}
    | {"get_scale", "patch_scale", "patch_status", "record_event", "evict", "bind"}
)
# Kinds whose main resource owns `.status` (no status subresource); all others keep it.
_STATUSLESS = frozenset({"Event", "ConfigMap", "Secret"})
_UIDS = uuid.UUID("6f1d3c1e-2b9a-5c43-9a57-0e6b1f0c1d2e")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's generateName alphabet
_SYSTEM_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def rfc3339(seconds: float) -> str:
    """Epoch seconds as the API server writes timestamps: `2024-01-01T00:00:00Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _epoch() -> float:
    return 0.0


class Faults:
    """Errors to inject, for tests of retry and fallback paths.

    `cluster.faults.fail_next("patch_scale", Conflict("stale"))` makes the next
    `patch_scale` raise that error; `times` repeats it and `kind` narrows it to one resource
    type. Verbs are the Cluster method names (VERBS).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, Kind | None, ClusterError]] = []

    def fail_next(
        self, verb: str, error: ClusterError, *, times: int = 1, kind: Kind | None = None
    ) -> None:
        if verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}; expected one of {', '.join(sorted(VERBS))}")
        self._pending.extend([(verb, kind, error)] * times)

    def clear(self) -> None:
        self._pending.clear()

    def check(self, verb: str, kind: Kind) -> None:
        """Raise the first pending error for this call, consuming it."""
        for index, (pending_verb, pending_kind, error) in enumerate(self._pending):
            if pending_verb == verb and pending_kind in (None, kind):
                del self._pending[index]
                raise error


@dataclass(frozen=True)
class _Change:
    """One stored write. `object` and `previous` are stored versions, never mutated."""

    resource_version: int
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    object: JSON
    previous: JSON | None = None


@dataclass(eq=False)
class _Watcher:
    namespace: str | None
    selector: Selector | None
    after: int  # changes at or before this resourceVersion are not sent
    queue: asyncio.Queue[_Change | None] = field(default_factory=asyncio.Queue)


class MemoryCluster:
    """The Cluster port over dicts in memory. `now` gives epoch seconds for timestamps."""

    def __init__(
        self, now: Callable[[], float] = _epoch, *, history_limit: int = HISTORY_LIMIT
    ) -> None:
        self.faults = Faults()
        self._now = now
        self._history_limit = history_limit
        self._version = 0
        self._serial = 0  # generated names and event names
        self._objects: dict[Kind, dict[str, dict[str, JSON]]] = {}  # kind -> namespace -> name
        self._history: dict[Kind, deque[_Change]] = {}
        self._forgotten: dict[Kind, int] = {}  # newest resourceVersion dropped from history
        self._watchers: dict[Kind, dict[_Watcher, None]] = {}
        self._events: dict[tuple[str, str, str], tuple[str, str]] = {}  # correlation -> ns, name
        self._closed = False
        self._dry_run = False

    # --- reads ------------------------------------------------------------------------------

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> JSON:
        self.faults.check("get", kind)
        return copy_object(self._stored(kind, name, namespace))

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[JSON], str]:
        self.faults.check("list", kind)
        selector = parse_selector(label_selector) if label_selector else None
        if not kind.namespaced:
            namespace = None
        items = [
            copy_object(obj)
            for obj in self._each(kind, namespace)
            if selector is None or selector.matches(obj["metadata"].get("labels"))
        ]
        return items, str(self._version)

    @property
    def resource_version(self) -> str:
        """The newest resourceVersion: every change up to it has been published."""
        return str(self._version)

    @contextmanager
    def dry_run(self) -> Iterator[None]:
        """Writes inside validate and return what they would store, but store and publish
        nothing (the API server's `dryRun=All`).

        The async methods never suspend, so `with cluster.dry_run(): await cluster.create(...)`
        cannot interleave with another task's writes.
        """
        self._dry_run = True
        try:
            yield
        finally:
            self._dry_run = False

    @property
    def active_watches(self) -> int:
        """Watch streams currently registered (to prove they are cleaned up)."""
        return sum(len(watchers) for watchers in self._watchers.values())

    # --- writes -----------------------------------------------------------------------------

    async def create(self, kind: Kind, obj: JSON) -> JSON:
        self.faults.check("create", kind)
        return copy_object(self._create(kind, ingest_object(obj, kind.kind)))

    async def replace(self, kind: Kind, obj: JSON) -> JSON:
        self.faults.check("replace", kind)
        new = ingest_object(obj, kind.kind)
        metadata = _metadata(new, kind.kind)
        if not metadata.get("name"):
            raise Invalid(f"{kind.kind}: metadata.name: required")
        old = self._stored(kind, metadata["name"], metadata.get("namespace"))
        _check_precondition(kind, old, metadata.get("resourceVersion"))
        return copy_object(self._update(kind, old, new))

    async def patch(
        self,
        kind: Kind,
        name: str,
        patch: Any,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
    ) -> JSON:
        self.faults.check("patch", kind)
        old = self._stored(kind, name, namespace)
        if patch_type == "merge":
            new = merge_patch(old, ingest_object(patch, "merge patch"))
        elif patch_type == "json":
            new = json_patch(old, patch)
        else:
            raise Invalid(f"patch type {patch_type!r}: expected 'merge' or 'json'")
        # A resourceVersion inside the patch is an optimistic-lock precondition.
        _check_precondition(kind, old, _metadata(new, kind.kind).get("resourceVersion"))
        return copy_object(self._update(kind, old, new))

    async def delete(self, kind: Kind, name: str, namespace: str | None = None) -> None:
        self.faults.check("delete", kind)
        self._delete(kind, self._stored(kind, name, namespace))

    def _delete(self, kind: Kind, old: JSON) -> None:
        metadata = old["metadata"]
        if not metadata.get("finalizers"):
            self._remove(kind, old)
        elif "deletionTimestamp" not in metadata:
            # Finalizers hold the object: mark it, and remove it when the last one is gone.
            marked = {
                **metadata,
                "deletionTimestamp": rfc3339(self._now()),
                "deletionGracePeriodSeconds": 0,
                "generation": metadata.get("generation", 0) + 1,
            }
            self._commit(kind, old, {**old, "metadata": marked})

    # --- pods/eviction, pods/binding ---------------------------------------------------------

    async def evict(
        self, name: str, namespace: str, grace_period_seconds: int | None = None
    ) -> None:
        """policy/v1 Eviction: delete the pod unless a PodDisruptionBudget forbids it.

        `grace_period_seconds` is accepted for the port's sake; deletion here is immediate
        (or held by finalizers) as with `delete`.
        """
        self.faults.check("evict", PODS)
        pod = self._stored(PODS, name, namespace)
        namespace = pod["metadata"]["namespace"]
        budgets = list(self._each(POD_DISRUPTION_BUDGETS, namespace))
        refusal = eviction_refusal(pod, budgets, list(self._each(PODS, namespace)))
        if refusal is not None:
            raise refusal.error()
        self._delete(PODS, pod)

    async def bind(self, name: str, namespace: str, node: str) -> None:
        """v1 Binding: set spec.nodeName and the PodScheduled condition in one write."""
        self.faults.check("bind", PODS)
        if not node:
            raise Invalid(f"Binding {namespace}/{name}: target.name: Required value")
        old = self._stored(PODS, name, namespace)
        self._commit(PODS, old, _bound(old, node))

    # --- subresources -----------------------------------------------------------------------

    async def get_scale(self, kind: Kind, name: str, namespace: str) -> Scale:
        self.faults.check("get_scale", kind)
        _require_scale(kind)
        return _scale_of(self._stored(kind, name, namespace))

    async def patch_scale(self, kind: Kind, name: str, namespace: str, replicas: int) -> Scale:
        self.faults.check("patch_scale", kind)
        _require_scale(kind)
        if type(replicas) is not int or replicas < 0:
            raise Invalid(f"{kind.kind} {namespace}/{name}: spec.replicas: must be >= 0")
        old = self._stored(kind, name, namespace)
        new = {**old, "spec": {**(old.get("spec") or {}), "replicas": replicas}}
        return _scale_of(self._update(kind, old, new))

    async def patch_status(
        self, kind: Kind, name: str, status: Mapping[str, Any], namespace: str | None = None
    ) -> JSON:
        self.faults.check("patch_status", kind)
        old = self._stored(kind, name, namespace)
        merged = merge_patch(old.get("status"), ingest_object(status, "status"))
        return copy_object(self._commit(kind, old, {**old, "status": merged}))

    async def record_event(
        self,
        regarding: JSON,
        reason: str,
        message: str,
        type: Literal["Normal", "Warning"] = "Normal",
    ) -> None:
        self.faults.check("record_event", EVENTS)
        metadata = regarding.get("metadata") or {}
        name, namespace = metadata.get("name"), metadata.get("namespace") or ""
        if not name or not regarding.get("kind"):
            raise Invalid("record_event: the regarding object needs kind and metadata.name")
        involved = {
            "apiVersion": regarding.get("apiVersion", ""),
            "kind": regarding["kind"],
            "name": name,
            "namespace": namespace,
            "uid": metadata.get("uid", ""),
        }
        stamp = rfc3339(self._now())
        # client-go's correlator, simplified: the same (object, reason, message) is counted.
        identity = involved["uid"] or f"{involved['kind']}/{namespace}/{name}"
        key = (identity, reason, message)
        known = self._events.get(key)
        old = self._objects.get(EVENTS, {}).get(known[0], {}).get(known[1]) if known else None
        if old is not None:
            self._commit(
                EVENTS, old, {**old, "count": old.get("count", 1) + 1, "lastTimestamp": stamp}
            )
            return
        self._serial += 1
        event = {
            "metadata": {
                "name": f"{name[:200].rstrip('-.')}.{self._serial:016x}",
                "namespace": namespace or "default",  # events about cluster objects go here
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": "ebbflow"},
            "reportingComponent": "ebbflow",
            "reportingInstance": "",
        }
        stored = self._create(EVENTS, ingest_object(event, "event"))
        self._events[key] = (stored["metadata"]["namespace"], stored["metadata"]["name"])

    # --- watch ------------------------------------------------------------------------------

    def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
        resource_version: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Changes after `resource_version`; "0" starts with ADDED for every current object.

        Bad selectors, bad versions and versions older than the history window raise here,
        before iteration (Invalid, Gone).
        """
        self.faults.check("watch", kind)
        selector = parse_selector(label_selector) if label_selector else None
        namespace = namespace if kind.namespaced else None
        if resource_version in (None, "", "0"):
            return self._stream(kind, namespace, selector, self._version, resource_version == "0")
        if not resource_version.isdigit():
            raise Invalid(f"{kind} watch: resourceVersion {resource_version!r}: not a version")
        after = int(resource_version)
        self._check_window(kind, after)
        return self._stream(kind, namespace, selector, after, False)

    def close(self) -> None:
        """End every watch stream; watches started afterwards end at once."""
        self._closed = True
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)

    async def _stream(
        self,
        kind: Kind,
        namespace: str | None,
        selector: Selector | None,
        after: int,
        initial: bool,
    ) -> AsyncIterator[WatchEvent]:
        # Up to the first yield nothing awaits, so the backlog and the registration see the
        # same state: no change is lost or sent twice between replay and live events.
        if self._closed:
            return
        watcher = _Watcher(namespace, selector, self._version if initial else after)
        if initial:
            backlog = [_Change(self._version, "ADDED", obj) for obj in self._each(kind, namespace)]
        else:
            self._check_window(kind, after)
            backlog = [c for c in self._history.get(kind, ()) if c.resource_version > after]
        watchers = self._watchers.setdefault(kind, {})
        watchers[watcher] = None
        try:
            for change in backlog:
                event = _event_for(watcher, change)
                if event is not None:
                    yield event
            while (change_or_end := await watcher.queue.get()) is not None:
                if change_or_end.resource_version > watcher.after:
                    event = _event_for(watcher, change_or_end)
                    if event is not None:
                        yield event
        finally:
            watchers.pop(watcher, None)

    def _check_window(self, kind: Kind, after: int) -> None:
        forgotten = self._forgotten.get(kind, 0)
        if after < forgotten:
            raise Gone(f"{kind} watch: too old resource version: {after} ({forgotten})")

    # --- storage ----------------------------------------------------------------------------

    def _stored(self, kind: Kind, name: str, namespace: str | None) -> JSON:
        namespace = (namespace or "default") if kind.namespaced else ""
        found = self._objects.get(kind, {}).get(namespace, {}).get(name)
        if found is None:
            raise NotFound(f'{kind} "{name}" not found' + (f" in {namespace}" if namespace else ""))
        return found

    def _each(self, kind: Kind, namespace: str | None) -> Iterator[JSON]:
        """Stored objects of a kind (in one namespace, or all), by namespace then name."""
        buckets = self._objects.get(kind, {})
        for ns in [namespace] if namespace is not None else sorted(buckets):
            bucket = buckets.get(ns, {})
            for name in sorted(bucket):
                yield bucket[name]

    def _create(self, kind: Kind, obj: JSON) -> JSON:
        _check_type(kind, obj)
        metadata = _metadata(obj, kind.kind)
        if metadata.get("resourceVersion"):
            raise Invalid(f"{kind.kind}: metadata.resourceVersion: must not be set on create")
        namespace = (metadata.get("namespace") or "default") if kind.namespaced else ""
        bucket = self._objects.get(kind, {}).get(namespace, {})
        name = metadata.get("name") or self._generated_name(kind, metadata, bucket)
        where = _where(kind, namespace, name)
        if not isinstance(name, str) or not is_dns_subdomain(name):
            raise Invalid(f"{where}: metadata.name: must be a lowercase RFC 1123 subdomain")
        if namespace and (
            len(namespace) > 63 or "." in namespace or not is_dns_subdomain(namespace)
        ):
            raise Invalid(f"{where}: metadata.namespace: must be a lowercase RFC 1123 label")
        if name in bucket:
            raise AlreadyExists(f'{kind} "{name}" already exists')
        _check_metadata(where, metadata, None)
        version = self._version + 1
        metadata.pop("deletionTimestamp", None)
        metadata.pop("deletionGracePeriodSeconds", None)
        metadata.update(
            name=name,
            uid=str(uuid.uuid5(_UIDS, f"{kind}/{namespace}/{name}/{version}")),
            resourceVersion=str(version),
            generation=1,
            creationTimestamp=rfc3339(self._now()),
        )
        if namespace:
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        stored = {"apiVersion": kind.api_version, "kind": kind.kind, **obj, "metadata": metadata}
        _default(kind, stored)
        if self._dry_run:
            return stored
        self._version = version
        self._objects.setdefault(kind, {}).setdefault(namespace, {})[name] = stored
        self._publish(kind, _Change(version, "ADDED", stored))
        return stored

    def _generated_name(self, kind: Kind, metadata: JSON, bucket: Mapping[str, JSON]) -> str:
        base = metadata.get("generateName")
        if not base or not isinstance(base, str):
            raise Invalid(f"{kind.kind}: metadata.name: required (or metadata.generateName)")
        while True:  # deterministic stand-in for apimachinery's random 5-character suffix
            self._serial += 1
            digest = hashlib.blake2b(f"{base}{self._serial}".encode(), digest_size=5).digest()
            name = base[:58] + "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in digest)
            if name not in bucket:
                return name

    def _update(self, kind: Kind, old: JSON, new: JSON) -> JSON:
        """Write `new` over `old` through the main resource: system metadata and (for kinds
        with a status subresource) the status are kept from `old`."""
        _check_type(kind, new)
        metadata, before = _metadata(new, kind.kind), old["metadata"]
        where = _where(kind, before.get("namespace", ""), before["name"])
        for key in ("name", "namespace") if kind.namespaced else ("name",):
            if metadata.get(key, before.get(key)) != before.get(key):
                raise Invalid(f"{where}: metadata.{key}: cannot be changed")
        _check_metadata(where, metadata, before)
        system = {key: before[key] for key in _SYSTEM_METADATA if key in before}
        candidate = {"apiVersion": kind.api_version, "kind": kind.kind, **new}
        candidate["metadata"] = {**metadata, **system}
        if not kind.namespaced:
            candidate["metadata"].pop("namespace", None)
        if kind.kind not in _STATUSLESS:
            candidate.pop("status", None)
            if "status" in old:
                candidate["status"] = old["status"]
        _default(kind, candidate)
        return self._commit(kind, old, candidate)

    def _commit(self, kind: Kind, old: JSON, new: JSON) -> JSON:
        """Store `new` (sharing nothing mutable with callers) as the next version of `old`."""
        if new == old:
            return old  # the API server does not write (or notify) a no-op update
        metadata = {**new["metadata"]}
        if _spec(new) != _spec(old):
            metadata["generation"] = old["metadata"].get("generation", 0) + 1
        if "deletionTimestamp" in metadata and not metadata.get("finalizers"):
            return self._remove(kind, {**new, "metadata": metadata})
        metadata["resourceVersion"] = str(self._version + 1)
        stored = {**new, "metadata": metadata}
        if self._dry_run:
            return stored
        self._version += 1
        self._objects[kind][metadata.get("namespace", "")][metadata["name"]] = stored
        self._publish(kind, _Change(self._version, "MODIFIED", stored, old))
        return stored

    def _remove(self, kind: Kind, last: JSON) -> JSON:
        version = str(self._version + 1)
        gone = {**last, "metadata": {**last["metadata"], "resourceVersion": version}}
        if self._dry_run:
            return gone
        self._version += 1
        del self._objects[kind][gone["metadata"].get("namespace", "")][gone["metadata"]["name"]]
        self._publish(kind, _Change(self._version, "DELETED", gone))
        return gone

    def _publish(self, kind: Kind, change: _Change) -> None:
        history = self._history.get(kind)
        if history is None:
            history = self._history[kind] = deque(maxlen=self._history_limit)
        if len(history) == history.maxlen:
            self._forgotten[kind] = history[0].resource_version
        history.append(change)
        for watcher in self._watchers.get(kind, ()):
            watcher.queue.put_nowait(change)  # unbounded: a slow watcher never blocks a write


# --- pure helpers ---------------------------------------------------------------------------


def _event_for(watcher: _Watcher, change: _Change) -> WatchEvent | None:
    """What a watcher sees of a change: filtered by namespace and selector, copied."""
    obj = change.object
    if watcher.namespace is not None and obj["metadata"].get("namespace") != watcher.namespace:
        return None
    selector = watcher.selector
    if selector is None:
        return WatchEvent(change.type, copy_object(obj))
    matches = selector.matches(obj["metadata"].get("labels"))
    if change.previous is None:
        return WatchEvent(change.type, copy_object(obj)) if matches else None
    matched = selector.matches(change.previous["metadata"].get("labels"))
    if matches:
        return WatchEvent("MODIFIED" if matched else "ADDED", copy_object(obj))
    if matched:
        # apiserver: the previous content, at the change's resourceVersion
        left = copy_object(change.previous)
        left["metadata"]["resourceVersion"] = str(change.resource_version)
        return WatchEvent("DELETED", left)
    return None


def _where(kind: Kind, namespace: str, name: str) -> str:
    """How errors name an object: `Deployment default/web`, `Node n1`."""
    return f"{kind.kind} {namespace}/{name}" if namespace else f"{kind.kind} {name}"


def _metadata(obj: JSON, what: str) -> JSON:
    metadata = obj.get("metadata")
    if metadata is None:
        metadata = obj["metadata"] = {}
    if not isinstance(metadata, dict):
        raise Invalid(f"{what}: metadata: must be an object")
    return metadata


def _check_type(kind: Kind, obj: JSON) -> None:
    for key, expected in (("apiVersion", kind.api_version), ("kind", kind.kind)):
        if obj.get(key, expected) != expected:
            raise Invalid(f"{kind.kind}: {key}: expected {expected!r}, got {obj[key]!r}")


def _check_metadata(where: str, metadata: JSON, before: JSON | None) -> None:
    """Labels, annotations and finalizers as apimachinery validates them."""
    old = before or {}
    labels = metadata.get("labels")
    if labels is not None and labels is not old.get("labels"):
        if not isinstance(labels, dict):
            raise Invalid(f"{where}: metadata.labels: must be an object")
        for key, value in labels.items():
            if not isinstance(value, str):
                raise Invalid(f"{where}: metadata.labels.{key}: must be a string")
            problem = label_key_error(key) or label_value_error(value)
            if problem:
                raise Invalid(f"{where}: metadata.labels: {problem}")
    for field_name in ("annotations",):
        values = metadata.get(field_name)
        if values is not None and not (
            isinstance(values, dict) and all(isinstance(v, str) for v in values.values())
        ):
            raise Invalid(f"{where}: metadata.{field_name}: must map strings to strings")
    finalizers = metadata.get("finalizers")
    if finalizers is not None:
        if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
            raise Invalid(f"{where}: metadata.finalizers: must be a list of strings")
        if "deletionTimestamp" in old and set(finalizers) - set(old.get("finalizers") or ()):
            raise Invalid(f"{where}: metadata.finalizers: cannot add one while deleting")


def _check_precondition(kind: Kind, old: JSON, resource_version: Any) -> None:
    current = old["metadata"]["resourceVersion"]
    if resource_version not in (None, "") and resource_version != current:
        raise Conflict(
            f'Operation cannot be fulfilled on {kind} "{old["metadata"]["name"]}": the object '
            "has been modified; please apply your changes to the latest version and try again"
        )


def _spec(obj: JSON) -> JSON:
    """What generation tracks: everything but metadata and status."""
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


def _default(kind: Kind, obj: JSON) -> None:
    # apps/v1 defaulting: spec.replicas is 1 when unset.
    if kind.scalable:
        spec = obj.get("spec")
        if spec is None or (isinstance(spec, dict) and "replicas" not in spec):
            obj["spec"] = {**(spec or {}), "replicas": 1}


def _bound(pod: JSON, node: str) -> JSON:
    """`pod` bound to `node`; Conflict when it is bound already or being deleted, as the API
    server's pods/binding answers."""
    metadata = pod["metadata"]
    name = metadata["name"]
    current = (pod.get("spec") or {}).get("nodeName")
    if current:
        raise Conflict(
            f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is already '
            f'assigned to node "{current}"'
        )
    if metadata.get("deletionTimestamp"):
        raise Conflict(f"pod {name} is being deleted, cannot be assigned to a host")
    status = pod.get("status") or {}
    conditions = [
        c
        for c in status.get("conditions") or []
        if isinstance(c, dict) and c.get("type") != "PodScheduled"
    ]
    conditions.append({"type": "PodScheduled", "status": "True"})
    return {
        **pod,
        "spec": {**(pod.get("spec") or {}), "nodeName": node},
        "status": {**status, "conditions": conditions},
    }


def _require_scale(kind: Kind) -> None:
    if not kind.scalable:
        raise NotFound(f"the server could not find the requested resource ({kind}/scale)")


def _scale_of(obj: JSON) -> Scale:
    metadata, spec = obj["metadata"], obj.get("spec") or {}
    return Scale(
        namespace=metadata.get("namespace", ""),
        name=metadata["name"],
        replicas=spec.get("replicas", 1),
        status_replicas=(obj.get("status") or {}).get("replicas", 0),
        selector=render_label_selector(spec.get("selector")),
        resource_version=metadata["resourceVersion"],
    )


if TYPE_CHECKING:  # mypy proves MemoryCluster satisfies the port
    _conforms: Cluster = MemoryCluster()
