"""Go-style durations as Karpenter writes them (`720h`, `1h30m`, `30s`, `Never`)."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(value: str) -> float | None:
    """Seconds of a Go duration; None for `Never`. Raises ValueError on anything else."""
    text = value.strip()
    if text == "Never":
        return None
    if text in ("0", ""):
        return 0.0
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise ValueError(f"not a duration like 30s, 10m, 1h30m or Never: {value!r}")
    return total
