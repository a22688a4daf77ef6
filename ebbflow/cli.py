"""The `ebbflow` command line. JSON output (`-o json`) is a stable contract (see README)."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ebbflow.examples import DEFAULT_SCENARIO, bundled
from ebbflow.inputs import InputError, load_history, load_metrics, load_series
from scaler.api import ScaledObject
from scaler.decision import Decision, TriggerReading, decide
from scaler.manifests import ManifestError, load_documents, load_scaled_object
from scaler.replay import ReplayStep, replay
from scaler.triggers import trigger_specs

app = typer.Typer(
    help="ebbflow: event-driven autoscaling for Kubernetes (KEDA- and Karpenter-compatible).",
    no_args_is_help=True,
    add_completion=False,
)
scale_app = typer.Typer(
    help="Scaling decisions of a ScaledObject, explained.", no_args_is_help=True
)
app.add_typer(scale_app, name="scale")
forecast_app = typer.Typer(help="Forecasts of demand, and how good they are.", no_args_is_help=True)
app.add_typer(forecast_app, name="forecast")
sim_app = typer.Typer(help="A local Kubernetes API for trying ebbflow.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")
scalers_app = typer.Typer(
    help="Live metric sources: probe what triggers read.", no_args_is_help=True
)
app.add_typer(scalers_app, name="scalers")

out = Console()
err = Console(stderr=True)


class Output(StrEnum):
    table = "table"
    json = "json"


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="YAML files (multi-document allowed).")],
) -> None:
    """Validate manifests: ebbflow.io and keda.sh ScaledObject, ScaledJob, TriggerAuthentication.

    Prints OK per object, or each error as `file:doc N: field.path: message`. Exits 1 on any
    error; warnings (metadata a trigger does not use) do not fail.
    """
    failed = False
    for path in files:
        for doc in load_documents(path):
            for issue in doc.issues:
                colour = "red" if issue.severity == "error" else "yellow"
                err.print(
                    f"[{colour}]{issue.severity}[/{colour}] {issue}",
                    highlight=False,
                    soft_wrap=True,
                )
            if doc.ok and doc.obj is not None:
                out.print(
                    f"OK {path}:doc {doc.document}: {doc.kind}/{doc.name}",
                    highlight=False,
                    soft_wrap=True,
                )
            failed |= not doc.ok
    if failed:
        raise typer.Exit(code=1)


def _load_so(path: Path) -> ScaledObject:
    try:
        return load_scaled_object(path)
    except ManifestError as exc:
        raise _fail(str(exc)) from None


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


@scale_app.command()
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
        raise _fail(str(exc)) from None
    readings = [
        TriggerReading(name, spec, value=v)
        if isinstance(v := values[name], float)
        else TriggerReading(name, spec, error=v)
        for name, spec in specs
    ]
    decision = decide(so, current, readings, state, 0.0)
    if output is Output.json:
        _print_json(_decision_json(decision))
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


@scale_app.command(name="replay")
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
        raise _fail("give both -f/--file and --series, or neither for the bundled example")
    if file is None or series is None:
        file, series = bundled("scale/api-requests.yaml"), bundled("scale/api-requests.csv")
    so = _load_so(file)
    specs = trigger_specs(so)
    try:
        rows = load_series(series, [name for name, _ in specs])
    except InputError as exc:
        raise _fail(str(exc)) from None
    steps = replay(so, specs, rows, initial)
    if output is Output.json:
        _print_json({"scaledObject": so.metadata.name, "steps": [_step_json(s) for s in steps]})
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


@app.command()
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
) -> None:
    """Replay a scenario's real traces against the real controllers, in virtual time.

    Reports per workload and in total: replica-hours, savings against a static deployment
    sized for the trace's peak, SLO violation seconds, max backlog, scale events and time
    spent at zero. The same scenario and seed give byte-identical JSON.
    """
    import asyncio

    from ebbflow.sim.runner import result_json
    from ebbflow.sim.runner import simulate as run_simulation
    from ebbflow.sim.scenario import load_scenario, parse_duration

    path = scenario or bundled(DEFAULT_SCENARIO)
    try:
        loaded = load_scenario(path)
    except ManifestError as exc:
        raise _fail(str(exc)) from None
    if duration is not None:
        try:
            loaded.duration = parse_duration(duration)
        except ValueError as exc:
            raise _fail(f"--duration: {exc}, got {duration!r}") from None
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
            result = asyncio.run(
                run_simulation(
                    loaded, seed, lambda done, _total: bar.update(task, completed=done / 3600)
                )
            )
    else:
        result = asyncio.run(run_simulation(loaded, seed))
    data = result_json(result)
    if output is Output.json:
        _print_json(data)
        return
    title = f"{data['scenario']}: {data['durationSeconds'] / 86400:g} days, seed {data['seed']}"
    table = Table(title=title)
    table.add_column("")
    columns = [(w["name"], w) for w in data["workloads"]]
    if len(columns) > 1:
        columns.append(("total", data["total"]))
    for name, _ in columns:
        table.add_column(name, justify="right")
    metrics: list[tuple[str, Any]] = [
        ("replica-hours", lambda w: f"{w['replicaHours']:.1f}"),
        ("static for peak, replica-hours", lambda w: f"{w['baseline']['replicaHours']:.1f}"),
        ("savings", lambda w: f"{w['savingsPercent']:.1f}%"),
        ("SLO violation seconds", lambda w: str(w["sloViolationSeconds"])),
        ("max backlog", lambda w: f"{w['maxBacklog']:.0f}"),
        ("scale events", lambda w: str(w["scaleEvents"])),
        ("seconds at zero", lambda w: str(w["secondsAtZero"])),
    ]
    for label, show in metrics:
        table.add_row(label, *(show(w) for _, w in columns))
    out.print(table)
    if data["controllerErrors"]:
        err.print(f"[yellow]controller errors: {data['controllerErrors']}[/yellow]")


@forecast_app.command()
def backtest(
    trace: Annotated[Path, typer.Option(help="CSV with timestamp,value or ts,value.")],
    column: Annotated[str, typer.Option(help="The value column.")] = "value",
    horizon: Annotated[
        int | None, typer.Option(min=1, help="Steps ahead scored (default: one hour of steps).")
    ] = None,
    model: Annotated[
        str,
        typer.Option(help="auto, seasonal_naive, holt_winters, stl, mstl or sarimax_fourier."),
    ] = "auto",
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """Forecast accuracy on a trace: rolling origins, against seasonal-naive on the same splits.

    Reports MASE and sMAPE for the model and the baseline, and the SPEC RG elasticity
    metrics of the forecast used as supply (thetaU/thetaO, tauU/tauO). `auto` detects the
    seasons and picks the model by validation on the history before the first origin.
    """
    from forecasting.backtest import run_backtest
    from forecasting.errors import ForecastError

    def run(progress: Any = None) -> dict[str, Any]:
        try:
            return run_backtest(trace, column, horizon, model, progress)
        except ForecastError as exc:
            raise _fail(str(exc)) from None

    if output is Output.table and out.is_terminal:
        from rich.progress import BarColumn, Progress, TextColumn

        with Progress(
            TextColumn(f"backtesting {trace.name}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} fits"),
            console=err,
        ) as bar:
            task = bar.add_task("fits", total=None)
            result = run(lambda done, total: bar.update(task, completed=done, total=total))
    else:
        result = run()
    if output is Output.json:
        _print_json(result)
        return
    table = Table(
        title=f"{trace.name}: period {result['period'] or 'none'}, "
        f"horizon {result['horizonSteps']} steps"
    )
    for column_name in ("model", "MASE", "sMAPE %", "thetaU %", "thetaO %", "tauU %", "tauO %"):
        table.add_column(column_name, justify="right")

    def shown(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    m = result["metrics"]
    table.add_row(
        result["model"],
        shown(m["mase"]),
        shown(m["smape"]),
        shown(m["thetaU"]),
        shown(m["thetaO"]),
        shown(m["tauU"]),
        shown(m["tauO"]),
    )
    b = result["baseline"]
    table.add_row(b["model"], shown(b["mase"]), shown(b["smape"]), "", "", "", "")
    out.print(table)
    out.print(f"fit seconds: {result['fitSeconds']:.1f}")


@sim_app.command()
def serve(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 picks a free one).")] = 6443,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    kubeconfig_out: Annotated[
        Path | None, typer.Option(help="Write a kubeconfig for kubectl and the operator here.")
    ] = None,
) -> None:
    """Serve the Kubernetes REST API over an in-memory cluster until Ctrl-C.

    kubectl (`kubectl --kubeconfig F apply -f ...`) and `ebbflow operator --kubeconfig F`
    talk to it as to a real API server. Nothing is kept after it stops.
    """
    import asyncio
    import time

    from kube.apiserver.serve import serve as serve_api
    from kube.apiserver.serve import write_kubeconfig
    from kube.memory import MemoryCluster

    async def run() -> None:
        running = await serve_api(MemoryCluster(now=time.time), host, port)
        try:
            err.print(f"Kubernetes API at {running.url}", highlight=False)
            if kubeconfig_out is not None:
                write_kubeconfig(kubeconfig_out, running.url)
                err.print(f"kubeconfig written to {kubeconfig_out}", highlight=False)
            await asyncio.Event().wait()
        finally:
            await running.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@scalers_app.command()
def probe(
    files: Annotated[
        list[Path],
        typer.Option("-f", "--file", help="YAML with ScaledObjects (and their auth objects)."),
    ],
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per read.")] = 3.0,
) -> None:
    """Read every trigger now: value, target, activity and latency, or the error.

    TriggerAuthentications, Secrets, ConfigMaps and Deployments found in the same files
    resolve authenticationRef and *FromEnv; the process environment is the last resort
    for *FromEnv. Secrets never appear in the output. Exits 1 when any read fails.
    """
    import asyncio

    from ebbflow.probe import probe_all

    docs = [d for path in files for d in load_documents(path)]
    problems = [str(i) for d in docs for i in d.issues if i.severity == "error"]
    if problems:
        raise _fail("\n".join(problems))
    objects = [d.obj for d in docs if isinstance(d.obj, ScaledObject)]
    if not objects:
        raise _fail(f"no ScaledObject in {', '.join(map(str, files))}")
    raws = [d.raw for d in docs if d.raw is not None]
    results = asyncio.run(probe_all(objects, raws, timeout))
    if output is Output.json:
        _print_json({"results": results})
    else:
        table = Table(title="trigger probe")
        for column in ("scaledObject", "trigger", "type", "value", "target", "active", "ms"):
            table.add_column(column)
        for r in results:
            value = f"{r['value']:g}" if r["value"] is not None else f"[red]{r['error']}[/red]"
            table.add_row(
                r["scaledObject"],
                r["trigger"],
                r["type"],
                value,
                f"{r['target']:g}",
                "yes" if r["active"] else "no",
                f"{r['latencyMs']:.1f}",
            )
        out.print(table)
    if any(r["error"] for r in results):
        raise typer.Exit(code=1)


def _settings_help() -> str:
    from ebbflow.settings import OperatorSettings

    lines = []
    for name, info in OperatorSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = "" if info.default_factory else f" (default {info.default!r})"
        lines.append(f"{flag}: {info.description or name}{default}; env EBBFLOW_{name.upper()}")
    return "\n\n".join(lines)


def parse_settings_flags(args: list[str]) -> dict[str, str]:
    """`--lease-duration 20` / `--shards=4` -> {"lease_duration": "20", "shards": "4"}."""
    from ebbflow.settings import OperatorSettings

    values: dict[str, str] = {}
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if not flag.startswith("--"):
            raise ValueError(f"unexpected argument {flag!r}")
        name, _, value = flag[2:].partition("=")
        field = name.replace("-", "_")
        if field not in OperatorSettings.model_fields:
            raise ValueError(f"unknown option --{name}; see `ebbflow operator --help`")
        if not value:
            if not rest:
                raise ValueError(f"--{name} needs a value")
            value = rest.pop(0)
        values[field] = value
    return values


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_settings_help(),
)
def operator(
    ctx: typer.Context,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG, else in-cluster).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context.")] = None,
) -> None:
    """Run the autoscaler against a Kubernetes cluster until SIGTERM or SIGINT.

    Every setting below is also an EBBFLOW_* environment variable; flags win.
    """
    import asyncio

    from pydantic import ValidationError

    from ebbflow.operator.main import run_operator
    from ebbflow.settings import OperatorSettings

    try:
        settings = OperatorSettings(**parse_settings_flags(list(ctx.args)))  # type: ignore[arg-type]
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            messages = [
                f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                if e["loc"]
                else e["msg"]
                for e in exc.errors()
            ]
            raise _fail("; ".join(messages)) from None
        raise _fail(str(exc)) from None
    asyncio.run(run_operator(settings, str(kubeconfig) if kubeconfig else None, context))


def main() -> None:  # pragma: no cover - console entry
    app()
