"""Karpenter-compatible CRD models: NodePool, NodeClaim (`karpenter.sh/v1`) and EC2NodeClass.

Field for field as Karpenter v1, with its defaults, accepted under our group `ebbflow.io/v1`
too (`NodeClass` is our name for the EC2NodeClass shape). Manifests written for Karpenter
validate unchanged; the rules of Karpenter's CRD schema and CEL validations (operators and
their values, minValues, restricted label domains, durations, budgets) are checked here and
reported at the exact field (`spec.template.spec.requirements[0].values`).

Unknown fields are errors (typos), except in the open maps of Karpenter's schema (labels,
annotations, tags, resource lists, kubelet reservations) and in `status`, which controllers write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from provisioner.crd import (
    EBBFLOW_GROUP,
    KARPENTER_AWS_GROUP,
    KARPENTER_GROUP,
    Condition,
    KubeModel,
    ObjectMeta,
    OpenModel,
    check_go_duration,
    check_quantities,
    field_error,
    restricted_label_reason,
)
from provisioner.nodeclass import EC2NodeClass
from provisioner.nodeclass import NodeClass as NodeClass  # re-exported: the ebbflow.io name

NODE_API_VERSIONS = (f"{KARPENTER_GROUP}/v1", f"{EBBFLOW_GROUP}/v1")
NODE_CLASS_API_VERSIONS = (f"{KARPENTER_AWS_GROUP}/v1", f"{EBBFLOW_GROUP}/v1")

# Karpenter's CRD patterns (pkg/apis/v1/nodepool.go, hack/validation/requirements.sh)
_DURATION_OR_NEVER = re.compile(r"^(([0-9]+(s|m|h))+|Never)$")
_DURATION = re.compile(r"^([0-9]+(s|m|h))+$")
_BUDGET_DURATION = re.compile(r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$")
_BUDGET_NODES = re.compile(r"^((100|[0-9]{1,2})%|[0-9]+)$")
_SCHEDULE = re.compile(
    r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))$|^((.+)\s(.+)\s(.+)\s(.+)\s(.+))$"
)
_QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(\/))?"
    r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


# --- shared pieces of NodePool and NodeClaim -----------------------------------------------


class NodeSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


class NodeSelectorRequirement(KubeModel):
    """Karpenter's NodeSelectorRequirementWithMinValues, as in a NodeClaim."""

    # NodeClaims carry karpenter.sh/nodepool; NodePools may not (CRD CEL rule)
    allow_nodepool_key: ClassVar[bool] = True

    key: str = Field(min_length=1, max_length=316)
    operator: NodeSelectorOperator
    values: list[str] = Field(default_factory=list)
    min_values: int | None = Field(default=None, ge=1, le=50)

    @field_validator("key")
    @classmethod
    def _qualified_key(cls, value: str) -> str:
        if not _QUALIFIED_NAME.match(value):
            raise ValueError("must be a qualified name such as example.com/team")
        return value

    @field_validator("values")
    @classmethod
    def _label_values(cls, values: list[str]) -> list[str]:
        for i, value in enumerate(values):
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise field_error(
                    (i,), "must be a label value (63 characters, alphanumeric, - _ .)", value
                )
        return values

    @model_validator(mode="after")
    def _operator_values(self) -> NodeSelectorRequirement:
        reason = restricted_label_reason(self.key, allow_nodepool=self.allow_nodepool_key)
        if reason:
            raise field_error(("key",), reason, self.key)
        op = self.operator
        if op is NodeSelectorOperator.IN and not self.values:
            raise field_error(("values",), "operator In requires at least one value", None)
        if op in (NodeSelectorOperator.EXISTS, NodeSelectorOperator.DOES_NOT_EXIST) and self.values:
            raise field_error(
                ("values",), f"must be empty with operator {op.value}", self.values[0]
            )
        ordered = op in (NodeSelectorOperator.GT, NodeSelectorOperator.LT)
        if ordered and (len(self.values) != 1 or not self.values[0].isdigit()):
            shown = self.values[0] if len(self.values) == 1 else None
            raise field_error(
                ("values",),
                f"operator {op.value} requires a single non-negative integer value",
                shown,
            )
        if (
            op is NodeSelectorOperator.IN
            and self.min_values is not None
            and len(self.values) < self.min_values
        ):
            raise field_error(
                ("minValues",),
                f"must be at most the number of values ({len(self.values)})",
                self.min_values,
            )
        return self


