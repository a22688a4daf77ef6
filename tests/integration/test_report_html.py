"""report.html in a real headless Chromium (Debian `chromium`), driven over the DevTools
protocol: no console errors, the charts rendered, the totals shown equal the CSV's, and a
screenshot kept (tests/artifacts/report.png, git-ignored) for people to look at."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbflow.cli import app
from ebbflow.report.browser import find_chromium, open_page, page_url
from ebbflow.report.formatting import usd

ROOT = Path(__file__).parents[2]
SCENARIO = ROOT / "examples" / "scenarios" / "gpu-inference-taxi.yaml"
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="needs Debian chromium (scripts/system-deps installs it)"
)

# what the page shows, read in the page itself
PROBE = """(() => {
  const text = (sel) => document.querySelector(sel)?.textContent.trim();
  const charts = [...document.querySelectorAll('svg.chart')].map((svg) => {
    const box = svg.getBoundingClientRect();
    const lines = [...svg.querySelectorAll('polyline.series')];
    return {id: svg.id, width: box.width, height: box.height, series: lines.length,
            drawn: lines.filter((l) => l.getTotalLength() > 0).length};
  });
  return {total: text('#total-cost'), teams: text('#teams-total'),
          namespaces: text('#namespaces-total'), charts,
          baselines: document.querySelectorAll('#baselines tbody tr').length};
})()"""


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(
        app,
        ["simulate", str(SCENARIO), "--duration", "6h", "--report", str(out), "-o", "json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["report"]
    assert {Path(f).name for f in summary["files"]} >= {
        "result.json",
        "report.html",
        "report.csv",
        "report.pdf",
    }
    return out


def test_the_report_renders_in_chromium_without_console_errors(report_dir: Path) -> None:
    page = asyncio.run(open_page(page_url(report_dir / "report.html"), png=True, evaluate=PROBE))
    assert page.console_errors == []
    shown = page.value
    charts = {c["id"]: c for c in shown["charts"]}
    assert set(charts) == {"chart-cost", "chart-replicas", "chart-nodes"}
    for chart in charts.values():
        assert chart["width"] > 300 and chart["height"] > 80, chart
        assert chart["series"] >= 1 and chart["drawn"] == chart["series"], chart
    # actual, static peak, on-demand only, reactive only, clairvoyant
    assert charts["chart-cost"]["series"] == 5 and shown["baselines"] == 5
    with (report_dir / "report.csv").open() as f:
        cents = sum(round(float(row["cost_usd"]) * 100) for row in csv.DictReader(f))
    assert cents > 0
    assert shown["total"] == shown["teams"] == shown["namespaces"] == usd(cents)
    assert page.png is not None and page.png.startswith(b"\x89PNG")
    shot = report_dir / "report.png"
    shot.write_bytes(page.png)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report.png")


def test_the_clairvoyant_bound_is_below_every_baseline_and_any_run_that_served_demand(
    report_dir: Path,
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--sim",
            str(report_dir / "result.json"),
            "--out",
            str(report_dir),
            "--no-pdf",
            "-o",
            "json",
        ],
    )
    summary = json.loads(result.stdout)
    figures = {b["key"]: b for b in summary["baselines"]}
    bound = figures.pop("clairvoyant")["cost"]
    assert set(figures) == {"static-peak", "on-demand-only", "reactive-only"}
    assert bound <= figures["static-peak"]["cost"]
    # a run may only undercut the bound by not serving all demand (SLO below 100%)
    figures["actual"] = {"cost": summary["totalCost"], "sloAttainment": summary["sloAttainment"]}
    for key, b in figures.items():
        assert bound <= b["cost"] or b["sloAttainment"] < 1.0, key
    if summary["totalCost"] < bound:  # and the page says so
        assert "less than the clairvoyant bound" in (report_dir / "report.html").read_text()


def test_the_pdf_is_the_printed_page(report_dir: Path) -> None:
    pdf = (report_dir / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 10_000


def test_console_errors_are_caught_when_a_page_has_them(tmp_path: Path) -> None:
    # the check above is only worth something if it can fail
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><script>console.error('broken chart');"
        "undefinedFunction();</script></body></html>"
    )
    page = asyncio.run(open_page(page_url(bad)))
    assert any("broken chart" in e for e in page.console_errors)
    assert any("undefinedFunction" in e for e in page.console_errors)
