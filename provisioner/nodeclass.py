"""The node class: Karpenter's `karpenter.k8s.aws/v1` EC2NodeClass (ebbflow.io/v1 `NodeClass`).

Field for field as the AWS provider's v1 CRD, with its CEL rules (exactly one of role and
instanceProfile, an `alias` AMI term alone, amiFamily unless an alias is used). Karpenter's
open maps (tags, kubelet reservations and eviction signals) stay maps; `status` is kept as is.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from provisioner.crd import KubeModel, ObjectMeta, OpenModel, field_error
from provisioner.quantity import parse_quantity


class SelectorTerm(KubeModel):
    """A subnet, security group or capacity reservation selector term (terms are ORed)."""

    tags: dict[str, str] | None = None
    id: str | None = None
    name: str | None = None
    owner_id: str | None = Field(default=None, alias="ownerID")
    instance_match_criteria: str | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> SelectorTerm:
        if not (self.tags or self.id or self.name or self.owner_id):
            raise ValueError("expected at least one of 'tags', 'id' or 'name'")
        return self


class AMISelectorTerm(KubeModel):
    alias: str | None = None
    tags: dict[str, str] | None = None
    id: str | None = None
    name: str | None = None
    owner: str | None = None
    ssm_parameter: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> AMISelectorTerm:
        if self.alias is not None:
            if self.tags or self.id or self.name or self.owner or self.ssm_parameter:
                raise field_error(("alias",), "can't be combined with other selectors", None)
            if not re.match(r"^[a-zA-Z0-9]+@.+$", self.alias):
                raise field_error(
                    ("alias",), "must be family@version, e.g. al2023@latest", self.alias
                )
        elif not (self.tags or self.id or self.name or self.ssm_parameter):
            raise ValueError("expected at least one of 'alias', 'tags', 'id', 'name'")
        return self


_RESERVED_KEYS = frozenset({"cpu", "memory", "ephemeral-storage", "pid"})
_EVICTION_SIGNALS = frozenset(
    {
        "memory.available",
        "nodefs.available",
        "nodefs.inodesFree",
        "imagefs.available",
        "imagefs.inodesFree",
        "pid.available",
    }
)


def _check_keys(values: dict[str, str], allowed: frozenset[str]) -> dict[str, str]:
    for key in values:
        if key not in allowed:
            raise field_error((key,), f"must be one of {', '.join(sorted(allowed))}", key)
    return values


class Kubelet(KubeModel):
    """The kubelet settings Karpenter passes through (EC2NodeClass spec.kubelet)."""

    cluster_dns: list[str] | None = Field(default=None, alias="clusterDNS")
    max_pods: int | None = Field(default=None, ge=0)
    pods_per_core: int | None = Field(default=None, ge=0)
    system_reserved: dict[str, str] | None = None
    kube_reserved: dict[str, str] | None = None
    eviction_hard: dict[str, str] | None = None
    eviction_soft: dict[str, str] | None = None
    eviction_soft_grace_period: dict[str, str] | None = None
    eviction_max_pod_grace_period: int | None = None
    image_gc_high_threshold_percent: int | None = Field(
        default=None, ge=0, le=100, alias="imageGCHighThresholdPercent"
    )
    image_gc_low_threshold_percent: int | None = Field(
        default=None, ge=0, le=100, alias="imageGCLowThresholdPercent"
    )
    cpu_cfs_quota: bool | None = Field(default=None, alias="cpuCFSQuota")

    @field_validator("system_reserved", "kube_reserved")
    @classmethod
    def _reserved(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _check_keys(value, _RESERVED_KEYS)

    @field_validator("eviction_hard", "eviction_soft", "eviction_soft_grace_period")
    @classmethod
    def _signals(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _check_keys(value, _EVICTION_SIGNALS)

    @model_validator(mode="after")
    def _gc_thresholds(self) -> Kubelet:
        high, low = self.image_gc_high_threshold_percent, self.image_gc_low_threshold_percent
        if high is not None and low is not None and high <= low:
            raise field_error(
                ("imageGCHighThresholdPercent",),
                "must be greater than imageGCLowThresholdPercent",
                high,
            )
        soft = set(self.eviction_soft or {})
        grace = set(self.eviction_soft_grace_period or {})
        if soft != grace:
            raise field_error(
                ("evictionSoftGracePeriod",),
                "must name the same signals as evictionSoft",
                None,
            )
        return self


class EBS(KubeModel):
    delete_on_termination: bool | None = None
    encrypted: bool | None = None
    iops: int | None = Field(default=None, ge=0)
    kms_key_id: str | None = Field(default=None, alias="kmsKeyID")
    snapshot_id: str | None = Field(default=None, alias="snapshotID")
    throughput: int | None = Field(default=None, ge=0)
    volume_initialization_rate: int | None = None
    volume_size: str | int | None = None
    volume_type: Literal["standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"] | None = None

    @field_validator("volume_size")
    @classmethod
    def _volume_size(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            try:
                parse_quantity(value)
            except ValueError:
                raise ValueError("must be a quantity such as 100Gi") from None
        return value


class BlockDeviceMapping(KubeModel):
    device_name: str | None = None
    ebs: EBS | None = None
    root_volume: bool = False


class MetadataOptions(KubeModel):
    http_endpoint: Literal["enabled", "disabled"] = "enabled"
    http_protocol_i_pv6: Literal["enabled", "disabled"] = Field(
        default="disabled", alias="httpProtocolIPv6"
    )
    http_put_response_hop_limit: int = Field(default=1, ge=1, le=64)
    http_tokens: Literal["required", "optional"] = "required"


AMIFamily = Literal["AL2", "AL2023", "Bottlerocket", "Custom", "Windows2019", "Windows2022"]


class EC2NodeClassSpec(KubeModel):
    kubelet: Kubelet | None = None
    ami_family: AMIFamily | None = None
    ami_selector_terms: list[AMISelectorTerm] = Field(min_length=1, max_length=30)
    subnet_selector_terms: list[SelectorTerm] = Field(min_length=1, max_length=30)
    security_group_selector_terms: list[SelectorTerm] = Field(min_length=1, max_length=30)
    capacity_reservation_selector_terms: list[SelectorTerm] | None = None
    associate_public_ip_address: bool | None = Field(default=None, alias="associatePublicIPAddress")
    role: str | None = None
    instance_profile: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    user_data: str | None = None
    metadata_options: MetadataOptions | None = None
    block_device_mappings: list[BlockDeviceMapping] = Field(default_factory=list, max_length=50)
    instance_store_policy: Literal["RAID0"] | None = None
    detailed_monitoring: bool | None = None
    context: str | None = None

    @model_validator(mode="after")
    def _karpenter_rules(self) -> EC2NodeClassSpec:
        if (self.role is None) == (self.instance_profile is None):
            raise field_error(
                ("role",), "must specify exactly one of ['role', 'instanceProfile']", None
            )
        aliases = [i for i, t in enumerate(self.ami_selector_terms) if t.alias is not None]
        if aliases and len(self.ami_selector_terms) > 1:
            raise field_error(
                ("amiSelectorTerms", aliases[0]),
                "an 'alias' term can't be combined with other amiSelectorTerms",
                None,
            )
        if not aliases and self.ami_family is None:
            raise field_error(
                ("amiFamily",), "required unless amiSelectorTerms uses an 'alias'", None
            )
        roots = [m for m in self.block_device_mappings if m.root_volume]
        if len(roots) > 1:
            raise field_error(
                ("blockDeviceMappings",), "at most one mapping may be the rootVolume", None
            )
        return self


class EC2NodeClass(KubeModel):
    """karpenter.k8s.aws/v1 EC2NodeClass (as ebbflow.io/v1 `NodeClass` too)."""

    api_version: Literal["karpenter.k8s.aws/v1", "ebbflow.io/v1"] = "ebbflow.io/v1"
    kind: Literal["EC2NodeClass", "NodeClass"] = "NodeClass"
    metadata: ObjectMeta
    spec: EC2NodeClassSpec
    status: OpenModel | None = None


NodeClass = EC2NodeClass
