"""CustomResourceDefinitions generated from the pydantic models the operator validates with.

One table (`CRD_KINDS`) says, per kind, which model, groups, version, plural, scope,
subresources, printer columns and CEL rules; adding a kind is one entry. The model's JSON
schema becomes a structural OpenAPI v3 schema (refs inlined, `Optional` as nullable, enums,
defaults, required fields), so the CRDs the API server enforces cannot drift from the code.

CEL rules (`x-kubernetes-validations`) restate a model's cross-field validators where the
rule has a simple CEL equivalent; tests evaluate each rule against the model's verdict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from provisioner.api import NodeClaim, NodePool
from provisioner.nodeclass import EC2NodeClass
from scaler.api import ClusterTriggerAuthentication, ScaledJob, ScaledObject, TriggerAuthentication
from scaler.http_api import HTTPScaledObject

JSON = dict[str, Any]
OURS = "ebbflow.io"
Compat = Literal["keda", "httpAddon", "karpenter"]


@dataclass(frozen=True)
class Column:
    """One additionalPrinterColumn (what `kubectl get` shows)."""

    name: str
    json_path: str
    type: str = "string"
    priority: int = 0

    def definition(self) -> JSON:
        column: JSON = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class Rule:
    """A CEL rule on the object of one model (named as in the model's JSON schema $defs)."""

    rule: str
    message: str
    field_path: str | None = None

    def definition(self) -> JSON:
        entry: JSON = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry


@dataclass(frozen=True)
class ScaleSubresource:
    spec_replicas_path: str
    status_replicas_path: str


@dataclass(frozen=True)
class CrdKind:
    """A kind we serve: its model and how the API server presents it, under each group."""

    model: type[BaseModel]
    kind: str
    plural: str
    version: str
    compat_group: str  # the upstream project's group, accepted field for field
    compat: Compat  # the chart value that installs the compat CRD
    scope: Literal["Namespaced", "Cluster"] = "Namespaced"
    our_kind: str | None = None  # our name (and plural), where it differs from upstream's
    our_plural: str | None = None
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = True
    scale: ScaleSubresource | None = None
    columns: tuple[Column, ...] = ()
    rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    # properties a `mode="before"` validator coerces (a bare number for a string): the
    # schema cannot see the coercion, so it keeps any scalar and the model decides
    coerced: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


_AGE = Column("Age", ".metadata.creationTimestamp", "date")
_RESOURCE_TRIGGER = "t.type == 'cpu' || t.type == 'memory'"


def _condition(name: str) -> Column:
    return Column(name, f'.status.conditions[?(@.type=="{name}")].status')


_TRIGGER_RULES = (
    Rule(
        "!(self.type == 'cpu' || self.type == 'memory') || !has(self.metricType) "
        "|| self.metricType != 'Value'",
        "cpu and memory triggers take Utilization or AverageValue",
        ".metricType",
    ),
    Rule(
        "self.type == 'cpu' || self.type == 'memory' || !has(self.metricType) "
        "|| self.metricType != 'Utilization'",
        "Utilization is only for cpu and memory triggers",
        ".metricType",
    ),
)
_MIN_MAX = Rule(
    "self.minReplicaCount <= self.maxReplicaCount",
    "minReplicaCount must not exceed maxReplicaCount",
    ".minReplicaCount",
)
_PORT_OR_NAME = Rule(
    "has(self.portName) != has(self.port)", "must define either the 'portName' or the 'port'"
)

CRD_KINDS: tuple[CrdKind, ...] = (
    CrdKind(
        ScaledObject,
        "ScaledObject",
        "scaledobjects",
        "v1alpha1",
        "keda.sh",
        "keda",
        short_names=("so",),
        categories=("keda", "ebbflow"),
        columns=(
            Column("ScaleTargetKind", ".spec.scaleTargetRef.kind"),
            Column("ScaleTargetName", ".spec.scaleTargetRef.name"),
            Column("Min", ".spec.minReplicaCount", "integer"),
            Column("Max", ".spec.maxReplicaCount", "integer"),
            _condition("Ready"),
            _condition("Active"),
            _condition("Fallback"),
            _condition("Paused"),
            Column("Triggers", ".spec.triggers[*].type", priority=1),
            _AGE,
        ),
        rules={
            "ScaledObjectSpec": (
                _MIN_MAX,
                Rule(
                    "!has(self.idleReplicaCount) || self.idleReplicaCount < self.minReplicaCount",
                    "idleReplicaCount must be less than minReplicaCount",
                    ".idleReplicaCount",
                ),
                Rule(
                    f"self.minReplicaCount >= 1 || self.triggers.exists(t, !({_RESOURCE_TRIGGER}))",
                    "minReplicaCount must be at least 1 when all triggers are cpu/memory",
                    ".minReplicaCount",
                ),
                Rule(
                    f"!has(self.fallback) || self.triggers.exists(t, !({_RESOURCE_TRIGGER}))",
                    "fallback is not supported when all triggers are cpu/memory",
                    ".fallback",
                ),
                Rule(
                    "!has(self.advanced) || !has(self.advanced.scalingModifiers) "
                    "|| self.triggers.all(t, has(t.name) && t.name != '')",
                    "every trigger needs a name with scalingModifiers",
                    ".triggers",
                ),
            ),
            "Trigger": _TRIGGER_RULES,
        },
        coerced={"ScalingModifiers": ("target", "activationTarget")},
    ),
    CrdKind(
        ScaledJob,
        "ScaledJob",
        "scaledjobs",
        "v1alpha1",
        "keda.sh",
        "keda",
        short_names=("sj",),
        categories=("keda", "ebbflow"),
        columns=(
            Column("Min", ".spec.minReplicaCount", "integer"),
            Column("Max", ".spec.maxReplicaCount", "integer"),
            _condition("Ready"),
            _condition("Active"),
            _condition("Paused"),
            Column("Triggers", ".spec.triggers[*].type", priority=1),
            _AGE,
        ),
        rules={"ScaledJobSpec": (_MIN_MAX,), "Trigger": _TRIGGER_RULES},
    ),
    CrdKind(
        TriggerAuthentication,
        "TriggerAuthentication",
        "triggerauthentications",
        "v1alpha1",
        "keda.sh",
        "keda",
        short_names=("ta", "triggerauth"),
        categories=("keda", "ebbflow"),
        status=False,
        columns=(
            Column("PodIdentity", ".spec.podIdentity.provider"),
            Column("Secret", ".spec.secretTargetRef[*].name"),
            Column("Env", ".spec.env[*].name"),
            _AGE,
        ),
    ),
    CrdKind(
        ClusterTriggerAuthentication,
        "ClusterTriggerAuthentication",
        "clustertriggerauthentications",
        "v1alpha1",
        "keda.sh",
        "keda",
        scope="Cluster",
        short_names=("cta", "clustertriggerauth"),
        categories=("keda", "ebbflow"),
        status=False,
        columns=(
            Column("PodIdentity", ".spec.podIdentity.provider"),
            Column("Secret", ".spec.secretTargetRef[*].name"),
            Column("Env", ".spec.env[*].name"),
            _AGE,
        ),
    ),
    CrdKind(
        HTTPScaledObject,
        "HTTPScaledObject",
        "httpscaledobjects",
        "v1alpha1",
        "http.keda.sh",
        "httpAddon",
        short_names=("httpso",),
        categories=("keda", "ebbflow"),
        columns=(
            Column("TargetWorkload", ".spec.scaleTargetRef.name"),
            Column("TargetService", ".spec.scaleTargetRef.service"),
            Column("MinReplicas", ".spec.replicas.min", "integer"),
            Column("MaxReplicas", ".spec.replicas.max", "integer"),
            _condition("Ready"),
            _AGE,
        ),
        rules={
            "HTTPScaleTargetRef": (_PORT_OR_NAME,),
            "ColdStartTimeoutFailoverRef": (_PORT_OR_NAME,),
        },
    ),
    CrdKind(
        NodePool,
        "NodePool",
        "nodepools",
        "v1",
        "karpenter.sh",
        "karpenter",
        scope="Cluster",
        categories=("karpenter",),
        # Karpenter's static NodePools: `kubectl scale nodepool` sets spec.replicas
        scale=ScaleSubresource(".spec.replicas", ".status.nodes"),
        columns=(
            Column("NodeClass", ".spec.template.spec.nodeClassRef.name"),
            Column("Nodes", ".status.resources.nodes"),
            _condition("Ready"),
            _AGE,
            Column("Weight", ".spec.weight", "integer", priority=1),
            Column("CPU", ".status.resources.cpu", priority=1),
            Column("Memory", ".status.resources.memory", priority=1),
        ),
        rules={
            "NodePoolSpec": (
                Rule(
                    "!has(self.replicas) || !has(self.weight)",
                    "weight is not supported on static NodePools",
                    ".weight",
                ),
            )
        },
    ),
    CrdKind(
        NodeClaim,
        "NodeClaim",
        "nodeclaims",
        "v1",
        "karpenter.sh",
        "karpenter",
        scope="Cluster",
        categories=("karpenter",),
        columns=(
            Column("Type", ".metadata.labels.node\\.kubernetes\\.io/instance-type"),
            Column("Capacity", ".metadata.labels.karpenter\\.sh/capacity-type"),
            Column("Zone", ".metadata.labels.topology\\.kubernetes\\.io/zone"),
            Column("Node", ".status.nodeName"),
            _condition("Ready"),
            _AGE,
        ),
    ),
    CrdKind(
        EC2NodeClass,
        "EC2NodeClass",
        "ec2nodeclasses",
        "v1",
        "karpenter.k8s.aws",
        "karpenter",
        scope="Cluster",
        our_kind="NodeClass",
        our_plural="nodeclasses",
        categories=("karpenter",),
        columns=(_condition("Ready"), _AGE, Column("Role", ".spec.role", priority=1)),
    ),
)


@dataclass(frozen=True)
class GeneratedCrd:
    group: str
    plural: str
    compat: Compat | None  # None: ours, always installed
    body: JSON

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def file_name(self) -> str:
        """controller-gen's naming: `<group>_<plural>.yaml`."""
        return f"{self.group}_{self.plural}.yaml"

    def to_yaml(self) -> str:
        return dump_yaml(self.body)


class _NoAliases(yaml.SafeDumper):
    """Shared enums are written out each time: CRD readers should not meet `&id001`."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any) -> str:
    """Block-style YAML, keys in their given order, no anchors."""
    return yaml.dump(data, Dumper=_NoAliases, sort_keys=False, width=100)


def generate_crds(kinds: tuple[CrdKind, ...] = CRD_KINDS) -> list[GeneratedCrd]:
    """Every CRD: ours (`ebbflow.io`) first, then the upstream-compatible ones."""
    ours, compat = [], []
    for entry in kinds:
        schema = openapi_schema(entry)
        our_kind, our_plural = entry.our_kind or entry.kind, entry.our_plural or entry.plural
        ours.append(
            GeneratedCrd(OURS, our_plural, None, _crd(entry, OURS, our_kind, our_plural, schema))
        )
        compat.append(
            GeneratedCrd(
                entry.compat_group,
                entry.plural,
                entry.compat,
                _crd(entry, entry.compat_group, entry.kind, entry.plural, schema, compat=True),
            )
        )
    return ours + compat


def _crd(
    entry: CrdKind, group: str, kind: str, plural: str, schema: JSON, compat: bool = False
) -> JSON:
    names: JSON = {"kind": kind, "listKind": f"{kind}List", "plural": plural}
    names["singular"] = kind.lower()
    # short names only on ours: two groups claiming `so` make kubectl warn on every call
    if entry.short_names and not compat:
        names["shortNames"] = list(entry.short_names)
    if entry.categories:
        names["categories"] = list(entry.categories)
    version: JSON = {"name": entry.version, "served": True, "storage": True}
    subresources: JSON = {}
    if entry.status:
        subresources["status"] = {}
    if entry.scale is not None:
        subresources["scale"] = {
            "specReplicasPath": entry.scale.spec_replicas_path,
            "statusReplicasPath": entry.scale.status_replicas_path,
        }
    if subresources:
        version["subresources"] = subresources
    if entry.columns:
        version["additionalPrinterColumns"] = [c.definition() for c in entry.columns]
    version["schema"] = {"openAPIV3Schema": schema}
    metadata: JSON = {"name": f"{plural}.{group}"}
    labels = {"app.kubernetes.io/part-of": "ebbflow"}
    metadata["labels"] = labels
    if compat:
        # uninstalling the chart must not delete every ScaledObject of a KEDA user
        metadata["annotations"] = {"helm.sh/resource-policy": "keep"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": group,
            "names": names,
            "scope": entry.scope,
            "versions": [version],
        },
    }


# --- JSON schema -> structural OpenAPI v3 -----------------------------------------------------


def openapi_schema(entry: CrdKind) -> JSON:
    """The structural openAPIV3Schema of `entry.model` (with its CEL rules attached)."""
    source = entry.model.model_json_schema(by_alias=True, mode="validation")
    converter = _Structural(source.get("$defs", {}), entry.rules, entry.coerced)
    properties = source.get("properties", {})
    out: JSON = {"type": "object", "properties": {}}
    for name, node in properties.items():
        if name in ("apiVersion", "kind"):
            out["properties"][name] = {"type": "string"}
        elif name == "metadata":
            out["properties"][name] = {"type": "object"}  # the API server owns ObjectMeta
        else:
            out["properties"][name] = converter.convert(node)
    required = [
        r for r in source.get("required", []) if r not in ("apiVersion", "kind", "metadata")
    ]
    if required:
        out["required"] = required
    unused = set(entry.rules) - converter.used_rules
    if unused:
        raise ValueError(f"{entry.kind}: CEL rules for models not in its schema: {sorted(unused)}")
    return out


_KEEP = (
    "description",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)
_FORMATS = frozenset({"date-time", "duration", "int32", "int64", "byte", "uri", "date"})


class _Structural:
    """Rewrites pydantic's JSON schema into what apiextensions/v1 accepts (structural)."""

    def __init__(
        self,
        defs: Mapping[str, JSON],
        rules: Mapping[str, tuple[Rule, ...]],
        coerced: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.defs = defs
        self.rules = rules
        self.coerced = coerced
        self.used_rules: set[str] = set()

    def convert(self, node: JSON, stack: tuple[str, ...] = ()) -> JSON:
        extra = {k: v for k, v in node.items() if k in ("description", "default")}
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in stack:
                raise ValueError(f"recursive model {name}: CRD schemas cannot refer to themselves")
            target = dict(self.defs[name])
            target.pop("description", None)  # class docstrings are for Python readers
            out = self.convert({**target, **extra}, (*stack, name))
            for loose in self.coerced.get(name, ()):
                described = {"description": out["properties"][loose].get("description")}
                out["properties"][loose] = {
                    **{k: v for k, v in described.items() if v},
                    "x-kubernetes-preserve-unknown-fields": True,
                }
            if name in self.rules:
                self.used_rules.add(name)
                out["x-kubernetes-validations"] = [r.definition() for r in self.rules[name]]
            return out
        if "allOf" in node and len(node["allOf"]) == 1:
            return self.convert({**node["allOf"][0], **extra}, stack)
        if "anyOf" in node:
            return self._union(node["anyOf"], extra, stack)
        out = {k: node[k] for k in _KEEP if k in node}
        if "const" in node:
            out["enum"] = [node["const"]]
        if out.get("format") not in _FORMATS:
            out.pop("format", None)
        for bound, edge in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if bound in node:  # JSON Schema's number form -> OpenAPI 3.0's boolean form
                out[edge], out[bound] = node[bound], True
        kind = node.get("type")
        if kind is None and "enum" in out:
            kind = _json_type(out["enum"][0])
        if kind is None:
            out["x-kubernetes-preserve-unknown-fields"] = True
        elif isinstance(kind, list):
            return self._union([{**node, "type": t} for t in kind], extra, stack)
        else:
            out["type"] = kind
        if kind == "object":
            self._object(node, out, stack)
        elif kind == "array":
            out["items"] = self.convert(node.get("items", {}), stack)
            if node.get("uniqueItems"):  # structural schemas forbid uniqueItems
                out["x-kubernetes-list-type"] = "set"
        default = node.get("default")
        if default is not None:
            out["default"] = _go_duration(default) if out.get("format") == "duration" else default
        if out.get("format") == "duration":
            out.pop("format")  # ours are Go durations (`1m30s`), not ISO 8601
        return _type_first(out)

    def _object(self, node: JSON, out: JSON, stack: tuple[str, ...]) -> None:
        properties = node.get("properties")
        additional = node.get("additionalProperties")
        if properties:
            out["properties"] = {k: self.convert(v, stack) for k, v in properties.items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        if isinstance(additional, dict) and additional:
            if properties:  # both at once is not structural: keep what is unknown as is
                out["x-kubernetes-preserve-unknown-fields"] = True
            else:
                out["additionalProperties"] = self.convert(additional, stack)
        elif additional is True or (not properties and additional is not False):
            out["x-kubernetes-preserve-unknown-fields"] = True

    def _union(self, options: list[JSON], extra: JSON, stack: tuple[str, ...]) -> JSON:
        present = [o for o in options if o.get("type") != "null"]
        nullable = len(present) < len(options)
        if len(present) == 1:
            out = self.convert({**present[0], **extra}, stack)
        else:
            out = {k: v for k, v in extra.items() if k == "description"}
            types = {o.get("type") for o in present}
            if types <= {"integer", "string"}:
                out["x-kubernetes-int-or-string"] = True
            else:  # e.g. str | int | float quantities: kept as given, checked by the model
                out["x-kubernetes-preserve-unknown-fields"] = True
            if extra.get("default") is not None:
                out["default"] = extra["default"]
        if nullable:
            out["nullable"] = True
        return _type_first(out)


def _type_first(node: JSON) -> JSON:
    return {"type": node["type"], **node} if "type" in node else node


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _go_duration(value: Any) -> Any:
    """`PT1M30S` (pydantic's timedelta) -> `1m30s` (the form our manifests use)."""
    match = _ISO_DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        return value
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    hours += days * 24
    parts = [f"{n:g}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts) or "0s"


def crds_yaml(crds: list[GeneratedCrd]) -> str:
    """Multi-document YAML of `crds`."""
    return "---\n".join(crd.to_yaml() for crd in crds)
