"""PodDisruptionBudget rules as pure functions, and how they gate candidates."""

from __future__ import annotations

import pytest

from provisioner.disruption.pdb import (
    PdbState,
    disruptions_allowed,
    evictable_together,
    eviction_blocker,
    eviction_waves,
)
from provisioner.disruption.planner import explain, plan_disruption
from provisioner.scheduling.model import LabelSelector
from tests.provisioner.disruption.cluster import NOW, OPTIONS, cluster, node, pod

WEB = LabelSelector(match_labels=(("app", "web"),))


def pods(n: int, app: str = "web") -> list:
    return [pod(f"{app}-{i}", labels={"app": app}) for i in range(n)]


@pytest.mark.parametrize(
    ("min_available", "max_unavailable", "healthy", "allowed"),
    [
        (3, None, 4, 1),
        (4, None, 4, 0),
        ("50%", None, 4, 2),
        ("50%", None, 3, 1),  # desired = ceil(1.5) = 2 of 3 healthy
        ("100%", None, 4, 0),
        (None, 1, 4, 1),
        (None, 0, 4, 0),
        (None, "25%", 4, 1),
        (None, "30%", 4, 2),  # ceil(1.2) = 2 may be unavailable
        (None, 1, 3, 0),  # one of four already unhealthy uses the budget
        (None, None, 4, 4),
    ],
)
def test_disruptions_allowed(
    min_available: int | str | None, max_unavailable: int | str | None, healthy: int, allowed: int
) -> None:
    group = pods(4)
    unhealthy = frozenset(p.key for p in group[healthy:])
    pdb = PdbState(
        "web", selector=WEB, min_available=min_available, max_unavailable=max_unavailable
    )
    assert disruptions_allowed(pdb, group, unhealthy) == allowed


def test_pdb_only_counts_pods_it_selects_in_its_namespace() -> None:
    group = pods(3) + pods(5, app="db") + [pod("web-x", namespace="other")]
    pdb = PdbState("web", selector=WEB, min_available=2)
    assert disruptions_allowed(pdb, group) == 1


def test_status_disruptions_allowed_wins_when_known() -> None:
    pdb = PdbState("web", selector=WEB, min_available=0, status_disruptions_allowed=0)
    assert disruptions_allowed(pdb, pods(5)) == 0


def test_a_pod_under_two_pdbs_cannot_be_evicted() -> None:
    group = pods(3)
    both = [PdbState("a", selector=WEB), PdbState("b")]  # the empty selector matches all
    assert "several PodDisruptionBudgets" in (eviction_blocker(group[:1], both, group) or "")


def test_always_allow_lets_unhealthy_pods_go_past_an_exhausted_budget() -> None:
    group = pods(3)
    unhealthy = frozenset({group[0].key})
    strict = PdbState("web", selector=WEB, min_available=3)
    lenient = PdbState("web", selector=WEB, min_available=3, always_allow_unhealthy=True)
    assert eviction_blocker(group[:1], [strict], group, unhealthy) is not None
    assert eviction_blocker(group[:1], [lenient], group, unhealthy) is None
    assert eviction_blocker(group[1:2], [lenient], group, unhealthy) is not None


def test_eviction_waves_respect_each_budget() -> None:
    group = pods(4) + pods(2, app="db")
    pdb = PdbState("web", selector=WEB, max_unavailable=1)
    waves = eviction_waves(group, [pdb], group)
    assert [len(w) for w in waves] == [3, 1, 1, 1]  # db pods are free; web goes one at a time
    assert sorted(p.key for w in waves for p in w) == sorted(p.key for p in group)
    assert not evictable_together(group, [pdb], group)
    assert evictable_together(group[4:], [pdb], group)


def test_node_whose_pod_pdb_allows_nothing_is_not_a_candidate() -> None:
    web = pods(2)
    pdb = PdbState("web", selector=WEB, min_available=2)
    state = cluster([node("n1", "large", web[:1]), node("n2", "large", web[1:])], pdbs=[pdb])
    assert plan_disruption(state, NOW, OPTIONS) == []
    why = explain(state, NOW, OPTIONS).not_candidates
    assert "PodDisruptionBudget default/web allows no disruption" in why["n1"]


def test_pdb_allowing_one_disruption_lets_consolidation_proceed() -> None:
    web = pods(2)
    pdb = PdbState("web", selector=WEB, min_available=1)
    state = cluster([node("n1", "large", web[:1]), node("n2", "large", web[1:])], pdbs=[pdb])
    [command] = plan_disruption(state, NOW, OPTIONS)
    assert command.candidates
