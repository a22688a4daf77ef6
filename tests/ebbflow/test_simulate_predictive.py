"""`ebbflow simulate` on a predictive scenario: both policies on the same scenario and seed, the
forecaster fed only the past of the trace, and τU reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ebbflow.cli import app
from ebbflow.sim.predictive import TraceHistory
from ebbflow.sim.trace import Trace, TraceError
from forecasting.policy import ForecastSnapshot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START = 1_400_000_000.0

# rows every 300 s: 1, 2, 3, ... arrivals per second
TRACE = Trace(
    start=START,
    offsets=tuple(300.0 * i for i in range(48)),
    rates=tuple(float(i + 1) for i in range(48)),
    end=48 * 300.0,
)


async def test_trace_history_gives_only_whole_steps_known_at_the_end() -> None:
    history = TraceHistory(TRACE)
    now = START + 10 * 300 + 120  # two minutes into the eleventh row
    series = await history.fetch(now - 3600, now, 300)
    # the eleventh row has begun but is not over: it is not history yet
    assert series.values.tolist() == [float(i) for i in range(0, 11)][1:]
    assert series.start + len(series) * series.step_seconds <= now
    made_at = ForecastSnapshot(series.start + len(series) * 300, 300, (1.0,), 0.9).made_at
    assert made_at == START + 10 * 300


async def test_a_lookback_off_the_step_grid_loses_no_step() -> None:
    # an hour of 300 s steps is 12 of them, wherever `now` falls in a step (as a range query)
    now = START + 30 * 300 + 120
    series = await TraceHistory(TRACE).fetch(now - 3600, now, 300)
    assert series.values.tolist() == [float(i) for i in range(19, 31)]


async def test_trace_history_averages_rows_into_longer_steps() -> None:
    series = await TraceHistory(TRACE).fetch(START, START + 3600, 900)
    # 900 s steps hold three rows each: (1 + 2 + 3) / 3, (4 + 5 + 6) / 3, ...
    np.testing.assert_allclose(series.values, [2.0, 5.0, 8.0, 11.0])


def test_history_is_cut_off_the_simulated_part() -> None:
    simulated = TRACE.after(3600)
    assert simulated.start == START + 3600
    assert simulated.rate_at(0) == 13.0  # the row from 3600 s on
    assert simulated.end == TRACE.end - 3600
    with pytest.raises(TraceError, match="must be shorter than the trace"):
        TRACE.after(TRACE.end)


def test_predictive_scenario_reports_both_policies_on_the_same_run() -> None:
    scenario = str(EXAMPLES / "scenarios" / "http-nyc-taxi.yaml")
    result = CliRunner().invoke(
        app, ["simulate", scenario, "--duration", "3h", "--seed", "3", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["policy"] == "predictive"
    assert data["reactive"]["policy"] == "reactive"
    assert data["seed"] == 3
    predictive, reactive = data["workloads"][0], data["reactive"]["workloads"][0]
    assert 0 <= predictive["tauU"] <= 100 and 0 <= reactive["tauU"] <= 100
    compared = data["comparison"]["workloads"][0]
    assert compared["name"] == "api"
    for key in ("sloViolationSeconds", "tauU", "replicaHours"):
        assert compared[key]["reactive"] == reactive[key]
        assert compared[key]["predictive"] == predictive[key]
    # the forecast only ever adds pods: never fewer replica-hours than reactive
    assert predictive["replicaHours"] >= reactive["replicaHours"]
    assert data["comparison"]["total"]["replicaHours"]["reactive"] == reactive["replicaHours"]


def test_table_shows_a_column_per_policy() -> None:
    scenario = str(EXAMPLES / "scenarios" / "http-nyc-taxi.yaml")
    result = CliRunner().invoke(app, ["simulate", scenario, "--duration", "1h"])
    assert result.exit_code == 0, result.output
    assert "api reactive" in result.output and "api predictive" in result.output
    assert "τU" in result.output
    # the node bill of both runs, as the JSON has it
    data = json.loads(
        CliRunner().invoke(app, ["simulate", scenario, "--duration", "1h", "-o", "json"]).output
    )
    assert "nodes reactive" in result.output and "nodes predictive" in result.output
    for nodes in (data["reactive"]["nodes"], data["nodes"]):
        assert f"${nodes['costPerHour']:.4f}" in result.output
    assert f"${data['nodes']['baseline']['costPerHour']:.4f}" in result.output
