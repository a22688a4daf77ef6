"""The lower bound: the integer program's proved bound is valid and tighter than the LP."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.scheduling.bound import assignment_lp, integer_bound
from provisioner.scheduling.ffd import ffd_pack
from provisioner.scheduling.groups import GroupProblem, price_of

GIB = 2**30


def test_a_lone_gpu_pod_pays_for_its_whole_node() -> None:
    # one 1-GPU pod, types with 1 and 4 GPUs: the LP buys a quarter of the 4-GPU node
    demand = np.array([[3500, 15 * GIB, 1, 1]], dtype=np.int64)
    alloc = np.array([[3900, 15 * GIB, 1, 29], [47000, 180 * GIB, 4, 234]], dtype=np.int64)
    price = np.array([1.006, 1.6])
    counts, caps, allowed = np.array([1]), np.array([1 << 40]), np.array([[False, True]])
    lp = assignment_lp(demand, counts, caps, alloc, price, allowed)
    proved = integer_bound(demand, counts, caps, alloc, price, allowed, 100)
    assert lp is not None and proved is not None
    assert lp.value < 0.5
    assert abs(proved - 1.6) < 1e-6


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cpus=st.lists(st.sampled_from([1, 2, 4, 8, 16]), min_size=1, max_size=5, unique=True),
    sizes=st.lists(
        st.tuples(st.integers(100, 8000), st.integers(1, 32), st.integers(1, 9)),
        min_size=1,
        max_size=4,
    ),
    per_cpu=st.floats(0.02, 0.1),
)
def test_the_integer_bound_lies_between_the_lp_and_a_plan(
    cpus: list[int], sizes: list[tuple[int, int, int]], per_cpu: float
) -> None:
    alloc = np.array([[c * 1000, c * 4 * GIB, 0, 110] for c in cpus], dtype=np.int64)
    price = np.array([c * per_cpu for c in cpus])
    demand = np.array([[cpu, mem * GIB // 8, 0, 1] for cpu, mem, _ in sizes], dtype=np.int64)
    counts = np.array([n for _, _, n in sizes], dtype=np.int64)
    problem = GroupProblem(
        demand,
        counts,
        np.full(len(counts), 1 << 40),
        np.zeros((len(counts),) * 2, bool),
        alloc,
        price,
    )
    if not problem.fits.any(axis=1).all():
        return
    lp = assignment_lp(demand, counts, problem.caps, alloc, price, problem.fits)
    proved = integer_bound(demand, counts, problem.caps, alloc, price, problem.fits, 100)
    plan = price_of(problem, ffd_pack(problem, None))
    assert lp is not None and proved is not None
    assert lp.value - 1e-6 <= proved * (1 + 1e-6)
    assert proved * (1 - 1e-6) <= plan + 1e-9
