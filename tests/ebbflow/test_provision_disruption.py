"""`ebbflow provision plan --disruption`: the disruption planner's dry run over manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from ebbflow.cli import app

runner = CliRunner()

POOL = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "default"},
    "spec": {
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "d"},
                "expireAfter": "Never",
                "requirements": [
                    {
                        "key": "karpenter.sh/capacity-type",
                        "operator": "In",
                        "values": ["on-demand"],
                    },
                    {
                        "key": "karpenter.k8s.aws/instance-family",
                        "operator": "In",
                        "values": ["m5"],
                    },
                ],
            }
        },
        "disruption": {"consolidateAfter": "0s"},
    },
}


def a_node(name: str, itype: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "annotations": annotations,
            "labels": {
                "karpenter.sh/nodepool": "default",
                "node.kubernetes.io/instance-type": itype,
                "karpenter.sh/capacity-type": "on-demand",
                "topology.kubernetes.io/zone": "us-east-1a",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
            },
        },
        "status": {
            "allocatable": {"cpu": "15", "memory": "60Gi", "pods": "110"}
            if itype == "m5.4xlarge"
            else {"cpu": "3", "memory": "14Gi", "pods": "58"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def a_pod(name: str, node: str, app: str = "web", **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {"app": app},
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": app,
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}
            ],
        },
    }


def write(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs))
    return path


def files(tmp_path: Path) -> list[str]:
    nodes = write(
        tmp_path / "nodes.yaml",
        [
            a_node("big", "m5.4xlarge"),
            a_node("empty", "m5.xlarge"),
            a_node("guarded", "m5.xlarge", **{"karpenter.sh/do-not-disrupt": "true"}),
            a_node("db", "m5.xlarge"),
        ],
    )
    pods = write(
        tmp_path / "pods.yaml",
        [a_pod("web-0", "big"), a_pod("web-1", "guarded"), a_pod("db-0", "db", app="db")],
    )
    pools = write(tmp_path / "nodepools.yaml", [POOL])
    pdbs = write(
        tmp_path / "pdbs.yaml",
        [
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "db", "namespace": "shop"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
            }
        ],
    )
    return [
        "provision", "plan", "--disruption", "--nodes", str(nodes), "--pods", str(pods),
        "--nodepools", str(pools), "--pdbs", str(pdbs),
    ]  # fmt: skip


def test_disruption_dry_run_json(tmp_path: Path) -> None:
    result = runner.invoke(app, [*files(tmp_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    [command] = data["disruptions"]
    assert command["method"] == "emptiness" and command["nodes"] == ["empty"]
    assert command["replacements"] == [] and command["savingsPerHour"] > 0
    why = {n["node"]: n["reason"] for n in data["notCandidates"]}
    assert "do-not-disrupt" in why["guarded"]
    assert "PodDisruptionBudget shop/db allows no disruption" in why["db"]
    assert "next round may" in why["big"] and "big/m5.4xlarge" in why["big"]


def test_disruption_dry_run_table(tmp_path: Path) -> None:
    result = runner.invoke(app, files(tmp_path))
    assert result.exit_code == 0, result.output
    assert "emptiness" in result.output and "guarded:" in result.output


def test_disruption_needs_nodes(tmp_path: Path) -> None:
    args = files(tmp_path)
    at = args.index("--nodes")
    result = runner.invoke(app, args[:at] + args[at + 2 :])
    assert result.exit_code == 1
    assert "--disruption needs --nodes" in result.output


def test_bad_pdb_names_file_and_field(tmp_path: Path) -> None:
    args = files(tmp_path)
    bad = write(
        tmp_path / "bad.yaml",
        [
            {
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "x"},
                "spec": {"minAvailable": "lots"},
            }
        ],
    )
    args[args.index("--pdbs") + 1] = str(bad)
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "bad.yaml:doc 1: spec.minAvailable" in result.output


def test_spot_to_spot_replacement_is_behind_its_flag(tmp_path: Path) -> None:
    spot = yaml.safe_load(yaml.safe_dump(POOL))
    spot["spec"]["template"]["spec"]["requirements"][0]["values"] = ["spot"]
    node = a_node("big", "m5.4xlarge")
    node["metadata"]["labels"]["karpenter.sh/capacity-type"] = "spot"
    args = [
        "provision", "plan", "--disruption", "-o", "json",
        "--nodes", str(write(tmp_path / "nodes.yaml", [node])),
        "--pods", str(write(tmp_path / "pods.yaml", [a_pod("web-0", "big")])),
        "--nodepools", str(write(tmp_path / "nodepools.yaml", [spot])),
    ]  # fmt: skip

    def why_big(extra: list[str]) -> str:
        result = runner.invoke(app, args + extra)
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["disruptions"] == []
        return {n["node"]: n["reason"] for n in data["notCandidates"]}["big"]

    assert "spot-to-spot consolidation is disabled" in why_big([])
    # on, the next rule speaks: m5 has fewer than 15 spot types cheaper than a 4xlarge
    assert "needs 15 cheaper spot types" in why_big(["--spot-to-spot"])
