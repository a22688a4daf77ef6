"""The real `kubectl` against the REST emulator (served from its own loop in a thread, so
kubectl runs as a plain subprocess): apply, get, scale, patch, delete, watch and drain."""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kube.apiserver import ThreadedServer, write_kubeconfig
from kube.memory import MemoryCluster

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not on PATH (Debian package kubernetes-client)"
)

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        env:
        - {name: MODE, value: blue}
"""

SCALED_OBJECT = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: web-so
spec:
  scaleTargetRef:
    name: web
  minReplicaCount: 1
  maxReplicaCount: 10
  triggers:
  - type: cpu
    metricType: Utilization
    metadata:
      value: "60"
"""


class Kubectl:
    """Runs kubectl against one server, with its own discovery cache."""

    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        assert KUBECTL is not None
        self.base = [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache)]

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if ok:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done

    def out(self, *args: str) -> str:
        return self.run(*args).stdout

    def json(self, *args: str) -> dict[str, object]:
        parsed: dict[str, object] = json.loads(self.out(*args, "-o", "json"))
        return parsed

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*self.base, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    home = tmp_path_factory.mktemp("kubectl")
    with ThreadedServer(MemoryCluster(now=time.time)) as server:
        kubeconfig = write_kubeconfig(home / "kubeconfig", server.url)
        runner = Kubectl(kubeconfig, home / "cache")
        namespaces = "\n---\n".join(
            f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}"
            for name in ("apply", "get", "edit", "watch", "drain")
        )
        runner.run("apply", "-f", str(manifests(home / "namespaces", namespaces=namespaces)))
        yield runner


def manifests(directory: Path, **texts: str) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in texts.items():
        (directory / f"{name}.yaml").write_text(text)
    return directory


def replicas(kubectl: Kubectl, namespace: str, name: str = "web") -> str:
    return kubectl.out("-n", namespace, "get", "deploy", name, "-o", "jsonpath={.spec.replicas}")


def test_apply_creates_then_configures_without_flags(kubectl: Kubectl, tmp_path: Path) -> None:
    folder = manifests(tmp_path / "m", deployment=DEPLOYMENT, so=SCALED_OBJECT)
    first = kubectl.run("-n", "apply", "apply", "-f", str(folder))
    assert first.stdout.splitlines() == [
        "deployment.apps/web created",
        "scaledobject.keda.sh/web-so created",
    ]
    assert first.stderr == ""  # no validation or OpenAPI warnings
    manifests(
        folder,
        deployment=DEPLOYMENT.replace("value: blue", "value: green"),
        so=SCALED_OBJECT.replace("maxReplicaCount: 10", "maxReplicaCount: 12"),
    )
    second = kubectl.run("-n", "apply", "apply", "-f", str(folder))
    assert second.stdout.splitlines() == [
        "deployment.apps/web configured",
        "scaledobject.keda.sh/web-so configured",
    ]
    assert second.stderr == ""
    env = kubectl.out(
        "-n",
        "apply",
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env}",
    )
    assert json.loads(env) == [{"name": "MODE", "value": "green"}]
    so = kubectl.json("-n", "apply", "get", "scaledobjects.keda.sh", "web-so")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"] == {**so["spec"], "maxReplicaCount": 12}  # type: ignore[dict-item]
    ours = kubectl.out("-n", "apply", "get", "scaledobjects.ebbflow.io", "-o", "name")
    assert ours.split() == ["scaledobject.ebbflow.io/web-so"]
    server_side = kubectl.run("-n", "apply", "apply", "--server-side", "-f", str(folder))
    assert "deployment.apps/web serverside-applied" in server_side.stdout