class NodePoolRequirement(NodeSelectorRequirement):
    allow_nodepool_key: ClassVar[bool] = False


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Taint(KubeModel):
    """core/v1 Taint."""

    key: str = Field(min_length=1)
    effect: TaintEffect
    value: str = ""
    time_added: str | None = None

    @field_validator("key")
    @classmethod
    def _qualified_key(cls, value: str) -> str:
        if not _QUALIFIED_NAME.match(value):
            raise ValueError("must be a qualified name such as nvidia.com/gpu")
        return value


class NodeClassReference(KubeModel):
    group: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)


class _NodeLifetime(KubeModel):
    """Fields shared by a NodePool's template spec and a NodeClaim's spec."""

    taints: list[Taint] = Field(default_factory=list)
    startup_taints: list[Taint] = Field(default_factory=list)
    node_class_ref: NodeClassReference
    expire_after: str = "720h"
    termination_grace_period: str | None = None

    @field_validator("expire_after")
    @classmethod
    def _expire_after(cls, value: str) -> str:
        return check_go_duration(value, _DURATION_OR_NEVER, "720h, 30m or Never")

    @field_validator("termination_grace_period")
    @classmethod
    def _termination_grace_period(cls, value: str | None) -> str | None:
        return None if value is None else check_go_duration(value, _DURATION, "48h or 1h30m")


# --- NodePool --------------------------------------------------------------------------------


class NodeClaimTemplateMetadata(KubeModel):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > 100:
            raise ValueError("must have at most 100 labels")
        for key, value in labels.items():
            if not _QUALIFIED_NAME.match(key) or len(key) > 316:
                raise field_error((key,), "must be a qualified label key", key)
            reason = restricted_label_reason(key, allow_nodepool=False)
            if reason:
                raise field_error((key,), reason, key)
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise field_error(
                    (key,), "must be a label value (63 characters, alphanumeric, - _ .)", value
                )
        return labels


class NodeClaimTemplateSpec(_NodeLifetime):
    requirements: list[NodePoolRequirement] = Field(max_length=100)


class NodeClaimTemplate(KubeModel):
    metadata: NodeClaimTemplateMetadata = Field(default_factory=NodeClaimTemplateMetadata)
    spec: NodeClaimTemplateSpec


class ConsolidationPolicy(StrEnum):
    WHEN_EMPTY = "WhenEmpty"
    WHEN_EMPTY_OR_UNDERUTILIZED = "WhenEmptyOrUnderutilized"


class DisruptionReason(StrEnum):
    UNDERUTILIZED = "Underutilized"
    EMPTY = "Empty"
    DRIFTED = "Drifted"


class Budget(KubeModel):
    """How many of a pool's nodes may be disrupted at once, optionally only in a cron window."""

    nodes: str = "10%"
    schedule: str | None = None
    duration: str | None = None
    reasons: list[DisruptionReason] | None = Field(default=None, max_length=50)

    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes(cls, value: Any) -> Any:
        # YAML authors write `nodes: 0`; the CRD types it as a string
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and not _BUDGET_NODES.match(value):
            raise ValueError("must be a node count (5) or a percentage (0%..100%)")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _SCHEDULE.match(value):
            raise ValueError("must be a 5-field cron expression or a macro such as @daily")
        if not value.startswith("@"):
            from croniter import croniter  # local: only budgets with a schedule need it

            if not croniter.is_valid(value):
                raise ValueError("must be a valid cron expression")
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_go_duration(value, _BUDGET_DURATION, "8h, 30m or 1h30m (hours, minutes)")

    @model_validator(mode="after")
    def _schedule_with_duration(self) -> Budget:
        if (self.schedule is None) != (self.duration is None):
            missing = "duration" if self.duration is None else "schedule"
            other = "schedule" if missing == "duration" else "duration"
            raise field_error((missing,), f"must be set together with '{other}'", None)
        return self


