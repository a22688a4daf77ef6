"""Line charts as inline SVG: no script, no font or file to fetch, so the page works offline."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape

from ebbflow.report.figures import Line

COLOURS = ("#1f6feb", "#d1242f", "#8250df", "#1a7f37", "#bc4c00", "#57606a", "#0a7ea4")
WIDTH, HEIGHT = 900, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 56


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    # four gridline steps of a round size: 1, 2, 2.5 or 5 times a power of ten
    power = 10.0 ** math.floor(math.log10(value / 4))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= 4 * m * power:
            return 4 * m * power
    return 40.0 * power


def line_chart(
    chart_id: str,
    title: str,
    lines: Sequence[Line],
    y_label: Callable[[float], str],
    dashed_from: int = 1,
    step: bool = False,
) -> str:
    """An SVG chart of `lines` over time; lines from index `dashed_from` on are dashed."""
    points = [p for line in lines for p in line.points]
    if not points:
        return f'<p class="empty" id="{chart_id}">No data for {escape(title)}.</p>'
    x0 = min(p[0] for p in points)
    x1 = max(p[0] for p in points)
    x1 = x1 if x1 > x0 else x0 + 1
    top = _nice_max(max(p[1] for p in points))
    if top < 4 and all(float(p[1]).is_integer() for p in points):
        top = 4.0  # counts (nodes, replicas): gridlines on whole numbers, never 0.5
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - x0) / (x1 - x0) * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - v / top * plot_h

    parts = [
        f'<svg id="{chart_id}" class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        v = top * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#d0d7de" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{escape(y_label(v))}</text>'
        )
    days = max(1, round((x1 - x0) / 86400))
    every = 86400 * max(1, math.ceil(days / 8)) if days > 1 else 3 * 3600
    tick = math.ceil(x0 / every) * every
    while tick <= x1:
        when = datetime.fromtimestamp(tick, UTC)
        label = when.strftime("%-d %b") if every >= 86400 else when.strftime("%H:%M")
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            'stroke="#eaeef2" stroke-width="1"/>'
            f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{label}</text>'
        )
        tick += every
    for i, line in enumerate(lines):
        colour = COLOURS[i % len(COLOURS)]
        coords: list[str] = []
        previous: float | None = None
        for t, v in line.points:
            if step and previous is not None:
                coords.append(f"{x(t):.1f},{y(previous):.1f}")
            coords.append(f"{x(t):.1f},{y(v):.1f}")
            previous = v
        dash = ' stroke-dasharray="6 4"' if i >= dashed_from else ""
        parts.append(
            f'<polyline class="series" data-name="{escape(line.name)}" fill="none" '
            f'stroke="{colour}" stroke-width="{2 if i < dashed_from else 1.5}"{dash} '
            f'points="{" ".join(coords)}"/>'
        )
    legend_y = HEIGHT - 14
    cursor = LEFT
    for i, line in enumerate(lines):
        colour = COLOURS[i % len(COLOURS)]
        parts.append(
            f'<rect x="{cursor}" y="{legend_y - 9}" width="14" height="4" fill="{colour}"/>'
            f'<text x="{cursor + 18}" y="{legend_y - 3}">{escape(line.name)}</text>'
        )
        cursor += 26 + 7 * len(line.name)
    parts.append("</svg>")
    return "".join(parts)
