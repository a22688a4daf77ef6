"""`ebbflow crds generate` and `ebbflow chart generate`: CRDs and chart files from the models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ebbflow.commands.common import err

crds_app = typer.Typer(help="CustomResourceDefinitions generated from the models.")
chart_app = typer.Typer(help="The Helm chart's generated files.", no_args_is_help=True)


@crds_app.command()
def generate(
    out: Annotated[
        Path | None, typer.Option(help="Write one <group>_<plural>.yaml per CRD here.")
    ] = None,
    compat: Annotated[
        bool, typer.Option(help="Include the keda.sh, http.keda.sh and karpenter.sh CRDs.")
    ] = True,
) -> None:
    """Print every CRD as multi-document YAML (for `kubectl apply -f -`), or write files."""
    from ebbflow.crds import crds_yaml, generate_crds

    crds = [crd for crd in generate_crds() if compat or crd.compat is None]
    if out is None:
        sys.stdout.write(crds_yaml(crds))
        return
    out.mkdir(parents=True, exist_ok=True)
    for crd in crds:
        (out / crd.file_name).write_text(crd.to_yaml())
    err.print(f"{len(crds)} CRDs written to {out}", highlight=False)


def chart_files() -> dict[str, str]:
    """Every generated file of the chart, by its path inside the chart directory."""
    from ebbflow.chart_values import values_schema_json, values_yaml
    from ebbflow.crds import generate_crds

    files = {"values.yaml": values_yaml(), "values.schema.json": values_schema_json()}
    for crd in generate_crds():
        folder = "crds" if crd.compat is None else "compat-crds"
        files[f"{folder}/{crd.file_name}"] = crd.to_yaml()
    return files


@chart_app.command(name="generate")
def chart_generate(
    chart: Annotated[Path, typer.Option(help="The chart directory.")] = Path("charts/ebbflow"),
) -> None:
    """Regenerate the chart's CRDs, values.yaml and values.schema.json from the models."""
    if not (chart / "Chart.yaml").is_file():
        err.print(f"[red]error:[/red] {chart}: no Chart.yaml", highlight=False)
        raise typer.Exit(code=1)
    for folder in ("crds", "compat-crds"):  # CRDs of kinds no longer served go too
        for stale in (chart / folder).glob("*.yaml"):
            stale.unlink()
    files = chart_files()
    for relative, text in files.items():
        path = chart / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    err.print(f"{len(files)} files written under {chart}", highlight=False)


@chart_app.command()
def schema() -> None:
    """Print values.schema.json."""
    from ebbflow.chart_values import values_schema_json

    sys.stdout.write(values_schema_json())
