"""Table tests per disruption method, in Karpenter's order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from provisioner.disruption.budgets import BudgetRule
from provisioner.disruption.command import MethodName
from provisioner.disruption.planner import explain, plan_disruption
from provisioner.disruption.state import ConsolidationPolicy, DisruptionOptions
from provisioner.scheduling.model import INSTANCE_TYPE, SPOT, Operator, Requirement
from tests.provisioner.disruption.cluster import (
    NOW,
    OPTIONS,
    TYPES,
    cluster,
    node,
    pod,
    pool,
    spot_types,
)


def only(state):  # the single command of a round
    [command] = plan_disruption(state, NOW, OPTIONS)
    return command


# --- emptiness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "last_event", "policy", "deleted"),
    [
        (0.0, None, ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED, True),
        (300.0, NOW - 301, ConsolidationPolicy.WHEN_EMPTY, True),
        (300.0, NOW - 299, ConsolidationPolicy.WHEN_EMPTY, False),  # consolidateAfter not over
        (None, None, ConsolidationPolicy.WHEN_EMPTY, False),  # consolidateAfter: Never
    ],
)
def test_emptiness(
    after: float | None, last_event: float | None, policy: ConsolidationPolicy, deleted: bool
) -> None:
    state = cluster(
        [node("empty", "small", last_pod_event_at=last_event), node("busy", "small", [pod("a")])],
        pools=[pool(policy=policy, after=after)],
    )
    commands = plan_disruption(state, NOW, OPTIONS)
    if deleted:
        assert [(c.method, c.nodes, c.replacements) for c in commands] == [
            (MethodName.EMPTINESS, ("empty",), ())
        ]
        assert commands[0].savings_per_hour == pytest.approx(0.10)
    else:
        assert all("empty" not in c.nodes for c in commands)


def test_daemonset_pods_do_not_make_a_node_busy() -> None:
    state = cluster(
        [node("n", "small", [pod("ds", owner="DaemonSet/logs")]), node("m", "small", [pod("a")])]
    )
    assert only(state).method is MethodName.EMPTINESS


def test_a_young_node_is_never_a_consolidation_candidate() -> None:
    state = cluster(
        [node("new", "large", [pod("a")], created_at=NOW - 60, initialized_at=NOW - 50)],
        pools=[pool(after=120.0)],
    )
    assert plan_disruption(state, NOW, OPTIONS) == []
    assert "consolidatable in 70s" in explain(state, NOW, OPTIONS).not_candidates["new"]


# --- drift -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "pool_kwargs", "why"),
    [
        ({"drifted": True, "drift_reason": "AMI changed"}, {}, "AMI changed"),
        ({"pool_hash": "old"}, {"hash_": "new"}, "spec.template changed"),
        (
            {},
            {"requirements": [Requirement(INSTANCE_TYPE, Operator.NOT_IN, ("large",))]},
            "no longer met",
        ),
    ],
)
def test_drift_replaces_the_node_first(facts: dict, pool_kwargs: dict, why: str) -> None:
    state = cluster(
        [node("old", "large", [pod("a"), pod("b")], **facts), node("empty", "small")],
        pools=[pool(**pool_kwargs)],
    )
    command = only(state)  # drift runs before emptiness
    assert command.method is MethodName.DRIFT and command.nodes == ("old",)
    assert why in command.explanation
    assert {p for p in command.placements} == {"default/a", "default/b"}


def test_drift_ignores_consolidate_after_and_policy() -> None:
    state = cluster(
        [node("old", "large", [pod("a")], drifted=True, last_pod_event_at=NOW)],
        pools=[pool(after=None, policy=ConsolidationPolicy.WHEN_EMPTY)],
    )
    assert only(state).method is MethodName.DRIFT


def test_drift_waits_when_pods_would_have_no_place() -> None:
    big = replace(pod("huge", cpu=12_000))
    state = cluster(
        [node("old", "xlarge", [big], drifted=True)],
        pools=[pool(requirements=[Requirement(INSTANCE_TYPE, Operator.NOT_IN, ("xlarge",))])],
    )
    assert plan_disruption(state, NOW, OPTIONS) == []
    assert "no place" in explain(state, NOW, OPTIONS).not_candidates["old"]


@pytest.mark.parametrize(("grace", "disrupted"), [(None, False), (3600.0, True)])
def test_drift_passes_blocking_pods_only_with_a_termination_grace_period(
    grace: float | None, disrupted: bool
) -> None:
    state = cluster(
        [
            node(
                "old",
                "large",
                [pod("a", do_not_disrupt=True)],
                drifted=True,
                termination_grace_period=grace,
            )
        ],
        pools=[pool(after=None)],
    )
    commands = plan_disruption(state, NOW, OPTIONS)
    assert bool(commands) is disrupted


# --- multi-node consolidation ----------------------------------------------------------------


def test_multi_node_replaces_several_nodes_by_one_cheaper() -> None:
    state = cluster([node(f"n{i}", "large", [pod(f"p{i}", cpu=1000)]) for i in range(3)])
    command = only(state)
    assert command.method is MethodName.MULTI_NODE
    assert sorted(command.nodes) == ["n0", "n1", "n2"]
    [new] = command.replacements
    assert new.instance_type == "medium" and "large" not in new.alternatives
    assert command.price_before == pytest.approx(1.2) and command.price_after == pytest.approx(0.2)


def test_multi_node_deletes_when_the_rest_has_room() -> None:
    state = cluster(
        [
            node("a", "medium", [pod("p1")]),
            node("b", "medium", [pod("p2")]),
            node("big", "xlarge", [pod(f"q{i}", cpu=1000) for i in range(8)]),
        ]
    )
    command = only(state)
    assert command.method is MethodName.MULTI_NODE and command.replacements == ()
    assert sorted(command.nodes) == ["a", "b"]
    assert all(v == "big" for v in command.placements.values())


# --- single-node consolidation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        # one oversized node: replace with the cheapest type that holds its pods
        ([("n", "large", [500, 500])], ("n", "small")),
        # already the cheapest fit: nothing to do
        ([("n", "small", [1500])], None),
        # pods fit on the other node: delete
        ([("n", "small", [500]), ("m", "medium", [3000])], ("n", None)),
        # two large nodes cost as much as the xlarge: keep
        ([("n", "xlarge", [7000, 7000])], None),
    ],
)
def test_single_node_consolidation(nodes: list, expected: tuple | None) -> None:
    state = cluster(
        [
            node(name, t, [pod(f"{name}-{i}", cpu=c) for i, c in enumerate(cpus)])
            for name, t, cpus in nodes
        ]
    )
    commands = plan_disruption(state, NOW, OPTIONS)
    if expected is None:
        assert commands == []
        return
    [command] = commands
    name, new_type = expected
    assert command.nodes == (name,)
    assert [r.instance_type for r in command.replacements] == ([new_type] if new_type else [])
    assert command.price_after < command.price_before


def test_no_consolidation_when_the_pods_need_two_new_nodes() -> None:
    state = cluster(
        [node("n", "xlarge", [pod("a", cpu=7000), pod("b", cpu=7000), pod("c", cpu=1500)])]
    )
    assert plan_disruption(state, NOW, OPTIONS) == []
    assert (
        "no cheaper" in explain(state, NOW, OPTIONS).not_candidates["n"]
        or "new nodes" in (explain(state, NOW, OPTIONS).not_candidates["n"])
    )


def test_when_empty_pools_only_remove_empty_nodes() -> None:
    state = cluster(
        [node("n", "xlarge", [pod("a")])], pools=[pool(policy=ConsolidationPolicy.WHEN_EMPTY)]
    )
    assert plan_disruption(state, NOW, OPTIONS) == []
    assert "WhenEmpty" in explain(state, NOW, OPTIONS).not_candidates["n"]


@pytest.mark.parametrize(
    ("node_facts", "pod_kwargs", "why"),
    [
        ({"do_not_disrupt": True}, {}, "node is annotated karpenter.sh/do-not-disrupt"),
        ({}, {"do_not_disrupt": True}, "is annotated karpenter.sh/do-not-disrupt"),
        ({}, {"owner": None}, "has no controller"),
        ({"initialized": False}, {}, "not initialized"),
        ({"nominated": True}, {}, "nominated"),
        ({"marked_for_deletion": True}, {}, "already being disrupted"),
    ],
)
def test_nodes_that_may_not_be_disrupted(node_facts: dict, pod_kwargs: dict, why: str) -> None:
    state = cluster([node("n", "xlarge", [pod("a", **pod_kwargs)], **node_facts)])
    assert plan_disruption(state, NOW, OPTIONS) == []
    assert why in explain(state, NOW, OPTIONS).not_candidates["n"]


def test_unmanaged_nodes_hold_pods_but_are_never_disrupted() -> None:
    state = cluster([node("n", "large", [pod("a")]), node("static", "large")])
    state = replace(state, facts={"n": state.facts["n"]})
    command = only(state)
    assert command.nodes == ("n",) and command.placements == {"default/a": "static"}
    assert explain(state, NOW, OPTIONS).not_candidates["static"] == "not managed by a NodePool"


def test_controllerless_pods_can_be_allowed_by_option() -> None:
    state = cluster([node("n", "large", [pod("a", owner=None)])])
    lenient = replace(OPTIONS, block_controllerless_pods=False)
    assert len(plan_disruption(state, NOW, lenient)) == 1


# --- spot-to-spot ----------------------------------------------------------------------------


def spot_state(count: int, nodes: int = 1):
    types = spot_types(count)
    return cluster(
        [
            node(f"n{i}", "big", [pod(f"a{i}", cpu=1000)], capacity_type=SPOT, types=types)
            for i in range(nodes)
        ],
        pools=[pool(capacity_types=(SPOT,))],
        types=types,
    )


def test_consolidation_keeps_the_room_a_forecast_expects_back() -> None:
    # big has 2 cpu free: the two 500m pods of a and b fit there (delete both), unless pods a
    # forecast expects within the horizon take that room first
    nodes = [
        node("a", "medium", [pod("p1")]),
        node("b", "medium", [pod("p2")]),
        node("big", "xlarge", [pod(f"q{i}", cpu=1000) for i in range(14)]),
    ]
    command = only(cluster(nodes))
    assert command.method is MethodName.MULTI_NODE and command.replacements == ()
    expected = pod("soon", cpu=2000)
    command = only(cluster(nodes, expected_pods=(expected,)))
    # still cheaper, but the pods of a and b now need a node of their own
    assert [r.instance_type for r in command.replacements] == ["small"]
    assert command.placements[expected.key] == "big"


def test_a_pending_pod_keeps_its_room_wherever_the_simulation_put_it() -> None:
    nodes = [
        node("a", "medium", [pod("p1")]),
        node("big", "xlarge", [pod(f"q{i}", cpu=1000) for i in range(14)]),
    ]
    assert only(cluster(nodes)).replacements == ()  # p1 fits on big: delete a
    waiting = pod("waiting", cpu=2000)
    for command in plan_disruption(cluster(nodes, pending_pods=(waiting,)), NOW, OPTIONS):
        assert command.replacements, "the pending pod and p1 do not both fit on big"


@pytest.mark.parametrize(("cheaper", "replaced"), [(14, False), (15, True), (20, True)])
def test_spot_to_spot_needs_fifteen_cheaper_types(cheaper: int, replaced: bool) -> None:
    state = spot_state(cheaper)
    commands = plan_disruption(state, NOW, OPTIONS)
    if not replaced:
        assert commands == []
        assert "needs 15 cheaper spot types" in explain(state, NOW, OPTIONS).not_candidates["n0"]
        return
    [command] = commands
    [new] = command.replacements
    assert new.capacity_type == SPOT and new.instance_type == "s00"
    assert 1 + len(new.alternatives) == 15  # only the 15 cheapest are launched


def test_spot_to_spot_is_off_by_default_as_karpenters_feature_gate() -> None:
    off = replace(OPTIONS, spot_to_spot=DisruptionOptions().spot_to_spot)
    assert plan_disruption(spot_state(20), NOW, off) == []
    # multi-node neither: of two half-full spot nodes one is deleted, none replaced
    [command] = plan_disruption(spot_state(3, nodes=2), NOW, off)
    assert command.method is MethodName.SINGLE_NODE and not command.replacements
    why = explain(spot_state(20), NOW, off).not_candidates["n0"]
    assert "spot-to-spot consolidation is disabled" in why


def test_multi_node_spot_to_spot_has_no_fifteen_type_rule() -> None:
    command = only(spot_state(3, nodes=2))
    assert command.method is MethodName.MULTI_NODE and len(command.candidates) == 2


def test_on_demand_may_be_replaced_by_spot() -> None:
    types = spot_types(2)
    state = cluster(
        [node("n", "big", [pod("a", cpu=1000)], types=types)],
        pools=[pool(capacity_types=("on-demand", SPOT))],
        types=types,
    )
    [new] = only(state).replacements
    assert new.capacity_type == SPOT


# --- churn guard -----------------------------------------------------------------------------


def test_churn_guard_skips_a_type_consolidation_just_removed() -> None:
    nodes = [node("n", "large", [pod("a")])]
    fresh = cluster(nodes, recently_replaced={("default", "small"): NOW - 5})
    [new] = only(fresh).replacements
    assert new.instance_type == "medium" and "small" not in new.alternatives
    later = cluster(nodes, recently_replaced={("default", "small"): NOW - 16})  # 0 + 15 s over
    assert only(later).replacements[0].instance_type == "small"


def test_churn_guard_can_leave_no_replacement() -> None:
    blocked = {("default", t.name): NOW for t in TYPES}
    state = cluster([node("n", "large", [pod("a")])], recently_replaced=blocked)
    assert plan_disruption(state, NOW, OPTIONS) == []
    assert "churn guard" in explain(state, NOW, OPTIONS).not_candidates["n"]


# --- expiration ------------------------------------------------------------------------------


def test_expiration_is_forceful_and_comes_first() -> None:
    state = cluster(
        [
            node("old", "small", [pod("a", do_not_disrupt=True)], expire_after=NOW - 1),
            node("empty", "small"),
        ],
        pools=[pool(budgets=[BudgetRule("0")])],
    )
    commands = plan_disruption(state, NOW, OPTIONS)
    assert [c.method for c in commands] == [MethodName.EXPIRATION]
    assert commands[0].forceful and commands[0].nodes == ("old",)
    assert commands[0].placements["default/a"] == "empty"


def test_expired_nodes_are_out_of_the_graceful_round() -> None:
    state = cluster([node("old", "large", [pod("a")], expire_after=NOW / 2), node("b", "small")])
    commands = plan_disruption(state, NOW, OPTIONS)
    assert [c.method for c in commands] == [MethodName.EXPIRATION, MethodName.EMPTINESS]
    assert "old" not in commands[1].nodes
