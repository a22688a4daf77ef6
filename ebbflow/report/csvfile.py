"""report.csv: one row per UTC day, team and namespace, for finance to import."""

from __future__ import annotations

import csv
import io

from ebbflow.report.figures import Report

COLUMNS = (
    "date",
    "hours",
    "team",
    "namespace",
    "cost_usd",
    "replica_hours",
    "slo_attainment_percent",
)


def render_csv(r: Report) -> str:
    """Plain numbers (no currency sign, no separators), dot decimals; idle capacity is the
    team `(idle capacity)` with an empty namespace."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in r.rows:
        whole, part = divmod(row.cents, 100)
        writer.writerow(
            [
                row.date,
                f"{row.hours:g}",
                row.team,
                row.namespace,
                f"{whole}.{part:02d}",
                f"{row.replica_hours:.3f}",
                "" if row.slo_attainment is None else f"{100 * row.slo_attainment:.3f}",
            ]
        )
    return buffer.getvalue()
