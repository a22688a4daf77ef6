"""From a report's input (a simulation's result file or Prometheus) to its figures."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ebbflow.report.baselines import default_templates
from ebbflow.report.figures import Report, build_report
from ebbflow.report.simulated import ReportInput
from provisioner.api import NodePool
from provisioner.catalog import load_catalog
from provisioner.nodepools import node_template
from provisioner.scheduling.model import NodeTemplate


def templates_of(manifests: Sequence[Mapping[str, Any]]) -> list[NodeTemplate]:
    """NodePool manifests as the packer's templates; none: any on-demand type."""
    pools = [NodePool.model_validate(m) for m in manifests]
    return [node_template(p) for p in pools] or default_templates()


def report_from_input(
    data: ReportInput,
    team_label: str = "team",
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    catalog = load_catalog(Path(data.catalog) if data.catalog else None)
    return build_report(
        data.name,
        data.timeline,
        templates_of(data.node_pools),
        catalog.instance_types,
        team_label,
        data.reruns,
        data.notes,
        progress,
    )


def summary_json(report: Report, files: Sequence[Path] = ()) -> dict[str, Any]:
    """The `-o json` of `ebbflow report` and `ebbflow simulate --report` (README)."""
    return {
        "name": report.name,
        "source": report.source,
        "start": report.start,
        "end": report.end,
        "currency": "USD",
        "totalCost": report.total_cents / 100,
        "idleCost": report.idle_cents / 100,
        "sloAttainment": report.slo_attainment,
        "baselines": [
            {
                "key": b.key,
                "cost": b.cents / 100,
                "savingsPercent": b.savings_percent,
                "sloAttainment": b.slo_attainment,
                "boughtWithSloViolations": b.bought_with_violations,
            }
            for b in report.baselines
        ],
        "teams": [{"team": t.name, "cost": t.cents / 100} for t in report.teams],
        "files": [str(f) for f in files],
    }
