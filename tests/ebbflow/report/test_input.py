"""The result file of `ebbflow simulate --report`: it round-trips, and bad files are named."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ebbflow.cli import app
from ebbflow.report.simulated import ReportInput, input_json, load_input
from tests.ebbflow.report.test_figures import two_team_timeline


def test_the_result_file_round_trips(tmp_path: Path) -> None:
    data = ReportInput("two teams", two_team_timeline(violations=60.0))
    path = tmp_path / "result.json"
    path.write_text(json.dumps(input_json(data)))
    loaded = load_input(path)
    assert loaded.timeline == data.timeline
    assert loaded.name == "two teams"


def test_a_file_that_is_not_a_result_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"scenario": "x"}')
    result = CliRunner().invoke(app, ["report", "--sim", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "other.json" in result.output and "ebbflow-report-input" in result.output


def test_report_needs_exactly_one_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "exactly one of --sim" in result.output
