"""The Cluster port: what controllers may ask of Kubernetes, and the errors it raises.

Objects cross this port as Kubernetes JSON (dicts shaped exactly as the API server sends
them), so the in-memory cluster, the REST emulator and the real client are drop-in
replacements for each other. Controllers parse what they need into pydantic models at
their edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

JSON = dict[str, Any]
PatchType = Literal["merge", "json"]


@dataclass(frozen=True)
class Kind:
    """A resource type: its group/version/kind and REST plural."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    scalable: bool = False  # has the /scale subresource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


PODS = Kind("", "v1", "Pod", "pods")
NODES = Kind("", "v1", "Node", "nodes", namespaced=False)
EVENTS = Kind("", "v1", "Event", "events")
NAMESPACES = Kind("", "v1", "Namespace", "namespaces", namespaced=False)
DEPLOYMENTS = Kind("apps", "v1", "Deployment", "deployments", scalable=True)
STATEFULSETS = Kind("apps", "v1", "StatefulSet", "statefulsets", scalable=True)
JOBS = Kind("batch", "v1", "Job", "jobs")
SCALED_OBJECTS = Kind("ebbflow.io", "v1alpha1", "ScaledObject", "scaledobjects")
SCALED_JOBS = Kind("ebbflow.io", "v1alpha1", "ScaledJob", "scaledjobs")
# the KEDA HTTP add-on's http.keda.sh/v1alpha1 shape, under our group
HTTP_SCALED_OBJECTS = Kind("ebbflow.io", "v1alpha1", "HTTPScaledObject", "httpscaledobjects")
TRIGGER_AUTHENTICATIONS = Kind(
    "ebbflow.io", "v1alpha1", "TriggerAuthentication", "triggerauthentications"
)
CLUSTER_TRIGGER_AUTHENTICATIONS = Kind(
    "ebbflow.io",
    "v1alpha1",
    "ClusterTriggerAuthentication",
    "clustertriggerauthentications",
    namespaced=False,
)
LEASES = Kind("coordination.k8s.io", "v1", "Lease", "leases")
# metrics-server's resource metrics (metrics.k8s.io), read by the cpu and memory triggers
POD_METRICS = Kind("metrics.k8s.io", "v1beta1", "PodMetrics", "pods")
SECRETS = Kind("", "v1", "Secret", "secrets")
CONFIG_MAPS = Kind("", "v1", "ConfigMap", "configmaps")
SERVICES = Kind("", "v1", "Service", "services")
ENDPOINTS = Kind("", "v1", "Endpoints", "endpoints")  # the interceptor's readiness source
POD_DISRUPTION_BUDGETS = Kind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets")
# Karpenter's karpenter.sh/v1 shapes, under our group at the same version.
NODE_POOLS = Kind("ebbflow.io", "v1", "NodePool", "nodepools", namespaced=False)
NODE_CLAIMS = Kind("ebbflow.io", "v1", "NodeClaim", "nodeclaims", namespaced=False)

BUILTIN_KINDS: tuple[Kind, ...] = (
    PODS,
    NODES,
    EVENTS,
    NAMESPACES,
    DEPLOYMENTS,
    STATEFULSETS,
    JOBS,
    SCALED_OBJECTS,
    SCALED_JOBS,
    HTTP_SCALED_OBJECTS,
    TRIGGER_AUTHENTICATIONS,
    CLUSTER_TRIGGER_AUTHENTICATIONS,
    SECRETS,
    CONFIG_MAPS,
    SERVICES,
    ENDPOINTS,
    LEASES,
    POD_METRICS,
    POD_DISRUPTION_BUDGETS,
    NODE_POOLS,
    NODE_CLAIMS,
)

# Groups whose manifests we accept as ours, field for field (DESIGN: compatible by shape).
GROUP_ALIASES: Mapping[str, str] = {
    "keda.sh": "ebbflow.io",
    "karpenter.sh": "ebbflow.io",
    "http.keda.sh": "ebbflow.io",
}


def kind_for(api_version: str, kind: str) -> Kind:
    """The Kind of a (apiVersion, kind) pair; keda.sh and karpenter.sh map to our group."""
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    group = GROUP_ALIASES.get(group, group)
    for known in BUILTIN_KINDS:
        if known.kind == kind and known.group == group:
            return known
    raise NotFound(f"no resource type {kind} in {api_version}")


@dataclass(frozen=True)
class Scale:
    """autoscaling/v1 Scale: the desired and observed replicas of a scalable resource."""

    namespace: str
    name: str
    replicas: int
    status_replicas: int
    selector: str = ""
    resource_version: str = ""


@dataclass(frozen=True)
class WatchEvent:
    """One watch notification: ADDED, MODIFIED, DELETED or BOOKMARK, with the object."""

    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    object: JSON


# --- errors: typed, and retry is decided by the type ------------------------------------------


class ClusterError(Exception):
    """Base of every error the Cluster port raises."""

    status: int = 500


class TemporaryError(ClusterError):
    """Worth retrying (after backoff): conflicts, throttling, server errors, timeouts."""


class PermanentError(ClusterError):
    """Retrying the same request cannot succeed."""


class NotFound(PermanentError):
    status = 404


class AlreadyExists(PermanentError):
    status = 409


class Invalid(PermanentError):
    status = 422


class Conflict(TemporaryError):
    """A stale resourceVersion: re-read and re-apply."""

    status = 409


class Gone(TemporaryError):
    """A watch resourceVersion too old to resume from: re-list."""

    status = 410


class ServerError(TemporaryError):
    """5xx, or the server could not be reached."""

    status = 500


class TooManyRequests(TemporaryError):
    status = 429

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Cluster(Protocol):
    """Async access to a Kubernetes cluster. Every method may raise a ClusterError."""

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> JSON: ...

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[JSON], str]:
        """The matching objects and the list's resourceVersion (to start a watch from)."""
        ...

    def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: str | None = None,
        resource_version: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Changes after `resource_version` (or from now); raises Gone if it is too old."""
        ...

    async def create(self, kind: Kind, obj: JSON) -> JSON: ...

    async def replace(self, kind: Kind, obj: JSON) -> JSON:
        """Update to `obj`; raises Conflict when its resourceVersion is stale."""
        ...

    async def patch(
        self,
        kind: Kind,
        name: str,
        patch: Any,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
    ) -> JSON: ...

    async def delete(self, kind: Kind, name: str, namespace: str | None = None) -> None: ...

    async def get_scale(self, kind: Kind, name: str, namespace: str) -> Scale: ...

    async def patch_scale(self, kind: Kind, name: str, namespace: str, replicas: int) -> Scale: ...

    async def patch_status(
        self, kind: Kind, name: str, status: Mapping[str, Any], namespace: str | None = None
    ) -> JSON:
        """Merge-patch the status subresource (spec changes in the patch are ignored)."""
        ...

    async def record_event(
        self,
        regarding: JSON,
        reason: str,
        message: str,
        type: Literal["Normal", "Warning"] = "Normal",
    ) -> None:
        """Record a core/v1 Event about `regarding` (counts repeats like the kubelet does)."""
        ...

    async def evict(
        self, name: str, namespace: str, grace_period_seconds: int | None = None
    ) -> None:
        """Evict a pod (policy/v1 Eviction): TooManyRequests, with retry_after, while a
        PodDisruptionBudget forbids it; NotFound when the pod is gone."""
        ...

    async def bind(self, name: str, namespace: str, node: str) -> None:
        """Bind a pod to `node` (v1 Binding, as a scheduler does): sets spec.nodeName;
        Conflict when the pod is already bound."""
        ...
