"""The report's figures: totals that match the CSV, savings as printed, the clairvoyant bound
below everything, and savings bought with SLO violations called out."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import yaml

from ebbflow.report.baselines import Baseline
from ebbflow.report.build import templates_of
from ebbflow.report.csvfile import render_csv
from ebbflow.report.figures import Report, build_report, savings_percent
from ebbflow.report.formatting import usd
from ebbflow.report.html import render_html
from ebbflow.sim.timeline import Amounts, NodeInfo, Sample, Timeline, WorkloadInfo, WorkloadState
from provisioner.catalog import load_catalog

GIB = 1024**3
POOLS = Path(__file__).parents[3] / "examples" / "provision" / "nodepools.yaml"
DAY0 = 1_404_172_800.0  # 2014-07-01 00:00 UTC


def two_team_timeline(violations: float = 0.0) -> Timeline:
    """Two days at a 1-hour step: `web` (team red) 2 pods by day and 1 by night, `batch` (team
    blue) 1 pod, sharing one spot m5.xlarge; demand needs 1 pod of each."""
    web = WorkloadInfo("web", "shop", {"team": "red"}, Amounts(1000, 2 * GIB), 10.0)
    batch = WorkloadInfo("batch", "jobs", {"team": "blue"}, Amounts(500, 4 * GIB), 5.0)
    n1 = NodeInfo(
        "n1", "general-purpose", "m5.xlarge", "spot", "us-east-1a", 0.08, Amounts(3920, 14 * GIB)
    )
    samples = []
    for h in range(48):
        day = 8 <= h % 24 < 20
        pods = 2 if day else 1
        states = {
            "web": WorkloadState(pods, pods, 0, pods, 9.0 if day else 4.0, violations * h / 48),
            "batch": WorkloadState(1, 1, 0, 1, 2.0, 0.0),
        }
        held = {"n1": {"web": web.requests.times(pods), "batch": batch.requests}}
        samples.append(Sample(h * 3600.0, states, held))
    return Timeline(
        DAY0,
        3600.0,
        48 * 3600.0,
        (web, batch),
        {"n1": n1},
        tuple(samples),
        slo_seconds={"web": 172800.0, "batch": 172800.0},
        slo_violations={"web": violations, "batch": 0.0},
    )


def build(t: Timeline, reruns: tuple[Baseline, ...] = ()) -> Report:
    pools = [d for d in yaml.safe_load_all(POOLS.read_text()) if d and d.get("kind") == "NodePool"]
    return build_report(
        "test", t, templates_of(pools), load_catalog().instance_types, "team", reruns
    )


def test_the_csv_rows_are_per_day_team_and_namespace_and_add_up_to_the_total_shown():
    report = build(two_team_timeline())
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert {(r["date"], r["team"]) for r in rows} == {
        (d, t) for d in ("2014-07-01", "2014-07-02") for t in ("red", "blue", "(idle capacity)")
    }
    csv_cents = sum(round(float(r["cost_usd"]) * 100) for r in rows)
    html = render_html(report)
    shown = re.search(r'id="total-cost">([^<]+)<', html)
    assert shown is not None and shown.group(1) == usd(csv_cents)
    teams_total = re.search(r'id="teams-total">([^<]+)<', html)
    assert teams_total is not None and teams_total.group(1) == usd(csv_cents)
    # n1 at $0.08/h for 48 h = $3.84 in all
    assert csv_cents == 384


def test_each_team_pays_its_dominant_share_of_the_shared_node():
    report = build(two_team_timeline())
    by_team = {t.name: t.cents for t in report.teams}
    # alloc 3920m / 14 GiB. web pod: max(1000/3920, 2/14) = 0.2551; batch: max(500/3920, 4/14)
    # = 0.2857. Per hour at $0.08: web 0.02041 (x2 by day), batch 0.02286.
    # web: 24 day-hours x 0.04082 + 24 night-hours x 0.02041 = 1.4694 -> two days of cents
    web_day = 12 * 2 * 0.08 * 1000 / 3920 + 12 * 0.08 * 1000 / 3920
    batch_day = 24 * 0.08 * 4 / 14
    assert by_team["red"] == 2 * round(web_day * 100)
    assert by_team["blue"] == 2 * round(batch_day * 100)
    assert by_team["(idle capacity)"] == 384 - by_team["red"] - by_team["blue"]


def test_savings_are_one_minus_cost_over_baseline_exactly_as_printed():
    report = build(two_team_timeline())
    html = render_html(report)
    cells = {}
    for chunk in html.split('<tr data-baseline="')[1:]:
        key = chunk.split('"')[0]
        cost = re.search(r'class="num cost">([^<]+)<', chunk)
        saving = re.search(r'class="num savings">([^<]*)<', chunk)
        assert cost is not None and saving is not None
        cells[key] = (cost.group(1), saving.group(1))
    assert set(cells) >= {"actual", "static-peak", "on-demand-only", "clairvoyant"}
    actual = _money_text(cells.pop("actual")[0])
    for key, (cost, saving) in cells.items():
        if key == "clairvoyant":
            continue
        printed = float(saving.rstrip("%"))
        assert printed == round(100 * (1 - actual / _money_text(cost)), 1), key


def test_the_clairvoyant_bound_is_below_every_other_figure():
    report = build(two_team_timeline())
    bound = next(b for b in report.baselines if b.key == "clairvoyant")
    assert 0 < bound.cents <= report.total_cents
    for b in report.baselines:
        assert bound.cents <= b.cents, b.key


def test_a_saving_bought_with_slo_violations_is_reported_as_such():
    report = build(two_team_timeline(violations=3600.0))  # web broke its SLO for an hour
    static = next(b for b in report.baselines if b.key == "static-peak")
    assert static.slo_attainment == 1.0
    assert report.slo_attainment == pytest.approx(1 - 3600 / 345600)
    assert static.bought_with_violations
    assert "bought with SLO violations" in render_html(report)
    clean = build(two_team_timeline())
    assert not any(b.bought_with_violations for b in clean.baselines)


def test_savings_percent_is_computed_from_cents():
    assert savings_percent(2305, 5050) == 54.4  # 1 - 23.05 / 50.50 = 0.54356
    assert savings_percent(100, 0) is None
    assert usd(123456789) == "$1,234,567.89"


def _money_text(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))
