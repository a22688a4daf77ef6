"""HTTPScaledObject: the add-on's shape accepted unchanged, and driven by the same engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ebbflow.cli import app
from kube.memory import MemoryCluster
from kube.port import DEPLOYMENTS, HTTP_SCALED_OBJECTS, kind_for
from scaler.clock import VirtualClock
from scaler.http_api import HTTPScaledObject, to_scaled_object
from scaler.http_scaling import HTTPScalingController, RouteScalers
from scaler.interceptor.counting import RequestCounts

ADDON = """\
kind: HTTPScaledObject
apiVersion: http.keda.sh/v1alpha1
metadata:
  name: xkcd
  annotations:
    httpscaledobject.keda.sh/skip-scaledobject-creation: "false"
spec:
  hosts: [myhost.com, "*.example.com"]
  pathPrefixes: [/test]
  headers:
    - name: X-Custom-Header
      value: CustomValue
  scaleTargetRef: {name: xkcd, kind: Deployment, apiVersion: apps/v1, service: xkcd, port: 8080}
  replicas: {min: 5, max: 10}
  scaledownPeriod: 300
  initialCooldownPeriod: 60
  scalingMetric:
    requestRate: {granularity: 1s, targetValue: 100, window: 1m}
  timeouts: {conditionWait: 20s, responseHeader: 500ms}
  coldStartTimeoutFailoverRef: {service: sorry, port: 80, timeoutSeconds: 10}
  placeholderConfig: {enabled: true, refreshInterval: 5, statusCode: 503}
"""


def run_validate(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "hso.yaml"
    path.write_text(text)
    return CliRunner().invoke(app, ["validate", str(path)])


def test_the_addon_example_validates_unchanged(tmp_path: Path) -> None:
    result = run_validate(tmp_path, ADDON)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "HTTPScaledObject/xkcd" in result.output


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{min: 5, max: 10}", "{min: 11, max: 10}", "spec.replicas.min: must not exceed"),
        ("[/test]", "[test]", "spec.pathPrefixes[0]: must start with /"),
        ("granularity: 1s", "granularity: 2m", "spec.scalingMetric.requestRate.granularity"),
        ("port: 8080}", "portName: h, port: 8}", "spec.scaleTargetRef.port: must define"),
        ("targetValue: 100", "targetValue: lots", "targetValue: must be an integer"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, old: str, new: str, message: str) -> None:
    result = run_validate(tmp_path, ADDON.replace(old, new))
    assert result.exit_code == 1
    assert "hso.yaml:doc 1: " in result.output and message in result.output


def test_it_becomes_a_scaled_object_with_one_http_trigger() -> None:
    import yaml

    hso = HTTPScaledObject.model_validate(yaml.safe_load(ADDON))
    so = to_scaled_object(hso)
    assert (so.spec.min_replica_count, so.spec.max_replica_count) == (5, 10)
    assert so.spec.cooldown_period == 300 and so.spec.initial_cooldown_period == 60
    (trigger,) = so.spec.triggers
    assert trigger.type == "http"
    assert trigger.metadata["scalingMetric"] == "requestRate"
    assert trigger.metadata["window"] == "60s"
    assert kind_for("http.keda.sh/v1alpha1", "HTTPScaledObject") == HTTP_SCALED_OBJECTS


def test_no_scaling_metric_means_concurrency_100_as_in_the_addon() -> None:
    hso = HTTPScaledObject.model_validate(
        {
            "apiVersion": "ebbflow.io/v1alpha1",
            "kind": "HTTPScaledObject",
            "metadata": {"name": "a"},
            "spec": {"scaleTargetRef": {"name": "a", "service": "a", "portName": "http"}},
        }
    )
    assert (hso.spec.metric, hso.spec.target_value) == ("concurrency", 100)


async def test_a_pushed_activation_scales_from_zero_without_waiting_for_the_interval() -> None:
    clock = VirtualClock(start=1_700_000_000)
    cluster = MemoryCluster(now=clock.now)
    await cluster.create(
        DEPLOYMENTS,
        {"metadata": {"name": "web"}, "spec": {"replicas": 0, "selector": {"matchLabels": {}}}},
    )
    await cluster.create(
        HTTP_SCALED_OBJECTS,
        {
            "apiVersion": "ebbflow.io/v1alpha1",
            "kind": "HTTPScaledObject",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "scaleTargetRef": {"name": "web", "service": "web", "port": 80},
                "scalingMetric": {"concurrency": {"targetValue": 10}},
            },
        },
    )
    counts = RequestCounts(now=clock.now)
    controller = HTTPScalingController(cluster, clock, RouteScalers(counts))
    task = asyncio.create_task(controller.run())
    await clock.run_until(clock.now() + 1)  # listed, first poll: idle at zero
    assert (await cluster.get(DEPLOYMENTS, "web"))["spec"]["replicas"] == 0
    counts.counter(("default", "web")).in_flight = 25  # 25 requests held
    woke_at = clock.now()
    assert controller.wake("default", "web")
    await clock.settle()
    assert clock.now() == woke_at  # no virtual time passed: the interval was cut short
    assert (await cluster.get(DEPLOYMENTS, "web"))["spec"]["replicas"] == 3
    status = (await cluster.get(HTTP_SCALED_OBJECTS, "web"))["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Active"] == "True"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cluster.close()


def test_a_scenario_takes_an_http_scaled_object_in_place_of_a_scaled_object(
    tmp_path: Path,
) -> None:
    import json

    import yaml

    examples = Path(__file__).resolve().parents[3] / "examples"
    scenario = yaml.safe_load((examples / "scenarios" / "http-nyc-taxi.yaml").read_text())
    workload = scenario["workloads"][0]
    workload["trace"]["path"] = str(examples / "traces" / "nab-nyc_taxi.csv")
    scenario.pop("provisioning", None)  # pods only: this is about the HTTP trigger
    workload["scaledObject"] = {
        "apiVersion": "http.keda.sh/v1alpha1",
        "kind": "HTTPScaledObject",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "scaleTargetRef": {"name": "api", "service": "api", "port": 80},
            "replicas": {"min": 1, "max": 60},
            "scalingMetric": {"requestRate": {"targetValue": 8, "window": "1m"}},
        },
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = CliRunner().invoke(app, ["simulate", str(path), "-o", "json", "--duration", "6h"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["controllerErrors"] == 0
    assert summary["workloads"][0]["scaleEvents"] > 0  # the http trigger drove the count
