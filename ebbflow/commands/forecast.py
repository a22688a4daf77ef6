"""`ebbflow forecast backtest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ebbflow.commands.common import Output, err, fail, out, print_json

app = typer.Typer(help="Forecasts of demand, and how good they are.", no_args_is_help=True)


@app.command()
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
            raise fail(str(exc)) from None

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
        print_json(result)
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
