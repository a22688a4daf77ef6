"""The simulator's node layer: pods wait for nodes, nodes follow demand, node cost is billed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from ebbflow.sim.runner import result_json, simulate
from ebbflow.sim.scenario import load_scenario
from scaler.manifests import ManifestError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GPU = EXAMPLES / "scenarios" / "gpu-inference-taxi.yaml"


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
    }
    assert data["savingsPercent"] == pytest.approx(
        100 * (1 - data["cost"] / data["baseline"]["cost"]), abs=0.01
    )
    assert data["costPerHour"] == pytest.approx(data["cost"] / 24, rel=1e-3)


async def test_pods_wait_for_their_node_before_starting(tmp_path: Path) -> None:
    raw = yaml.safe_load(GPU.read_text())
    raw["provisioning"]["nodePoolsFile"] = str(EXAMPLES / "provision" / "nodepools.yaml")
    raw["workloads"][0]["trace"]["path"] = str(EXAMPLES / "traces" / "nab-nyc_taxi.csv")
    raw["workloads"][0]["initialReplicas"] = 2
    raw["provisioning"]["registrationSeconds"] = 600
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
