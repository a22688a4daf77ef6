"""`ebbflow scalers probe`: read every trigger now."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ebbflow.commands.common import Output, fail, out, print_json
from scaler.api import ScaledObject
from scaler.manifests import load_documents

app = typer.Typer(help="Live metric sources: probe what triggers read.", no_args_is_help=True)


@app.command()
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
        raise fail("\n".join(problems))
    objects = [d.obj for d in docs if isinstance(d.obj, ScaledObject)]
    if not objects:
        raise fail(f"no ScaledObject in {', '.join(map(str, files))}")
    raws = [d.raw for d in docs if d.raw is not None]
    results = asyncio.run(probe_all(objects, raws, timeout))
    if output is Output.json:
        print_json({"results": results})
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
