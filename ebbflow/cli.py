"""The `ebbflow` command line. JSON output (`-o json`) is a stable contract (see README)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebbflow.commands import forecast, scale, scalers, sim
from ebbflow.commands.common import err, out
from ebbflow.commands.operator import operator_command
from ebbflow.commands.simulate import simulate
from scaler.manifests import load_documents

app = typer.Typer(
    help="ebbflow: event-driven autoscaling for Kubernetes (KEDA- and Karpenter-compatible).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(scale.app, name="scale")
app.add_typer(forecast.app, name="forecast")
app.add_typer(sim.app, name="sim")
app.add_typer(scalers.app, name="scalers")
app.command()(simulate)
operator_command(app)


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


def main() -> None:  # pragma: no cover - console entry
    app()
