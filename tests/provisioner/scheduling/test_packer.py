"""Table tests of the fit rules through `plan` (and `plan_ffd`, which shares them)."""

from collections.abc import Callable

import pytest

from provisioner.scheduling.ffd import plan_ffd
from provisioner.scheduling.model import (
    ARCH,
    CAPACITY_TYPE,
    HOSTNAME,
    INSTANCE_TYPE,
    ON_DEMAND,
    SPOT,
    ZONE,
    ExistingNode,
    InstanceType,
    LabelSelector,
    NodeTemplate,
    Operator,
    Plan,
    Pod,
    PodAffinityTerm,
    Requirement,
    Resources,
    Taint,
    TaintEffect,
    Toleration,
    TopologySpread,
)
from provisioner.scheduling.options import PackOptions
from provisioner.scheduling.packer import plan

GIB = 2**30

PLANNERS: list[Callable[..., Plan]] = [plan, plan_ffd]
DEFAULT = NodeTemplate("default")
GPU_TAINT = Taint("nvidia.com/gpu", TaintEffect.NO_SCHEDULE)


def pod(name: str = "p", cpu: float = 1, mem: float = 1, gpu: int = 0, **kw: object) -> Pod:
    requests = Resources(int(cpu * 1000), int(mem * GIB), gpu, 1)
    return Pod(name=name, requests=requests, **kw)  # type: ignore[arg-type]


def placed_on(result: Plan) -> dict[str, str]:
    """pod name -> instance type (new nodes) or node name (existing)."""
    out = {p.name: n.instance_type for n in result.new_nodes for p in n.pods}
    out.update({key.split("/")[1]: node for key, node in result.bindings.items()})
    return out


def reasons(result: Plan) -> dict[str, str]:
    return {u.pod.name: u.reason for u in result.unschedulable}


@pytest.mark.parametrize("planner", PLANNERS)
def test_cheapest_fitting_type_wins(
    planner: Callable[..., Plan], types: list[InstanceType]
) -> None:
    result = planner([pod(cpu=1.5, mem=3)], [DEFAULT], types)
    assert placed_on(result) == {"p": "a.large"}  # arm is cheapest and nothing forbids it
    result = planner([pod(cpu=1.5, mem=3, node_selector={ARCH: "amd64"})], [DEFAULT], types)
    assert placed_on(result) == {"p": "c.large"}


@pytest.mark.parametrize("planner", PLANNERS)
def test_taint_needs_a_toleration(planner: Callable[..., Plan], types: list[InstanceType]) -> None:
    tainted = NodeTemplate("gpu", taints=(GPU_TAINT,))
    result = planner(
        [pod("plain"), pod("tolerant", tolerations=(Toleration("nvidia.com/gpu", "Exists"),))],
        [tainted],
        types,
    )
    assert "plain" in reasons(result)
    assert (
        'taint nvidia.com/gpu=:NoSchedule of nodepool "gpu" not tolerated'
        in reasons(result)["plain"]
    )
    assert "tolerant" in placed_on(result)


@pytest.mark.parametrize(
    ("toleration", "ok"),
    [
        (Toleration("nvidia.com/gpu", "Exists"), True),
        (Toleration("nvidia.com/gpu", "Equal", ""), True),
        (Toleration("nvidia.com/gpu", "Equal", "yes"), False),
        (Toleration("", "Exists"), True),
        (Toleration("nvidia.com/gpu", "Exists", effect=TaintEffect.NO_EXECUTE), False),
        (Toleration("other", "Exists"), False),
    ],
)
def test_toleration_table(toleration: Toleration, ok: bool, types: list[InstanceType]) -> None:
    tainted = NodeTemplate("gpu", taints=(GPU_TAINT,))
    result = plan([pod(tolerations=(toleration,))], [tainted], types)
    assert ("p" in placed_on(result)) is ok


@pytest.mark.parametrize(
    ("affinity", "expected"),
    [
        # the terms are ORed: the first that can be met is used
        (((Requirement(INSTANCE_TYPE, Operator.IN, ("m.xlarge",)),),), "m.xlarge"),
        (
            (
                (Requirement(INSTANCE_TYPE, Operator.IN, ("no-such-type",)),),
                (Requirement(INSTANCE_TYPE, Operator.IN, ("r.xlarge",)),),
            ),
            "r.xlarge",
        ),
        (
            (
                (
                    Requirement("karpenter.k8s.aws/instance-cpu", Operator.GT, ("3",)),
                    Requirement(ARCH, Operator.IN, ("amd64",)),
                ),
            ),
            "c.xlarge",
        ),
        (
            ((Requirement("karpenter.k8s.aws/instance-family", Operator.NOT_IN, ("a", "c")),),),
            "m.large",
        ),
    ],
)
def test_node_affinity_terms(affinity: tuple, expected: str, types: list[InstanceType]) -> None:
    result = plan([pod(cpu=1, mem=2, node_affinity=affinity)], [DEFAULT], types)
    assert placed_on(result) == {"p": expected}


