"""The report's figures: every number the HTML, CSV and PDF show, computed once.

Money is kept in whole cents. The CSV's cells (one per day, team and namespace, idle
capacity included) are rounded to cents first; every total shown is the sum of those cells,
so the page and the CSV agree to the cent. A saving is `1 - cost / baseline` over the two
amounts exactly as printed, shown to 0.1%.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ebbflow.report.baselines import (
    Baseline,
    Pricing,
    clairvoyant,
    on_demand_repriced,
    static_peak,
)
from ebbflow.report.costmodel import IDLE, allocate, sample_seconds, slo_attainment
from ebbflow.sim.timeline import Timeline
from provisioner.scheduling.model import InstanceType, NodeTemplate

SLO_GAP = 0.0005  # attainment this far below a baseline's counts as bought with violations


@dataclass(frozen=True)
class Row:
    """One CSV row: a team's cost in one namespace on one UTC day."""

    date: str  # YYYY-MM-DD (UTC)
    hours: float  # hours of that day inside the period
    team: str
    namespace: str
    cents: int
    replica_hours: float
    slo_attainment: float | None


@dataclass(frozen=True)
class GroupRow:
    name: str  # a team or a namespace
    members: tuple[str, ...]  # its namespaces (for a team) or teams (for a namespace)
    cents: int
    replica_hours: float
    slo_attainment: float | None


@dataclass(frozen=True)
class BaselineRow:
    key: str
    title: str
    description: str
    cents: int
    savings_percent: float | None  # against it, from the printed amounts
    slo_attainment: float | None
    note: str
    bought_with_violations: bool


@dataclass(frozen=True)
class Line:
    name: str
    points: tuple[tuple[float, float], ...]  # (epoch seconds, value)


@dataclass(frozen=True)
class Report:
    name: str
    source: str  # simulation | prometheus
    start: float
    end: float
    step: float
    team_label: str
    rows: tuple[Row, ...]
    teams: tuple[GroupRow, ...]
    namespaces: tuple[GroupRow, ...]
    baselines: tuple[BaselineRow, ...]
    slo_attainment: float | None
    slo_violation_hours: float
    exact_cents: int | None  # the per-second bill of the simulation, for comparison
    node_priced: bool  # False: no nodes, pods priced per pod-hour
    cost_lines: tuple[Line, ...]  # dollars per hour, hourly
    replica_lines: tuple[Line, ...]
    node_lines: tuple[Line, ...]
    notes: tuple[str, ...]

    @property
    def total_cents(self) -> int:
        return sum(r.cents for r in self.rows)

    @property
    def idle_cents(self) -> int:
        return sum(r.cents for r in self.rows if r.team == IDLE)

    @property
    def days(self) -> float:
        return (self.end - self.start) / 86400


def cents(dollars: float) -> int:
    return round(dollars * 100)


