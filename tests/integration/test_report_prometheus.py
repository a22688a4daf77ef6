"""A report built from a real Prometheus equals the simulation-sourced report of the same data.

The simulation's timeline is exported as the series a live cluster has (kube-state-metrics,
OpenCost's node price, the operator's desired replicas, the workload SLI rules), backfilled
with `promtool tsdb create-blocks-from openmetrics`, served by a real `prometheus`, and read
back by `ebbflow report --prometheus` through prometheus-api-client range queries.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbflow.cli import app
from ebbflow.report.openmetrics import openmetrics_text
from ebbflow.report.simulated import ReportInput, input_json
from ebbflow.sim.runner import simulate
from ebbflow.sim.scenario import load_scenario
from tests.integration.ports import free_port
from tests.integration.prometheus_server import _binary, _wait_ready

ROOT = Path(__file__).parents[2]
SCENARIO = ROOT / "examples" / "scenarios" / "gpu-inference-taxi.yaml"
POOLS = ROOT / "examples" / "provision" / "nodepools.yaml"


def _report(args: list[str]) -> dict:
    result = CliRunner().invoke(app, ["report", *args, "--no-pdf", "-o", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_a_report_from_prometheus_matches_the_simulation_sourced_one(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIO)
    scenario.duration = 6 * 3600
    result = asyncio.run(simulate(scenario, timeline_step=300))
    timeline = result.timeline
    assert timeline is not None and timeline.nodes
    # Prometheus drops blocks past its 15-day retention: move the data to recent days, by
    # whole days so that the CSV's days line up
    end = timeline.start + timeline.duration
    shift = math.floor((time.time() - end) / 86400) * 86400
    source = tmp_path / "series.om"
    source.write_text(openmetrics_text(timeline, shift))
    data = tmp_path / "data"
    subprocess.run(
        [_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                _binary("prometheus"),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, process, log)
        from_prometheus = _report(
            [
                "--prometheus",
                url,
                "--range",
                "6h",
                "--end",
                str(int(end + shift)),
                "--step",
                "5m",
                "--nodepools",
                str(POOLS),
                "--name",
                "same",
                "--out",
                str(tmp_path / "prom"),
            ]
        )
    finally:
        process.terminate()
        process.wait(timeout=10)

    sim_input = ReportInput(
        "same",
        timeline,
        tuple(
            p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in scenario.node_pools
        ),
    )
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps(input_json(sim_input)))
    from_simulation = _report(["--sim", str(result_file), "--out", str(tmp_path / "sim")])

    assert from_prometheus["source"] == "prometheus"
    assert from_prometheus["start"] == from_simulation["start"] + shift
    assert from_prometheus["totalCost"] == from_simulation["totalCost"] > 0
    assert from_prometheus["idleCost"] == from_simulation["idleCost"]
    assert from_prometheus["teams"] == from_simulation["teams"]
    assert from_prometheus["sloAttainment"] == pytest.approx(from_simulation["sloAttainment"])
    prom = {b["key"]: b for b in from_prometheus["baselines"]}
    sim = {b["key"]: b for b in from_simulation["baselines"]}
    for key in ("static-peak", "clairvoyant", "on-demand-only"):
        assert prom[key]["cost"] == sim[key]["cost"], key
        assert prom[key]["savingsPercent"] == sim[key]["savingsPercent"], key
    # the per-day CSV finance imports: the same rows, days moved by the shift
    prom_rows = _rows(tmp_path / "prom" / "report.csv")
    sim_rows = _rows(tmp_path / "sim" / "report.csv")
    assert len(prom_rows) == len(sim_rows) > 0
    for p, s in zip(prom_rows, sim_rows, strict=True):
        assert {k: v for k, v in p.items() if k != "date"} == {
            k: v for k, v in s.items() if k != "date"
        }
