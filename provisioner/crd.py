"""Shared pieces of the Karpenter-shaped CRD models: base models, label and duration rules.

Karpenter's CRD patterns and CEL rules live here once, so NodePool, NodeClaim and the node
class report them the same way, at the exact field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from provisioner.quantity import parse_quantity
from provisioner.scheduling.model import CAPACITY_TYPE, HOSTNAME, NODEPOOL

KARPENTER_GROUP = "karpenter.sh"
KARPENTER_AWS_GROUP = "karpenter.k8s.aws"
EBBFLOW_GROUP = "ebbflow.io"

# kubernetes.io keys a NodePool may use (Karpenter's WellKnownLabels and their beta aliases)
_KUBERNETES_IO_ALLOWED = frozenset(
    {
        "beta.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "node.kubernetes.io/windows-build",
    }
)
# karpenter.k8s.aws keys the AWS provider defines (pkg/apis/v1/labels.go WellKnownLabels)
AWS_WELL_KNOWN_LABELS = frozenset(
    f"{KARPENTER_AWS_GROUP}/{name}"
    for name in (
        "capacity-reservation-id",
        "capacity-reservation-type",
        "instance-hypervisor",
        "instance-encryption-in-transit-supported",
        "instance-category",
        "instance-family",
        "instance-generation",
        "instance-size",
        "instance-local-nvme",
        "instance-cpu",
        "instance-cpu-manufacturer",
        "instance-cpu-sustained-clock-speed-mhz",
        "instance-memory",
        "instance-ebs-bandwidth",
        "instance-network-bandwidth",
        "instance-gpu-name",
        "instance-gpu-manufacturer",
        "instance-gpu-count",
        "instance-gpu-memory",
        "instance-accelerator-name",
        "instance-accelerator-manufacturer",
        "instance-accelerator-count",
        "instance-capability-flex",
        "instance-tenancy",
    )
)


def field_error(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A ValidationError at `loc` below the model being validated (nested by pydantic)."""
    return ValidationError.from_exception_data(
        "ebbflow",
        [
            InitErrorDetails(
                type=PydanticCustomError("ebbflow_rule", "{message}", {"message": message}),
                loc=loc,
                input=value,
            )
        ],
    )


def restricted_label_reason(key: str, *, allow_nodepool: bool) -> str | None:
    """Why Karpenter refuses `key` as a node label or requirement key, or None if allowed."""
    domain = key.split("/", 1)[0]
    if key == HOSTNAME:
        return f'label "{HOSTNAME}" is restricted'
    if (
        domain.endswith("kubernetes.io")
        and key not in _KUBERNETES_IO_ALLOWED
        and not domain.endswith(("node.kubernetes.io", "node-restriction.kubernetes.io"))
    ):
        return 'label domain "kubernetes.io" is restricted'
    if domain.endswith("k8s.io") and not domain.endswith("kops.k8s.io"):
        return 'label domain "k8s.io" is restricted'
    if domain.endswith(KARPENTER_GROUP):
        allowed = {CAPACITY_TYPE, NODEPOOL} if allow_nodepool else {CAPACITY_TYPE}
        if key == NODEPOOL and not allow_nodepool:
            return f'label "{NODEPOOL}" is restricted'
        if key not in allowed:
            return 'label domain "karpenter.sh" is restricted'
    if domain.endswith(KARPENTER_AWS_GROUP) and key not in AWS_WELL_KNOWN_LABELS:
        return 'label domain "karpenter.k8s.aws" is restricted'
    return None


def check_go_duration(value: str, pattern: re.Pattern[str], example: str) -> str:
    if not pattern.match(value):
        raise ValueError(f"must be a duration such as {example}")
    return value


def check_quantities(values: Mapping[str, Any]) -> dict[str, str | int | float]:
    """Resource lists: every value a Kubernetes quantity; errors name the resource."""
    out: dict[str, str | int | float] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise field_error((name,), "must be a quantity such as 500m, 2Gi or 4", value)
        try:
            parse_quantity(value)
        except ValueError:
            raise field_error((name,), "must be a quantity such as 500m, 2Gi or 4", value) from None
        out[name] = value
    return out


class KubeModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors (typos)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class OpenModel(BaseModel):
    """Parts that controllers write (status) or that Karpenter leaves open: unknown fields kept."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )


class ObjectMeta(OpenModel):
    """The parts of ObjectMeta we use for cluster-scoped objects; the rest is kept as is."""

    name: str = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None


class Condition(OpenModel):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None
