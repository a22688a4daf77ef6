"""The plain data the disruption planner reads: nodes with their facts, pools, PDBs.

The executor builds a `ClusterState` from what it watches (nodes, NodeClaims, pods, NodePools,
PodDisruptionBudgets) and passes it, with `now`, to the planner. Times are seconds on the
executor's clock (the same clock for every field and for `now`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from provisioner.disruption.budgets import BudgetRule
from provisioner.disruption.pdb import PdbState
from provisioner.scheduling.model import ExistingNode, InstanceType, NodeTemplate, Pod
from provisioner.scheduling.options import PackOptions

DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"  # annotation on pods and nodes, value "true"

# Karpenter: consolidationTTL, the wait between choosing a consolidation and executing it
VALIDATION_PERIOD_SECONDS = 15.0
# Karpenter: MinInstanceTypesForSpotToSpotConsolidation
MIN_SPOT_TO_SPOT_TYPES = 15
# Karpenter: multi-node consolidation looks at 100 candidates at most
MAX_MULTI_NODE_CANDIDATES = 100


class ConsolidationPolicy(StrEnum):
    WHEN_EMPTY = "WhenEmpty"
    WHEN_EMPTY_OR_UNDERUTILIZED = "WhenEmptyOrUnderutilized"


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the planner knows about a managed node beyond its scheduling shape.

    `last_pod_event_at`: when a pod was last bound to or removed from the node (Karpenter's
    NodeClaim status.lastPodEventTime); with `initialized_at` it starts the consolidateAfter
    clock. `drifted`: the cloud provider or NodeClass says the node drifted (AMI, subnets...);
    NodePool drift is detected by the planner itself from `pool_hash` and the requirements.
    """

    claim: str
    pool: str
    instance_type: str
    capacity_type: str
    zone: str
    price: float
    created_at: float
    initialized: bool = True
    initialized_at: float | None = None
    last_pod_event_at: float | None = None
    do_not_disrupt: bool = False
    expire_after: float | None = None  # the NodeClaim's spec.expireAfter; None: Never
    termination_grace_period: float | None = None  # NodeClaim spec.terminationGracePeriod
    pool_hash: str | None = None  # the NodePool hash the claim was created from
    drifted: bool = False
    drift_reason: str = ""
    drifted_at: float | None = None
    marked_for_deletion: bool = False  # deleting, tainted karpenter.sh/disrupted, or queued
    nominated: bool = False  # the provisioner nominated pending pods to it


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    """A NodePool as the disruption planner needs it."""

    name: str
    template: NodeTemplate
    consolidation_policy: ConsolidationPolicy = ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED
    consolidate_after: float | None = 0.0  # None: Never (no emptiness, no consolidation)
    budgets: tuple[BudgetRule, ...] = (BudgetRule(),)
    hash: str | None = None  # current hash of spec.template (drift when a claim's differs)


@dataclass(frozen=True, slots=True)
class DisruptionOptions:
    """Knobs of the planner; the defaults follow Karpenter v1."""

    validation_period: float = VALIDATION_PERIOD_SECONDS
    # Karpenter's SpotToSpotConsolidation feature gate, off by default as there: replacing a
    # cheap spot node by a cheaper, smaller one saves cents overnight and, on a daily cycle,
    # fragments the morning's capacity onto small nodes that cost more per vCPU (BENCHMARKS.md,
    # "Node disruption"); deleting spot nodes whose pods fit elsewhere is always allowed
    spot_to_spot: bool = False
    min_spot_to_spot_types: int = MIN_SPOT_TO_SPOT_TYPES
    max_multi_node_candidates: int = MAX_MULTI_NODE_CANDIDATES
    # a bare pod (no controller) is never recreated once evicted: it blocks graceful disruption
    # (Karpenter before v1 did the same; v1 evicts it)
    block_controllerless_pods: bool = True
    # simulations list every fitting type, so price filters and the 15-type rule see them all
    pack: PackOptions = field(
        default_factory=lambda: PackOptions(
            time_budget_seconds=None,
            improvement_rounds=20,
            max_alternatives=1000,
            lower_bound=False,
        )
    )


DEFAULT_OPTIONS = DisruptionOptions()


@dataclass(frozen=True, slots=True)
class ClusterState:
    """Everything one planning round reads.

    `nodes`: every node (and in-flight claim) with its bound pods; `facts`: per node name, for
    the nodes a NodePool manages (others are never disrupted but still hold pods).
    `pending_pods` and the pods of nodes marked for deletion take room first in every
    simulation, so a consolidation never counts on room they are about to use; then
    `expected_pods`, so it does not remove room the forecast needs back soon.
    `recently_replaced`: (pool, instance type) -> when a node of that shape was last removed
    by consolidation, for the churn guard (see `planner`).
    """

    nodes: tuple[ExistingNode, ...]
    facts: Mapping[str, NodeFacts]
    pools: Mapping[str, PoolPolicy]
    instance_types: tuple[InstanceType, ...]
    pdbs: tuple[PdbState, ...] = ()
    unhealthy_pods: frozenset[str] = frozenset()  # pod keys that are not Ready
    pending_pods: tuple[Pod, ...] = ()
    # pods a forecast expects within the consolidation horizon that no node holds yet: bound
    # after the pending pods, so consolidation keeps room for them (forecast-aware; Karpenter
    # sees only the pods of now)
    expected_pods: tuple[Pod, ...] = ()
    recently_replaced: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def node(self, name: str) -> ExistingNode | None:
        return next((n for n in self.nodes if n.name == name), None)
