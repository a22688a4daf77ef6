"""The cost model on hand-computed cases: every expected figure is worked out in the comment."""

from __future__ import annotations

import pytest

from ebbflow.report.costmodel import IDLE, allocate, node_shares, slo_attainment
from ebbflow.sim.timeline import (
    Amounts,
    NodeInfo,
    Sample,
    Timeline,
    WorkloadInfo,
    WorkloadState,
)

GIB = 1024**3


def node(
    name: str,
    price: float,
    cpu: float = 4000,
    memory: float = 16 * GIB,
    gpu: float = 0,
    capacity_type: str = "on-demand",
) -> NodeInfo:
    return NodeInfo(
        name, "general", "m5.xlarge", capacity_type, "us-east-1a", price, Amounts(cpu, memory, gpu)
    )


def workload(name: str, team: str, cpu: float, memory: float, gpu: float = 0) -> WorkloadInfo:
    return WorkloadInfo(name, f"ns-{team}", {"team": team}, Amounts(cpu, memory, gpu), 10.0)


def timeline(
    workloads: list[WorkloadInfo],
    nodes: list[NodeInfo],
    placement: dict[str, dict[str, int]],
    step: float = 3600,
    duration: float = 3600,
) -> Timeline:
    """One placement (node -> workload -> pods) held for the whole duration."""
    infos = {w.name: w for w in workloads}
    samples = []
    t = 0.0
    while t < duration:
        held = {
            n: {w: infos[w].requests.times(k) for w, k in ws.items()} for n, ws in placement.items()
        }
        pods = {w.name: sum(ws.get(w.name, 0) for ws in placement.values()) for w in workloads}
        states = {name: WorkloadState(k, k, 0, k, 5.0, 0.0) for name, k in pods.items()}
        samples.append(Sample(t, states, held))
        t += step
    return Timeline(
        0.0, step, duration, tuple(workloads), {n.name: n for n in nodes}, tuple(samples)
    )


def test_a_node_shared_by_two_teams_is_split_by_dominant_share_and_idle_is_its_own_line():
    # $1.00/h node, 4 cpu, 16 GiB. red: 1 cpu, 2 GiB -> max(1/4, 2/16) = 0.25 -> $0.25.
    # blue: 0.5 cpu, 8 GiB -> max(0.5/4, 8/16) = 0.5 -> $0.50. Idle: 1 - 0.75 -> $0.25.
    red = workload("red-api", "red", 1000, 2 * GIB)
    blue = workload("blue-db", "blue", 500, 8 * GIB)
    t = timeline([red, blue], [node("n1", 1.0)], {"n1": {"red-api": 1, "blue-db": 1}})
    [cost] = allocate(t)
    assert cost.node_cost == pytest.approx(1.0)
    assert cost.by_workload == {"red-api": pytest.approx(0.25), "blue-db": pytest.approx(0.50)}
    assert cost.idle == pytest.approx(0.25)


def test_spot_and_on_demand_nodes_bill_at_their_own_prices():
    # the same type twice: spot at $0.30/h, on-demand at $1.00/h, two half-hour samples each.
    # Each node is filled by one workload (4 pods x 1 cpu = all cpu): spot $0.30, od $1.00.
    a = workload("a", "red", 1000, 1 * GIB)
    b = workload("b", "blue", 1000, 1 * GIB)
    spot = node("spot-1", 0.30, capacity_type="spot")
    od = node("od-1", 1.00)
    t = timeline([a, b], [spot, od], {"spot-1": {"a": 4}, "od-1": {"b": 4}}, step=1800)
    costs = allocate(t)
    assert [c.seconds for c in costs] == [1800, 1800]
    assert sum(c.by_workload["a"] for c in costs) == pytest.approx(0.30)
    assert sum(c.by_workload["b"] for c in costs) == pytest.approx(1.00)
    assert sum(c.idle for c in costs) == pytest.approx(0.0)


def test_an_empty_node_is_all_idle():
    # $0.40/h for 90 minutes with no pod: $0.60 idle, nothing charged to any workload.
    a = workload("a", "red", 1000, GIB)
    t = timeline([a], [node("n1", 0.40)], {"n1": {}}, step=1800, duration=5400)
    costs = allocate(t)
    assert sum(c.idle for c in costs) == pytest.approx(0.60)
    assert sum(c.by_workload["a"] for c in costs) == 0.0


def test_a_gpu_request_charges_the_gpu_share():
    # 4-GPU node at $4.00/h; a pod asks 1 GPU, 1 cpu of 48, 4 GiB of 192: max(1/4, ...) = 0.25
    infer = workload("infer", "ml", 1000, 4 * GIB, gpu=1)
    gpu_node = node("g1", 4.0, cpu=48000, memory=192 * GIB, gpu=4)
    [cost] = allocate(timeline([infer], [gpu_node], {"g1": {"infer": 1}}))
    assert cost.by_workload["infer"] == pytest.approx(1.0)
    assert cost.idle == pytest.approx(3.0)


def test_shares_over_the_whole_node_are_scaled_to_exactly_one():
    # cpu-heavy 3/4 cpu + 1/4 mem, memory-heavy 1/4 cpu + 3/4 mem: shares 0.75 + 0.75 = 1.5,
    # scaled to 0.5 each; nothing idle (the node is full in both dimensions).
    n = node("n1", 2.0)
    shares = node_shares(n, {"cpu": Amounts(3000, 4 * GIB), "mem": Amounts(1000, 12 * GIB)})
    assert shares == {"cpu": pytest.approx(0.5), "mem": pytest.approx(0.5)}


def test_the_last_sample_bills_only_what_is_left_of_the_period():
    # duration 5400 s at a 3600 s step: samples of 3600 s and 1800 s -> $1.50 at $1.00/h
    a = workload("a", "red", 4000, GIB)
    t = timeline([a], [node("n1", 1.0)], {"n1": {"a": 1}}, step=3600, duration=5400)
    costs = allocate(t)
    assert [c.seconds for c in costs] == [3600, 1800]
    assert sum(c.node_cost for c in costs) == pytest.approx(1.5)


def test_without_nodes_pods_are_priced_per_pod_hour():
    # 3 pods at $0.05 per pod-hour for an hour: $0.15, and no idle line
    a = workload("a", "red", 500, GIB)
    t = timeline([a], [], {}, duration=3600)
    t = Timeline(0, 3600, 3600, t.workloads, {}, (Sample(0, {"a": WorkloadState(3, 3, 0, 3)}, {}),))
    [cost] = allocate(t, {"a": 0.05})
    assert cost.by_workload["a"] == pytest.approx(0.15)
    assert cost.idle == 0.0


def test_slo_attainment_is_the_share_of_judged_seconds_kept():
    # two workloads judged 1000 s each; 50 and 150 s broken: 1 - 200 / 2000 = 0.9
    a, b = workload("a", "red", 1, 1), workload("b", "blue", 1, 1)
    t = timeline([a, b], [], {})
    t = Timeline(
        t.start,
        t.step,
        t.duration,
        t.workloads,
        {},
        t.samples,
        slo_seconds={"a": 1000, "b": 1000},
        slo_violations={"a": 50, "b": 150},
    )
    assert slo_attainment(t) == pytest.approx(0.9)
    assert slo_attainment(t, ["a"]) == pytest.approx(0.95)
    assert IDLE == "(idle capacity)"
