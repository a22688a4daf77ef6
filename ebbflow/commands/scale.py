"""`ebbflow scale explain` and `ebbflow scale replay`: the decision engine, explained."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ebbflow.commands.common import Output, fail, out, print_json
from ebbflow.examples import bundled
from ebbflow.inputs import InputError, load_history, load_metrics, load_series
from scaler.api import ScaledObject
from scaler.decision import Decision, TriggerReading, decide
from scaler.manifests import ManifestError, load_scaled_object
from scaler.replay import ReplayStep, replay
from scaler.triggers import trigger_specs

app = typer.Typer(help="Scaling decisions of a ScaledObject, explained.", no_args_is_help=True)


def _load_so(path: Path) -> ScaledObject:
    try:
        return load_scaled_object(path)
    except ManifestError as exc:
        raise fail(str(exc)) from None


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "desiredReplicas": decision.desired_replicas,
        "active": decision.active,
        "reason": decision.reason,
        "fallback": decision.fallback,
        "paused": decision.paused,
        "triggers": [
            {
                "name": t.name,
                "value": t.value,
                "target": t.target,
                "activationTarget": t.activation_target,
                "active": t.active,
                "replicas": t.replicas,
                "error": t.error,
            }
            for t in decision.triggers
        ],
    }


@app.command()
def explain(
    file: Annotated[Path, typer.Option("-f", "--file", help="The ScaledObject YAML.")],
    current: Annotated[int, typer.Option(min=0, help="Current replica count of the target.")],
    metrics: Annotated[
        Path,
        typer.Option(help='JSON: trigger name (or index) -> number, or {"error": "..."}.'),
    ],
    history: Annotated[
        Path | None,
        typer.Option(help="JSON history: recommendations, scaleEvents, failures (README)."),
    ] = None,
    last_active: Annotated[
        float | None,
        typer.Option(min=0, help="Seconds since a trigger was last active (default: long ago)."),
    ] = None,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """One scaling decision at one instant, with the reason for each step.

    Without --history the decision has no past: cooldown counts as elapsed and there is
    no stabilization history.
    """
    so = _load_so(file)
    specs = trigger_specs(so)
    try:
        values = load_metrics(metrics, [name for name, _ in specs])
        state = load_history(history, last_active)
    except InputError as exc:
        raise fail(str(exc)) from None
    readings = [
        TriggerReading(name, spec, value=v)
        if isinstance(v := values[name], float)
        else TriggerReading(name, spec, error=v)
        for name, spec in specs
    ]
    decision = decide(so, current, readings, state, 0.0)
    if output is Output.json:
        print_json(_decision_json(decision))
        return
    table = Table(title=f"{so.metadata.namespace}/{so.metadata.name}")
    for column in ("trigger", "value", "target", "activation", "active", "replicas"):
        table.add_column(column)
    for t in decision.triggers:
        value = f"{t.value:g}" if t.value is not None else f"[red]{t.error}[/red]"
        table.add_row(
            t.name,
            value,
            f"{t.target:g}",
            f"{t.activation_target:g}",
            "yes" if t.active else "no",
            str(t.replicas),
        )
    out.print(table)
    out.print(f"desired replicas: [bold]{decision.desired_replicas}[/bold] (current {current})")
    for reason in decision.reasons:
        out.print(f"  - {reason}", highlight=False, soft_wrap=True)


def _step_json(step: ReplayStep) -> dict[str, Any]:
    d = step.decision
    return {
        "time": step.time,
        "values": {t.name: t.value for t in d.triggers},
        "currentReplicas": step.current,
        "desiredReplicas": d.desired_replicas,
        "active": d.active,
        "fallback": d.fallback,
        "reason": d.reason,
    }


@app.command(name="replay")
def replay_command(
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="The ScaledObject YAML (default: bundled).")
    ] = None,
    series: Annotated[
        Path | None,
        typer.Option(help="CSV: a `time` column (seconds or ISO-8601), one column per trigger."),
    ] = None,
    initial: Annotated[int, typer.Option(min=0, help="Replicas before the first row.")] = 0,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """Decisions over a metric series, row by row (history, cooldown, behavior, stabilization).

    With no -f/--series it replays the bundled example: an API scaled on its request rate,
    a day of real AWS ELB traffic.
    """
    if (file is None) != (series is None):
        raise fail("give both -f/--file and --series, or neither for the bundled example")
    if file is None or series is None:
        file, series = bundled("scale/api-requests.yaml"), bundled("scale/api-requests.csv")
    so = _load_so(file)
    specs = trigger_specs(so)
    try:
        rows = load_series(series, [name for name, _ in specs])
    except InputError as exc:
        raise fail(str(exc)) from None
    steps = replay(so, specs, rows, initial)
    if output is Output.json:
        print_json({"scaledObject": so.metadata.name, "steps": [_step_json(s) for s in steps]})
        return
    table = Table(title=f"replay of {so.metadata.name} over {series.name}")
    table.add_column("time (s)", justify="right")
    for name, _ in specs:
        table.add_column(name, justify="right")
    table.add_column("replicas", justify="right")
    table.add_column("active")
    table.add_column("why")
    for step in steps:
        d = step.decision
        values = [
            f"{t.value:g}" if t.value is not None else "[red]error[/red]"
            for t in d.triggers[: len(specs)]
        ]
        change = (
            f"{step.current} -> {d.desired_replicas}"
            if d.desired_replicas != step.current
            else str(d.desired_replicas)
        )
        table.add_row(
            f"{step.time:g}",
            *values,
            change,
            "yes" if d.active else "no",
            d.reasons[-1] if d.reasons else "",
        )
    out.print(table)
    replica_seconds = sum(
        s.decision.desired_replicas * (n.time - s.time) for s, n in itertools.pairwise(steps)
    )
    changes = sum(1 for s in steps if s.decision.desired_replicas != s.current)
    out.print(
        f"{len(steps)} polls, {changes} scale changes, {replica_seconds / 3600:.1f} replica-hours"
    )
