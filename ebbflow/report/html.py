"""report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched)."""

from __future__ import annotations

from html import escape

from ebbflow.report.costmodel import IDLE
from ebbflow.report.figures import GroupRow, Report
from ebbflow.report.formatting import attainment, number, percent, period, usd
from ebbflow.report.svg import line_chart

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
 margin:24px auto;max-width:960px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
 #d0d7de;padding-bottom:4px}.period{color:#57606a;margin:0 0 16px}
.summary{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px}
.summary .big{font-size:20px;font-weight:600}.warn{color:#9a6700}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{padding:5px 8px;
 border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:600;border-top:2px solid #d0d7de}tr.idle td{color:#57606a}
svg.chart{width:100%;height:auto;font-size:11px;fill:#57606a}
.note{color:#57606a;font-size:12px}ul{padding-left:20px}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}svg.chart,table{break-inside:avoid}}
"""


def _group_table(table_id: str, title: str, members: str, rows: tuple[GroupRow, ...]) -> str:
    body = []
    total = sum(r.cents for r in rows)
    for r in rows:
        share = 100.0 * r.cents / total if total else 0.0
        cls = ' class="idle"' if r.name == IDLE else ""
        body.append(
            f"<tr{cls}><td>{escape(r.name)}</td><td>{escape(', '.join(r.members))}</td>"
            f'<td class="num cost">{usd(r.cents)}</td><td class="num">{percent(share)}</td>'
            f'<td class="num">{number(r.replica_hours)}</td>'
            f'<td class="num">{attainment(r.slo_attainment) if r.name != IDLE else ""}</td></tr>'
        )
    body.append(
        f'<tr class="total"><td>Total</td><td></td><td class="num cost" id="{table_id}-total">'
        f'{usd(total)}</td><td class="num">100.0%</td>'
        f'<td class="num">{number(sum(r.replica_hours for r in rows))}</td><td></td></tr>'
    )
    return (
        f'<table id="{table_id}"><thead><tr><th>{title}</th><th>{members}</th>'
        '<th class="num">Cost</th><th class="num">Share</th><th class="num">Replica-hours</th>'
        '<th class="num">SLO attainment</th></tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table>"
    )


def _summary(r: Report) -> str:
    total = r.total_cents
    static = next((b for b in r.baselines if b.key == "static-peak"), None)
    lines = [
        f'<p><span class="big">Autoscaling cost <span id="total-cost">{usd(total)}</span></span> '
        f"over {escape(period(r.start, r.end))}"
        + (f", of which {usd(r.idle_cents)} was idle node capacity." if r.node_priced else ".")
        + "</p>"
    ]
    if static is not None and static.savings_percent is not None:
        lines.append(
            f"<p>A static deployment sized for the peak would have cost {usd(static.cents)}: "
            f'autoscaling saved <b id="headline-savings">{percent(static.savings_percent)}</b> '
            f"({usd(static.cents - total)}).</p>"
        )
    if r.slo_attainment is not None:
        lines.append(
            f"<p>The service met its SLO {attainment(r.slo_attainment)} of the time "
            f"({number(r.slo_violation_hours, 2)} hours of violation, summed over "
            "workloads).</p>"
        )
    for b in r.baselines:
        if b.bought_with_violations:
            lines.append(
                f'<p class="warn">The saving against “{escape(b.title)}” was bought with SLO '
                f"violations: it meets its SLO {attainment(b.slo_attainment)} of the time, "
                f"autoscaling {attainment(r.slo_attainment)}.</p>"
            )
    bound = next((b for b in r.baselines if b.key == "clairvoyant"), None)
    if bound is not None and bound.cents > 0:
        lines.append(
            f"<p>No system could have served this demand for less than {usd(bound.cents)} "
            "(the clairvoyant bound): autoscaling paid "
            f"{number(total / bound.cents, 2)}&times; that.</p>"
        )
    return '<div class="summary">' + "".join(lines) + "</div>"


def _baselines(r: Report) -> str:
    rows = [
        '<tr data-baseline="actual"><td><b>ebbflow (actual)</b></td>'
        "<td>What the cluster paid with ebbflow autoscaling.</td>"
        f'<td class="num cost">{usd(r.total_cents)}</td><td class="num savings"></td>'
        f'<td class="num">{attainment(r.slo_attainment)}</td><td></td></tr>'
    ]
    for b in r.baselines:
        flag = ' <span class="warn">(saving bought with SLO violations)</span>'
        saving = percent(b.savings_percent) if b.savings_percent is not None else "&mdash;"
        rows.append(
            f'<tr data-baseline="{b.key}"><td>{escape(b.title)}</td>'
            f"<td>{escape(b.description)}</td>"
            f'<td class="num cost">{usd(b.cents)}</td>'
            f'<td class="num savings">{saving}</td>'
            f'<td class="num">{attainment(b.slo_attainment)}</td>'
            f'<td class="note">{escape(b.note)}{flag if b.bought_with_violations else ""}</td></tr>'
        )
    return (
        '<table id="baselines"><thead><tr><th>Figure</th><th>What it is</th>'
        '<th class="num">Cost</th><th class="num">Saving vs it</th>'
        '<th class="num">SLO attainment</th><th>Note</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
        '<p class="note">Saving = 1 &minus; autoscaling cost / baseline cost, from the amounts as '
        "printed.</p>"
    )


def _method(r: Report) -> str:
    source = (
        "a simulation: the real controllers replayed a real trace in virtual time"
        if r.source == "simulation"
        else "a live cluster's Prometheus: range queries over the operator's metrics, "
        "kube-state-metrics and node prices (README lists them)"
    )
    items = [
        f"Data: {escape(source)}, sampled every {number(r.step / 60, 0)} minutes.",
        "Node cost: each node present at a sample is billed for the sample's interval at its "
        "offering's price per hour (spot or on-demand, from the instance catalog).",
        "Allocation: each workload is charged its share of every node it runs on &mdash; the "
        "larger of its requested share of the node's CPU and memory, or of its GPUs when it "
        "requests them (requests, as OpenCost allocates). What no workload requests is idle "
        "capacity, shown as its own line.",
        f"Teams: the workload's <code>{escape(r.team_label)}</code> label.",
        "SLO attainment: the share of seconds in which each workload's queue would drain "
        "within its SLO, over all workloads.",
        "Money is rounded to cents per day, team and namespace (the rows of report.csv); "
        "every total is the sum of those rows. Days are UTC.",
    ]
    if r.exact_cents is not None:
        items.append(
            f"The simulation's exact per-second node bill is {usd(r.exact_cents)}; sampling "
            f"gives {usd(r.total_cents)}."
        )
    items += [escape(n) for n in r.notes]
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def render_html(r: Report) -> str:
    """The report page, self-contained."""
    cost_chart = line_chart(
        "chart-cost",
        "Cost per hour: ebbflow against the baselines",
        r.cost_lines,
        lambda v: f"${v:,.2f}/h",
    )
    replica_chart = line_chart(
        "chart-replicas",
        "Replicas over time",
        r.replica_lines,
        lambda v: f"{v:,.0f}",
        dashed_from=len(r.replica_lines),
        step=True,
    )
    node_chart = (
        line_chart(
            "chart-nodes",
            "Nodes over time",
            r.node_lines,
            lambda v: f"{v:,.0f}",
            dashed_from=len(r.node_lines),
            step=True,
        )
        if r.node_lines
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cost report: {escape(r.name)}</title>
<style>{CSS}</style></head>
<body>
<h1>Autoscaling cost report: {escape(r.name)}</h1>
<p class="period">Period: <span id="period">{escape(period(r.start, r.end))}</span> ·
currency USD · source: {escape(r.source)}</p>
{_summary(r)}
<h2>Against the baselines</h2>
{_baselines(r)}
<h2>Cost over time</h2>
{cost_chart}
<h2>Replicas and nodes over time</h2>
{replica_chart}
{node_chart}
<h2>Cost by team</h2>
{_group_table("teams", "Team", "Namespaces", r.teams)}
<h2>Cost by namespace</h2>
{_group_table("namespaces", "Namespace", "Teams", r.namespaces)}
<h2>Method and data sources</h2>
{_method(r)}
<p class="note">report.csv holds the per-day, per-team figures behind these totals.</p>
</body></html>
"""
