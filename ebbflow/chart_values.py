"""The Helm chart's values as a pydantic model: values.yaml and values.schema.json come from it.

`settings` is derived from `OperatorSettings` (one source of truth): every operator setting
the chart does not set itself becomes a value, with the same type, bounds, default and
description, and reaches the operator as its `EBBFLOW_*` environment variable. The schema
is strict (`additionalProperties: false`), so a typo in a values file fails the install.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from ebbflow.crds import dump_yaml
from ebbflow.settings import OperatorSettings

# Settings the chart sets itself: the pod's name, the replica count, the release namespace.
CHART_OWNED_SETTINGS = frozenset(
    {"identity", "replicas", "ordinal", "lease_namespace", "metrics_host"}
)
# Where the chart's default differs from the operator's (or the setting has no description).
_SETTING_OVERRIDES: dict[str, dict[str, Any]] = {
    "cluster_auth_namespace": {
        "default": None,
        "annotation": str | None,
        "description": "Where ClusterTriggerAuthentication Secrets live; unset: the release "
        "namespace.",
    },
    "log_level": {"description": "The least severe log lines written."},
}


class _Values(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _settings_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, info in OperatorSettings.model_fields.items():
        if name in CHART_OWNED_SETTINGS:
            continue
        override = _SETTING_OVERRIDES.get(name, {})
        annotation = override.get("annotation", info.annotation)
        merged = FieldInfo.merge_field_infos(
            info,
            default=override.get("default", info.default),
            description=override.get("description", info.description),
        )
        fields[name] = (annotation, merged)
    model: type[BaseModel] = create_model(
        "OperatorValues",
        __base__=_Values,
        __doc__="The operator's settings (`ebbflow operator --help`), as EBBFLOW_* variables.",
        **fields,
    )
    return model


OperatorValues = _settings_model()

Resources = dict[str, dict[str, str | int]]


def _resources(cpu: str, memory: str) -> Any:
    return Field(
        default_factory=lambda: {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"memory": memory},
        },
        description="Container resources (core/v1 ResourceRequirements).",
    )


class Image(_Values):
    repository: str = Field(
        "ghcr.io/ebbflow/ebbflow", description="Image built from the repository's Dockerfile."
    )
    tag: str = Field("", description="Image tag; empty: the chart's appVersion.")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="When the kubelet pulls the image."
    )


class ServiceAccountValues(_Values):
    create: bool = Field(True, description="Create the operator's ServiceAccount.")
    name: str = Field("", description="Its name; empty: the release's full name.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations (e.g. a cloud IAM role binding)."
    )


class Rbac(_Values):
    create: bool = Field(
        True, description="Create the least-privilege ClusterRole, Role and bindings."
    )


class Crds(_Values):
    keda: bool = Field(
        False,
        description="Also install keda.sh CRDs (ScaledObject, ScaledJob, TriggerAuthentication), "
        "for clusters without KEDA.",
    )
    http_addon: bool = Field(
        False, description="Also install the http.keda.sh HTTPScaledObject CRD."
    )
    karpenter: bool = Field(
        False,
        description="Also install karpenter.sh NodePool/NodeClaim and karpenter.k8s.aws "
        "EC2NodeClass CRDs.",
    )


class PodDisruptionBudgetValues(_Values):
    enabled: bool = Field(True, description="Create a PodDisruptionBudget for the operator.")
    max_unavailable: int | str = Field(
        1, description="Pods that a voluntary disruption may take down at once."
    )


class InterceptorServiceValues(_Values):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="Service type of the proxy."
    )
    port: int = Field(8080, ge=1, le=65535, description="Service port of the proxy.")


class Interceptor(_Values):
    enabled: bool = Field(
        False, description="Run the HTTP interceptor (HTTPScaledObject's data plane)."
    )
    replica_count: int = Field(2, ge=1, description="Interceptor replicas.")
    proxy_port: int = Field(8080, ge=1, le=65535, description="Container port of the proxy.")
    admin_port: int = Field(
        9090, ge=1, le=65535, description="Container port of /healthz, /readyz and /metrics."
    )
    service: InterceptorServiceValues = Field(
        default_factory=InterceptorServiceValues, description="The proxy's Service."
    )
    resources: Resources = _resources("100m", "256Mi")


class ServiceMonitor(_Values):
    enabled: bool = Field(
        False, description="Create a prometheus-operator ServiceMonitor (needs its CRD)."
    )
    interval: str = Field(
        "30s", pattern=r"^([0-9]+(ms|s|m|h))+$", description="How often to scrape."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels your Prometheus selects ServiceMonitors by."
    )


class Dashboard(_Values):
    enabled: bool = Field(False, description="Create the Grafana dashboard ConfigMap.")
    labels: dict[str, str] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"},
        description="Labels Grafana's dashboard sidecar looks for.",
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations (e.g. the sidecar's target folder)."
    )


class Monitoring(_Values):
    service_monitor: ServiceMonitor = Field(
        default_factory=ServiceMonitor, description="Scraping by prometheus-operator."
    )
    dashboard: Dashboard = Field(default_factory=Dashboard, description="Grafana dashboard.")


class NetworkPolicyValues(_Values):
    enabled: bool = Field(
        False,
        description="Admit only metrics scrapes (and proxy traffic) to the pods; egress open.",
    )
    metrics_from: list[dict[str, Any]] = Field(
        default_factory=list,
        description="NetworkPolicyPeers allowed to scrape /metrics; empty: any pod.",
    )


class ChartValues(_Values):
    """Every value of the ebbflow chart."""

    replica_count: int = Field(
        1, ge=1, description="Operator replicas; one leads each shard, the others stand by."
    )
    image: Image = Field(default_factory=Image, description="The ebbflow image.")
    image_pull_secrets: list[dict[str, str]] = Field(
        default_factory=list, description="Secrets for a private registry."
    )
    name_override: str = Field("", description="Replaces the chart name in object names.")
    fullname_override: str = Field("", description="Replaces the full object name.")
    service_account: ServiceAccountValues = Field(
        default_factory=ServiceAccountValues, description="The operator's ServiceAccount."
    )
    rbac: Rbac = Field(default_factory=Rbac, description="RBAC objects.")
    crds: Crds = Field(
        default_factory=Crds,
        description="Upstream-compatible CRDs (the ebbflow.io ones are always installed).",
    )
    settings: OperatorValues = Field(  # type: ignore[valid-type]
        default_factory=OperatorValues, description="Operator settings."
    )
    resources: Resources = _resources("100m", "256Mi")
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations on the operator's pods."
    )
    pod_labels: dict[str, str] = Field(
        default_factory=dict, description="Extra labels on the operator's pods."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the pods must match."
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Tolerations of the pods."
    )
    affinity: dict[str, Any] = Field(default_factory=dict, description="Affinity of the pods.")
    priority_class_name: str = Field("", description="PriorityClass of the pods.")
    pod_disruption_budget: PodDisruptionBudgetValues = Field(
        default_factory=PodDisruptionBudgetValues, description="Voluntary-disruption limits."
    )
    interceptor: Interceptor = Field(default_factory=Interceptor, description="HTTP interceptor.")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Prometheus, Grafana.")
    network_policy: NetworkPolicyValues = Field(
        default_factory=NetworkPolicyValues, description="A NetworkPolicy for the pods."
    )


# --- generated files ---------------------------------------------------------------------------


def values_schema() -> dict[str, Any]:
    """values.schema.json: the model's JSON schema with every $ref inlined (strict objects)."""
    schema = ChartValues.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = dict(defs[node["$ref"].rsplit("/", 1)[-1]])
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return inline({**target, **rest})
            return {k: inline(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {"$schema": "http://json-schema.org/draft-07/schema#", **inline(schema)}


def values_schema_json() -> str:
    return json.dumps(values_schema(), indent=2) + "\n"


def values_yaml() -> str:
    """values.yaml: the defaults, each key after its `# --` description (helm-docs)."""
    lines = [
        "# Default values of the ebbflow chart. Generated by `ebbflow chart generate` from",
        "# ebbflow/chart_values.py; values.schema.json rejects unknown keys and wrong types.",
        "",
    ]
    _emit(ChartValues, ChartValues().model_dump(by_alias=True, mode="json"), 0, lines)
    return "\n".join(lines) + "\n"


def _emit(model: type[BaseModel], data: dict[str, Any], depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    for name, info in model.model_fields.items():
        key = info.alias or name
        value = data[key]
        if not info.description:
            raise ValueError(f"{model.__name__}.{name}: every value needs a description")
        lines.append(f"{pad}# -- {info.description}")
        nested = _model_of(info.annotation)
        if nested is not None and isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            _emit(nested, value, depth + 1, lines)
            continue
        text = dump_yaml({key: value}).rstrip("\n")
        lines.extend(pad + line for line in text.splitlines())


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None
