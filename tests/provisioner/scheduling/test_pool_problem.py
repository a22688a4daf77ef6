"""Groups of one pool that may share nodes are packed as one problem (`pool_problem.py`)."""

from collections.abc import Callable

import numpy as np
import pytest

from provisioner.scheduling.ffd import ffd_pack, plan_ffd
from provisioner.scheduling.groups import GroupProblem, check_nodes
from provisioner.scheduling.lp_pack import lp_pack, pattern_pack
from provisioner.scheduling.model import (
    ZONE,
    InstanceType,
    LabelSelector,
    NodeTemplate,
    Plan,
    Pod,
    Resources,
    Toleration,
    TopologySpread,
)
from provisioner.scheduling.options import PackOptions
from provisioner.scheduling.packer import plan
from provisioner.scheduling.requirements import labels_satisfy, reqs_of

from .conftest import MakeType

GIB = 2**30
OPTIONS = PackOptions(time_budget_seconds=None)
ZONES_TOO = PackOptions(time_budget_seconds=None, merge_zones=True)
APART = PackOptions(time_budget_seconds=None, merge_groups=False)
GPU_NAME = "karpenter.k8s.aws/instance-gpu-name"


def _pod(name: str, cpu: float, app: str, gpu: int = 0, **kw: object) -> Pod:
    requests = Resources(int(cpu * 1000), GIB, gpu, 1)
    return Pod(name=name, requests=requests, labels={"app": app}, **kw)  # type: ignore[arg-type]


def _valid(result: Plan, types: list[InstanceType]) -> None:
    by_name = {t.name: t for t in types}
    for node in result.new_nodes:
        labels = {**by_name[node.instance_type].labels, ZONE: node.zone}
        for pod in node.pods:
            for term in pod.node_affinity or ((),):
                if labels_satisfy(labels, reqs_of(term)) is None:
                    break
            else:
                raise AssertionError(f"{pod.name} on {node.instance_type}")
            assert all(labels.get(k) == v for k, v in pod.node_selector.items()), pod.name
        used = sum(p.requests.cpu for p in node.pods)
        assert used <= by_name[node.instance_type].allocatable.cpu


@pytest.fixture
def small_types(make_type: MakeType) -> list[InstanceType]:
    return [
        make_type("c.1", 1, 2, 0.20),
        make_type("c.2", 2, 4, 0.30),
        make_type("c.4", 4, 8, 0.40),
    ]


def _spread_and_plain() -> list[Pod]:
    spread = (TopologySpread(1, ZONE, selector=LabelSelector((("app", "web"),))),)
    return [_pod(f"w{i}", 1, "web", topology_spread=spread) for i in range(3)] + [
        _pod(f"b{i}", 1, "batch") for i in range(3)
    ]


@pytest.mark.parametrize("planner", [plan, plan_ffd])
def test_zone_spread_pods_share_nodes_with_unzoned_pods(
    planner: Callable[..., Plan], small_types: list[InstanceType]
) -> None:
    pods = _spread_and_plain()
    merged = planner(pods, [NodeTemplate("default")], small_types, options=ZONES_TOO)
    apart = planner(pods, [NodeTemplate("default")], small_types, options=OPTIONS)
    assert not merged.unschedulable
    # apart: three 1-cpu zone nodes and a 4-cpu node (1.00); together: no more than 0.80
    assert merged.total_price <= 0.8 + 1e-9 < apart.total_price
    web_zones = sorted(n.zone for n in merged.new_nodes for p in n.pods if p.name[0] == "w")
    assert web_zones == ["zone-a", "zone-b", "zone-c"]  # the spread still holds
    assert any({p.name[0] for p in n.pods} == {"w", "b"} for n in merged.new_nodes)
    for node in merged.new_nodes:
        zones = [r for r in node.requirements if r.key == ZONE]
        if any(p.name[0] == "w" for p in node.pods):
            assert zones and zones[0].values == (node.zone,)
    _valid(merged, small_types)


def test_pods_pinned_to_a_gpu_model_share_nodes_with_other_gpu_pods(
    make_type: MakeType,
) -> None:
    types = [
        make_type("g.1", 4, 16, 1.0, gpu=1, gpu_name="t4"),
        make_type("g.2", 8, 32, 1.2, gpu=2, gpu_name="t4"),
        make_type("l.1", 4, 16, 0.9, gpu=1, gpu_name="l4"),
    ]
    tolerate = (Toleration("nvidia.com/gpu", "Exists"),)
    pods = [
        _pod("pinned", 2, "a", gpu=1, node_selector={GPU_NAME: "t4"}, tolerations=tolerate),
        _pod("free", 2, "b", gpu=1, tolerations=tolerate),
    ]
    merged = plan(pods, [NodeTemplate("gpu")], types, options=OPTIONS)
    apart = plan(pods, [NodeTemplate("gpu")], types, options=APART)
    assert [n.instance_type for n in merged.new_nodes] == ["g.2"]  # 1.20 for both
    assert apart.total_price == pytest.approx(1.9)  # g.1 for the pinned pod, l.1 for the other
    node = merged.new_nodes[0]
    assert node.alternatives == ()  # l.1 would break the pinned pod's selector
    _valid(merged, types)


def _masked_problem() -> GroupProblem:
    """Two classes, three candidates; class 0 may not use candidate 2 (the cheapest big one)."""
    return GroupProblem(
        demand=np.array([[1000, GIB, 0, 1], [1000, GIB, 0, 1]], dtype=np.int64),
        counts=np.array([6, 6], dtype=np.int64),
        caps=np.array([1 << 40, 1 << 40], dtype=np.int64),
        conflicts=np.zeros((2, 2), dtype=bool),
        alloc=np.array(
            [[2000, 4 * GIB, 0, 110], [4000, 8 * GIB, 0, 110], [8000, 16 * GIB, 0, 110]],
            dtype=np.int64,
        ),
        price=np.array([0.3, 0.5, 0.6]),
        allowed=np.array([[True, True, False], [True, True, True]]),
    )


@pytest.mark.parametrize("packer", [ffd_pack, lp_pack, pattern_pack])
def test_packers_keep_each_class_to_its_own_candidates(
    packer: Callable[..., object],
) -> None:
    problem = _masked_problem()
    nodes = packer(problem, None)
    assert isinstance(nodes, list)
    check_nodes(problem, nodes)  # includes: a class only on candidates it allows
    for node in nodes:
        if node.type == 2:
            assert node.counts[0] == 0
