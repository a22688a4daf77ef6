"""Properties over random small clusters: every plan is safe.

- every evicted pod has a place: a node that stays (with room, checked here independently)
  or a replacement whose type holds it;
- no PDB is broken: every PDB over an evicted pod allows a disruption, no pod is under two;
- no budget is exceeded for the command's reason;
- nothing annotated do-not-disrupt (node or pod), and no bare pod, is touched;
- consolidation launches at most one node, strictly cheaper than what it removes;
- an unchanged cluster validates the command after the validation period.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.disruption.budgets import BudgetRule, allowed_disruptions
from provisioner.disruption.candidates import is_reschedulable
from provisioner.disruption.command import Command, MethodName
from provisioner.disruption.pdb import PdbState, disruptions_allowed, pdbs_of
from provisioner.disruption.planner import plan_disruption, validate
from provisioner.disruption.simulation import NEW_NODE_PREFIX
from provisioner.disruption.state import ClusterState, ConsolidationPolicy
from provisioner.scheduling.model import LabelSelector, Resources
from tests.provisioner.disruption.cluster import NOW, OPTIONS, TYPES, cluster, node, pod, pool

APPS = ("a", "b", "c")
UNDERUTILIZED = ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED
BUDGETS = ("0", "1", "2", "2", "50%", "100%", "100%")


@st.composite
def clusters(draw: st.DrawFn) -> ClusterState:
    pool_count = draw(st.integers(1, 2))
    pools = [
        pool(
            f"p{i}",
            policy=draw(st.sampled_from([*ConsolidationPolicy, *[UNDERUTILIZED] * 3])),
            after=draw(st.sampled_from([0.0, 0.0, 0.0, 600.0, None])),
            budgets=[BudgetRule(draw(st.sampled_from(BUDGETS)))],
        )
        for i in range(pool_count)
    ]
    nodes = []
    counter = 0
    for i in range(draw(st.integers(1, 6))):
        itype = draw(st.sampled_from(TYPES))
        room = itype.allocatable.cpu
        pods = []
        for _ in range(draw(st.integers(0, 4))):
            cpu = draw(st.sampled_from([250, 500, 1000, 2000, 3000]))
            if cpu > room:
                continue
            room -= cpu
            counter += 1
            pods.append(
                pod(
                    f"pod{counter}",
                    cpu=cpu,
                    labels={"app": draw(st.sampled_from(APPS))},
                    owner=draw(st.sampled_from(["Deployment/x"] * 18 + [None, "DaemonSet/d"])),
                    do_not_disrupt=draw(st.integers(0, 19)) == 0,
                )
            )
        nodes.append(
            node(
                f"n{i}",
                itype.name,
                pods,
                pool_name=f"p{draw(st.integers(0, pool_count - 1))}",
                ready=draw(st.integers(0, 9)) > 0,
                do_not_disrupt=draw(st.integers(0, 19)) == 0,
                drifted=draw(st.integers(0, 9)) == 0,
                last_pod_event_at=draw(st.sampled_from([None, NOW - 100])),
            )
        )
    pdbs = [
        PdbState(f"pdb-{app}", selector=LabelSelector((("app", app),)), min_available=m)
        for app in APPS
        if (m := draw(st.integers(-1, 3))) >= 0
    ]
    return cluster(nodes, pools=pools, pdbs=pdbs)


def check_places(state: ClusterState, command: Command) -> None:
    removed = set(command.nodes)
    evicted = [p for c in command.candidates for p in c.reschedulable_pods]
    extra: dict[str, Resources] = {}
    for p in evicted:
        target = command.placements.get(p.key)
        assert target is not None, f"{p.key} has no place"
        assert target not in removed
        extra[target] = extra.get(target, Resources()) + p.requests
    by_type = {t.name: t for t in state.instance_types}
    for target, added in extra.items():
        if target.startswith(NEW_NODE_PREFIX):
            index = int(target[len(NEW_NODE_PREFIX) : -1])
            new = command.replacements[index]
            assert added.fits_in(by_type[new.instance_type].allocatable)
            continue
        kept = state.node(target)
        assert kept is not None and not state.facts[target].marked_for_deletion
        assert (kept.requested + added).fits_in(kept.allocatable), f"{target} overfull"


def check_budgets(state: ClusterState, command: Command) -> None:
    totals = Counter(f.pool for f in state.facts.values() if f.initialized)
    disrupting = Counter(
        state.facts[n.name].pool
        for n in state.nodes
        if not n.ready or state.facts[n.name].marked_for_deletion
    )
    used = Counter(c.pool.name for c in command.candidates)
    for name, count in used.items():
        rules = state.pools[name].budgets
        allowed = allowed_disruptions(rules, totals[name], command.reason, NOW) - disrupting[name]
        assert count <= allowed, f"pool {name}: {count} > {allowed}"


def check_protected(state: ClusterState, command: Command) -> None:
    everyone = [p for n in state.nodes for p in n.pods]
    for c in command.candidates:
        assert not c.facts.do_not_disrupt
        for p in c.node.pods:
            assert not p.do_not_disrupt
            assert p.owner is not None
            if not is_reschedulable(p):
                continue
            covering = pdbs_of(p, state.pdbs)
            assert len(covering) <= 1
            for b in covering:
                assert disruptions_allowed(b, everyone, state.unhealthy_pods) >= 1


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(clusters())
def test_every_plan_is_safe(state: ClusterState) -> None:
    for command in plan_disruption(state, NOW, OPTIONS):
        assert not command.forceful  # nothing expires in these clusters
        check_places(state, command)
        check_budgets(state, command)
        check_protected(state, command)
        if command.method in (MethodName.MULTI_NODE, MethodName.SINGLE_NODE):
            assert len(command.replacements) <= 1
            assert command.price_after < command.price_before
        assert validate(command, state, NOW + OPTIONS.validation_period, OPTIONS) is None
