"""`ebbflow provision plan`: the provisioner's dry run over manifest files."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from ebbflow.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "provision"
PODS = EXAMPLES / "pods.yaml"
POOLS = EXAMPLES / "nodepools.yaml"


def plan(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["provision", "plan", *args])
    return result.exit_code, result.output


def pod_names(path: Path) -> set[str]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "Pod"]
    return {f"{d['metadata'].get('namespace', 'default')}/{d['metadata']['name']}" for d in docs}


def test_every_pod_is_placed_or_explained_exactly_once() -> None:
    code, output = plan("--pods", str(PODS), "--nodepools", str(POOLS), "-o", "json")
    assert code == 0, output
    data = json.loads(output)
    placed = [p for c in data["nodeClaims"] for p in c["pods"]]
    unschedulable = [u["pod"] for u in data["unschedulable"]]
    assert sorted(placed + unschedulable) == sorted(pod_names(PODS))
    assert unschedulable == ["default/too-big"]
    assert "2000" in data["unschedulable"][0]["reason"]
    gpu = [c for c in data["nodeClaims"] if c["nodePool"] == "gpu"]
    assert gpu and all(c["instanceType"].startswith("g5.") for c in gpu)  # pinned to a10g
    assert data["totalPricePerHour"] == round(sum(c["pricePerHour"] for c in data["nodeClaims"]), 6)
    assert 0 < data["lowerBoundPricePerHour"] <= data["totalPricePerHour"]
    for claim in data["nodeClaims"]:
        assert claim["instanceType"] not in claim["alternatives"]


def test_existing_nodes_are_filled_before_anything_is_launched(tmp_path: Path) -> None:
    pods = tmp_path / "pods.yaml"
    pods.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "api", "namespace": "shop"},
                    "spec": {
                        "replicas": 3,
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "api",
                                        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                                    }
                                ]
                            }
                        },
                    },
                }
            ]
        )
    )
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": "ip-10-0-1-7",
                    "labels": {
                        "kubernetes.io/arch": "amd64",
                        "kubernetes.io/os": "linux",
                        "karpenter.sh/nodepool": "general-purpose",
                        "karpenter.sh/capacity-type": "on-demand",
                        "topology.kubernetes.io/zone": "us-east-1a",
                        "node.kubernetes.io/instance-type": "m6i.large",
                    },
                },
                "status": {"allocatable": {"cpu": "1930m", "memory": "6Gi", "pods": "110"}},
            }
        )
    )
    code, output = plan(
        "--pods", str(pods), "--nodepools", str(POOLS), "--nodes", str(nodes), "-o", "json"
    )
    assert code == 0, output
    data = json.loads(output)
    assert [b["node"] for b in data["bindings"]] == ["ip-10-0-1-7"]  # room for one 1-cpu pod
    assert sum(len(c["pods"]) for c in data["nodeClaims"]) == 2
    assert data["unschedulable"] == []


def test_table_output_names_the_total_and_the_unschedulable_pod() -> None:
    code, output = plan("--pods", str(PODS), "--nodepools", str(POOLS))
    assert code == 0, output
    assert "lower bound" in output
    assert "default/too-big" in output


def test_a_bad_pod_names_file_document_and_field(tmp_path: Path) -> None:
    pods = tmp_path / "pods.yaml"
    pods.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: a}]}\n"
        "---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\n"
        "spec: {containers: [{name: a, resources: {requests: {cpu: lots}}}]}\n"
    )
    code, output = plan("--pods", str(pods), "--nodepools", str(POOLS))
    assert code == 1
    assert f"{pods}:doc 2: spec.containers[0].resources.requests.cpu" in output.replace("\n", "")


def test_a_file_without_node_pools_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "pools.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, output = plan("--pods", str(PODS), "--nodepools", str(empty))
    assert code == 1
    assert "no NodePool" in output
