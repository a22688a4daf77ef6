"""Writing a report's files: report.html, report.csv, and report.pdf printed by Chromium."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from ebbflow.report.browser import BrowserError, find_chromium, open_page, page_url
from ebbflow.report.csvfile import render_csv
from ebbflow.report.figures import Report
from ebbflow.report.html import render_html


@dataclass
class Written:
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def write_report(report: Report, out: Path, pdf: bool = True, png: bool = False) -> Written:
    """Write the report into `out`; the PDF (and PNG) need Chromium, else a warning says so."""
    out.mkdir(parents=True, exist_ok=True)
    written = Written()
    html = out / "report.html"
    html.write_text(render_html(report), encoding="utf-8")
    csv_path = out / "report.csv"
    csv_path.write_text(render_csv(report), encoding="utf-8")
    written.files += [html, csv_path]
    if not (pdf or png):
        return written
    if find_chromium() is None:
        written.warnings.append(
            "report.pdf not written: Chromium is not installed (Debian: apt-get install chromium)"
        )
        return written
    try:
        page = asyncio.run(open_page(page_url(html), pdf=pdf, png=png))
    except BrowserError as exc:
        written.warnings.append(f"report.pdf not written: {exc}")
        return written
    for name, data in (("report.pdf", page.pdf), ("report.png", page.png)):
        if data is not None:
            (out / name).write_bytes(data)
            written.files.append(out / name)
    written.warnings += [f"console error in report.html: {e}" for e in page.console_errors]
    return written
