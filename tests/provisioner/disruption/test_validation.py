"""The 15 s validation: a chosen command is abandoned when the cluster changed under it."""

from __future__ import annotations

from dataclasses import replace

from provisioner.disruption.budgets import BudgetRule
from provisioner.disruption.command import Command, MethodName
from provisioner.disruption.planner import plan_disruption, record_replaced, validate
from provisioner.disruption.state import ClusterState
from tests.provisioner.disruption.cluster import NOW, OPTIONS, cluster, node, pod, pool

LATER = NOW + 15


def delete_onto_other() -> tuple[ClusterState, Command]:
    state = cluster([node("n", "small", [pod("a")]), node("m", "medium", [pod("b", cpu=3000)])])
    [command] = plan_disruption(state, NOW, OPTIONS)
    assert command.method is MethodName.SINGLE_NODE and command.nodes == ("n",)
    return state, command


def with_node(state: ClusterState, name: str, **changes: object) -> ClusterState:
    nodes = tuple(replace(n, **changes) if n.name == name else n for n in state.nodes)  # type: ignore[arg-type]
    return replace(state, nodes=nodes)


def with_facts(state: ClusterState, name: str, **changes: object) -> ClusterState:
    facts = dict(state.facts)
    facts[name] = replace(facts[name], **changes)  # type: ignore[arg-type]
    return replace(state, facts=facts)


def test_unchanged_cluster_keeps_the_command() -> None:
    state, command = delete_onto_other()
    assert validate(command, state, LATER, OPTIONS) is None


def test_validation_waits_the_full_period() -> None:
    state, command = delete_onto_other()
    assert validate(command, state, NOW + 10, OPTIONS) == "validation period not over (5s left)"


def test_room_taken_on_the_target_abandons_a_delete() -> None:
    state, command = delete_onto_other()
    filled = with_node(state, "m", pods=(pod("b", cpu=3000), pod("c", cpu=800)))
    assert validate(command, filled, LATER, OPTIONS) == "the pods no longer fit on existing nodes"


def test_new_do_not_disrupt_pod_abandons() -> None:
    state, command = delete_onto_other()
    changed = with_node(state, "n", pods=(pod("a"), pod("z", do_not_disrupt=True)))
    assert "do-not-disrupt" in (validate(command, changed, LATER, OPTIONS) or "")


def test_nominated_candidate_abandons() -> None:
    state, command = delete_onto_other()
    changed = with_facts(state, "n", nominated=True)
    assert "nominated" in (validate(command, changed, LATER, OPTIONS) or "")


def test_a_pod_event_restarts_consolidate_after_and_abandons() -> None:
    state = cluster(
        [node("n", "small", [pod("a")]), node("m", "medium", [pod("b", cpu=3000)])],
        pools=[pool(after=10.0)],
    )
    [command] = plan_disruption(state, NOW, OPTIONS)
    changed = with_facts(state, "n", last_pod_event_at=NOW + 14)
    assert "consolidatable in" in (validate(command, changed, LATER, OPTIONS) or "")


def test_emptiness_abandons_when_a_pod_lands() -> None:
    state = cluster([node("e", "small"), node("m", "medium", [pod("b", cpu=3000)])])
    [command] = plan_disruption(state, NOW, OPTIONS)
    assert command.method is MethodName.EMPTINESS
    assert validate(command, state, LATER, OPTIONS) is None
    busy = with_node(state, "e", pods=(pod("new"),))
    assert "not empty" in (validate(command, busy, LATER, OPTIONS) or "")


def test_budget_used_up_meanwhile_abandons() -> None:
    state = cluster(
        [
            node("n", "small", [pod("a")]),
            node("m", "medium", [pod("b", cpu=3000)]),
            node("x", "small", [pod("c")]),
        ],
        pools=[pool(budgets=[BudgetRule("1")])],
    )
    [command] = plan_disruption(state, NOW, OPTIONS)
    other = next(n for n in ("n", "m", "x") if n not in command.nodes)
    sick = with_node(state, other, ready=False)
    assert "budget nodes=1" in (validate(command, sick, LATER, OPTIONS) or "")


def test_replacement_too_small_after_growth_abandons() -> None:
    state = cluster([node("n", "large", [pod("a")])])
    [command] = plan_disruption(state, NOW, OPTIONS)
    assert command.replacements[0].instance_type == "small"
    grown = with_node(state, "n", pods=(pod("a"), pod("b", cpu=3000)))
    assert "no longer hold the pods" in (validate(command, grown, LATER, OPTIONS) or "")


def test_replaced_node_abandons() -> None:
    state, command = delete_onto_other()
    gone = replace(state, nodes=tuple(n for n in state.nodes if n.name != "n"))
    assert "no longer a candidate" in (validate(command, gone, LATER, OPTIONS) or "")
    again = with_facts(state, "n", claim="n-2")
    assert "another NodeClaim" in (validate(command, again, LATER, OPTIONS) or "")


def test_record_replaced_remembers_consolidated_shapes_only() -> None:
    _, command = delete_onto_other()
    assert record_replaced({}, command, LATER) == {("default", "small"): LATER}
    empty_state = cluster([node("e", "small"), node("m", "medium", [pod("b")])])
    [emptiness] = plan_disruption(empty_state, NOW, OPTIONS)
    assert record_replaced({}, emptiness, LATER) == {}
