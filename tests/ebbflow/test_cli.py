"""The command line: validate, scale explain, scale replay — outputs and located errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbflow.cli import app

runner = CliRunner()

SO = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: worker}
spec:
  scaleTargetRef: {name: worker}
  cooldownPeriod: 60
  triggers:
    - type: kafka
      name: lag
      metadata: {bootstrapServers: "kafka:9092", consumerGroup: g, topic: orders}
    - type: prometheus
      metadata:
        serverAddress: http://prometheus:9090
        query: sum(rate(http_requests_total[1m]))
        threshold: "50"
"""


@pytest.fixture
def so_file(tmp_path: Path) -> Path:
    path = tmp_path / "so.yaml"
    path.write_text(SO)
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_prints_ok_and_exits_zero(so_file: Path) -> None:
    result = runner.invoke(app, ["validate", str(so_file)])
    assert result.exit_code == 0, result.output
    assert f"OK {so_file}:doc 1: ScaledObject/worker" in result.output


def test_validate_reports_file_doc_and_field_path(tmp_path: Path, so_file: Path) -> None:
    bad = write(
        tmp_path, "bad.yaml", SO + "---\n" + SO.replace("topic: orders", 'lagThreshold: "ten"')
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert (
        f'{bad}:doc 2: spec.triggers[0].metadata.lagThreshold: must be a positive number, got "ten"'
        in result.output
    )
    assert f"OK {bad}:doc 1: ScaledObject/worker" in result.output


def test_validate_skips_other_kinds_with_a_warning(tmp_path: Path) -> None:
    other = write(
        tmp_path, "d.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
    )
    result = runner.invoke(app, ["validate", str(other)])
    assert result.exit_code == 0
    assert "apps/v1 Deployment is not a kind ebbflow validates; skipped" in result.output
    assert "OK" not in result.output


def test_validate_reports_unknown_kinds_of_our_groups(tmp_path: Path) -> None:
    typo = write(tmp_path, "t.yaml", SO.replace("kind: ScaledObject", "kind: ScaledObjekt"))
    result = runner.invoke(app, ["validate", str(typo)])
    assert result.exit_code == 1
    assert "kind: unknown kind 'ScaledObjekt'" in result.output


def test_validate_missing_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_explain_json_contract(tmp_path: Path, so_file: Path) -> None:
    metrics = write(tmp_path, "m.json", json.dumps({"lag": 35, "1": 120}))
    result = runner.invoke(
        app,
        [
            "scale",
            "explain",
            "-f",
            str(so_file),
            "--current",
            "2",
            "--metrics",
            str(metrics),
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"desiredReplicas", "active", "reason", "triggers"}
    # lag 35/10 -> 4; prometheus 120/50 -> 3; default scale-up from 2 allows 6
    assert data["desiredReplicas"] == 4
    assert data["active"] is True
    assert [t["name"] for t in data["triggers"]] == ["lag", "1"]
    assert data["triggers"][0] == {
        "name": "lag",
        "value": 35.0,
        "target": 10.0,
        "activationTarget": 0.0,
        "active": True,
        "replicas": 4,
        "error": None,
    }


def test_explain_without_history_treats_cooldown_as_elapsed(tmp_path: Path, so_file: Path) -> None:
    metrics = write(tmp_path, "m.json", json.dumps({"lag": 0, "1": 0}))
    args = [
        "scale",
        "explain",
        "-f",
        str(so_file),
        "--current",
        "5",
        "--metrics",
        str(metrics),
        "-o",
        "json",
    ]
    assert json.loads(runner.invoke(app, args).output)["desiredReplicas"] == 0
    recent = json.loads(runner.invoke(app, [*args, "--last-active", "30"]).output)
    assert recent["desiredReplicas"] == 1  # within cooldownPeriod 60


def test_explain_history_file_feeds_stabilization(tmp_path: Path, so_file: Path) -> None:
    metrics = write(tmp_path, "m.json", json.dumps({"lag": 10, "1": 10}))
    history = write(
        tmp_path,
        "h.json",
        json.dumps(
            {"recommendations": [{"secondsAgo": 100, "replicas": 9}], "lastActiveSecondsAgo": 5}
        ),
    )
    result = runner.invoke(
        app,
        [
            "scale",
            "explain",
            "-f",
            str(so_file),
            "--current",
            "9",
            "--metrics",
            str(metrics),
            "--history",
            str(history),
            "-o",
            "json",
        ],
    )
    data = json.loads(result.output)
    assert data["desiredReplicas"] == 9
    assert "stabilization (300s window)" in data["reason"]


def test_explain_error_reading_holds_replicas(tmp_path: Path, so_file: Path) -> None:
    metrics = write(tmp_path, "m.json", json.dumps({"lag": {"error": "broker down"}, "1": 0}))
    result = runner.invoke(
        app,
        [
            "scale",
            "explain",
            "-f",
            str(so_file),
            "--current",
            "3",
            "--metrics",
            str(metrics),
            "-o",
            "json",
        ],
    )
    data = json.loads(result.output)
    assert data["desiredReplicas"] == 3
    assert data["triggers"][0]["error"] == "broker down"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"lag": 1}', 'm.json: 1: missing (give a number or {"error": "..."})'),
        ('{"lag": "x", "1": 2}', 'm.json: lag: must be a number, got "x"'),
        ('{"lag": 1, "1": 2, "cpu": 3}', "m.json: cpu: no such trigger; triggers are: lag, 1"),
        ("[1, 2]", "m.json: must be a JSON object"),
        ("{", "m.json: invalid JSON at line 1"),
    ],
)
def test_explain_bad_metrics_name_the_file_and_key(
    tmp_path: Path, so_file: Path, content: str, message: str
) -> None:
    metrics = write(tmp_path, "m.json", content)
    result = runner.invoke(
        app, ["scale", "explain", "-f", str(so_file), "--current", "1", "--metrics", str(metrics)]
    )
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())


