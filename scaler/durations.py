"""Durations as manifests and scenarios write them: `90`, `"90s"`, `"15m"`, `"2d1h"`."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(
    r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$"
)


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"15m"`, `"2d1h"`."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30s, 15m, 2h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match or not any(match.groups()):
            raise ValueError("must be a duration like 30s, 15m, 2h or 7d")
        d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = d * 86400 + h * 3600 + m * 60 + s
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds
