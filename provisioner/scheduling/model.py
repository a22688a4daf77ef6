"""Plain data the scheduling core works on: resources, requirements, taints, pods, node shapes.

Everything here is frozen and free of I/O, so the packer and the disruption planner can be
table-tested and property-tested. The pydantic CRD models (`provisioner.api`) and the catalog
(`provisioner.catalog`) are turned into these shapes at the edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# Karpenter's well-known labels
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
ZONE = "topology.kubernetes.io/zone"
ARCH = "kubernetes.io/arch"
OS = "kubernetes.io/os"
HOSTNAME = "kubernetes.io/hostname"
NODEPOOL = "karpenter.sh/nodepool"
SPOT = "spot"
ON_DEMAND = "on-demand"


@dataclass(frozen=True, slots=True)
class Resources:
    """A resource vector: cpu in millicores, memory in bytes, accelerators, pod slots."""

    cpu: int = 0
    memory: int = 0
    gpu: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu + other.cpu,
            self.memory + other.memory,
            self.gpu + other.gpu,
            self.pods + other.pods,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu - other.cpu,
            self.memory - other.memory,
            self.gpu - other.gpu,
            self.pods - other.pods,
        )

    def times(self, n: int) -> Resources:
        return Resources(self.cpu * n, self.memory * n, self.gpu * n, self.pods * n)

    def fits_in(self, room: Resources) -> bool:
        """True when every dimension of self is at most room's."""
        return (
            self.cpu <= room.cpu
            and self.memory <= room.memory
            and self.gpu <= room.gpu
            and self.pods <= room.pods
        )


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One node selector requirement, as in a NodePool, a pod's node affinity or a NodeClaim."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()
    min_values: int | None = None


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: TaintEffect
    value: str = ""


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod toleration; `key` empty with operator Exists tolerates everything."""

    key: str = ""
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: TaintEffect | None = None  # None tolerates every effect


@dataclass(frozen=True, slots=True)
class LabelSelector:
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()  # In/NotIn/Exists/DoesNotExist


@dataclass(frozen=True, slots=True)
class TopologySpread:
    max_skew: int
    topology_key: str  # ZONE or HOSTNAME (others: treated as unsupported, pod says why)
    when_unsatisfiable: str = "DoNotSchedule"  # ScheduleAnyway constraints are preferences
    selector: LabelSelector = LabelSelector()
    min_domains: int | None = None


@dataclass(frozen=True, slots=True)
class PodAffinityTerm:
    """A required pod (anti-)affinity term."""

    topology_key: str
    selector: LabelSelector = LabelSelector()


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod as the scheduler sees it."""

    name: str
    namespace: str = "default"
    requests: Resources = Resources(pods=1)
    labels: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # required node affinity: the terms are ORed, the requirements inside a term ANDed
    node_affinity: tuple[tuple[Requirement, ...], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    topology_spread: tuple[TopologySpread, ...] = ()
    anti_affinity: tuple[PodAffinityTerm, ...] = ()
    owner: str | None = None  # the controller's kind/name, None for a bare pod
    priority: int = 0
    do_not_disrupt: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Offering:
    """Where and how a type can be bought: a zone and a capacity type, at a price per hour."""

    zone: str
    capacity_type: str  # SPOT or ON_DEMAND
    price: float
    available: bool = True
    # expected fraction of spot instances interrupted per month (the advisor's bucket midpoint)
    interruption_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class InstanceType:
    """A type with its well-known labels, capacity, allocatable (after overhead) and offerings."""

    name: str
    labels: Mapping[str, str]
    capacity: Resources
    allocatable: Resources
    offerings: tuple[Offering, ...]
    gpu_name: str | None = None


@dataclass(frozen=True, slots=True)
class NodeTemplate:
    """What a NodePool contributes to a new node: its constraints, taints, labels and budget."""

    pool: str
    requirements: tuple[Requirement, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    startup_taints: tuple[Taint, ...] = ()
    weight: int = 0
    limits: Resources | None = None  # None: unlimited (any dimension may be huge)
    in_use: Resources = Resources()  # capacity of the pool's existing nodes, against limits


@dataclass(frozen=True, slots=True)
class ExistingNode:
    """A node already in the cluster (or launching), with the pods bound to it."""

    name: str
    labels: Mapping[str, str]
    allocatable: Resources
    taints: tuple[Taint, ...] = ()
    pods: tuple[Pod, ...] = ()
    pool: str | None = None
    price: float = 0.0
    ready: bool = True

    @property
    def requested(self) -> Resources:
        total = Resources()
        for pod in self.pods:
            total = total + pod.requests
        return total


@dataclass(frozen=True, slots=True)
class NewNode:
    """A node the plan launches: the chosen offering and the ranked types that also fit."""

    pool: str
    instance_type: str
    zone: str
    capacity_type: str
    price: float
    pods: tuple[Pod, ...]
    alternatives: tuple[str, ...] = ()  # other fitting types, cheapest first (ICE fallback)
    requirements: tuple[Requirement, ...] = ()  # for the NodeClaim's spec.requirements


@dataclass(frozen=True, slots=True)
class Unschedulable:
    pod: Pod
    reason: str  # in words: which requirement or resource, and why


@dataclass(frozen=True, slots=True)
class Plan:
    new_nodes: tuple[NewNode, ...]
    bindings: Mapping[str, str]  # pod key -> existing node name
    unschedulable: tuple[Unschedulable, ...]
    lower_bound: float  # LP relaxation bound on the price per hour of new nodes

    @property
    def total_price(self) -> float:
        return sum(n.price for n in self.new_nodes)
