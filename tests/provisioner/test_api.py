"""NodePool, NodeClaim and EC2NodeClass: Karpenter v1 manifests validate unchanged; each CRD/CEL
rule is rejected at the exact field path; Karpenter's defaults apply."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from provisioner.api import (
    MANIFEST_KINDS,
    ConsolidationPolicy,
    EC2NodeClass,
    NodeClaim,
    NodePool,
    NodeSelectorOperator,
)
from scaler.manifests import issues_from

# karpenter.sh v1.0 docs, concepts/nodepools: the annotated example, with one value chosen
# where the doc writes alternatives (`720h | Never`, `WhenEmptyOrUnderutilized | WhenEmpty`)
DOCS_NODEPOOL = """\
apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    metadata:
      labels:
        billing-team: my-team
      annotations:
        example.com/owner: "my-team"
    spec:
      nodeClassRef:
        group: karpenter.k8s.aws  # Updated since only a single version will be served
        kind: EC2NodeClass
        name: default
      taints:
        - key: example.com/special-taint
          effect: NoSchedule
      startupTaints:
        - key: example.com/another-taint
          effect: NoSchedule
      expireAfter: 720h
      terminationGracePeriod: 48h
      requirements:
        - key: "karpenter.k8s.aws/instance-category"
          operator: In
          values: ["c", "m", "r"]
          minValues: 2
        - key: "karpenter.k8s.aws/instance-family"
          operator: In
          values: ["m5","m5d","c5","c5d","c4","r4"]
          minValues: 5
        - key: "karpenter.k8s.aws/instance-cpu"
          operator: In
          values: ["4", "8", "16", "32"]
        - key: "karpenter.k8s.aws/instance-hypervisor"
          operator: In
          values: ["nitro"]
        - key: "karpenter.k8s.aws/instance-generation"
          operator: Gt
          values: ["2"]
        - key: "topology.kubernetes.io/zone"
          operator: In
          values: ["us-west-2a", "us-west-2b"]
        - key: "kubernetes.io/arch"
          operator: In
          values: ["arm64", "amd64"]
        - key: "karpenter.sh/capacity-type"
          operator: In
          values: ["spot", "on-demand"]
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    consolidateAfter: 1m
    budgets:
    - nodes: 10%
    # On Weekdays during business hours, don't do any deprovisioning.
    - schedule: "0 9 * * mon-fri"
      duration: 8h
      nodes: "0"
  limits:
    cpu: "1000"
    memory: 1000Gi
  weight: 10
status:
  conditions:
    - type: Initialized
      status: "False"
      observedGeneration: 1
      lastTransitionTime: "2024-02-02T19:54:34Z"
      reason: NodeClaimNotLaunched
      message: "NodeClaim hasn't succeeded launch"
  resources:
    cpu: "20"
    memory: "8192Mi"
    ephemeral-storage: "100Gi"
"""

# karpenter.sh v1.0 docs, concepts/nodepools "Min Values": Exists with minValues, no values
DOCS_MIN_VALUES = """\
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: flexible}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements:
        - key: kubernetes.io/arch
          operator: In
          values: ["amd64"]
        - key: kubernetes.io/os
          operator: In
          values: ["linux"]
        - key: karpenter.k8s.aws/instance-category
          operator: In
          values: ["c", "m", "r"]
          minValues: 2
        - key: karpenter.k8s.aws/instance-family
          operator: Exists
          minValues: 5
        - key: node.kubernetes.io/instance-type
          operator: Exists
          minValues: 10
        - key: karpenter.k8s.aws/instance-generation
          operator: Gt
          values: ["2"]
"""

# karpenter.sh v1.0 docs, concepts/nodeclasses: the annotated EC2NodeClass. The doc sets both
# `role` and `instanceProfile` to show them; Karpenter's CRD requires exactly one, so
# instanceProfile is left out here (it is tested below as its own rule).
DOCS_EC2NODECLASS = """\
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata:
  name: default
