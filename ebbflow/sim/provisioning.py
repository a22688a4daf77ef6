"""A scenario's node layer: NodePools, the catalog, cloud timing and capacity limits.

With a `provisioning` section, pods need nodes: the real provisioning controller launches
them from the catalog through the simulated cloud, the real disruption controller removes
and replaces them, a simulated scheduler binds pods to Ready nodes, and the run reports node
cost. Without it, pods start on an unlimited cluster.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ebbflow.sim.scenario_base import Model, parse_duration
from provisioner.api import NodePool
from provisioner.catalog import DEFAULT_ZONES
from provisioner.scheduling.model import (
    CAPACITY_TYPE,
    ON_DEMAND,
    NodeTemplate,
    Operator,
    Pod,
    Requirement,
)
from scaler.manifests import ManifestError, ManifestIssue, issues_from
from scalers.base import field_error


class OfferingCapacity(Model):
    """At most `count` instances of one offering at once (more fail: insufficient capacity)."""

    instance_type: str
    zone: str
    capacity_type: str = Field(pattern=r"^(spot|on-demand)$")
    count: int = Field(ge=0)


class SpotStorm(Model):
    """At `at`, interruption notices reach `fraction` of the spot nodes within `within`."""

    at: float = Field(ge=0)
    fraction: float = Field(gt=0, le=1)
    within: float = Field(default=300.0, ge=0)

    @field_validator("at", "within", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class ProvisioningSpec(Model):
    node_pools: list[dict[str, Any]] = Field(default_factory=list)
    node_pools_file: str | None = None
    catalog: str | None = None  # a catalog CSV; default: the packaged AWS us-east-1 catalog
    zones: list[str] = Field(default_factory=lambda: list(DEFAULT_ZONES), min_length=1)
    registration_seconds: float = 40.0
    registration_jitter_seconds: float = 20.0
    capacity: list[OfferingCapacity] = Field(default_factory=list)
    spot_interruptions: bool = False  # notices at the catalog's interruption-bucket rates
    spot_storm: SpotStorm | None = None
    # false: every NodePool acts as WhenEmpty (empty nodes go, none is consolidated), the
    # "without consolidation" comparison; drift, expiry and interruptions still apply
    consolidation: bool = True
    # Karpenter's SpotToSpotConsolidation feature gate (off, as there): replace spot nodes by
    # cheaper spot nodes, given 15 cheaper spot types
    spot_to_spot_consolidation: bool = False

    @field_validator("registration_seconds", "registration_jitter_seconds", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _pools(self) -> ProvisioningSpec:
        if not self.node_pools and self.node_pools_file is None:
            raise field_error(("nodePools",), "give nodePools or nodePoolsFile", None)
        return self


def load_node_pools(spec: ProvisioningSpec, file: str, base: Path) -> list[NodePool]:
    """The scenario's NodePools, validated; errors name the scenario file and field."""
    raw: list[tuple[str, str, dict[str, Any]]] = []  # (file, path prefix, manifest)
    for i, manifest in enumerate(spec.node_pools):
        raw.append((file, f"provisioning.nodePools[{i}].", manifest))
    if spec.node_pools_file is not None:
        path = base / spec.node_pools_file
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        except (OSError, yaml.YAMLError) as exc:
            raise ManifestError(
                [ManifestIssue(file, 1, "provisioning.nodePoolsFile", f"cannot read: {exc}")]
            ) from None
        for d in documents:
            if isinstance(d, dict) and d.get("kind") == "NodePool":
                raw.append((str(path), "", d))
    pools = []
    for source, prefix, manifest in raw:
        try:
            pools.append(NodePool.model_validate(manifest))
        except ValidationError as exc:
            issues = issues_from(exc, source, 1)
            raise ManifestError(
                [ManifestIssue(i.file, 1, prefix + i.path, i.message) for i in issues]
            ) from None
    if not pools:
        raise ManifestError([ManifestIssue(file, 1, "provisioning.nodePools", "no NodePool given")])
    return pools


def on_demand_only(template: NodeTemplate) -> NodeTemplate:
    """The same pool restricted to on-demand capacity (the always-on baseline's nodes)."""
    from dataclasses import replace

    kept = tuple(r for r in template.requirements if r.key != CAPACITY_TYPE)
    return replace(
        template, requirements=(*kept, Requirement(CAPACITY_TYPE, Operator.IN, (ON_DEMAND,)))
    )


def peak_pods(pod: Pod, replicas: int) -> list[Pod]:
    """`replicas` copies of a workload's pod, for sizing a static baseline."""
    from dataclasses import replace

    return [replace(pod, name=f"{pod.name}-{i}") for i in range(max(0, math.ceil(replicas)))]
