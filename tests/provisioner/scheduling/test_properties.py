"""Hypothesis: whatever the pods and types, a plan is valid and never dearer than FFD."""

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.scheduling.ffd import plan_ffd
from provisioner.scheduling.model import (
    ARCH,
    CAPACITY_TYPE,
    HOSTNAME,
    INSTANCE_TYPE,
    NODEPOOL,
    ON_DEMAND,
    ZONE,
    ExistingNode,
    InstanceType,
    LabelSelector,
    NodeTemplate,
    Offering,
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
from provisioner.scheduling.requirements import labels_satisfy, reqs_of
from provisioner.scheduling.taints import untolerated

GIB = 2**30
ZONES = ("z1", "z2")
TAINT = Taint("dedicated", TaintEffect.NO_SCHEDULE, "gpu")
OPTIONS = PackOptions(time_budget_seconds=None, improvement_rounds=20)


@st.composite
def instance_types(draw: st.DrawFn) -> list[InstanceType]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        cpu = draw(st.sampled_from([1, 2, 4, 8, 16]))
        mem = cpu * draw(st.sampled_from([1, 2, 4, 8]))
        gpu = draw(st.sampled_from([0, 0, 0, 1, 4]))
        arch = draw(st.sampled_from(["amd64", "arm64"]))
        price = round(cpu * draw(st.floats(0.02, 0.1)) + gpu * 0.5, 4)
        zones = draw(st.sets(st.sampled_from(ZONES), min_size=1))
        labels = {INSTANCE_TYPE: f"t{i}", ARCH: arch}
        cap = Resources(cpu * 1000, mem * GIB, gpu, draw(st.sampled_from([4, 110])))
        out.append(
            InstanceType(
                f"t{i}",
                labels,
                cap,
                cap,
                tuple(Offering(z, ON_DEMAND, price) for z in sorted(zones)),
            )
        )
    return out


@st.composite
def pods(draw: st.DrawFn) -> list[Pod]:
    out = []
    for app in range(draw(st.integers(1, 4))):
        cpu = draw(st.sampled_from([250, 500, 1000, 3000, 6000]))
        mem = draw(st.sampled_from([256, 1024, 4096, 20000])) * 2**20
        gpu = draw(st.sampled_from([0, 0, 0, 1, 2]))
        labels = {"app": f"a{app}"}
        selector = LabelSelector((("app", f"a{app}"),))
        kind = draw(st.sampled_from(["plain", "arm", "tolerant", "zone", "host", "anti"]))
        kw: dict = {}
        if kind == "arm":
            kw["node_selector"] = {ARCH: "arm64"}
        if kind == "tolerant":
            kw["tolerations"] = (Toleration("dedicated", "Equal", "gpu"),)
        if kind == "zone":
            kw["topology_spread"] = (TopologySpread(1, ZONE, selector=selector),)
        if kind == "host":
            kw["topology_spread"] = (TopologySpread(2, HOSTNAME, selector=selector),)
        if kind == "anti":
            kw["anti_affinity"] = (PodAffinityTerm(HOSTNAME, selector),)
        for i in range(draw(st.integers(1, 8))):
            out.append(
                Pod(f"a{app}-{i}", requests=Resources(cpu, mem, gpu, 1), labels=labels, **kw)
            )
    return out


def templates(limit: bool) -> list[NodeTemplate]:
    limits = Resources(16000, 64 * GIB, 4, 1000) if limit else None
    return [
        NodeTemplate("tainted", taints=(TAINT,), weight=5, limits=limits),
        NodeTemplate("open", limits=limits),
    ]


def existing_nodes(with_node: bool) -> list[ExistingNode]:
    if not with_node:
        return []
    return [
        ExistingNode(
            "old", {ZONE: "z1", ARCH: "amd64", HOSTNAME: "old"}, Resources(2000, 4 * GIB, 0, 10)
        )
    ]


def check(
    plan_: Plan,
    pending: list[Pod],
    types: list[InstanceType],
    nodes: list[ExistingNode],
    tpls: list[NodeTemplate],
) -> None:
    seen = Counter([p.key for n in plan_.new_nodes for p in n.pods])
    seen.update(plan_.bindings.keys())
    seen.update(u.pod.key for u in plan_.unschedulable)
    assert seen == Counter(p.key for p in pending), "every pod exactly once"
    by_name = {t.name: t for t in types}
    pools = {t.pool: t for t in tpls}
    for node in plan_.new_nodes:
        it = by_name[node.instance_type]
        used = Resources()
        for p in node.pods:
            used = used + p.requests
        assert used.fits_in(it.allocatable)
        assert any(
            o.zone == node.zone and o.capacity_type == node.capacity_type for o in it.offerings
        )
        labels = {
            **it.labels,
            ZONE: node.zone,
            CAPACITY_TYPE: node.capacity_type,
            NODEPOOL: node.pool,
        }
        for p in node.pods:
            wanted = (Requirement(k, Operator.IN, (v,)) for k, v in p.node_selector.items())
            assert labels_satisfy(labels, reqs_of(wanted)) is None
            assert untolerated(p.tolerations, pools[node.pool].taints) is None
        apps = Counter(p.labels["app"] for p in node.pods)
        for p in node.pods:
            if p.anti_affinity:
                assert apps[p.labels["app"]] == 1
            if p.topology_spread and p.topology_spread[0].topology_key == HOSTNAME:
                assert apps[p.labels["app"]] <= 2
    room = {n.name: n.allocatable for n in nodes}
    for key, name in plan_.bindings.items():
        p = next(q for q in pending if q.key == key)
        room[name] = room[name] - p.requests
    assert all(r.cpu >= 0 and r.memory >= 0 and r.gpu >= 0 and r.pods >= 0 for r in room.values())
    assert plan_.lower_bound <= plan_.total_price + 1e-6


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(types=instance_types(), pending=pods(), limit=st.booleans(), with_node=st.booleans())
def test_plans_are_valid_and_never_dearer_than_ffd(
    types: list[InstanceType], pending: list[Pod], limit: bool, with_node: bool
) -> None:
    tpls = templates(limit)
    nodes = existing_nodes(with_node)
    best = plan(pending, tpls, types, nodes, OPTIONS)
    baseline = plan_ffd(pending, tpls, types, nodes, OPTIONS)
    check(best, pending, types, nodes, tpls)
    check(baseline, pending, types, nodes, tpls)
    if not limit:  # limits can make a cheaper packing spill differently
        assert best.total_price <= baseline.total_price + 1e-9
        assert len(best.unschedulable) == len(baseline.unschedulable)
