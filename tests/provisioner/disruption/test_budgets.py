"""Budget rules: counts, percentages (rounded up), schedule windows, reasons, minimums."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisioner.api import NodePool
from provisioner.disruption.budgets import (
    UNBOUNDED,
    BudgetRule,
    Reason,
    allowed_by_rule,
    allowed_disruptions,
    budget_mapping,
    is_active,
)
from provisioner.disruption.planner import explain, plan_disruption
from provisioner.disruption.pools import budget_rules, pool_policy
from tests.provisioner.disruption.cluster import NOW, OPTIONS, cluster, node, pod, pool


def at(hour: int, minute: int = 0, second: int = 0, day: int = 1) -> float:
    return datetime(2024, 1, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("nodes", "total", "allowed"),
    [
        ("5", 20, 5),
        ("0", 20, 0),
        ("10%", 10, 1),
        ("10%", 19, 2),  # rounded up, as Karpenter (and PDBs) do
        ("5%", 10, 1),
        ("0%", 50, 0),
        ("100%", 3, 3),
        ("50%", 0, 0),
    ],
)
def test_budget_counts_and_percentages(nodes: str, total: int, allowed: int) -> None:
    assert allowed_by_rule(BudgetRule(nodes), total, NOW) == allowed


@pytest.mark.parametrize(
    ("now", "active"),
    [
        (at(8, 59), False),
        (at(9, 0), True),  # the hit itself opens the window
        (at(12, 0), True),
        (at(16, 59, 59), True),
        (at(17, 0), False),  # exactly `duration` after the hit: closed (cron Next is strict)
        (at(17, 1), False),
        (at(9, 30, day=2), True),
    ],
)
def test_schedule_window_is_open_for_duration_after_each_hit(now: float, active: bool) -> None:
    rule = BudgetRule("0", schedule="0 9 * * *", duration=8 * 3600)
    assert is_active(rule, now) is active


def test_inactive_budget_does_not_limit() -> None:
    rule = BudgetRule("0", schedule="0 9 * * *", duration=3600)
    assert allowed_by_rule(rule, 10, at(20)) == UNBOUNDED
    assert allowed_by_rule(rule, 10, at(9, 30)) == 0


def test_macro_schedules_are_understood() -> None:
    rule = BudgetRule("0", schedule="@daily", duration=600)
    assert is_active(rule, at(0, 5))
    assert not is_active(rule, at(0, 11))


@pytest.mark.parametrize(
    ("reason", "allowed"),
    [(Reason.DRIFTED, 0), (Reason.EMPTY, 3), (Reason.UNDERUTILIZED, 2)],
)
def test_minimum_over_budgets_that_name_the_reason(reason: str, allowed: int) -> None:
    rules = [
        BudgetRule("30%"),
        BudgetRule("0", reasons=frozenset({Reason.DRIFTED})),
        BudgetRule("2", reasons=frozenset({Reason.UNDERUTILIZED, Reason.DRIFTED})),
    ]
    assert allowed_disruptions(rules, 10, reason, NOW) == allowed


def test_no_budget_for_a_reason_means_unbounded() -> None:
    rules = [BudgetRule("0", reasons=frozenset({Reason.DRIFTED}))]
    assert allowed_disruptions(rules, 10, Reason.EMPTY, NOW) == UNBOUNDED


def test_nodes_already_disrupting_use_the_budget_never_below_zero() -> None:
    rules = {"a": (BudgetRule("3"),), "b": (BudgetRule("1"),)}
    got = budget_mapping(rules, {"a": 10, "b": 10}, {"a": 1, "b": 4}, Reason.EMPTY, NOW)
    assert got == {"a": 2, "b": 0}


def _nodepool(budgets: list[dict[str, object]] | None = None) -> NodePool:
    spec: dict[str, object] = {
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "x"},
                "requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}
                ],
            }
        },
        "disruption": {"consolidateAfter": "5m"},
    }
    if budgets is not None:
        spec["disruption"] = {"consolidateAfter": "5m", "budgets": budgets}
    return NodePool.model_validate(
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "p"},
            "spec": spec,
        }
    )


def test_nodepool_budgets_default_to_ten_percent() -> None:
    assert budget_rules(_nodepool()) == (BudgetRule("10%"),)
    policy = pool_policy(_nodepool())
    assert policy.consolidate_after == 300


def test_nodepool_budgets_convert_schedule_duration_and_reasons() -> None:
    rules = budget_rules(
        _nodepool(
            [{"nodes": 0, "schedule": "0 9 * * 1-5", "duration": "8h", "reasons": ["Drifted"]}]
        )
    )
    assert rules == (BudgetRule("0", "0 9 * * 1-5", 8 * 3600, frozenset({"Drifted"})),)


def test_emptiness_deletes_no_more_empty_nodes_than_the_budget() -> None:
    state = cluster(
        [node(f"n{i}", "small") for i in range(4)],
        pools=[pool(budgets=[BudgetRule("2")])],
    )
    [command] = plan_disruption(state, NOW, OPTIONS)
    assert len(command.candidates) == 2
    dry = explain(state, NOW, OPTIONS)
    left = [n for n in dry.not_candidates if n not in command.nodes]
    assert left and all("budget nodes=2" in dry.not_candidates[n] for n in left)


def test_a_zero_budget_for_underutilized_stops_consolidation_but_not_emptiness() -> None:
    budgets = [BudgetRule("0", reasons=frozenset({Reason.UNDERUTILIZED})), BudgetRule("100%")]
    state = cluster(
        [node("busy", "large", [pod("a")]), node("empty", "small")],
        pools=[pool(budgets=budgets)],
    )
    commands = plan_disruption(state, NOW, OPTIONS)
    assert [c.nodes for c in commands] == [("empty",)]
    state = cluster([node("busy", "large", [pod("a")])], pools=[pool(budgets=budgets)])
    assert plan_disruption(state, NOW, OPTIONS) == []
    assert "Underutilized" in explain(state, NOW, OPTIONS).not_candidates["busy"]


def test_budget_window_closed_lets_consolidation_run() -> None:
    closed_at_night = [BudgetRule("0", schedule="0 9 * * *", duration=8 * 3600)]
    state = cluster([node("busy", "large", [pod("a")])], pools=[pool(budgets=closed_at_night)])
    assert plan_disruption(state, at(12), OPTIONS) == []
    [command] = plan_disruption(state, at(20), OPTIONS)
    assert command.nodes == ("busy",)


def test_unready_nodes_count_as_disrupting() -> None:
    state = cluster(
        [node("empty", "small"), node("sick", "small", [pod("a")], ready=False)],
        pools=[pool(budgets=[BudgetRule("1")])],
    )
    assert plan_disruption(state, NOW, OPTIONS) == []