spec:
  kubelet:
    podsPerCore: 2
    maxPods: 20
    systemReserved:
        cpu: 100m
        memory: 100Mi
        ephemeral-storage: 1Gi
    kubeReserved:
        cpu: 200m
        memory: 100Mi
        ephemeral-storage: 3Gi
    evictionHard:
        memory.available: 5%
        nodefs.available: 10%
        nodefs.inodesFree: 10%
    evictionSoft:
        memory.available: 500Mi
        nodefs.available: 15%
        nodefs.inodesFree: 15%
    evictionSoftGracePeriod:
        memory.available: 1m
        nodefs.available: 1m30s
        nodefs.inodesFree: 2m
    evictionMaxPodGracePeriod: 60
    imageGCHighThresholdPercent: 85
    imageGCLowThresholdPercent: 80
    cpuCFSQuota: true
    clusterDNS: ["10.0.1.100"]
  amiFamily: AL2
  subnetSelectorTerms:
    - tags:
        karpenter.sh/discovery: "${CLUSTER_NAME}"
        environment: test
    - id: subnet-09fa4a0a8f233a921
  securityGroupSelectorTerms:
    - tags:
        karpenter.sh/discovery: "${CLUSTER_NAME}"
        environment: test
    - name: my-security-group
    - id: sg-063d7acfb4b06c82c
  role: "KarpenterNodeRole-${CLUSTER_NAME}"
  amiSelectorTerms:
    - tags:
        karpenter.sh/discovery: "${CLUSTER_NAME}"
        environment: test
    - name: my-ami
    - id: ami-123
  tags:
    team: team-a
    app: team-a-app
  metadataOptions:
    httpEndpoint: enabled
    httpProtocolIPv6: disabled
    httpPutResponseHopLimit: 1
    httpTokens: required
  blockDeviceMappings:
    - deviceName: /dev/xvda
      ebs:
        volumeSize: 100Gi
        volumeType: gp3
        iops: 10000
        encrypted: true
        kmsKeyID: "1234abcd-12ab-34cd-56ef-1234567890ab"
        deleteOnTermination: true
        throughput: 125
        snapshotID: snap-0123456789
  instanceStorePolicy: RAID0
  userData: |
    echo "Hello world"
  detailedMonitoring: true
  associatePublicIPAddress: true
status:
  subnets:
    - id: subnet-0a462d98193ff9fac
      zone: us-east-2b
  securityGroups:
    - id: sg-041513b454818610b
      name: ClusterSharedNodeSecurityGroup
  amis:
    - id: ami-01234567890123456
      name: custom-ami-amd64
      requirements:
        - key: kubernetes.io/arch
          operator: In
          values:
            - amd64
  instanceProfile: "${CLUSTER_NAME}-0123456778901234567789"
  conditions:
    - lastTransitionTime: "2024-02-02T19:54:34Z"
      status: "True"
      type: Ready
"""

NODECLAIM = """\
apiVersion: karpenter.sh/v1
kind: NodeClaim
metadata:
  name: default-x7k2p
  labels: {karpenter.sh/nodepool: default}
spec:
  nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  requirements:
    - {key: karpenter.sh/nodepool, operator: In, values: [default]}
    - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.large, m5.xlarge]}
    - {key: karpenter.sh/capacity-type, operator: In, values: [spot]}
  resources:
    requests: {cpu: 1500m, memory: 3Gi, pods: "5"}
  taints:
    - {key: example.com/special-taint, effect: NoSchedule}
status:
  providerID: aws:///us-west-2b/i-0a2b3c4d5e6f7a8b9
  nodeName: ip-192-168-71-87.us-west-2.compute.internal
  imageID: ami-0123456789abcdef0
  capacity: {cpu: "2", memory: 7577Mi, pods: "29"}
  allocatable: {cpu: 1930m, memory: 6012Mi, pods: "29"}
  conditions:
    - {type: Launched, status: "True", lastTransitionTime: "2024-02-02T19:54:34Z"}
