"""The packer: the cheapest plan we can find within the time budget."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from provisioner.scheduling.ffd import ffd_pack
from provisioner.scheduling.groups import GroupProblem, PackedNode, price_of
from provisioner.scheduling.lp_pack import lp_pack
from provisioner.scheduling.model import ExistingNode, InstanceType, NodeTemplate, Plan, Pod
from provisioner.scheduling.options import DEFAULT_OPTIONS, PackOptions
from provisioner.scheduling.scheduler import schedule
from provisioner.scheduling.strategy import Strategy

__all__ = ["PackOptions", "best_pack", "plan"]


def best_pack(rounds: int) -> Strategy:
    """The cheaper of Karpenter's FFD and the LP-guided packing, group by group."""

    def pack(problem: GroupProblem, deadline: float | None) -> list[PackedNode]:
        baseline = ffd_pack(problem, deadline)
        guided = lp_pack(problem, deadline, rounds)
        if guided is not None and price_of(problem, guided) < price_of(problem, baseline):
            return guided
        return baseline

    return pack


def plan(
    pods: Iterable[Pod],
    templates: Sequence[NodeTemplate],
    instance_types: Sequence[InstanceType],
    existing_nodes: Sequence[ExistingNode] = (),
    options: PackOptions = DEFAULT_OPTIONS,
) -> Plan:
    """Place pending pods: existing nodes first, then the cheapest new nodes we can find."""
    strategy = best_pack(options.improvement_rounds)
    return schedule(pods, templates, instance_types, existing_nodes, options, strategy)
