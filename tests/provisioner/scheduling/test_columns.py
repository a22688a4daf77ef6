"""The configuration-LP packer on bare group problems: valid nodes, every pod, deterministic."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.scheduling.bound import undominated
from provisioner.scheduling.columns import greedy_patterns, pattern_roundings
from provisioner.scheduling.ffd import ffd_pack
from provisioner.scheduling.groups import GroupProblem, check_nodes, price_of
from provisioner.scheduling.local_search import improve
from provisioner.scheduling.lp_pack import pattern_pack
from provisioner.scheduling.packer import best_pack

GIB = 2**30


@st.composite
def group_problems(draw: st.DrawFn) -> GroupProblem:
    k_n = draw(st.integers(1, 5))
    t_n = draw(st.integers(1, 6))
    cpus = draw(st.lists(st.sampled_from([1, 2, 4, 8, 16]), min_size=t_n, max_size=t_n))
    alloc = np.array(
        [[c * 1000, c * draw(st.sampled_from([2, 4, 8])) * GIB, 0, 110] for c in cpus],
        dtype=np.int64,
    )
    price = np.array([c * draw(st.floats(0.02, 0.1)) for c in cpus])
    biggest = alloc.max(axis=0)
    demand = np.array(
        [
            [
                draw(st.integers(100, int(biggest[0]))),
                draw(st.integers(GIB // 8, int(biggest[1]))),
                0,
                1,
            ]
            for _ in range(k_n)
        ],
        dtype=np.int64,
    )
    counts = np.array(draw(st.lists(st.integers(1, 60), min_size=k_n, max_size=k_n)))
    caps = np.array(draw(st.lists(st.sampled_from([1, 2, 1 << 40]), min_size=k_n, max_size=k_n)))
    conflicts = np.zeros((k_n, k_n), dtype=bool)
    for a, b in draw(st.lists(st.tuples(st.integers(0, k_n - 1), st.integers(0, k_n - 1)))):
        if a != b:
            conflicts[a, b] = conflicts[b, a] = True
    problem = GroupProblem(demand, counts, caps, conflicts, alloc, price)
    # as the scheduler hands them over: every class fits some type
    keep = problem.fits.any(axis=1)
    return GroupProblem(
        demand[keep], counts[keep], caps[keep], conflicts[np.ix_(keep, keep)], alloc, price
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=group_problems())
def test_pattern_packing_places_every_pod_on_valid_nodes(problem: GroupProblem) -> None:
    if not len(problem.counts):
        return
    nodes = pattern_pack(problem, None, 20)
    assert nodes is not None
    check_nodes(problem, nodes)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=group_problems())
def test_roundings_never_overfill_a_node_or_place_a_pod_twice(problem: GroupProblem) -> None:
    if not len(problem.counts):
        return
    allowed = undominated(problem.alloc, problem.price) & problem.fits.any(axis=0)
    for nodes, left in pattern_roundings(problem, np.flatnonzero(allowed), None):
        placed = np.sum([n.counts for n in nodes], axis=0) if nodes else 0
        assert np.array_equal(placed + left, problem.counts)
        for node in nodes:
            assert np.all(node.used <= problem.alloc[node.type])
            assert np.all(node.counts <= problem.caps)


def test_greedy_patterns_respect_room_caps_and_conflicts() -> None:
    demand = np.array([[1000, GIB, 0, 1], [500, 2 * GIB, 0, 1], [250, GIB // 2, 0, 1]])
    alloc = np.array([[4000, 8 * GIB, 0, 110], [16000, 16 * GIB, 0, 8]], dtype=np.int64)
    conflicts = np.zeros((3, 3), dtype=bool)
    conflicts[0, 2] = conflicts[2, 0] = True
    problem = GroupProblem(
        demand,
        np.array([50, 50, 50]),
        np.array([3, 1 << 40, 1 << 40]),
        conflicts,
        alloc,
        np.array([0.2, 0.7]),
    )
    types = np.arange(2)
    value = np.array([0.05, 0.04, 0.02])
    size = np.ones((2, 3))
    counts = greedy_patterns(problem, types, value, np.minimum(problem.caps, 50), size)
    for t in types:
        assert np.all(counts[t] @ demand <= alloc[t])
        assert counts[t, 0] <= 3
        assert not (counts[t, 0] > 0 and counts[t, 2] > 0)
    assert counts[1, 0] == 3  # the most valuable class first, up to its cap


def test_the_plan_is_the_same_every_time_without_a_time_budget() -> None:
    demand = np.array(
        [[250 * (k + 1), (k % 3 + 1) * GIB // 2, 0, 1] for k in range(12)], dtype=np.int64
    )
    alloc = np.array(
        [[c * 1000 - 70, c * 4 * GIB - GIB // 2, 0, 58] for c in (2, 4, 8, 16, 32)],
        dtype=np.int64,
    )
    problem = GroupProblem(
        demand,
        np.arange(12) * 7 + 5,
        np.full(12, 1 << 40),
        np.zeros((12, 12), dtype=bool),
        alloc,
        np.array([0.0376, 0.08, 0.15, 0.31, 0.6]),
    )
    pack = best_pack(50)
    first = pack(problem, None)
    second = pack(problem, None)
    check_nodes(problem, first)
    assert [(n.type, n.counts.tolist()) for n in first] == [
        (n.type, n.counts.tolist()) for n in second
    ]
    assert price_of(problem, first) > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=group_problems())
def test_local_search_never_returns_a_dearer_or_invalid_packing(problem: GroupProblem) -> None:
    if not len(problem.counts):
        return
    start = ffd_pack(problem, None)
    shortlist = np.flatnonzero(undominated(problem.alloc, problem.price))
    better = improve(problem, shortlist, [*start], lambda _: None, None, 20)
    check_nodes(problem, better)
    assert price_of(problem, better) <= price_of(problem, start) + 1e-9