def savings_percent(cost_cents: int, baseline_cents: int) -> float | None:
    """`1 - cost / baseline` in percent, to 0.1, from the printed amounts."""
    if baseline_cents <= 0:
        return None
    return round(100.0 * (1.0 - cost_cents / baseline_cents), 1)


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def build_report(
    name: str,
    timeline: Timeline,
    templates: Sequence[NodeTemplate],
    types: Sequence[InstanceType],
    team_label: str = "team",
    reruns: Sequence[Baseline] = (),
    notes: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Allocate the timeline's cost, compute the baselines, and round for finance."""
    from ebbflow.report.baselines import default_templates, pod_prices

    prices = None
    if not timeline.nodes:
        prices = pod_prices(timeline, default_templates(), types)
    pricing = Pricing(timeline, templates, types, prices)
    costs = allocate(timeline, prices)
    infos = {w.name: w for w in timeline.workloads}
    team_of = {w.name: w.team(team_label) for w in timeline.workloads}
    rows = _rows(timeline, costs, team_of)
    actual_cents = sum(r.cents for r in rows)
    overall_slo = slo_attainment(timeline)

    baselines: list[Baseline] = []
    static, _, _ = static_peak(timeline, pricing)
    baselines.append(static)
    keys = {b.key for b in reruns}
    baselines += reruns
    if "on-demand-only" not in keys and timeline.nodes:
        baselines.append(on_demand_repriced(timeline, types, overall_slo))
    bound = clairvoyant(timeline, pricing, progress)
    all_notes = list(notes)
    if bound is not None:
        baselines.append(bound)
        if actual_cents < cents(bound.cost):
            all_notes.append(
                "Autoscaling cost less than the clairvoyant bound: that is only possible by "
                "not serving all of the demand (see its SLO attainment)."
            )
    else:
        all_notes.append(
            "Clairvoyant bound not available: it needs each workload's demand and capacity per pod."
        )
    if "reactive-only" not in keys:
        all_notes.append(
            "Reactive-only needs a counterfactual run; from a live cluster, replay the "
            "period with `ebbflow simulate`."
        )
    baseline_rows = []
    actual_costs = tuple(c.node_cost for c in costs)
    for b in baselines:
        # the actual run standing in for a baseline shows the actual's own amount
        c = actual_cents if b.costs == actual_costs else cents(b.cost)
        worse = (
            overall_slo is not None
            and b.slo_attainment is not None
            and overall_slo < b.slo_attainment - SLO_GAP
        )
        saving = savings_percent(actual_cents, c) if b.key != "clairvoyant" else None
        baseline_rows.append(
            BaselineRow(
                b.key,
                b.title,
                b.description,
                c,
                saving,
                b.slo_attainment,
                b.note,
                worse and saving is not None and saving > 0,
            )
        )
    if not timeline.nodes:
        all_notes.append(
            "This scenario has no node layer (no `provisioning` section): each pod is priced "
            "at its share of the cheapest on-demand instance type that fits it, and there is "
            "no idle capacity to report."
        )
    return Report(
        name=name,
        source=timeline.source,
        start=timeline.start,
        end=timeline.start + timeline.duration,
        step=timeline.step,
        team_label=team_label,
        rows=tuple(rows),
        teams=_groups(rows, timeline, team_of, by_team=True),
        namespaces=_groups(rows, timeline, team_of, by_team=False),
        baselines=tuple(baseline_rows),
        slo_attainment=overall_slo,
        slo_violation_hours=sum(timeline.slo_violations.values()) / 3600,
        exact_cents=cents(timeline.exact_node_cost)
        if timeline.exact_node_cost is not None
        else None,
        node_priced=bool(timeline.nodes),
        cost_lines=_cost_lines(timeline, [c.node_cost for c in costs], baselines),
        replica_lines=_replica_lines(timeline, infos),
        node_lines=_node_lines(timeline),
        notes=tuple(all_notes),
    )


def _rows(timeline: Timeline, costs: Sequence[object], team_of: dict[str, str]) -> list[Row]:
    from ebbflow.report.costmodel import SampleCost

    ns_of = {w.name: w.namespace for w in timeline.workloads}
    money: dict[tuple[str, str, str], float] = {}
    pod_seconds: dict[tuple[str, str, str], float] = {}
    hours: dict[str, float] = {}
    for sample, cost in zip(timeline.samples, costs, strict=True):
        assert isinstance(cost, SampleCost)
        day = _day(timeline.start + sample.time)
        hours[day] = hours.get(day, 0.0) + cost.seconds / 3600
        for name, dollars in cost.by_workload.items():
            key = (day, team_of[name], ns_of[name])
            money[key] = money.get(key, 0.0) + dollars
            state = sample.workloads.get(name)
            replicas = state.replicas if state is not None else 0
            pod_seconds[key] = pod_seconds.get(key, 0.0) + replicas * cost.seconds
        if timeline.nodes:
            key = (day, IDLE, "")
            money[key] = money.get(key, 0.0) + cost.idle
    slo = _daily_slo(timeline, team_of)
    return [
        Row(
            day,
            round(hours[day], 4),
            team,
            ns,
            cents(dollars),
            pod_seconds.get((day, team, ns), 0.0) / 3600,
            slo.get((day, team, ns)),
        )
        for (day, team, ns), dollars in sorted(money.items())
    ]


def _daily_slo(
    timeline: Timeline, team_of: dict[str, str]
) -> dict[tuple[str, str, str], float | None]:
    """SLO attainment per day, team and namespace, from the cumulative violation counts."""
    judged: dict[tuple[str, str, str], float] = {}
    broken: dict[tuple[str, str, str], float] = {}
    for w in timeline.workloads:
        if w.name not in timeline.slo_seconds:
            continue
        samples = timeline.samples
        for i, s in enumerate(samples):
            now = s.workloads[w.name].slo_violation_seconds
            later = (
                samples[i + 1].workloads[w.name].slo_violation_seconds
                if i + 1 < len(samples)
                else timeline.slo_violations.get(w.name)
            )
            if now is None or later is None:
                continue
            key = (_day(timeline.start + s.time), team_of[w.name], w.namespace)
            judged[key] = judged.get(key, 0.0) + sample_seconds(timeline, s.time)
            broken[key] = broken.get(key, 0.0) + max(0.0, later - now)
    return {k: max(0.0, 1.0 - broken[k] / v) if v else None for k, v in judged.items()}


def _groups(
    rows: Sequence[Row], timeline: Timeline, team_of: dict[str, str], by_team: bool
) -> tuple[GroupRow, ...]:
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.team if by_team else (r.namespace or IDLE), []).append(r)
    result = []
    for name, members in groups.items():
        workloads = [
            w.name
            for w in timeline.workloads
            if (team_of[w.name] if by_team else w.namespace) == name
        ]
        others = sorted({(r.namespace if by_team else r.team) for r in members} - {""})
        result.append(
            GroupRow(
                name,
                tuple(others),
                sum(r.cents for r in members),
                sum(r.replica_hours for r in members),
                slo_attainment(timeline, workloads) if workloads else None,
            )
        )
    # biggest first, idle capacity last
    result.sort(key=lambda g: (g.name == IDLE, -g.cents, g.name))
    return tuple(result)


