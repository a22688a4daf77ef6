"""A report's input from a simulation: the run's timeline, plus the counterfactual re-runs.

On-demand-only and reactive-only are honest re-runs of the same scenario and seed (the same
demand): once with every NodePool restricted to on-demand capacity, once with forecasting
off. A scenario with no predictive ScaledObject has no separate reactive run: it *is* the
reactive run, and the report says so.

The result file (`ebbflow simulate --report DIR` writes DIR/result.json; `ebbflow report
--sim` reads it) is the JSON of `ReportInput` (README: "ebbflow report").
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebbflow.report.baselines import Baseline
from ebbflow.sim.timeline import Timeline, TimelineFormatError, timeline_from_json, timeline_json

INPUT_KIND = "ebbflow-report-input"
INPUT_VERSION = 1
DEFAULT_STEP = 300.0

Phase = Callable[[str, float, float], None]  # (what, done, total)


@dataclass(frozen=True)
class ReportInput:
    name: str  # the scenario, or the cluster's Prometheus
    timeline: Timeline
    node_pools: tuple[Mapping[str, Any], ...] = ()  # NodePool manifests, for the baselines
    catalog: str | None = None  # a catalog CSV; None: the packaged AWS us-east-1 catalog
    reruns: tuple[Baseline, ...] = ()
    simulation: Mapping[str, Any] | None = None  # `ebbflow simulate -o json` of the run
    notes: tuple[str, ...] = field(default_factory=tuple)


def _baseline_json(b: Baseline) -> dict[str, Any]:
    return {
        "key": b.key,
        "title": b.title,
        "description": b.description,
        "costs": list(b.costs),
        "sloAttainment": b.slo_attainment,
        "note": b.note,
    }


def input_json(data: ReportInput) -> dict[str, Any]:
    return {
        "kind": INPUT_KIND,
        "version": INPUT_VERSION,
        "name": data.name,
        "catalog": data.catalog,
        "nodePools": list(data.node_pools),
        "notes": list(data.notes),
        "simulation": data.simulation,
        "reruns": [_baseline_json(b) for b in data.reruns],
        "timeline": timeline_json(data.timeline),
    }


class InputError(ValueError):
    """A result file that is not a report input; the message names the file and field."""


def load_input(path: Path) -> ReportInput:
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("kind") != INPUT_KIND:
        raise InputError(
            f"{path}: kind: expected {INPUT_KIND!r} (write it with `ebbflow simulate --report DIR`)"
        )
    if raw.get("version") != INPUT_VERSION:
        raise InputError(f"{path}: version: expected {INPUT_VERSION}, got {raw.get('version')!r}")
    try:
        timeline = timeline_from_json(raw["timeline"])
        reruns = tuple(
            Baseline(
                b["key"],
                b["title"],
                b["description"],
                tuple(float(c) for c in b["costs"]),
                b.get("sloAttainment"),
                b.get("note", ""),
            )
            for b in raw.get("reruns") or []
        )
    except TimelineFormatError as exc:
        raise InputError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: reruns: malformed ({type(exc).__name__}: {exc})") from None
    return ReportInput(
        name=str(raw.get("name", path.stem)),
        timeline=timeline,
        node_pools=tuple(raw.get("nodePools") or ()),
        catalog=raw.get("catalog"),
        reruns=reruns,
        simulation=raw.get("simulation"),
        notes=tuple(raw.get("notes") or ()),
    )


def on_demand_scenario(scenario: Any) -> Any:
    """The same scenario with every NodePool restricted to on-demand capacity."""
    from ebbflow.sim.scenario import Scenario
    from provisioner.api import NodePool
    from provisioner.scheduling.model import CAPACITY_TYPE, ON_DEMAND

    pools = []
    for pool in scenario.node_pools:
        manifest = pool.model_dump(mode="json", by_alias=True, exclude_none=True)
        spec = manifest["spec"]["template"]["spec"]
        kept = [r for r in spec.get("requirements", []) if r.get("key") != CAPACITY_TYPE]
        kept.append({"key": CAPACITY_TYPE, "operator": "In", "values": [ON_DEMAND]})
        spec["requirements"] = kept
        pools.append(NodePool.model_validate(manifest))
    spec = copy.copy(scenario.spec)
    clone = Scenario(spec, scenario.workloads, scenario.source, pools)
    clone.duration = scenario.duration
    return clone


async def simulate_for_report(
    scenario: Any,
    seed: int | None = None,
    step: float = DEFAULT_STEP,
    phase: Phase | None = None,
) -> tuple[ReportInput, Any]:
    """Run `scenario` with a timeline, and its re-runs; returns the input and the actual
    run's SimulationResult."""
    from ebbflow.report.costmodel import allocate, slo_attainment
    from ebbflow.sim.predictive import is_predictive
    from ebbflow.sim.runner import result_json, simulate

    def progress(what: str) -> Callable[[float, float], None] | None:
        if phase is None:
            return None
        return lambda done, total: phase(what, done, total)

    result = await simulate(scenario, seed, progress("simulating"), timeline_step=step)
    assert result.timeline is not None
    timeline = result.timeline
    seed = result.seed
    prices = None
    if not timeline.nodes:
        prices = _pod_prices(timeline)
    reruns: list[Baseline] = []
    notes: list[str] = []
    if scenario.spec.provisioning is not None:
        od = await simulate(
            on_demand_scenario(scenario),
            seed,
            progress("re-run on-demand only"),
            timeline_step=step,
        )
        assert od.timeline is not None
        reruns.append(
            Baseline(
                "on-demand-only",
                "On-demand only",
                "The same scenario and seed re-run with every NodePool restricted to on-demand "
                "capacity: the same autoscaling without spot.",
                tuple(c.node_cost for c in allocate(od.timeline)),
                slo_attainment(od.timeline),
            )
        )
    else:
        notes.append("No node layer: pods are priced at on-demand rates, so no spot saving.")
    if is_predictive(scenario):
        reactive = await simulate(
            scenario, seed, progress("re-run reactive only"), predictive=False, timeline_step=step
        )
        assert reactive.timeline is not None
        reruns.append(
            Baseline(
                "reactive-only",
                "Reactive only",
                "The same scenario and seed re-run with forecasting off: ebbflow scaling on "
                "current metrics alone.",
                tuple(c.node_cost for c in allocate(reactive.timeline, prices)),
                slo_attainment(reactive.timeline),
            )
        )
    else:
        reruns.append(
            Baseline(
                "reactive-only",
                "Reactive only",
                "ebbflow without forecasting.",
                tuple(c.node_cost for c in allocate(timeline, prices)),
                slo_attainment(timeline),
                "No workload of this scenario scales predictively: the actual run is the "
                "reactive run.",
            )
        )
    pools = tuple(
        p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in scenario.node_pools
    )
    catalog = None
    if scenario.spec.provisioning is not None and scenario.spec.provisioning.catalog:
        catalog = str(Path(scenario.source).parent / scenario.spec.provisioning.catalog)
    data = ReportInput(
        name=scenario.spec.name,
        timeline=timeline,
        node_pools=pools,
        catalog=catalog,
        reruns=tuple(reruns),
        simulation=result_json(result),
        notes=tuple(notes),
    )
    return data, result


def _pod_prices(timeline: Timeline) -> dict[str, float]:
    from ebbflow.report.baselines import default_templates, pod_prices
    from provisioner.catalog import load_catalog

    return pod_prices(timeline, default_templates(), load_catalog().instance_types)
