"""Reactive vs predictive on the same scenario: two runs, same seed, one document.

When any workload of a scenario has `spec.predictive` (or the `ebbflow.io/predictive`
annotation), `ebbflow simulate` runs it as written (predictive) and again with every
ScaledObject reactive, and reports both. The JSON (README, "JSON output"):

    {...the predictive run, as `result_json`..., "policy": "predictive",
     "reactive": {"policy": "reactive", "controllerErrors", "workloads", "total"},
     "comparison": {"workloads": [{"name", "sloViolationSeconds", "tauU", "replicaHours"}],
                    "total": {...the same three...}}}

each compared figure being `{"reactive": x, "predictive": y, "changePercent": z}` with
`changePercent = 100 * (y - x) / x` (null when x is 0). A scenario with no predictive
workload runs once and its document gets `"policy": "reactive"`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ebbflow.sim.predictive import is_predictive
from ebbflow.sim.runner import SimulationResult, result_json, simulate
from ebbflow.sim.scenario import Scenario

COMPARED = ("sloViolationSeconds", "tauU", "replicaHours")

Progress = Callable[[float, float], None]


async def simulate_policies(
    scenario: Scenario, seed: int | None = None, progress: Progress | None = None
) -> tuple[SimulationResult, SimulationResult | None]:
    """(the run as written, the reactive run or None when the scenario is not predictive).
    `progress(done, total)` counts both runs' simulated seconds."""
    if not is_predictive(scenario):
        return await simulate(scenario, seed, progress), None
    total = 2 * scenario.duration

    def first(done: float, _total: float) -> None:
        if progress is not None:
            progress(done, total)

    def second(done: float, _total: float) -> None:
        if progress is not None:
            progress(scenario.duration + done, total)

    predictive = await simulate(scenario, seed, first)
    reactive = await simulate(scenario, seed, second, predictive=False)
    return predictive, reactive


def _change(reactive: float, predictive: float) -> dict[str, Any]:
    change = None if reactive == 0 else round(100.0 * (predictive - reactive) / reactive, 3)
    return {"reactive": reactive, "predictive": predictive, "changePercent": change}


def _compared(reactive: dict[str, Any], predictive: dict[str, Any]) -> dict[str, Any]:
    return {key: _change(reactive[key], predictive[key]) for key in COMPARED}


def comparison_json(result: SimulationResult, reactive: SimulationResult | None) -> dict[str, Any]:
    """The JSON of `ebbflow simulate -o json` for one run, or for both policies (module doc)."""
    data = result_json(result)
    if reactive is None:
        data["policy"] = "reactive"
        return data
    data["policy"] = "predictive"
    other = result_json(reactive)
    data["reactive"] = {
        "policy": "reactive",
        "controllerErrors": other["controllerErrors"],
        "workloads": other["workloads"],
        "total": other["total"],
    }
    data["comparison"] = {
        "workloads": [
            {"name": p["name"], **_compared(r, p)}
            for r, p in zip(other["workloads"], data["workloads"], strict=True)
        ],
        "total": _compared(other["total"], data["total"]),
    }
    if "nodes" in other and "nodes" in data:  # with a node layer the cost is the node bill
        data["reactive"]["nodes"] = other["nodes"]
        data["comparison"]["nodeCost"] = _change(other["nodes"]["cost"], data["nodes"]["cost"])
    return data