def _hourly(timeline: Timeline, values: Sequence[float]) -> tuple[tuple[float, float], ...]:
    """Dollars per sample summed by hour, as dollars per hour."""
    buckets: dict[int, list[float]] = {}
    for s, v in zip(timeline.samples, values, strict=True):
        hour = int(s.time // 3600)
        b = buckets.setdefault(hour, [0.0, 0.0])
        b[0] += v
        b[1] += sample_seconds(timeline, s.time)
    return tuple(
        (timeline.start + h * 3600, dollars * 3600 / secs if secs else 0.0)
        for h, (dollars, secs) in sorted(buckets.items())
    )


def _cost_lines(
    timeline: Timeline, actual: Sequence[float], baselines: Sequence[Baseline]
) -> tuple[Line, ...]:
    lines = [Line("ebbflow (actual)", _hourly(timeline, actual))]
    for b in baselines:
        if len(b.costs) == len(timeline.samples):
            lines.append(Line(b.title, _hourly(timeline, b.costs)))
    return tuple(lines)


def _replica_lines(timeline: Timeline, infos: Mapping[str, object]) -> tuple[Line, ...]:
    lines = []
    for name in infos:
        points = tuple(
            (timeline.start + s.time, float(s.workloads[name].replicas)) for s in timeline.samples
        )
        lines.append(Line(f"{name} replicas", points))
        if any(s.workloads[name].ready != s.workloads[name].replicas for s in timeline.samples):
            ready = tuple(
                (timeline.start + s.time, float(s.workloads[name].ready)) for s in timeline.samples
            )
            lines.append(Line(f"{name} ready", ready))
    return tuple(lines)


def _node_lines(timeline: Timeline) -> tuple[Line, ...]:
    if not timeline.nodes:
        return ()
    kinds = sorted({n.capacity_type for n in timeline.nodes.values()})
    lines = []
    for kind in kinds:
        points = tuple(
            (
                timeline.start + s.time,
                float(sum(1 for n in s.nodes if timeline.nodes[n].capacity_type == kind)),
            )
            for s in timeline.samples
        )
        lines.append(Line(f"{kind} nodes", points))
    return tuple(lines)
