"""Command-line inputs: metric snapshots, metric series and decision history files.

Every problem is reported as an `InputError` naming the file and the place in it
(`series.csv:line 7: column lag: must be a number, got "ten"`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forecasting.series import parse_time
from scaler.behavior import Sample
from scaler.decision import ScalingState
from scaler.replay import SeriesRow

# cells that stand for a failed read in a series
_FAILED = {"", "error", "err", "nan", "null", "none", "-"}


class InputError(ValueError):
    """A command-line input file that cannot be used; the message names file and place."""


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{where}: must be a number, got {json.dumps(value)}")
    return float(value)


def load_metrics(path: Path, names: Sequence[str]) -> dict[str, float | str]:
    """A snapshot: trigger name (or index) -> value, or -> the error message of a failed read."""
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise InputError(f"{path}: must be a JSON object mapping trigger names to values")
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise InputError(f"{path}: {unknown[0]}: no such trigger; triggers are: {', '.join(names)}")
    out: dict[str, float | str] = {}
    for name in names:
        if name not in raw:
            raise InputError(f'{path}: {name}: missing (give a number or {{"error": "..."}})')
        value = raw[name]
        if isinstance(value, dict):
            if set(value) != {"error"} or not isinstance(value["error"], str):
                raise InputError(f'{path}: {name}: must be a number or {{"error": "message"}}')
            out[name] = value["error"] or "error"
        else:
            out[name] = _number(value, f"{path}: {name}")
    return out


def load_history(path: Path | None, last_active_ago: float | None) -> ScalingState:
    """Decision history for `scale explain`; times are seconds before now (now is 0)."""
    last_active = -last_active_ago if last_active_ago is not None else None
    if path is None:
        return ScalingState(last_active=last_active)
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise InputError(f"{path}: must be a JSON object")
    allowed = {"recommendations", "scaleEvents", "failures", "lastActiveSecondsAgo"}
    for key in raw:
        if key not in allowed:
            raise InputError(f"{path}: {key}: unknown field; expected {', '.join(sorted(allowed))}")

    def samples(key: str, value_key: str) -> tuple[Sample, ...]:
        items = raw.get(key, [])
        if not isinstance(items, list):
            raise InputError(f"{path}: {key}: must be a list")
        out = []
        for i, item in enumerate(items):
            where = f"{path}: {key}[{i}]"
            if not isinstance(item, dict) or set(item) != {"secondsAgo", value_key}:
                raise InputError(f'{where}: must be {{"secondsAgo": N, "{value_key}": N}}')
            ago = _number(item["secondsAgo"], f"{where}.secondsAgo")
            value = _number(item[value_key], f"{where}.{value_key}")
            if value != int(value):
                raise InputError(f"{where}.{value_key}: must be an integer, got {value}")
            out.append(Sample(-ago, int(value)))
        return tuple(out)

    failures = raw.get("failures", {})
    if not isinstance(failures, dict) or not all(
        isinstance(v, int) and v >= 0 for v in failures.values()
    ):
        raise InputError(f"{path}: failures: must map trigger names to counts >= 0")
    if "lastActiveSecondsAgo" in raw and last_active is None:
        last_active = -_number(raw["lastActiveSecondsAgo"], f"{path}: lastActiveSecondsAgo")
    return ScalingState(
        recommendations=samples("recommendations", "replicas"),
        scale_events=samples("scaleEvents", "change"),
        last_active=last_active,
        failures=dict(failures),
    )


def _time(cell: str, where: str) -> float:
    try:
        return parse_time(cell)
    except ValueError:
        raise InputError(
            f"{where}: must be seconds or an ISO-8601 time, got {json.dumps(cell)}"
        ) from None


def load_series(path: Path, names: Sequence[str]) -> list[SeriesRow]:
    """A CSV with a `time` column and one column per trigger; times become seconds from start."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    if "time" not in header:
        raise InputError(
            f"{path}:line 1: needs a `time` column, found {', '.join(header) or 'none'}"
        )
    missing = [n for n in names if n not in header]
    if missing:
        raise InputError(
            f"{path}:line 1: no column for trigger {missing[0]!r} "
            f"(columns are named after triggers, or their index for unnamed ones)"
        )
    rows: list[SeriesRow] = []
    start: float | None = None
    previous = -math.inf
    for line, record in enumerate(reader, start=2):
        when = _time(record["time"] or "", f"{path}:line {line}: column time")
        if when < previous:
            raise InputError(f"{path}:line {line}: column time: goes back in time")
        previous = when
        start = when if start is None else start
        values: dict[str, float | None] = {}
        for name in names:
            cell = (record[name] or "").strip()
            if cell.lower() in _FAILED:
                values[name] = None
                continue
            try:
                values[name] = float(cell)
            except ValueError:
                raise InputError(
                    f"{path}:line {line}: column {name}: must be a number "
                    f"(or empty for a failed read), got {json.dumps(cell)}"
                ) from None
        rows.append(SeriesRow(when - start, values))
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows
