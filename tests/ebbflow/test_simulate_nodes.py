"""The simulator's node layer: pods wait for nodes, nodes follow demand, node cost is billed."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ebbflow.sim.runner import result_json, simulate
from ebbflow.sim.scenario import load_scenario
from scaler.manifests import ManifestError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GPU = EXAMPLES / "scenarios" / "gpu-inference-taxi.yaml"
STORM = EXAMPLES / "scenarios" / "spot-storm.yaml"


@pytest.fixture(scope="module")
def gpu_day():
    # one simulated day, shared by the tests that read its result
    scenario = load_scenario(GPU)
    scenario.duration = 86400
    return scenario, asyncio.run(simulate(scenario))


def test_gpu_service_scales_from_zero_and_its_nodes_follow(gpu_day) -> None:
    scenario, result = gpu_day
    assert result.controller_errors == 0
    nodes = result.nodes
    assert nodes is not None
    [llm] = result.workloads
    assert scenario.workloads[0].spec.initial_replicas == 0
    assert llm.seconds_at_zero > 0 and llm.scale_history[0][1] > 0, "it starts from zero"
    assert llm.peak_replicas >= 3
    assert nodes.launches >= 2 and nodes.empty_nodes_removed >= 1, "nodes come and go"
    assert nodes.unschedulable_pods == 0
    # billed per second of node life, so never more than the nodes' lives allow
    assert 0 < nodes.cost < nodes.baseline_cost
    assert nodes.node_hours < 24 * nodes.peak_nodes
    # the baseline holds the peak on on-demand GPU nodes all day
    assert nodes.baseline_nodes and all(t.startswith(("g", "p")) for t, _ in nodes.baseline_nodes)


def test_node_block_of_the_json_contract(gpu_day) -> None:
    _, result = gpu_day
    data = result_json(result)["nodes"]
    assert set(data) >= {
        "cost",
        "costPerHour",
        "nodeHours",
        "spotNodeHours",
        "peakNodes",
        "launches",
        "insufficientCapacityErrors",
        "emptyNodesRemoved",
        "unschedulablePods",
        "baseline",
        "savingsPercent",
        "disruption",
    }
    disruption = data["disruption"]
    assert disruption["consolidation"] is True
    assert disruption["nodesRemoved"]["emptiness"] == data["emptyNodesRemoved"] >= 1
    assert set(disruption["churn"]) == {
        "removals",
        "replacements",
        "minReplacementLifetimeSeconds",
        "replacedTooSoon",
        "flaps",
        "shapeReturns",
    }
    [llm] = result_json(result)["workloads"]
    assert llm["pendingPodSeconds"] > 0  # scale-ups wait for GPU nodes
    assert llm["evictions"] == disruption["evictions"]
    assert data["savingsPercent"] == pytest.approx(
        100 * (1 - data["cost"] / data["baseline"]["cost"]), abs=0.01
    )
    assert data["costPerHour"] == pytest.approx(data["cost"] / 24, rel=1e-3)


async def test_pods_wait_for_their_node_before_starting(tmp_path: Path) -> None:
    raw = yaml.safe_load(GPU.read_text())
    raw["provisioning"]["nodePoolsFile"] = str(EXAMPLES / "provision" / "nodepools.yaml")
    raw["workloads"][0]["trace"]["path"] = str(EXAMPLES / "traces" / "nab-nyc_taxi.csv")
    raw["workloads"][0]["initialReplicas"] = 2
    raw["provisioning"]["registrationSeconds"] = 1250
    raw["provisioning"]["registrationJitterSeconds"] = 0
    path = tmp_path / "slow-nodes.yaml"
    path.write_text(yaml.safe_dump(raw))
    scenario = load_scenario(path)
    scenario.duration = 700
    result = await simulate(scenario)
    # pending pods cost no replica-seconds: nothing runs before the first node registers
    # (600 s after a launch that follows a 1-2 s batch), then two pods run for under 100 s
    assert result.workloads[0].replica_hours < 2 * 100 / 3600


def test_bad_node_pool_names_the_scenario_field(tmp_path: Path) -> None:
    raw = yaml.safe_load(GPU.read_text())
    raw["workloads"][0]["trace"]["path"] = str(EXAMPLES / "traces" / "nab-nyc_taxi.csv")
    del raw["provisioning"]["nodePoolsFile"]
    raw["provisioning"]["nodePools"] = [
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "bad"},
            "spec": {
                "template": {
                    "spec": {
                        "nodeClassRef": {
                            "group": "karpenter.k8s.aws",
                            "kind": "EC2NodeClass",
                            "name": "d",
                        },
                        "requirements": [{"key": "kubernetes.io/arch", "operator": "In"}],
                    }
                }
            },
        }
    ]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ManifestError) as caught:
        load_scenario(path)
    assert "provisioning.nodePools[0].spec.template.spec.requirements[0]" in str(caught.value)


def _scenario_with_pool(tmp_path: Path, raw: dict, trace: Path) -> Path:
    raw["workloads"][0]["trace"]["path"] = str(trace)
    path = tmp_path / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_an_oscillating_load_never_replaces_a_node_too_soon_or_flaps(tmp_path: Path) -> None:
    # a sine of period 30 minutes between 3 and 33 pods' worth of requests, for 90 minutes
    start = datetime(2024, 1, 6, tzinfo=UTC)
    rows = ["timestamp,value"]
    for minute in range(2 * 60):
        rate = 180 + 150 * math.sin(2 * math.pi * minute / 30)
        rows.append(f"{(start + timedelta(minutes=minute)).isoformat()},{rate:.1f}")
    trace = tmp_path / "sine.csv"
    trace.write_text("\n".join(rows) + "\n")
    raw = yaml.safe_load(STORM.read_text())
    raw["name"] = "oscillating"
    del raw["provisioning"]["spotStorm"]
    # spot nodes are replaced only with the feature gate on: replacements exercise the bound
    raw["provisioning"]["spotToSpotConsolidation"] = True
    raw["workloads"][0]["trace"]["scale"] = 1.0
    raw["workloads"][0]["pod"]["resources"] = {"cpu": "1", "memory": "2Gi"}
    pool = raw["provisioning"]["nodePools"][0]["spec"]
    pool["disruption"]["budgets"] = [{"nodes": "50%"}]
    scenario = load_scenario(_scenario_with_pool(tmp_path, raw, trace))
    scenario.duration = 90 * 60
    result = asyncio.run(simulate(scenario))
    nodes = result.nodes
    assert nodes is not None and nodes.disruption is not None and nodes.churn is not None
    consolidated = sum(
        nodes.disruption.nodes.get(m, 0)
        for m in ("single-node-consolidation", "multi-node-consolidation")
    )
    assert consolidated >= 1, "the falling half of each cycle leaves nodes to consolidate"
    churn = nodes.churn
    assert churn.replacements >= 3, "the bound is exercised by nodes launched as replacements"
    assert churn.replaced_too_soon == 0
    assert churn.flaps == 0
    if churn.min_replacement_lifetime is not None:
        assert churn.min_replacement_lifetime >= 60 + 15  # consolidateAfter + validation
    assert nodes.pods_killed == 0


def test_a_spot_storm_loses_no_pod_and_reports_the_wait(tmp_path: Path) -> None:
    raw = yaml.safe_load(STORM.read_text())
    raw["provisioning"]["spotStorm"] = {"at": "30m", "fraction": 1.0, "within": "5m"}
    path = _scenario_with_pool(tmp_path, raw, EXAMPLES / "traces" / "nab-nyc_taxi.csv")
    scenario = load_scenario(path)
    scenario.duration = 3600
    result = asyncio.run(simulate(scenario))
    nodes = result.nodes
    assert nodes is not None and nodes.disruption is not None
    assert nodes.storm_notices >= 2
    assert nodes.disruption.interruptions == nodes.storm_notices
    assert nodes.disruption.nodes["interruption"] == nodes.storm_notices
    evicted = nodes.disruption.evictions_by_method["interruption"]
    assert evicted >= 5  # every pod ran on spot
    # drained inside the two-minute notice: no pod died with its node, all found a new one
    assert nodes.pods_killed == 0
    assert nodes.disruption.forced_deletions == 0
    assert nodes.never_rescheduled == 0
    assert len(nodes.reschedule_waits) >= evicted
    # a batch (1-10 s), the launch (1 s) and registration (40-60 s): before the old one dies
    assert max(nodes.reschedule_waits) < 120
    data = result_json(result)
    assert data["nodes"]["disruption"]["rescheduled"]["stillPending"] == 0
    assert data["workloads"][0]["pendingPodSeconds"] >= sum(nodes.reschedule_waits)
