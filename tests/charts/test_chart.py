"""The Helm chart, rendered by Helm's own engine (helm-python-sdk), linted, validated against
Kubernetes' schemas (kubernetes-validate), and applied with the real kubectl to
`ebbflow sim serve`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from ebbflow.chart_values import ChartValues, values_schema_json, values_yaml
from ebbflow.settings import OperatorSettings

CHART = Path(__file__).resolve().parents[2] / "charts" / "ebbflow"
KUBERNETES = kubernetes_validate.utils.latest_version()  # the newest the package knows
KUBECTL = shutil.which("kubectl")
EBBFLOW = str(Path(sys.executable).parent / "ebbflow")  # the installed entry point
NAMESPACE = "ebbflow-system"

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "interceptor": {"interceptor": {"enabled": True}, "crds": {"httpAddon": True}},
    "monitoring": {
        "monitoring": {"serviceMonitor": {"enabled": True}, "dashboard": {"enabled": True}},
        "networkPolicy": {"enabled": True},
    },
    "ha": {
        "replicaCount": 3,
        "settings": {"shards": 4, "watchNamespace": "apps"},
        "crds": {"keda": True, "karpenter": True},
    },
}


@pytest.fixture(scope="module")
def chart() -> helm.Chart:
    return helm.Chart.load(str(CHART))


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the chart renders for `values`, as Helm would install it."""
    manifests = chart.render(values, name="ebbflow", namespace=NAMESPACE, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def crds_of(chart: helm.Chart) -> list[dict[str, Any]]:
    return [yaml.safe_load(crd["data"]) for crd in chart.crds]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


# --- generated files are up to date ---------------------------------------------------------------


def test_checked_in_values_files_are_the_generated_ones() -> None:
    stale = "stale: run `ebbflow chart generate`"
    assert (CHART / "values.yaml").read_text() == values_yaml(), stale
    assert (CHART / "values.schema.json").read_text() == values_schema_json(), stale


def test_values_yaml_defaults_are_the_model_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert ChartValues.model_validate(values) == ChartValues()


def test_every_object_of_the_schema_is_closed() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, where
            for key, child in node.items():
                walk(child, f"{where}.{key}")

    walk(json.loads((CHART / "values.schema.json").read_text()), "$")


# --- render, lint, validate -----------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rendered_objects_are_valid_kubernetes(chart: helm.Chart, name: str) -> None:
    objects = render(chart, VALUE_SETS[name]) + (crds_of(chart) if name == "defaults" else [])
    unknown = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unknown.append(obj["kind"])
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    # prometheus-operator's CRD is not a Kubernetes schema; everything else is
    assert set(unknown) <= {"ServiceMonitor"}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_is_clean(name: str) -> None:
    report = helm.lint(
        str(CHART), VALUE_SETS[name], strict=True, namespace=NAMESPACE, kube_version=KUBERNETES
    )
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_defaults_render_the_operator_and_nothing_optional(chart: helm.Chart) -> None:
    kinds = sorted(obj["kind"] for obj in render(chart, {}))
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    names = sorted(crd["metadata"]["name"] for crd in crds_of(chart))
    assert all(name.endswith(".ebbflow.io") for name in names)
    assert "scaledobjects.ebbflow.io" in names


def test_value_flags_add_their_objects(chart: helm.Chart) -> None:
    interceptor = render(chart, VALUE_SETS["interceptor"])
    deployments = {d["metadata"]["name"]: d for d in by_kind(interceptor, "Deployment")}
    proxy = deployments["ebbflow-interceptor"]["spec"]["template"]["spec"]["containers"][0]
    assert proxy["args"][0] == "interceptor"
    assert "--port=8080" in proxy["args"]
    assert {s["metadata"]["name"] for s in by_kind(interceptor, "Service")} >= {
        "ebbflow-interceptor-proxy"
    }
    compat = [c["metadata"]["name"] for c in by_kind(interceptor, "CustomResourceDefinition")]
    assert compat == ["httpscaledobjects.http.keda.sh"]

    monitoring = render(chart, VALUE_SETS["monitoring"])
    assert len(by_kind(monitoring, "ServiceMonitor")) == 1
    assert len(by_kind(monitoring, "NetworkPolicy")) == 1
    (dashboard,) = by_kind(monitoring, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["ebbflow.json"])["panels"]
    titles = {p["title"] for p in panels}
    assert {"Scaling decisions", "Loop lag", "Scaler errors", "Node cost"} <= titles


def test_dashboard_queries_metrics_the_operator_exports() -> None:
    from ebbflow.operator.metrics import OperatorMetrics

    exported = set()
    for family in OperatorMetrics().registry.collect():
        exported |= {sample.name for sample in family.samples} | {family.name}
        exported |= {f"{family.name}_{suffix}" for suffix in ("bucket", "total", "sum", "count")}
    dashboard = json.loads((CHART / "dashboards" / "ebbflow.json").read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queried |= {
                word
                for word in _identifiers(target["expr"])
                if word.startswith(("ebbflow_", "keda_"))
            }
    # node cost comes from OpenCost's node_total_hourly_cost and kube-state-metrics' node
    # labels (the series `ebbflow report --prometheus` reads), not from the operator
    assert queried - exported == set()


def _identifiers(expr: str) -> set[str]:
    import re

    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))


