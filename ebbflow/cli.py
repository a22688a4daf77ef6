"""The `ebbflow` command line. JSON output (`-o json`) is a stable contract (see README)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ebbflow.commands import crds, forecast, provision, scale, scalers, sim
from ebbflow.commands.common import err, out
from ebbflow.commands.interceptor import interceptor
from ebbflow.commands.operator import operator_command
from ebbflow.commands.report import report
from ebbflow.commands.simulate import simulate
from provisioner.api import MANIFEST_KINDS
from scaler.http_api import HTTP_API_VERSIONS, HTTPScaledObject
from scaler.manifests import load_documents, register_kind

for _versions, _kind, _model in MANIFEST_KINDS:  # Karpenter kinds join `validate`
    register_kind(_versions, _kind, _model)
register_kind(HTTP_API_VERSIONS, "HTTPScaledObject", HTTPScaledObject)  # the HTTP add-on's

app = typer.Typer(
    help="ebbflow: event-driven autoscaling for Kubernetes (KEDA- and Karpenter-compatible).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(scale.app, name="scale")
app.add_typer(forecast.app, name="forecast")
app.add_typer(crds.crds_app, name="crds")
app.add_typer(crds.chart_app, name="chart")
app.add_typer(sim.app, name="sim")
app.add_typer(scalers.app, name="scalers")
app.add_typer(provision.app, name="provision")
app.command()(simulate)
app.command()(report)
operator_command(app)
app.command(name="interceptor")(interceptor)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="YAML files (multi-document allowed).")],
) -> None:
    """Validate manifests: KEDA (ScaledObject, ScaledJob, ...) and Karpenter (NodePool, ...) kinds.

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
