"""Builders for small clusters the disruption tests plan over."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from provisioner.disruption.budgets import BudgetRule
from provisioner.disruption.pdb import PdbState
from provisioner.disruption.state import (
    ClusterState,
    ConsolidationPolicy,
    DisruptionOptions,
    NodeFacts,
    PoolPolicy,
)
from provisioner.scheduling.model import (
    ARCH,
    CAPACITY_TYPE,
    HOSTNAME,
    INSTANCE_TYPE,
    NODEPOOL,
    ON_DEMAND,
    OS,
    SPOT,
    ZONE,
    ExistingNode,
    InstanceType,
    NodeTemplate,
    Offering,
    Operator,
    Pod,
    Requirement,
    Resources,
)
from provisioner.scheduling.packer import PackOptions

GIB = 2**30
ZONE_A = "zone-a"
NOW = 100_000.0
# spot-to-spot on (Karpenter's feature gate, off by default) so its rules are exercised
OPTIONS = DisruptionOptions(
    spot_to_spot=True,
    pack=PackOptions(time_budget_seconds=None, improvement_rounds=0, max_alternatives=1000),
)


def itype(
    name: str, cpu: int, memory_gib: int, price: float, spot: float | None = None
) -> InstanceType:
    labels = {INSTANCE_TYPE: name, ARCH: "amd64", OS: "linux"}
    offerings = [Offering(ZONE_A, ON_DEMAND, price)]
    if spot is not None:
        offerings.append(Offering(ZONE_A, SPOT, spot))
    capacity = Resources(cpu * 1000, memory_gib * GIB, 0, 110)
    return InstanceType(name, labels, capacity, capacity, tuple(offerings))


# on-demand only: small 2 cpu $0.10, medium 4 cpu $0.20, large 8 cpu $0.40, xlarge 16 cpu $0.80
TYPES = (
    itype("small", 2, 4, 0.10),
    itype("medium", 4, 8, 0.20),
    itype("large", 8, 16, 0.40),
    itype("xlarge", 16, 32, 0.80),
)


def spot_types(count: int, base: float = 0.50) -> tuple[InstanceType, ...]:
    """`count` spot types that all hold 4 cpu, cheapest first, plus the expensive "big"."""
    out = [itype(f"s{i:02d}", 4, 8, 1.0, spot=0.01 * (i + 1)) for i in range(count)]
    out.append(itype("big", 8, 16, 2.0, spot=base))
    return tuple(out)


def pool(
    name: str = "default",
    policy: ConsolidationPolicy = ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED,
    after: float | None = 0.0,
    budgets: Sequence[BudgetRule] = (BudgetRule("100%"),),
    capacity_types: Sequence[str] = (ON_DEMAND,),
    requirements: Sequence[Requirement] = (),
    hash_: str | None = None,
) -> PoolPolicy:
    reqs = (Requirement(CAPACITY_TYPE, Operator.IN, tuple(capacity_types)), *requirements)
    template = NodeTemplate(pool=name, requirements=reqs, labels={NODEPOOL: name})
    return PoolPolicy(name, template, policy, after, tuple(budgets), hash_)


def pod(
    name: str,
    cpu: int = 500,
    owner: str | None = "Deployment/web",
    labels: dict[str, str] | None = None,
    do_not_disrupt: bool = False,
    namespace: str = "default",
) -> Pod:
    return Pod(
        name,
        namespace=namespace,
        requests=Resources(cpu=cpu, memory=GIB // 4, pods=1),
        labels=labels or {"app": "web"},
        owner=owner,
        do_not_disrupt=do_not_disrupt,
    )


def node(
    name: str,
    type_name: str,
    pods: Iterable[Pod] = (),
    pool_name: str = "default",
    capacity_type: str = ON_DEMAND,
    types: Sequence[InstanceType] = TYPES,
    ready: bool = True,
    **facts: object,
) -> tuple[ExistingNode, NodeFacts]:
    itype_ = next(t for t in types if t.name == type_name)
    price = next(o.price for o in itype_.offerings if o.capacity_type == capacity_type)
    labels = {
        **itype_.labels,
        CAPACITY_TYPE: capacity_type,
        ZONE: ZONE_A,
        NODEPOOL: pool_name,
        HOSTNAME: name,
    }
    existing = ExistingNode(
        name=name,
        labels=labels,
        allocatable=itype_.allocatable,
        pods=tuple(pods),
        pool=pool_name,
        price=price,
        ready=ready,
    )
    base = NodeFacts(
        claim=name,
        pool=pool_name,
        instance_type=type_name,
        capacity_type=capacity_type,
        zone=ZONE_A,
        price=price,
        created_at=0.0,
    )
    return existing, replace(base, **facts)  # type: ignore[arg-type]


def cluster(
    nodes: Iterable[tuple[ExistingNode, NodeFacts]],
    pools: Iterable[PoolPolicy] | None = None,
    types: Sequence[InstanceType] = TYPES,
    pdbs: Sequence[PdbState] = (),
    **extra: object,
) -> ClusterState:
    pairs = list(nodes)
    pool_list = list(pools) if pools is not None else [pool()]
    state = ClusterState(
        nodes=tuple(n for n, _ in pairs),
        facts={n.name: f for n, f in pairs},
        pools={p.name: p for p in pool_list},
        instance_types=tuple(types),
        pdbs=tuple(pdbs),
    )
    return replace(state, **extra)  # type: ignore[arg-type]
