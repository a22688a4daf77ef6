"""What the emulated API server serves: each resource at each group/version, aliases included.

A `Resource` is one REST resource as a client sees it (`scaledobjects` in `keda.sh/v1alpha1`);
its `kind` is where it is stored. Alias groups (keda.sh, karpenter.sh) share storage with
ours and see objects under the apiVersion they asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kube.port import (
    BUILTIN_KINDS,
    GROUP_ALIASES,
    JSON,
    PODS,
    Kind,
)

# Kinds no controller reads, served so that installs (a Helm chart through `kubectl apply`)
# work as against a real cluster; a CustomResourceDefinition also serves its resources.
CUSTOM_RESOURCE_DEFINITIONS = Kind(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False
)
PLATFORM_KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "ServiceAccount", "serviceaccounts"),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    Kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        namespaced=False,
    ),
    Kind("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    Kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    Kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
    CUSTOM_RESOURCE_DEFINITIONS,
)

# kubectl's short names and categories for the kinds we store (as the real API advertises them).
_SHORT_NAMES: dict[str, tuple[str, ...]] = {
    "pods": ("po",),
    "nodes": ("no",),
    "events": ("ev",),
    "namespaces": ("ns",),
    "deployments": ("deploy",),
    "statefulsets": ("sts",),
    "configmaps": ("cm",),
    "poddisruptionbudgets": ("pdb",),
    "serviceaccounts": ("sa",),
    "networkpolicies": ("netpol",),
    "customresourcedefinitions": ("crd", "crds"),
    "scaledobjects": ("so",),
    "scaledjobs": ("sj",),
    "triggerauthentications": ("ta", "triggerauth"),
    "clustertriggerauthentications": ("cta", "clustertriggerauth"),
    "httpscaledobjects": ("httpso",),
    "services": ("svc",),
    "endpoints": ("ep",),
}
_CATEGORIES: dict[str, tuple[str, ...]] = {
    "pods": ("all",),
    "deployments": ("all",),
    "statefulsets": ("all",),
    "jobs": ("all",),
    "scaledobjects": ("keda", "ebbflow"),
    "scaledjobs": ("keda", "ebbflow"),
    "triggerauthentications": ("keda", "ebbflow"),
    "clustertriggerauthentications": ("keda", "ebbflow"),
    "httpscaledobjects": ("keda", "ebbflow"),
    "services": ("all",),
    "nodepools": ("karpenter",),
    "nodeclaims": ("karpenter",),
}
# Kinds without a /status subresource: their main resource owns everything (memory.py agrees).
_NO_STATUS = frozenset(
    {
        "Event",
        "ConfigMap",
        "Secret",
        "Lease",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    }
)
_OBJECT_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    """One REST resource: served under `group`/`version`, stored as `kind`."""

    kind: Kind
    group: str
    version: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def plural(self) -> str:
        return self.kind.plural

    @property
    def namespaced(self) -> bool:
        return self.kind.namespaced

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def has_status(self) -> bool:
        return self.kind.kind not in _NO_STATUS

    @property
    def has_scale(self) -> bool:
        return self.kind.scalable

    @property
    def group_resource(self) -> str:
        """How errors name it: `deployments.apps`, `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def served(self, obj: JSON) -> JSON:
        """`obj` as this resource shows it (the alias apiVersion); changes `obj` in place."""
        if self.group != self.kind.group and obj.get("apiVersion") == self.kind.api_version:
            obj["apiVersion"] = self.api_version
        return obj

    def stored(self, obj: JSON) -> JSON:
        """`obj` as storage expects it (our apiVersion for an alias); changes `obj` in place."""
        if self.group != self.kind.group and obj.get("apiVersion") == self.api_version:
            obj["apiVersion"] = self.kind.api_version
        return obj

    def discovery(self) -> list[JSON]:
        """This resource and its subresources as APIResourceList entries."""
        entry: JSON = {
            "name": self.plural,
            "singularName": self.kind.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind.kind,
            "verbs": list(_OBJECT_VERBS),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.has_status:
            entries.append(self._subresource("status", self.kind.kind, ("get", "patch", "update")))
        if self.has_scale:
            entries.append(
                self._subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling")
            )
        if self.kind == PODS:
            entries.append(self._subresource("eviction", "Eviction", ("create",), "policy"))
            entries.append(self._subresource("binding", "Binding", ("create",), ""))
        return entries

    def _subresource(
        self, name: str, kind: str, verbs: tuple[str, ...], group: str | None = None
    ) -> JSON:
        entry: JSON = {
            "name": f"{self.plural}/{name}",
            "singularName": "",
            "namespaced": self.namespaced,
            "kind": kind,
            "verbs": list(verbs),
        }
        if group is not None:  # a subresource of another group names its group and version
            entry.update(group=group, version="v1")
        return entry


@dataclass(frozen=True)
class GroupVersion:
    group: str
    version: str

    @property
    def name(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        """The URL prefix: `/api/v1` or `/apis/apps/v1`."""
        return f"/apis/{self.name}" if self.group else f"/api/{self.version}"


class ResourceTable:
    """Every served resource, found by (group, version, plural)."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        self._resources = {(r.group, r.version, r.plural): r for r in resources}

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._resources.values())

    def add(self, resource: Resource) -> bool:
        """Serve `resource` too (a CRD's); False when (group, version, plural) is served."""
        key = (resource.group, resource.version, resource.plural)
        if key in self._resources:
            return False
        self._resources[key] = resource
        return True

    def find(self, group: str, version: str, plural: str) -> Resource | None:
        return self._resources.get((group, version, plural))

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self if (r.group, r.version) == (group, version)]

    def group_versions(self) -> list[GroupVersion]:
        """Served group/versions in discovery order: core first, then by first appearance."""
        seen: dict[GroupVersion, None] = {}
        for resource in self:
            seen.setdefault(GroupVersion(resource.group, resource.version), None)
        return sorted(seen, key=lambda gv: gv.group != "")

    def groups(self) -> dict[str, list[str]]:
        """Named groups and their versions (the core group is not one)."""
        groups: dict[str, list[str]] = {}
        for gv in self.group_versions():
            if gv.group:
                groups.setdefault(gv.group, []).append(gv.version)
        return groups


def served_resources(
    kinds: Iterable[Kind] = (*BUILTIN_KINDS, *PLATFORM_KINDS),
) -> ResourceTable:
    """Every stored kind under its own group, and again under each alias group of ours."""
    resources: list[Resource] = []
    for kind in kinds:
        resources.append(_resource(kind, kind.group))
    for alias, group in GROUP_ALIASES.items():
        for kind in kinds:
            if kind.group == group and _alias_serves(alias, kind):
                resources.append(_resource(kind, alias))
    return ResourceTable(resources)


def _alias_serves(alias: str, kind: Kind) -> bool:
    # keda.sh has the scaling kinds (v1alpha1); karpenter.sh the provisioning kinds (v1);
    # http.keda.sh (the HTTP add-on) only HTTPScaledObject.
    if (alias == "http.keda.sh") != (kind.kind == "HTTPScaledObject"):
        return False
    versions = {"keda.sh": "v1alpha1", "karpenter.sh": "v1", "http.keda.sh": "v1alpha1"}
    return kind.version == versions.get(alias)


def _resource(kind: Kind, group: str) -> Resource:
    # Short names only in our group: kubectl warns when two groups claim one (`so`).
    short_names = _SHORT_NAMES.get(kind.plural, ()) if group == kind.group else ()
    return Resource(kind, group, kind.version, short_names, _CATEGORIES.get(kind.plural, ()))


def custom_resources(crd: JSON) -> list[Resource]:
    """The resources a CustomResourceDefinition serves: one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, kind, plural = spec.get("group"), names.get("kind"), names.get("plural")
    if not (isinstance(group, str) and isinstance(kind, str) and isinstance(plural, str)):
        return []
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    short_names = tuple(names.get("shortNames") or ())
    categories = tuple(names.get("categories") or ())
    resources = []
    for version in spec.get("versions") or []:
        if isinstance(version, dict) and version.get("served", True) and version.get("name"):
            scalable = "scale" in (version.get("subresources") or {})
            stored = Kind(group, version["name"], kind, plural, namespaced, scalable)
            resources.append(Resource(stored, group, version["name"], short_names, categories))
    return resources