def test_unsatisfiable_affinity_names_the_requirement(types: list[InstanceType]) -> None:
    gpu_pool = NodeTemplate("gpu", taints=(GPU_TAINT,))
    p = pod(
        gpu=1,
        node_selector={"karpenter.k8s.aws/instance-gpu-name": "h200"},
        tolerations=(Toleration("nvidia.com/gpu", "Exists"),),
    )
    why = reasons(plan([p], [gpu_pool, DEFAULT], types))["p"]
    assert "karpenter.k8s.aws/instance-gpu-name In [h200]" in why
    assert 'nodepool "gpu"' in why and 'nodepool "default"' in why


@pytest.mark.parametrize("planner", PLANNERS)
@pytest.mark.parametrize(
    ("gpus", "selector", "expected"),
    [
        (1, {}, "g.xlarge"),
        (3, {}, "g.12xlarge"),
        (1, {"karpenter.k8s.aws/instance-gpu-name": "a100"}, "p.24xlarge"),
        (4, {"karpenter.k8s.aws/instance-gpu-count": "8"}, "p.24xlarge"),
    ],
)
def test_gpu_pods_get_gpu_types_that_satisfy_them(
    planner: Callable[..., Plan],
    gpus: int,
    selector: dict,
    expected: str,
    types: list[InstanceType],
) -> None:
    result = planner([pod(gpu=gpus, node_selector=selector)], [DEFAULT], types)
    assert placed_on(result) == {"p": expected}


def test_too_many_gpus_says_which_resource(types: list[InstanceType]) -> None:
    why = reasons(plan([pod(gpu=16)], [DEFAULT], types))["p"]
    assert "needs 16 nvidia.com/gpu" in why and "has 8 allocatable" in why


def test_too_much_cpu_says_which_resource(types: list[InstanceType]) -> None:
    why = reasons(plan([pod(cpu=2000)], [DEFAULT], types))["p"]
    assert "needs 2000 cpu" in why and "96 allocatable" in why


def test_non_gpu_pods_stay_off_gpu_types_unless_nothing_else_fits(
    types: list[InstanceType], make_type: Callable[..., InstanceType]
) -> None:
    cheap_gpu = [*types, make_type("gcheap.xlarge", 8, 32, 0.01, gpu=1)]
    assert placed_on(plan([pod(cpu=3, mem=6)], [DEFAULT], cheap_gpu))["p"] == "c.xlarge"
    # 64 cpu fits only GPU types
    assert placed_on(plan([pod(cpu=64, mem=6)], [DEFAULT], cheap_gpu))["p"] == "p.24xlarge"


@pytest.mark.parametrize(
    ("arch", "expected"),
    [("arm64", "a.large"), ("amd64", "c.large")],
)
def test_arch_requirement_of_the_pool(arch: str, expected: str, types: list[InstanceType]) -> None:
    pool = NodeTemplate("p", requirements=(Requirement(ARCH, Operator.IN, (arch,)),))
    assert placed_on(plan([pod(cpu=1, mem=2)], [pool], types))["p"] == expected


def test_higher_weight_pool_is_tried_first(types: list[InstanceType]) -> None:
    heavy = NodeTemplate(
        "heavy", weight=50, requirements=(Requirement(INSTANCE_TYPE, Operator.IN, ("m.xlarge",)),)
    )
    light = NodeTemplate("light", weight=1)
    result = plan([pod(cpu=1, mem=1)], [light, heavy], types)
    assert [n.pool for n in result.new_nodes] == ["heavy"]


