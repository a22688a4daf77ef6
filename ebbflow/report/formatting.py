"""Numbers as finance reads them: currency with thousands separators, percentages, periods."""

from __future__ import annotations

from datetime import UTC, datetime


def usd(cents: int) -> str:
    """`123456` -> `$1,234.56`; negative amounts as `-$1.00`."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def percent(value: float | None, digits: int = 1) -> str:
    """A percentage already in percent; `n/a` for None."""
    return "n/a" if value is None else f"{value:,.{digits}f}%"


def attainment(fraction: float | None) -> str:
    """An SLO attainment (a fraction) as a percentage to 0.01."""
    return "not measured" if fraction is None else f"{100 * fraction:.2f}%"


def number(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def moment(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%-d %b %Y %H:%M UTC")


def period(start: float, end: float) -> str:
    """`1 Jul 2014 00:00 UTC to 8 Jul 2014 00:00 UTC (7 days)`."""
    days = (end - start) / 86400
    length = f"{days:g} days" if days >= 1 else f"{(end - start) / 3600:g} hours"
    return f"{moment(start)} to {moment(end)} ({length})"
