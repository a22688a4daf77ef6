"""The packer: the cheapest plan we can find within the time budget."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from provisioner.scheduling.ffd import ffd_pack
from provisioner.scheduling.groups import GroupProblem, PackedNode, price_of
from provisioner.scheduling.lp_pack import lp_pack_reduced, pattern_pack_reduced
from provisioner.scheduling.model import ExistingNode, InstanceType, NodeTemplate, Plan, Pod
from provisioner.scheduling.options import DEFAULT_OPTIONS, PackOptions
from provisioner.scheduling.reduced import reduce_problem
from provisioner.scheduling.scheduler import schedule
from provisioner.scheduling.strategy import Strategy

__all__ = ["PackOptions", "best_pack", "plan"]

SMALL_GROUP = 200  # pods: below this the LP-guided packer is tried as well


def best_pack(rounds: int) -> Strategy:
    """The cheapest of Karpenter's FFD, the configuration-LP packing and (small groups) the
    LP-guided packing, group by group; the LP packers work on the reduced problem
    (`reduced.py`: undominated candidates, identical classes as one)."""

    def pack(problem: GroupProblem, deadline: float | None) -> list[PackedNode]:
        best = ffd_pack(problem, deadline)
        if problem.min_values:
            return best  # minValues needs FFD's per-node type bookkeeping
        late = deadline is not None and time.perf_counter() > deadline
        reduced = reduce_problem(problem)
        # out of time: only the one-pass LP-guided packing (column generation takes rounds)
        tries = [lp_pack_reduced] if late else [pattern_pack_reduced]
        if not late and problem.counts.sum() <= SMALL_GROUP:
            tries.append(lp_pack_reduced)  # cheap here, and now and then the better of the two
        for packer in tries:
            nodes = packer(reduced.problem, deadline, rounds)
            if nodes is None:
                continue
            nodes = reduced.expand(nodes)
            if price_of(problem, nodes) < price_of(problem, best) - 1e-9:
                best = nodes
        return best

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