def test_limits_send_the_overflow_to_the_next_pool(types: list[InstanceType]) -> None:
    limited = NodeTemplate(
        "limited",
        weight=10,
        requirements=(Requirement(INSTANCE_TYPE, Operator.IN, ("m.xlarge",)),),
        limits=Resources(cpu=8000, memory=1000 * GIB, gpu=0, pods=10_000),
    )
    pods = [pod(f"p{i}", cpu=3, mem=3) for i in range(4)]
    result = plan(pods, [limited, DEFAULT], types)
    by_pool = {}
    for node in result.new_nodes:
        by_pool.setdefault(node.pool, 0)
        by_pool[node.pool] += len(node.pods)
    assert by_pool["limited"] == 2  # two 4-cpu nodes, a full capacity each, use up 8 cpu
    assert by_pool["default"] == 2
    # without a second pool the overflow is unschedulable and says why
    alone = plan(pods, [limited], types)
    assert len(alone.unschedulable) == 2
    assert all('nodepool "limited" limits exceeded' in u.reason for u in alone.unschedulable)


def test_in_use_counts_against_limits(types: list[InstanceType]) -> None:
    full = NodeTemplate(
        "full", limits=Resources(4000, 100 * GIB, 0, 1000), in_use=Resources(4000, 0, 0, 0)
    )
    result = plan([pod()], [full], types)
    assert len(result.unschedulable) == 1


def test_zone_spread_splits_across_zones(types: list[InstanceType]) -> None:
    spread = (TopologySpread(1, ZONE, selector=LabelSelector((("app", "web"),))),)
    pods = [
        pod(f"w{i}", cpu=1, mem=1, labels={"app": "web"}, topology_spread=spread) for i in range(7)
    ]
    result = plan(pods, [DEFAULT], types)
    per_zone: dict[str, int] = {}
    for node in result.new_nodes:
        per_zone[node.zone] = per_zone.get(node.zone, 0) + len(node.pods)
    assert sorted(per_zone.values()) == [2, 2, 3]


def test_zone_spread_counts_existing_pods(types: list[InstanceType]) -> None:
    spread = (TopologySpread(1, ZONE, selector=LabelSelector((("app", "web"),))),)
    old = [pod(f"old{i}", labels={"app": "web"}) for i in range(2)]
    node = ExistingNode(
        "n1",
        {ZONE: "zone-a", "kubernetes.io/hostname": "n1"},
        Resources(1000, GIB, 0, 110),
        pods=tuple(old),
    )
    pods = [
        pod(f"w{i}", cpu=1, mem=1, labels={"app": "web"}, topology_spread=spread) for i in range(4)
    ]
    result = plan(pods, [DEFAULT], types, existing_nodes=[node])
    per_zone: dict[str, int] = {}
    for n in result.new_nodes:
        per_zone[n.zone] = per_zone.get(n.zone, 0) + len(n.pods)
    assert per_zone == {"zone-b": 2, "zone-c": 2}


def test_hostname_spread_caps_pods_per_node(types: list[InstanceType]) -> None:
    spread = (TopologySpread(2, HOSTNAME, selector=LabelSelector((("app", "api"),))),)
    pods = [
        pod(f"a{i}", cpu=0.25, mem=0.25, labels={"app": "api"}, topology_spread=spread)
        for i in range(6)
    ]
    result = plan(pods, [DEFAULT], types)
    assert len(result.new_nodes) == 3
    assert all(len(n.pods) == 2 for n in result.new_nodes)


def test_anti_affinity_puts_one_pod_per_node(types: list[InstanceType]) -> None:
    anti = (PodAffinityTerm(HOSTNAME, LabelSelector((("app", "db"),))),)
    pods = [
        pod(f"d{i}", cpu=0.5, mem=0.5, labels={"app": "db"}, anti_affinity=anti) for i in range(3)
    ]
    others = [pod(f"x{i}", cpu=0.5, mem=0.5, labels={"app": "x"}) for i in range(3)]
    result = plan(pods + others, [DEFAULT], types)
    for node in result.new_nodes:
        assert sum(1 for p in node.pods if p.labels.get("app") == "db") <= 1
    assert not result.unschedulable


def test_anti_affinity_keeps_matching_pods_apart(types: list[InstanceType]) -> None:
    anti = (PodAffinityTerm(HOSTNAME, LabelSelector((("app", "noisy"),))),)
    quiet = pod("quiet", cpu=0.5, mem=0.5, labels={"app": "quiet"}, anti_affinity=anti)
    noisy = pod("noisy", cpu=0.5, mem=0.5, labels={"app": "noisy"})
    result = plan([quiet, noisy], [DEFAULT], types)
    assert len(result.new_nodes) == 2