class Disruption(KubeModel):
    consolidation_policy: ConsolidationPolicy = ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED
    consolidate_after: str = "0s"
    # newer Karpenter: cost-justified consolidation (accepted, not yet used by the planner)
    consolidate_when: (
        Literal["WhenEmpty", "WhenEmptyOrUnderutilized", "WhenCostJustifiesDisruption"] | None
    ) = None
    decision_ratio_threshold: float | None = Field(default=None, gt=0)
    budgets: list[Budget] = Field(default_factory=lambda: [Budget()], max_length=50)

    @field_validator("consolidate_after")
    @classmethod
    def _consolidate_after(cls, value: str) -> str:
        return check_go_duration(value, _DURATION_OR_NEVER, "30s, 1m or Never")


class NodePoolSpec(KubeModel):
    template: NodeClaimTemplate
    disruption: Disruption = Field(default_factory=Disruption)
    limits: dict[str, str | int | float] = Field(default_factory=dict)
    weight: int | None = Field(default=None, ge=1, le=100)
    replicas: int | None = Field(default=None, ge=0)  # alpha: static NodePools

    @field_validator("limits", mode="before")
    @classmethod
    def _limits(cls, value: Any) -> Any:
        return check_quantities(value) if isinstance(value, Mapping) else value

    @model_validator(mode="after")
    def _static_pool_rules(self) -> NodePoolSpec:
        if self.replicas is not None:
            if self.weight is not None:
                raise field_error(("weight",), "not supported on static NodePools", self.weight)
            if set(self.limits) - {"nodes"}:
                raise field_error(
                    ("limits",), "only 'limits.nodes' is supported on static NodePools", None
                )
        return self


class NodePoolStatus(OpenModel):
    resources: dict[str, Any] = Field(default_factory=dict)
    conditions: list[Condition] = Field(default_factory=list)
    nodes: int | None = None


class NodePool(KubeModel):
    """karpenter.sh/v1 NodePool (also ebbflow.io/v1)."""

    api_version: Literal["karpenter.sh/v1", "ebbflow.io/v1"] = "ebbflow.io/v1"
    kind: Literal["NodePool"] = "NodePool"
    metadata: ObjectMeta
    spec: NodePoolSpec
    status: NodePoolStatus | None = None


# --- NodeClaim -------------------------------------------------------------------------------


class NodeClaimResources(KubeModel):
    requests: dict[str, str | int | float] = Field(default_factory=dict)

    @field_validator("requests", mode="before")
    @classmethod
    def _requests(cls, value: Any) -> Any:
        return check_quantities(value) if isinstance(value, Mapping) else value


class NodeClaimSpec(_NodeLifetime):
    requirements: list[NodeSelectorRequirement] = Field(max_length=100)
    resources: NodeClaimResources = Field(default_factory=NodeClaimResources)


class NodeClaimStatus(OpenModel):
    provider_id: str | None = Field(default=None, alias="providerID")
    node_name: str | None = None
    image_id: str | None = Field(default=None, alias="imageID")
    capacity: dict[str, Any] = Field(default_factory=dict)
    allocatable: dict[str, Any] = Field(default_factory=dict)
    conditions: list[Condition] = Field(default_factory=list)
    last_pod_event_time: str | None = None


class NodeClaim(KubeModel):
    """karpenter.sh/v1 NodeClaim (also ebbflow.io/v1): one node, requested or launched."""

    api_version: Literal["karpenter.sh/v1", "ebbflow.io/v1"] = "ebbflow.io/v1"
    kind: Literal["NodeClaim"] = "NodeClaim"
    metadata: ObjectMeta
    spec: NodeClaimSpec
    status: NodeClaimStatus | None = None


# (apiVersions, kind, model) for a manifest-kind registry such as scaler.manifests.register_kind
MANIFEST_KINDS: Sequence[tuple[tuple[str, ...], str, type[BaseModel]]] = (
    (NODE_API_VERSIONS, "NodePool", NodePool),
    (NODE_API_VERSIONS, "NodeClaim", NodeClaim),
    (NODE_CLASS_API_VERSIONS, "EC2NodeClass", EC2NodeClass),
    ((f"{EBBFLOW_GROUP}/v1",), "NodeClass", EC2NodeClass),
)
