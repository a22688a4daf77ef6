"""`ebbflow simulate`: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ebbflow.commands.common import Output, err, fail, out, print_json
from ebbflow.examples import DEFAULT_SCENARIO, bundled
from scaler.manifests import ManifestError


def simulate(
    scenario: Annotated[
        Path | None,
        typer.Argument(help="Scenario YAML (default: the bundled HTTP service on NYC taxi data)."),
    ] = None,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")] = None,
    duration: Annotated[
        str | None, typer.Option(help="Override the scenario's duration: 3600, 90m, 2d.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write the finance report and its result.json into this directory."),
    ] = None,
) -> None:
    """Replay a scenario's real traces against the real controllers, in virtual time.

    Reports per workload and in total: replica-hours, savings against a static deployment
    sized for the trace's peak, SLO violation seconds, max backlog, scale events and time
    spent at zero. The same scenario and seed give byte-identical JSON.
    """
    import asyncio

    from ebbflow.sim.compare import comparison_json, simulate_policies
    from ebbflow.sim.scenario import load_scenario
    from ebbflow.sim.scenario_base import parse_duration

    path = scenario or bundled(DEFAULT_SCENARIO)
    try:
        loaded = load_scenario(path)
    except ManifestError as exc:
        raise fail(str(exc)) from None
    if duration is not None:
        try:
            loaded.duration = parse_duration(duration)
        except ValueError as exc:
            raise fail(f"--duration: {exc}, got {duration!r}") from None
    if report is not None:  # the report's runs: the timeline and the counterfactual re-runs
        from ebbflow.commands.report import simulate_report

        simulate_report(loaded, seed, report, output)
        return
    show_progress = output is Output.table and out.is_terminal
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn(f"simulating {loaded.spec.name}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} simulated hours"),
            TimeRemainingColumn(),
            console=err,
        ) as bar:
            task = bar.add_task("sim", total=loaded.duration / 3600)

            def advance(done: float, total: float) -> None:
                bar.update(task, completed=done / 3600, total=total / 3600)

            result, reactive = asyncio.run(simulate_policies(loaded, seed, advance))
    else:
        result, reactive = asyncio.run(simulate_policies(loaded, seed))
    data = comparison_json(result, reactive)
    if output is Output.json:
        print_json(data)
        return
    title = f"{data['scenario']}: {data['durationSeconds'] / 86400:g} days, seed {data['seed']}"
    table = Table(title=title)
    table.add_column("")
    columns = [(w["name"], w) for w in data["workloads"]]
    if len(columns) > 1:
        columns.append(("total", data["total"]))
    if reactive is not None:  # predictive: each column twice, the reactive run first
        before = [(w["name"], w) for w in data["reactive"]["workloads"]]
        if len(before) > 1:
            before.append(("total", data["reactive"]["total"]))
        columns = [
            pair
            for (name, r), (_, p) in zip(before, columns, strict=True)
            for pair in ((f"{name} reactive", r), (f"{name} predictive", p))
        ]
    metrics: list[tuple[str, Any]] = [
        ("replica-hours", lambda w: f"{w['replicaHours']:.1f}"),
        ("static for peak, replica-hours", lambda w: f"{w['baseline']['replicaHours']:.1f}"),
        ("savings", lambda w: f"{w['savingsPercent']:.1f}%"),
        ("SLO violation seconds", lambda w: str(w["sloViolationSeconds"])),
        ("under-provisioned time (τU)", lambda w: f"{w['tauU']:.3f}%"),
        ("max backlog", lambda w: f"{w['maxBacklog']:.0f}"),
        ("scale events", lambda w: str(w["scaleEvents"])),
        ("seconds at zero", lambda w: str(w["secondsAtZero"])),
    ]
    out.print(_filled(table, columns, metrics))
    if data.get("nodes") is not None:
        out.print(_node_table(data))
    if data["controllerErrors"]:
        err.print(f"[yellow]controller errors: {data['controllerErrors']}[/yellow]")


def _node_table(data: dict[str, Any]) -> Table:
    """The node bill: one column per run (the reactive run first for a predictive scenario)."""
    runs = [("nodes", data["nodes"])]
    reactive = (data.get("reactive") or {}).get("nodes")
    if reactive is not None:
        runs = [("nodes reactive", reactive), ("nodes predictive", data["nodes"])]
    table = Table(title="node bill")
    table.add_column("")
    rows: list[tuple[str, Any]] = [
        ("node cost", lambda n: f"${n['cost']:.2f}"),
        ("per hour", lambda n: f"${n['costPerHour']:.4f}"),
        ("static on-demand for peak, per hour", lambda n: f"${n['baseline']['costPerHour']:.4f}"),
        ("savings", lambda n: f"{n['savingsPercent']:.1f}%"),
        ("node-hours (spot)", lambda n: f"{n['nodeHours']:.1f} ({n['spotNodeHours']:.1f})"),
        ("launches", lambda n: str(n["launches"])),
        ("peak nodes", lambda n: str(n["peakNodes"])),
        ("evictions per pod-day", lambda n: f"{n['disruption']['evictionsPerPodDay']:.2f}"),
    ]
    return _filled(table, runs, rows)


def _filled(table: Table, columns: list[tuple[str, Any]], rows: list[tuple[str, Any]]) -> Table:
    """`table` with a right-aligned column per (name, document) and a row per (label, show):
    each cell is show(document)."""
    for name, _ in columns:
        table.add_column(name, justify="right")
    for label, show in rows:
        table.add_row(label, *(show(doc) for _, doc in columns))
    return table
