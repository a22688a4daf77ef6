"""`ebbflow report`: the finance report, from a simulation's result file or from Prometheus."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ebbflow.commands.common import Output, err, fail, out, print_json

if TYPE_CHECKING:
    from ebbflow.report.figures import Report


@contextmanager
def progress_bar(label: str, show: bool) -> Iterator[Callable[[float, float], None] | None]:
    """A progress callback `(done, total)` drawing a bar on stderr, or None when hidden."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=err
    ) as bar:
        task = bar.add_task(label, total=1.0)

        def update(done: float, total: float) -> None:
            bar.update(task, completed=done / total if total else 1.0)

        yield update


def publish(report: Report, out_dir: Path, output: Output, pdf: bool, screenshot: bool) -> None:
    """Write the report's files and print its summary."""
    from ebbflow.report.build import summary_json
    from ebbflow.report.formatting import attainment, percent, period, usd
    from ebbflow.report.output import write_report

    written = write_report(report, out_dir, pdf=pdf, png=screenshot)
    for warning in written.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    if output is Output.json:
        print_json(summary_json(report, written.files))
        return
    from rich.table import Table

    table = Table(title=f"{report.name}: {period(report.start, report.end)}")
    for column in ("", "cost", "saving vs it", "SLO attainment"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row(
        "ebbflow (actual)", usd(report.total_cents), "", attainment(report.slo_attainment)
    )
    for b in report.baselines:
        table.add_row(
            b.title, usd(b.cents), percent(b.savings_percent), attainment(b.slo_attainment)
        )
    out.print(table)
    for f in written.files:
        out.print(f"wrote {f}", highlight=False, soft_wrap=True)


def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for report.html/csv/pdf.")],
    sim: Annotated[
        Path | None,
        typer.Option("--sim", help="A result file written by `ebbflow simulate --report DIR`."),
    ] = None,
    prometheus: Annotated[
        str | None, typer.Option("--prometheus", help="Prometheus base URL of a live cluster.")
    ] = None,
    range_: Annotated[
        str, typer.Option("--range", help="With --prometheus: how far back from --end (7d).")
    ] = "7d",
    end: Annotated[
        str | None,
        typer.Option(help="With --prometheus: end of the period (ISO-8601 or unix seconds; now)."),
    ] = None,
    step: Annotated[str, typer.Option(help="With --prometheus: the sampling step.")] = "5m",
    nodepools: Annotated[
        Path | None,
        typer.Option(help="With --prometheus: the cluster's NodePools, for the baselines."),
    ] = None,
    catalog: Annotated[
        Path | None, typer.Option(help="Instance catalog CSV (default: packaged AWS us-east-1).")
    ] = None,
    team_label: Annotated[str, typer.Option(help="The label that names a team.")] = "team",
    name: Annotated[str | None, typer.Option(help="The report's title (default: source).")] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Print report.pdf.")] = True,
    screenshot: Annotated[
        bool, typer.Option(help="Also write report.png, a screenshot of the page.")
    ] = False,
    export_openmetrics: Annotated[
        Path | None,
        typer.Option(help="With --sim: also write the timeline as OpenMetrics (for promtool)."),
    ] = None,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """A cost-savings report for finance: cost per team and day, savings against static peak,
    on-demand-only, reactive-only and a clairvoyant lower bound, with SLO attainment.

    Writes report.html (self-contained), report.csv (per day, team and namespace) and
    report.pdf (headless Chromium).
    """
    from ebbflow.report.build import report_from_input, templates_of
    from ebbflow.report.figures import build_report
    from ebbflow.report.simulated import InputError, ReportInput, load_input
    from ebbflow.sim.scenario_base import parse_duration

    if (sim is None) == (prometheus is None):
        raise fail("give exactly one of --sim RESULT.json or --prometheus URL")
    show = output is Output.table and err.is_terminal
    if sim is not None:
        try:
            data = load_input(sim)
        except InputError as exc:
            raise fail(str(exc)) from None
        if name:
            data = ReportInput(
                name,
                data.timeline,
                data.node_pools,
                data.catalog,
                data.reruns,
                data.simulation,
                data.notes,
            )
        if catalog is not None:
            data = ReportInput(
                data.name,
                data.timeline,
                data.node_pools,
                str(catalog),
                data.reruns,
                data.simulation,
                data.notes,
            )
        if export_openmetrics is not None:
            from ebbflow.report.openmetrics import openmetrics_text

            export_openmetrics.write_text(openmetrics_text(data.timeline))
        with progress_bar("clairvoyant bound", show) as bar:
            result = report_from_input(data, team_label, bar)
        publish(result, out_dir, output, pdf, screenshot)
        return
    assert prometheus is not None
    try:
        seconds = parse_duration(range_)
        step_seconds = parse_duration(step)
    except ValueError as exc:
        raise fail(f"--range/--step: {exc}") from None
    if step_seconds <= 0 or seconds < step_seconds:
        raise fail(f"--range must be at least one --step, got {range_} and {step}")
    stop = _end(end)
    from ebbflow.report.prometheus import (
        PrometheusSourceError,
        http_query,
        timeline_from_prometheus,
    )
    from provisioner.catalog import load_catalog

    pools: list[dict[str, object]] = []
    if nodepools is not None:
        import yaml

        try:
            docs = list(yaml.safe_load_all(nodepools.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            raise fail(f"{nodepools}: cannot read: {exc}") from None
        pools = [d for d in docs if isinstance(d, dict) and d.get("kind") == "NodePool"]
    try:
        with progress_bar("querying Prometheus", show) as bar:
            timeline = timeline_from_prometheus(
                http_query(prometheus), stop - seconds, stop, step_seconds, bar
            )
        with progress_bar("clairvoyant bound", show) as bar:
            result = build_report(
                name or f"cluster at {prometheus}",
                timeline,
                templates_of(pools),
                load_catalog(catalog).instance_types,
                team_label,
                notes=()
                if pools
                else (
                    "No --nodepools given: baselines pack onto any on-demand type of the catalog.",
                ),
                progress=bar,
            )
    except PrometheusSourceError as exc:
        raise fail(str(exc)) from None
    publish(result, out_dir, output, pdf, screenshot)


def _end(value: str | None) -> float:
    if value is None:
        return float(int(time.time()))
    try:
        return float(value)
    except ValueError:
        pass
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--end: expected ISO-8601 or unix seconds, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def simulate_report(scenario: object, seed: int | None, out_dir: Path, output: Output) -> None:
    """`ebbflow simulate --report DIR`: run with a timeline and the re-runs, write
    DIR/result.json (the input of `ebbflow report --sim`) and the report."""
    import asyncio
    import json

    from ebbflow.report.build import report_from_input
    from ebbflow.report.simulated import input_json, simulate_for_report

    show = output is Output.table and err.is_terminal
    with progress_bar("simulating", show) as bar:

        def phase(what: str, done: float, total: float) -> None:
            if bar is not None:
                bar(done, total)

        data, _ = asyncio.run(simulate_for_report(scenario, seed, phase=phase))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").write_text(json.dumps(input_json(data)) + "\n")
    with progress_bar("clairvoyant bound", show) as bar:
        result = report_from_input(data, progress=bar)
    if output is Output.json:
        from ebbflow.report.build import summary_json
        from ebbflow.report.output import write_report

        written = write_report(result, out_dir)
        for warning in written.warnings:
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
        files = [out_dir / "result.json", *written.files]
        print_json({**(data.simulation or {}), "report": summary_json(result, files)})
        return
    publish(result, out_dir, output, pdf=True, screenshot=False)
    out.print(f"wrote {out_dir / 'result.json'}", highlight=False, soft_wrap=True)
