"""`ebbflow sim serve` as a user runs it: a process, a kubeconfig, and the real kubectl."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EBBFLOW = shutil.which("ebbflow") or str(Path(sys.executable).parent / "ebbflow")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scale" / "api-requests.yaml"


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "kubeconfig"
    server = subprocess.Popen(
        [EBBFLOW, "sim", "serve", "--port", "0", "--kubeconfig-out", str(path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:  # the server says when the kubeconfig is written
            if line.startswith("kubeconfig written"):
                break
        else:
            pytest.fail(f"ebbflow sim serve exited with {server.wait()}")
        yield path
    finally:
        server.terminate()
        server.wait(timeout=10)


def kubectl(config: Path, *args: str) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kubectl_applies_and_reads_a_keda_manifest(kubeconfig: Path) -> None:
    assert "scaledobject.keda.sh/api created" in kubectl(kubeconfig, "apply", "-f", str(EXAMPLE))
    listed = json.loads(
        kubectl(kubeconfig, "get", "scaledobjects.keda.sh", "-n", "shop", "-o", "json")
    )
    assert [item["metadata"]["name"] for item in listed["items"]] == ["api"]
    assert listed["items"][0]["spec"]["triggers"][0]["type"] == "prometheus"
    assert "api" in kubectl(kubeconfig, "get", "so", "-A")
    kubectl(kubeconfig, "delete", "-f", str(EXAMPLE))
    assert (
        json.loads(kubectl(kubeconfig, "get", "scaledobjects.keda.sh", "-n", "shop", "-o", "json"))[
            "items"
        ]
        == []
    )