def test_existing_nodes_are_filled_first(types: list[InstanceType]) -> None:
    node = ExistingNode(
        "n1",
        {ZONE: "zone-a", ARCH: "amd64"},
        Resources(4000, 8 * GIB, 0, 110),
        pods=(pod("old", cpu=1, mem=1),),
    )
    pods = [pod(f"p{i}", cpu=1, mem=1) for i in range(5)]
    result = plan(pods, [DEFAULT], types, existing_nodes=[node])
    assert sum(1 for v in result.bindings.values() if v == "n1") == 3
    assert sum(len(n.pods) for n in result.new_nodes) == 2


def test_existing_node_taints_and_labels_are_respected(types: list[InstanceType]) -> None:
    node = ExistingNode(
        "n1", {ARCH: "arm64"}, Resources(4000, 8 * GIB, 0, 110), taints=(GPU_TAINT,)
    )
    result = plan(
        [pod(), pod("amd", node_selector={ARCH: "amd64"}, tolerations=(Toleration("", "Exists"),))],
        [DEFAULT],
        types,
        existing_nodes=[node],
    )
    assert result.bindings == {}


def test_spot_chosen_when_cheaper_by_expected_cost(types: list[InstanceType]) -> None:
    both = NodeTemplate(
        "any",
        requirements=(
            Requirement(CAPACITY_TYPE, Operator.IN, (SPOT, ON_DEMAND)),
            Requirement(ARCH, Operator.IN, ("amd64",)),
        ),
    )
    result = plan([pod(cpu=1.5, mem=3)], [both], types)
    assert result.new_nodes[0].capacity_type == SPOT
    assert result.new_nodes[0].price == pytest.approx(0.03)  # the real price is reported
    # a penalty large enough makes on-demand the better bet
    dear = PackOptions(spot_interruption_penalty=30.0)
    assert (
        plan([pod(cpu=1.5, mem=3)], [both], types, options=dear).new_nodes[0].capacity_type
        == ON_DEMAND
    )


def test_on_demand_only_pool_never_buys_spot(types: list[InstanceType]) -> None:
    od = NodeTemplate("od", requirements=(Requirement(CAPACITY_TYPE, Operator.IN, (ON_DEMAND,)),))
    assert all(n.capacity_type == ON_DEMAND for n in plan([pod()], [od], types).new_nodes)


def test_alternatives_rank_other_fitting_types_by_price(types: list[InstanceType]) -> None:
    result = plan([pod(cpu=1.5, mem=3, node_selector={ARCH: "amd64"})], [DEFAULT], types)
    node = result.new_nodes[0]
    assert node.instance_type == "c.large"
    assert node.alternatives[:3] == ("m.large", "c.xlarge", "m.xlarge")
    assert "g.xlarge" not in node.alternatives  # GPU types are not offered to non-GPU pods
    it_req = next(r for r in node.requirements if r.key == INSTANCE_TYPE)
    assert it_req.values[0] == "c.large" and set(node.alternatives) <= set(it_req.values)


def test_min_values_keeps_enough_types_open(types: list[InstanceType]) -> None:
    pool = NodeTemplate(
        "flex",
        requirements=(
            Requirement("karpenter.k8s.aws/instance-family", Operator.EXISTS, (), min_values=3),
            Requirement(ARCH, Operator.IN, ("amd64",)),
        ),
    )
    pods = [pod(f"p{i}", cpu=1, mem=1) for i in range(12)]
    result = plan(pods, [pool], types)
    assert not result.unschedulable
    by_name = {t.name: t for t in types}
    for node in result.new_nodes:
        families = {
            by_name[t].labels["karpenter.k8s.aws/instance-family"]
            for t in (node.instance_type, *node.alternatives)
        }
        assert len(families) >= 3


def test_custom_label_the_pool_lacks_is_refused(types: list[InstanceType]) -> None:
    why = reasons(plan([pod(node_selector={"team": "a"})], [DEFAULT], types))["p"]
    assert "team In [a]" in why and "not defined by the nodepool" in why
    labelled = NodeTemplate("teams", labels={"team": "a"})
    assert "p" in placed_on(plan([pod(node_selector={"team": "a"})], [labelled], types))


def test_unsupported_topology_key_is_explained(types: list[InstanceType]) -> None:
    spread = (TopologySpread(1, "rack"),)
    why = reasons(plan([pod(topology_spread=spread)], [DEFAULT], types))["p"]
    assert "rack" in why


def test_lower_bound_never_exceeds_the_plan(types: list[InstanceType]) -> None:
    pods = [pod(f"p{i}", cpu=1 + i % 3, mem=1 + i % 5) for i in range(40)]
    result = plan(pods, [DEFAULT], types)
    assert 0 < result.lower_bound <= result.total_price + 1e-9