"""


def load(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def errors(model: type[BaseModel], doc: dict[str, Any]) -> list[str]:
    try:
        model.model_validate(doc)
    except ValidationError as exc:
        return [f"{i.path}: {i.message}" for i in issues_from(exc, "f.yaml", 1)]
    return []


def test_docs_nodepool_validates_unchanged() -> None:
    pool = NodePool.model_validate(load(DOCS_NODEPOOL))
    spec = pool.spec.template.spec
    assert pool.metadata.name == "default"
    assert spec.node_class_ref.kind == "EC2NodeClass"
    assert spec.requirements[0].min_values == 2
    assert spec.requirements[4].operator is NodeSelectorOperator.GT
    assert [b.nodes for b in pool.spec.disruption.budgets] == ["10%", "0"]
    assert pool.spec.disruption.budgets[1].schedule == "0 9 * * mon-fri"
    assert pool.spec.limits == {"cpu": "1000", "memory": "1000Gi"}
    assert pool.status is not None and pool.status.conditions[0].reason == "NodeClaimNotLaunched"


def test_docs_min_values_example_validates() -> None:
    assert errors(NodePool, load(DOCS_MIN_VALUES)) == []


def test_docs_ec2nodeclass_validates_unchanged() -> None:
    node_class = EC2NodeClass.model_validate(load(DOCS_EC2NODECLASS))
    assert node_class.spec.kubelet is not None
    assert node_class.spec.kubelet.max_pods == 20
    assert node_class.spec.kubelet.eviction_hard == {
        "memory.available": "5%",
        "nodefs.available": "10%",
        "nodefs.inodesFree": "10%",
    }
    assert node_class.spec.block_device_mappings[0].ebs is not None
    assert node_class.spec.block_device_mappings[0].ebs.kms_key_id is not None
    assert node_class.spec.associate_public_ip_address is True


def test_nodeclaim_with_status_validates() -> None:
    claim = NodeClaim.model_validate(load(NODECLAIM))
    assert claim.spec.resources.requests["cpu"] == "1500m"
    assert claim.status is not None
    assert claim.status.provider_id == "aws:///us-west-2b/i-0a2b3c4d5e6f7a8b9"
    assert claim.status.image_id == "ami-0123456789abcdef0"
    assert claim.spec.expire_after == "720h"


def test_nodepool_defaults_are_karpenters() -> None:
    minimal = load(DOCS_MIN_VALUES)
    pool = NodePool.model_validate(minimal)
    assert pool.spec.template.spec.expire_after == "720h"
    assert pool.spec.template.spec.termination_grace_period is None
    disruption = pool.spec.disruption
    assert disruption.consolidation_policy is ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED
    assert disruption.consolidate_after == "0s"
    assert [(b.nodes, b.schedule, b.duration) for b in disruption.budgets] == [("10%", None, None)]
    assert pool.spec.weight is None
    assert pool.spec.limits == {}


def test_both_api_groups_are_accepted() -> None:
    ours = load(DOCS_MIN_VALUES) | {"apiVersion": "ebbflow.io/v1"}
    assert errors(NodePool, ours) == []
    old = load(DOCS_MIN_VALUES) | {"apiVersion": "karpenter.sh/v1beta1"}
    assert errors(NodePool, old) == [
        "apiVersion: must be one of 'karpenter.sh/v1', 'ebbflow.io/v1', "
        'got "karpenter.sh/v1beta1"'
    ]
    node_class = load(DOCS_EC2NODECLASS) | {"apiVersion": "ebbflow.io/v1", "kind": "NodeClass"}
    assert errors(EC2NodeClass, node_class) == []


def test_manifest_kinds_cover_every_model_and_group() -> None:
    table = {(kind, version) for versions, kind, _ in MANIFEST_KINDS for version in versions}
    assert table == {
        ("NodePool", "karpenter.sh/v1"),
        ("NodePool", "ebbflow.io/v1"),
        ("NodeClaim", "karpenter.sh/v1"),
        ("NodeClaim", "ebbflow.io/v1"),
        ("EC2NodeClass", "karpenter.k8s.aws/v1"),
        ("EC2NodeClass", "ebbflow.io/v1"),
        ("NodeClass", "ebbflow.io/v1"),
    }


REQ = "spec.template.spec.requirements[0]"


def pool_with(**changes: Any) -> dict[str, Any]:
    """DOCS_MIN_VALUES with its first requirement (or other spec parts) replaced."""
    doc = load(DOCS_MIN_VALUES)
    spec = doc["spec"]
    if "requirement" in changes:
        spec["template"]["spec"]["requirements"][0] = changes.pop("requirement")
    if "labels" in changes:
        spec["template"]["metadata"] = {"labels": changes.pop("labels")}
    for name in ("taints", "expireAfter", "terminationGracePeriod", "nodeClassRef"):
        if name in changes:
            spec["template"]["spec"][name] = changes.pop(name)
    spec.update(changes)
    return doc


NODEPOOL_RULES = [
    ("in-needs-values", pool_with(requirement={"key": "kubernetes.io/arch", "operator": "In"}),
     [f"{REQ}.values: operator In requires at least one value"]),
    ("in-empty-values", pool_with(requirement={
        "key": "kubernetes.io/arch", "operator": "In", "values": []}),
     [f"{REQ}.values: operator In requires at least one value"]),
    ("exists-no-values", pool_with(requirement={
        "key": "kubernetes.io/arch", "operator": "Exists", "values": ["amd64"]}),
     [f'{REQ}.values: must be empty with operator Exists, got "amd64"']),
    ("does-not-exist-no-values", pool_with(requirement={
        "key": "example.com/gpu", "operator": "DoesNotExist", "values": ["x"]}),
     [f'{REQ}.values: must be empty with operator DoesNotExist, got "x"']),
    ("gt-one-value", pool_with(requirement={
        "key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": ["2", "4"]}),
     [f"{REQ}.values: operator Gt requires a single non-negative integer value"]),
    ("lt-integer", pool_with(requirement={
        "key": "karpenter.k8s.aws/instance-cpu", "operator": "Lt", "values": ["four"]}),
     [f'{REQ}.values: operator Lt requires a single non-negative integer value, got "four"']),
    ("gt-whole-number", pool_with(requirement={
        "key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": ["1.5"]}),
     [f'{REQ}.values: operator Gt requires a single non-negative integer value, got "1.5"']),
    ("unknown-operator", pool_with(requirement={
        "key": "kubernetes.io/arch", "operator": "Gte", "values": ["1"]}),
     [f"{REQ}.operator: must be one of 'In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt', "
      'got "Gte"']),
    ("min-values-above-values", pool_with(requirement={
        "key": "karpenter.k8s.aws/instance-category", "operator": "In",
        "values": ["c", "m"], "minValues": 3}),
     [f"{REQ}.minValues: must be at most the number of values (2), got 3"]),
    ("min-values-range", pool_with(requirement={
        "key": "karpenter.k8s.aws/instance-family", "operator": "Exists", "minValues": 51}),
     [f"{REQ}.minValues: must be <= 50, got 51"]),
    ("nodepool-key-restricted", pool_with(requirement={
        "key": "karpenter.sh/nodepool", "operator": "In", "values": ["a"]}),
     [f'{REQ}.key: label "karpenter.sh/nodepool" is restricted']),
    ("karpenter-sh-domain", pool_with(requirement={
        "key": "karpenter.sh/team", "operator": "In", "values": ["a"]}),
     [f'{REQ}.key: label domain "karpenter.sh" is restricted, got "karpenter.sh/team"']),
    ("kubernetes-io-domain", pool_with(requirement={
        "key": "kubernetes.io/team", "operator": "In", "values": ["a"]}),
     [f'{REQ}.key: label domain "kubernetes.io" is restricted, got "kubernetes.io/team"']),
    ("k8s-io-domain", pool_with(requirement={
        "key": "example.k8s.io/team", "operator": "In", "values": ["a"]}),
     [f'{REQ}.key: label domain "k8s.io" is restricted, got "example.k8s.io/team"']),
    ("hostname", pool_with(requirement={
        "key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}),
     [f'{REQ}.key: label "kubernetes.io/hostname" is restricted']),
    ("aws-domain", pool_with(requirement={
        "key": "karpenter.k8s.aws/instance-colour", "operator": "In", "values": ["a"]}),
     [f'{REQ}.key: label domain "karpenter.k8s.aws" is restricted, '
      'got "karpenter.k8s.aws/instance-colour"']),
    ("bad-key", pool_with(requirement={"key": "Team/x", "operator": "In", "values": ["a"]}),
     [f'{REQ}.key: must be a qualified name such as example.com/team, got "Team/x"']),
    ("bad-value", pool_with(requirement={
        "key": "example.com/team", "operator": "In", "values": ["ok", "not ok"]}),
     [f'{REQ}.values[1]: must be a label value (63 characters, alphanumeric, - _ .), '
      'got "not ok"']),
    ("label-restricted", pool_with(labels={"karpenter.sh/nodepool": "x"}),
     ['spec.template.metadata.labels[karpenter.sh/nodepool]: label "karpenter.sh/nodepool" '
      'is restricted']),
    ("label-value", pool_with(labels={"team": "a b"}),
     ["spec.template.metadata.labels.team: must be a label value (63 characters, "
      'alphanumeric, - _ .), got "a b"']),
    ("taint-effect", pool_with(taints=[{"key": "gpu", "effect": "NoWay"}]),
     ["spec.template.spec.taints[0].effect: must be one of 'NoSchedule', 'PreferNoSchedule', "
      "'NoExecute', got \"NoWay\""]),
    ("expire-after", pool_with(expireAfter="30d"),
     ['spec.template.spec.expireAfter: must be a duration such as 720h, 30m or Never, '
      'got "30d"']),
    ("termination-grace-never", pool_with(terminationGracePeriod="Never"),
     ['spec.template.spec.terminationGracePeriod: must be a duration such as 48h or 1h30m, '
      'got "Never"']),
    ("node-class-ref-name", pool_with(nodeClassRef={"group": "karpenter.k8s.aws",
                                                    "kind": "EC2NodeClass"}),
     ["spec.template.spec.nodeClassRef.name: required"]),
    ("weight-range", pool_with(weight=101), ["spec.weight: must be <= 100, got 101"]),
    ("weight-zero", pool_with(weight=0), ["spec.weight: must be >= 1, got 0"]),
    ("limits-quantity", pool_with(limits={"cpu": "lots"}),
     ['spec.limits.cpu: must be a quantity such as 500m, 2Gi or 4, got "lots"']),
    ("consolidation-policy", pool_with(disruption={"consolidationPolicy": "WhenUnderutilized"}),
     ["spec.disruption.consolidationPolicy: must be one of 'WhenEmpty', "
      "'WhenEmptyOrUnderutilized', got \"WhenUnderutilized\""]),
    ("consolidate-after", pool_with(disruption={"consolidateAfter": "1 minute"}),
     ['spec.disruption.consolidateAfter: must be a duration such as 30s, 1m or Never, '
      'got "1 minute"']),
    ("schedule-needs-duration", pool_with(disruption={"budgets": [
        {"nodes": "0", "schedule": "@daily"}]}),
     ["spec.disruption.budgets[0].duration: must be set together with 'schedule'"]),
    ("duration-needs-schedule", pool_with(disruption={"budgets": [
        {"nodes": "0", "duration": "8h"}]}),
     ["spec.disruption.budgets[0].schedule: must be set together with 'duration'"]),
    ("budget-duration-seconds", pool_with(disruption={"budgets": [
        {"nodes": "0", "schedule": "@daily", "duration": "30s"}]}),
     ['spec.disruption.budgets[0].duration: must be a duration such as 8h, 30m or 1h30m '
      '(hours, minutes), got "30s"']),
    ("budget-cron", pool_with(disruption={"budgets": [
        {"nodes": "0", "schedule": "0 25 * * *", "duration": "1h"}]}),
     ['spec.disruption.budgets[0].schedule: must be a valid cron expression, got "0 25 * * *"']),
    ("budget-cron-fields", pool_with(disruption={"budgets": [
        {"nodes": "0", "schedule": "daily", "duration": "1h"}]}),
     ["spec.disruption.budgets[0].schedule: must be a 5-field cron expression or a macro "
      'such as @daily, got "daily"']),
    ("budget-nodes", pool_with(disruption={"budgets": [{"nodes": "110%"}]}),
     ['spec.disruption.budgets[0].nodes: must be a node count (5) or a percentage (0%..100%), '
      'got "110%"']),
    ("budget-reason", pool_with(disruption={"budgets": [{"nodes": "1", "reasons": ["Expired"]}]}),
     ["spec.disruption.budgets[0].reasons[0]: must be one of 'Underutilized', 'Empty', "
      "'Drifted', got \"Expired\""]),
    ("typo", pool_with(wieght=5), ["spec.wieght: unknown field"]),
    ("static-pool-weight", pool_with(replicas=3, weight=5),
     ["spec.weight: not supported on static NodePools, got 5"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "expected"), [c[1:] for c in NODEPOOL_RULES], ids=[c[0] for c in NODEPOOL_RULES]
)
def test_nodepool_rules_name_the_field(doc: dict[str, Any], expected: list[str]) -> None:
    assert errors(NodePool, doc) == expected


@pytest.mark.parametrize(
    "key",
    [
        "karpenter.sh/capacity-type",
        "node.kubernetes.io/instance-type",
        "topology.kubernetes.io/zone",
        "beta.kubernetes.io/arch",
        "example.node.kubernetes.io/rack",  # node.kubernetes.io subdomains are allowed
        "kops.k8s.io/instancegroup",
        "karpenter.k8s.aws/instance-gpu-name",
        "topology.k8s.aws/zone-id",
        "team",
    ],
)
def test_allowed_requirement_keys(key: str) -> None:
    doc = pool_with(requirement={"key": key, "operator": "Exists"})
    assert errors(NodePool, doc) == []


def test_budget_nodes_as_a_bare_number_is_read_as_a_count() -> None:
    pool = NodePool.model_validate(pool_with(disruption={"budgets": [{"nodes": 0}]}))
    assert pool.spec.disruption.budgets[0].nodes == "0"


def test_nodeclaim_may_name_its_nodepool_but_not_the_hostname() -> None:
    doc = load(NODECLAIM)
    assert errors(NodeClaim, doc) == []
    doc["spec"]["requirements"][0] = {
        "key": "kubernetes.io/hostname",
        "operator": "In",
        "values": ["a"],
    }
    assert errors(NodeClaim, doc) == [
        'spec.requirements[0].key: label "kubernetes.io/hostname" is restricted'
    ]


def test_nodeclaim_requests_must_be_quantities() -> None:
    doc = load(NODECLAIM)
    doc["spec"]["resources"]["requests"]["memory"] = "3 gigs"
    assert errors(NodeClaim, doc) == [
        'spec.resources.requests.memory: must be a quantity such as 500m, 2Gi or 4, got "3 gigs"'
    ]


def node_class_with(**spec: Any) -> dict[str, Any]:
    doc = load(DOCS_EC2NODECLASS)
    for key, value in spec.items():
        if value is None:
            doc["spec"].pop(key)
        else:
            doc["spec"][key] = value
    return doc


def kubelet_with(**kubelet: Any) -> dict[str, Any]:
    doc = load(DOCS_EC2NODECLASS)
    doc["spec"]["kubelet"] = kubelet
    return doc


NODECLASS_RULES = [
    ("role-and-profile", node_class_with(instanceProfile="KarpenterNodeInstanceProfile"),
     ["spec.role: must specify exactly one of ['role', 'instanceProfile']"]),
    ("neither-role-nor-profile", node_class_with(role=None),
     ["spec.role: must specify exactly one of ['role', 'instanceProfile']"]),
    ("subnets-required", node_class_with(subnetSelectorTerms=None),
     ["spec.subnetSelectorTerms: required"]),
    ("subnets-not-empty", node_class_with(subnetSelectorTerms=[]),
     ["spec.subnetSelectorTerms: must have at least 1 item(s)"]),
    ("empty-term", node_class_with(securityGroupSelectorTerms=[{}]),
     ["spec.securityGroupSelectorTerms[0]: expected at least one of 'tags', 'id' or 'name'"]),
    ("alias-alone", node_class_with(amiSelectorTerms=[{"alias": "al2023@latest"},
                                                      {"id": "ami-123"}]),
     ["spec.amiSelectorTerms[0]: an 'alias' term can't be combined with other amiSelectorTerms"]),
    ("alias-format", node_class_with(amiSelectorTerms=[{"alias": "al2023"}], amiFamily=None),
     ['spec.amiSelectorTerms[0].alias: must be family@version, e.g. al2023@latest, '
      'got "al2023"']),
    ("ami-family-needed", node_class_with(amiFamily=None),
     ["spec.amiFamily: required unless amiSelectorTerms uses an 'alias'"]),
    ("ami-family-enum", node_class_with(amiFamily="Fedora"),
     ["spec.amiFamily: must be one of 'AL2', 'AL2023', 'Bottlerocket', 'Custom', "
      "'Windows2019', 'Windows2022', got \"Fedora\""]),
    ("volume-type", node_class_with(blockDeviceMappings=[{"deviceName": "/dev/xvda",
                                                         "ebs": {"volumeType": "gp9"}}]),
     ["spec.blockDeviceMappings[0].ebs.volumeType: must be one of 'standard', 'io1', 'io2', "
      "'gp2', 'sc1', 'st1', 'gp3', got \"gp9\""]),
    ("volume-size", node_class_with(blockDeviceMappings=[{"ebs": {"volumeSize": "big"}}]),
     ['spec.blockDeviceMappings[0].ebs.volumeSize: must be a quantity such as 100Gi, '
      'got "big"']),
    ("reserved-key", kubelet_with(kubeReserved={"gpu": "1"}),
     ['spec.kubelet.kubeReserved.gpu: must be one of cpu, ephemeral-storage, memory, pid, '
      'got "gpu"']),
    ("eviction-signal", kubelet_with(evictionHard={"memory.free": "5%"}),
     ["spec.kubelet.evictionHard[memory.free]: must be one of imagefs.available, "
      "imagefs.inodesFree, memory.available, nodefs.available, nodefs.inodesFree, "
      'pid.available, got "memory.free"']),
    ("soft-needs-grace", kubelet_with(evictionSoft={"memory.available": "1Gi"}),
     ["spec.kubelet.evictionSoftGracePeriod: must name the same signals as evictionSoft"]),
    ("gc-thresholds", kubelet_with(imageGCHighThresholdPercent=50,
                                   imageGCLowThresholdPercent=60),
     ["spec.kubelet.imageGCHighThresholdPercent: must be greater than "
      "imageGCLowThresholdPercent, got 50"]),
    ("typo", node_class_with(subnetSelectorTerm=[{"id": "subnet-1"}]),
     ["spec.subnetSelectorTerm: unknown field"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "expected"), [c[1:] for c in NODECLASS_RULES], ids=[c[0] for c in NODECLASS_RULES]
)
def test_node_class_rules_name_the_field(doc: dict[str, Any], expected: list[str]) -> None:
    assert errors(EC2NodeClass, doc) == expected


def test_alias_replaces_ami_family() -> None:
    doc = node_class_with(amiSelectorTerms=[{"alias": "al2023@v20240807"}], amiFamily=None)
    node_class = EC2NodeClass.model_validate(doc)
    assert node_class.spec.ami_family is None
    assert node_class.spec.ami_selector_terms[0].alias == "al2023@v20240807"


def test_status_is_kept_as_written() -> None:
    doc = copy.deepcopy(load(DOCS_EC2NODECLASS))
    node_class = EC2NodeClass.model_validate(doc)
    assert node_class.status is not None
    dumped = node_class.status.model_dump(by_alias=True)
    assert dumped["subnets"] == [{"id": "subnet-0a462d98193ff9fac", "zone": "us-east-2b"}]
