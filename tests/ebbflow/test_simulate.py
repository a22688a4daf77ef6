"""`ebbflow simulate`: the main job — determinism, its JSON contract, faults, bad scenarios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ebbflow.cli import app
from ebbflow.sim.runner import simulate
from ebbflow.sim.scenario import load_scenario
from scalers import registry

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIOS = sorted((EXAMPLES / "scenarios").glob("*.yaml"))


def run_json(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["simulate", *args, "-o", "json"])
    return result.exit_code, result.output


def test_same_scenario_and_seed_give_byte_identical_json() -> None:
    scenario = str(EXAMPLES / "scenarios" / "kafka-twitter-aapl.yaml")
    first = run_json(scenario, "--duration", "1d", "--seed", "7")
    second = run_json(scenario, "--duration", "1d", "--seed", "7")
    assert first[0] == 0, first[1]
    assert first[1] == second[1]


def test_embedded_default_reports_the_documented_keys() -> None:
    code, output = run_json("--duration", "6h")
    assert code == 0, output
    data = json.loads(output)
    assert data["scenario"] == "http-nyc-taxi"
    assert data["durationSeconds"] == 6 * 3600
    keys = {
        "replicaHours",
        "baseline",
        "savingsPercent",
        "sloViolationSeconds",
        "maxBacklog",
        "scaleEvents",
        "secondsAtZero",
    }
    assert keys <= set(data["total"])
    workload = data["workloads"][0]
    assert keys | {"name", "peakReplicas"} <= set(workload)
    assert workload["baseline"]["replicaHours"] == workload["baseline"]["replicas"] * 6
    saved = 100 * (1 - workload["replicaHours"] / workload["baseline"]["replicaHours"])
    assert workload["savingsPercent"] == pytest.approx(saved, abs=0.01)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
async def test_every_example_scenario_runs_and_scales(path: Path) -> None:
    scenario = load_scenario(path)
    scenario.duration = 12 * 3600
    result = await simulate(scenario)
    assert result.controller_errors == 0
    for workload in result.workloads:
        assert workload.scale_events > 0, "the trace makes the workload scale"
        assert workload.replica_hours > 0
        assert workload.peak_replicas <= scenario.workloads[0].so.spec.max_replica_count


def scenario_with(tmp_path: Path, change: dict[str, Any]) -> Path:
    raw = yaml.safe_load((EXAMPLES / "scenarios" / "kafka-twitter-aapl.yaml").read_text())
    raw["workloads"][0]["trace"]["path"] = str(EXAMPLES / "traces" / "nab-Twitter_volume_AAPL.csv")
    for dotted, value in change.items():
        node: Any = raw
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def test_trigger_failing_mid_run_goes_to_fallback_never_to_zero(tmp_path: Path) -> None:
    path = scenario_with(
        tmp_path,
        {
            "duration": "12h",
            # reactive, on the trace's first hours: quiet ones, a forecast would hold pods there
            "history": 0,
            "workloads.0.scaledObject.spec.predictive.enabled": False,
            "workloads.0.scaledObject.spec.fallback.replicas": 9,
            "workloads.0.faults": [{"trigger": "lag", "from": "3h", "to": "9h"}],
        },
    )
    result = await simulate(load_scenario(path))
    history = result.workloads[0].scale_history
    assert any(replicas == 0 for t, replicas in history if t < 3 * 3600), "scales to zero before"
    cooldown, polling = 300, 30
    # the last failing poll is within a polling interval before 9h; cooldown runs from it
    during = [r for t, r in history if 3 * 3600 <= t < 9 * 3600 + cooldown - polling]
    # failures hold the count; after more than failureThreshold (3) of them, fallback's 9
    assert during[0] == 9
    assert 0 not in during, "never to zero while failing, nor within cooldown after it"
    assert [r for t, r in history if t < 9 * 3600][-1] == 9
    assert any(r == 0 for t, r in history if t >= 9 * 3600 + cooldown), "zero again after"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"workloads.0.trace.path": "missing.csv"},
            "scenario.yaml:doc 1: workloads[0].trace.path: {dir}/missing.csv: cannot read: "
            "No such file or directory",
        ),
        (
            {"workloads.0.scaledObject.spec.triggers.0.type": "kafkaa"},
            "scenario.yaml:doc 1: workloads[0].scaledObject.spec.triggers[0].type: unknown trigger "
            f"type 'kafkaa'; known: {', '.join(registry.known_types())}",
        ),
        (
            {"workloads.0.pod.startupSeconds": -5},
            "scenario.yaml:doc 1: workloads[0].pod.startupSeconds: must not be negative, got -5",
        ),
        (
            {"workloads.0.pod.capacityPerSecond": 0},
            "scenario.yaml:doc 1: workloads[0].pod.capacityPerSecond: must be > 0, got 0",
        ),
        (
            {"workloads.0.faults": [{"trigger": "nope", "from": "1h", "to": "2h"}]},
            "scenario.yaml:doc 1: workloads[0].faults[0].trigger: no trigger named 'nope'",
        ),
        (
            {"duration": "a week"},
            "scenario.yaml:doc 1: duration: must be a duration like 30s, 15m, 2h or 7d, "
            'got "a week"',
        ),
    ],
)
def test_bad_scenario_names_file_and_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = scenario_with(tmp_path, change)
    code, output = run_json(str(path))
    assert code == 1
    expected = message.replace("scenario.yaml", str(path)).replace("{dir}", str(tmp_path))
    assert expected in " ".join(output.split())