def test_ha_values_spread_replicas_and_configure_the_operator(chart: helm.Chart) -> None:
    objects = render(chart, VALUE_SETS["ha"])
    (deployment,) = by_kind(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    pod = spec["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]
    container = pod["containers"][0]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    # the env the chart renders is a configuration the operator itself accepts
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    settings = _settings_from_env(env, pod_name="ebbflow-0")
    assert (settings.replicas, settings.shards, settings.watch_namespace) == (3, 4, "apps")
    assert settings.lease_namespace == NAMESPACE
    assert settings.identity == "ebbflow-0"
    assert container["ports"][0]["containerPort"] == settings.metrics_port


def _settings_from_env(env: dict[str, str], pod_name: str) -> OperatorSettings:
    saved = dict(os.environ)
    try:
        os.environ.update(env, POD_NAME=pod_name)
        return OperatorSettings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- the schema rejects bad values ----------------------------------------------------------------


def test_schema_rejects_a_string_replica_count_and_an_unknown_key(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.render({"replicaCount": "three", "interceptor": {"enabeld": True}})
    message = str(caught.value)
    assert "at '/replicaCount': got string, want integer" in message
    assert "at '/interceptor': additional properties 'enabeld' not allowed" in message


def test_schema_rejects_out_of_range_operator_settings(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.render({"settings": {"shards": 0, "logFormat": "xml"}})
    message = str(caught.value)
    assert "/settings/shards" in message and "/settings/logFormat" in message


# --- kubectl apply to `ebbflow sim serve` ---------------------------------------------------------


@pytest.fixture(scope="module")
def sim_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`ebbflow sim serve` as a user runs it; yields the kubeconfig it writes."""
    folder = tmp_path_factory.mktemp("sim")
    kubeconfig = folder / "kubeconfig"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ebbflow"),
            "sim",
            "serve",
            "--port",
            "0",
            "--kubeconfig-out",
            str(kubeconfig),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not (kubeconfig.exists() and "current-context" in kubeconfig.read_text()):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "sim serve wrote no kubeconfig"
            time.sleep(0.05)
        yield kubeconfig
    finally:
        process.terminate()
        process.wait(10)


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    assert KUBECTL is not None
    cache = kubeconfig.parent / "cache"
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH (Debian kubernetes-client)")
def test_kubectl_applies_crds_then_every_object(chart: helm.Chart, sim_serve: Path) -> None:
    everything: dict[str, Any] = {}
    for values in VALUE_SETS.values():  # one install with every optional part switched on
        everything = _merged(everything, values)
    objects = render(chart, everything)
    crds = crds_of(chart) + by_kind(objects, "CustomResourceDefinition")
    crds.append(SERVICE_MONITOR_CRD)  # prometheus-operator's, as a cluster with it has
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    kubectl(sim_serve, "apply", "-f", "-", stdin=_documents([namespace]))
    # CRDs first, as Helm does: a kind is served once its CRD is created
    out = kubectl(sim_serve, "apply", "-f", "-", stdin=_documents(crds))
    assert "customresourcedefinition.apiextensions.k8s.io/scaledobjects.ebbflow.io created" in out
    rest = [obj for obj in objects if obj["kind"] != "CustomResourceDefinition"]
    out = kubectl(sim_serve, "apply", "-f", "-", stdin=_documents(rest))
    assert len(out.strip().splitlines()) == len(rest)
    assert all(line.endswith(" created") for line in out.strip().splitlines())
    assert "servicemonitor.monitoring.coreos.com/ebbflow created" in out
    got = kubectl(sim_serve, "get", "deployments", "-n", NAMESPACE, "-o", "name").split()
    assert got == ["deployment.apps/ebbflow", "deployment.apps/ebbflow-interceptor"]
    # a ScaledObject through our CRD's group, as a user would create one after the install
    kubectl(sim_serve, "get", "crd", "nodepools.karpenter.sh", "-o", "name")


def _documents(objects: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(obj, sort_keys=False) for obj in objects)


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


# A stand-in for prometheus-operator's ServiceMonitor CRD: its names, its group and version
# as upstream defines them; the schema left open (the ServiceMonitor is checked above by
# render tests, not by a schema we do not ship).
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "names": {
            "kind": "ServiceMonitor",
            "listKind": "ServiceMonitorList",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
            "shortNames": ["smon"],
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}