def test_get_prints_server_side_tables_and_json(kubectl: Kubectl, tmp_path: Path) -> None:
    folder = manifests(tmp_path / "m", deployment=DEPLOYMENT, so=SCALED_OBJECT)
    kubectl.run("-n", "get", "apply", "-f", str(folder))
    table = kubectl.out("-n", "get", "get", "deploy").splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["web", "0/2", "0", "0"]
    so_table = kubectl.out("-n", "get", "get", "so").splitlines()
    assert so_table[0].split()[:5] == ["NAME", "SCALETARGETKIND", "SCALETARGETNAME", "MIN", "MAX"]
    assert so_table[1].split()[:4] == ["web-so", "web", "1", "10"]
    listed = kubectl.json("-n", "get", "get", "deployments")
    assert listed["kind"] == "List"
    items = listed["items"]
    assert isinstance(items, list) and [i["metadata"]["name"] for i in items] == ["web"]
    everywhere = kubectl.out("get", "deploy", "-A", "-o", "name")
    assert "deployment.apps/web" in everywhere.split()
    missing = kubectl.run("-n", "get", "get", "deploy", "nope", ok=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in missing.stderr
    no_namespace = kubectl.run("-n", "nowhere", "get", "deploy", "nope", ok=False)
    assert 'Error from server (NotFound): namespaces "nowhere" not found' in no_namespace.stderr
    protobuf = kubectl.run("create", "configmap", "imperative", ok=False)  # sends protobuf
    assert "the body of the request was in an unknown format" in protobuf.stderr


def test_scale_patch_and_delete(kubectl: Kubectl, tmp_path: Path) -> None:
    folder = manifests(tmp_path / "m", deployment=DEPLOYMENT)
    kubectl.run("-n", "edit", "apply", "-f", str(folder))
    assert kubectl.out("-n", "edit", "scale", "deployment/web", "--replicas=3").strip() == (
        "deployment.apps/web scaled"
    )
    assert replicas(kubectl, "edit") == "3"
    kubectl.run(
        "-n",
        "edit",
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        '{"metadata":{"labels":{"tier":"front"}}}',
    )
    assert kubectl.out("-n", "edit", "get", "deploy", "-l", "tier=front", "-o", "name").split() == [
        "deployment.apps/web"
    ]
    ops = '[{"op":"replace","path":"/spec/replicas","value":4}]'
    kubectl.run("-n", "edit", "patch", "deploy", "web", "--type=json", "-p", ops)
    assert replicas(kubectl, "edit") == "4"
    image = '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}'
    kubectl.run("-n", "edit", "patch", "deploy", "web", "-p", image)  # strategic merge
    containers = kubectl.out(
        "-n", "edit", "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers}"
    )
    assert json.loads(containers) == [
        {"name": "web", "image": "nginx:2", "env": [{"name": "MODE", "value": "blue"}]}
    ]
    assert kubectl.out("-n", "edit", "delete", "deploy", "web").strip() == (
        'deployment.apps "web" deleted'
    )
    assert kubectl.run("-n", "edit", "get", "deploy", "web", ok=False).returncode == 1


def test_get_watch_streams_a_change(kubectl: Kubectl, tmp_path: Path) -> None:
    folder = manifests(tmp_path / "m", deployment=DEPLOYMENT)
    kubectl.run("-n", "watch", "apply", "-f", str(folder))
    watcher = kubectl.popen("-n", "watch", "get", "deploy", "-w")
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def wait_for(pattern: str) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if re.search(pattern, line):
                return line
        raise AssertionError(f"kubectl get -w printed no line matching {pattern!r}")

    try:
        wait_for(r"^web\s+0/2\s")  # the listed state: the watch is open after it
        kubectl.run("-n", "watch", "scale", "deploy/web", "--replicas=5")
        wait_for(r"^web\s+0/5\s")
    finally:
        watcher.kill()
        watcher.wait(10)


def test_drain_evicts_within_the_disruption_budget(kubectl: Kubectl, tmp_path: Path) -> None:
    pods = "\n---\n".join(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: db}}}}\n"
        f"spec: {{nodeName: n1, containers: [{{name: c, image: db}}]}}"
        for name in ("db-0", "db-1")
    )
    budget = (
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: db}\n"
        "spec: {maxUnavailable: 2, selector: {matchLabels: {app: db}}}\n"
    )
    node = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n"
    folder = manifests(tmp_path / "m", node=node, pods=pods, budget=budget)
    kubectl.run("-n", "drain", "apply", "-f", str(folder))
    drained = kubectl.run("drain", "n1", "--force", "--timeout=20s")
    assert "node/n1 drained" in drained.stdout
    assert "evicting pod drain/db-0" in drained.stderr + drained.stdout
    assert kubectl.out("-n", "drain", "get", "pods", "-o", "name") == ""
    assert "SchedulingDisabled" in kubectl.out("get", "node", "n1")