def test_replay_applies_history_step_by_step(tmp_path: Path, so_file: Path) -> None:
    series = write(tmp_path, "s.csv", "time,lag,1\n0,120,0\n10,120,0\n20,0,0\n100,0,0\n")
    result = runner.invoke(
        app, ["scale", "replay", "-f", str(so_file), "--series", str(series), "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    steps = json.loads(result.output)["steps"]
    assert [s["desiredReplicas"] for s in steps] == [12, 12, 12, 0]
    assert [s["currentReplicas"] for s in steps] == [0, 12, 12, 12]
    assert steps[2]["reason"].endswith(
        "inactive, within cooldownPeriod; stabilization (300s window) "
        "keeps 12 instead of 0; holding 12"
    )


def test_replay_accepts_iso_times_and_failed_cells(tmp_path: Path, so_file: Path) -> None:
    series = write(
        tmp_path, "s.csv", "time,lag,1\n2024-01-01T00:00:00Z,50,0\n2024-01-01T00:00:30Z,,0\n"
    )
    result = runner.invoke(
        app, ["scale", "replay", "-f", str(so_file), "--series", str(series), "-o", "json"]
    )
    steps = json.loads(result.output)["steps"]
    assert [s["time"] for s in steps] == [0.0, 30.0]
    assert steps[1]["desiredReplicas"] == 5  # the failed read holds 5, never drops


def test_replay_bad_cell_names_line_and_column(tmp_path: Path, so_file: Path) -> None:
    series = write(tmp_path, "s.csv", "time,lag,1\n0,1,2\n5,ten,2\n")
    result = runner.invoke(app, ["scale", "replay", "-f", str(so_file), "--series", str(series)])
    assert result.exit_code == 1
    assert 's.csv:line 3: column lag: must be a number (or empty for a failed read), got "ten"' in (
        " ".join(result.output.split())
    )


def test_replay_default_is_the_bundled_real_trace() -> None:
    result = runner.invoke(app, ["scale", "replay", "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["scaledObject"] == "api"
    assert len(data["steps"]) == 288  # one day at 5-minute polls
    assert max(s["desiredReplicas"] for s in data["steps"]) <= 20


def test_console_script_runs_as_installed() -> None:
    exe = shutil.which("ebbflow") or str(Path(sys.executable).parent / "ebbflow")
    proc = subprocess.run(
        [exe, "scale", "replay", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["steps"][0]["currentReplicas"] == 0


def test_forecast_backtest_json_contract(tmp_path: Path) -> None:
    import math

    rows = ["ts,value"] + [
        f"{1_700_000_000 + 3600 * i},{100 + 50 * math.sin(2 * math.pi * i / 24) + (i % 5)}"
        for i in range(24 * 14)
    ]
    trace = write(tmp_path, "hourly.csv", "\n".join(rows) + "\n")
    result = runner.invoke(app, ["forecast", "backtest", "--trace", str(trace), "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"model", "period", "horizonSteps", "metrics", "baseline", "fitSeconds"}
    assert set(data["metrics"]) == {"mase", "smape", "thetaU", "thetaO", "tauU", "tauO"}
    assert data["baseline"]["model"] == "seasonal_naive"
    assert data["period"] == [24]
    assert data["horizonSteps"] == 1  # one hour of hourly steps
    assert data["metrics"]["mase"] <= data["baseline"]["mase"] * 1.2


def test_forecast_backtest_bad_trace_names_file_and_line(tmp_path: Path) -> None:
    trace = write(tmp_path, "bad.csv", "ts,value\n1,2\n2,oops\n")
    result = runner.invoke(app, ["forecast", "backtest", "--trace", str(trace)])
    assert result.exit_code == 1
    assert f"{trace}:line 3" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shards", "0"], "--shards: Input should be greater than or equal to 1"),
        (["--bogus", "1"], "unknown option --bogus; see `ebbflow operator --help`"),
        (
            ["--lease-duration=5", "--renew-deadline", "9"],
            "retryPeriod < renewDeadline < leaseDuration",
        ),
        (["--shards"], "--shards needs a value"),
    ],
)
def test_operator_settings_flags_are_checked_before_connecting(
    args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["operator", *args])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
