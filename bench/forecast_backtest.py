"""Forecast accuracy on every example trace: `auto` against seasonal naive, same origins.

Prints one JSON object. Per trace: the detected periods, the model `auto` chose (and the
validation MASE of each candidate), MASE/sMAPE/theta/tau of that model and of seasonal naive
on the same rolling origins, their MASE ratio (below 1: the model wins), fit seconds, wall
seconds. `--all-models` backtests every registered model as well.
Run: .venv/bin/python bench/forecast_backtest.py [--all-models] [--traces DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from forecasting.backtest import AUTO, BacktestResult, evaluate
from forecasting.models import BASELINE, MODELS
from forecasting.series import read_series

TRACES = Path(__file__).resolve().parents[1] / "examples" / "traces"


def figures(result: BacktestResult, wall: float) -> dict[str, Any]:
    document = result.to_json()
    return {
        "model": document["model"],
        **document["metrics"],
        "fitSeconds": document["fitSeconds"],
        "wallSeconds": round(wall, 2),
    }


def timed(run: Any) -> tuple[BacktestResult, float]:
    began = time.perf_counter()
    result = run()
    return result, time.perf_counter() - began


def bench_trace(path: Path, all_models: bool) -> dict[str, Any]:
    series = read_series(path)
    auto, auto_wall = timed(lambda: evaluate(series, AUTO))
    naive, naive_wall = timed(lambda: evaluate(series, BASELINE))
    entry: dict[str, Any] = {
        "points": len(series),
        "stepSeconds": series.step_seconds,
        "period": list(auto.periods),
        "horizonSteps": auto.horizon,
        "origins": len(auto.origins),
        "auto": figures(auto, auto_wall),
        "seasonalNaive": figures(naive, naive_wall),
        "maseRatio": round(auto.scores.mase / naive.scores.mase, 3),
    }
    if auto.selection is not None:
        entry["validationMase"] = {
            name: None if score is None else round(score, 4)
            for name, score in auto.selection.scores.items()
        }
        entry["selectionFitSeconds"] = round(auto.selection.fit_seconds, 3)
    if all_models:
        entry["models"] = {
            name: figures(*timed(lambda name=name: evaluate(series, name)))
            for name in MODELS
            if name != BASELINE
        }
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--all-models", action="store_true")
    parser.add_argument("--traces", type=Path, default=TRACES)
    args = parser.parse_args()
    began = time.perf_counter()
    traces = {
        path.stem: bench_trace(path, args.all_models) for path in sorted(args.traces.glob("*.csv"))
    }
    wins = sum(1 for t in traces.values() if t["maseRatio"] < 1)
    print(
        json.dumps(
            {
                "benchmark": "forecast_backtest",
                "traces": traces,
                "autoBeatsSeasonalNaive": f"{wins}/{len(traces)}",
                "wallSeconds": round(time.perf_counter() - began, 1),
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
