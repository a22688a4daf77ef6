"""Workload traces: a CSV of (time, value) read into a step function of arrivals per second."""

from __future__ import annotations

import bisect
import csv
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from forecasting.series import parse_time


class TraceError(ValueError):
    """A trace file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Trace:
    """Arrivals per second as a step function of seconds since the trace's first row."""

    start: float  # epoch seconds of the first row
    offsets: tuple[float, ...]  # seconds since start, after time compression
    rates: tuple[float, ...]  # arrivals per second from each offset on
    end: float  # seconds covered: the last row lasts one median interval

    def rate_at(self, second: float) -> float:
        index = bisect.bisect_right(self.offsets, second) - 1
        return self.rates[max(index, 0)]

    @property
    def peak(self) -> float:
        return max(self.rates)

    def peak_between(self, begin: float, end: float) -> float:
        first = max(bisect.bisect_right(self.offsets, begin) - 1, 0)
        last = bisect.bisect_left(self.offsets, end)
        return max(self.rates[first : max(last, first + 1)])

    def after(self, seconds: float) -> Trace:
        """The trace from `seconds` on, as a trace of its own: its start moves `seconds` later
        (the part before is history, for forecasts; the scenario's `history`)."""
        if seconds <= 0:
            return self
        if seconds >= self.end:
            raise TraceError(f"must be shorter than the trace ({self.end:g}s), got {seconds:g}s")
        first = max(bisect.bisect_right(self.offsets, seconds) - 1, 0)
        offsets = (0.0, *(o - seconds for o in self.offsets[first + 1 :]))
        return Trace(
            start=self.start + seconds,
            offsets=offsets,
            rates=self.rates[first:],
            end=self.end - seconds,
        )


def load_trace(
    path: Path, column: str, time_column: str | None, scale: float, compression: float
) -> Trace:
    """Read `path`; values times `scale` are arrivals per second; time runs `compression`x."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    time_key = time_column or next((c for c in ("timestamp", "ts", "time") if c in header), None)
    if time_key is None or time_key not in header:
        raise TraceError(
            f"{path}:line 1: no time column (looked for {time_column or 'timestamp, ts, time'})"
        )
    if column not in header:
        raise TraceError(f"{path}:line 1: no column {column!r}; columns are {', '.join(header)}")
    times: list[float] = []
    values: list[float] = []
    for line, row in enumerate(reader, start=2):
        try:
            when = parse_time(row[time_key] or "")
        except ValueError:
            raise TraceError(
                f"{path}:line {line}: {time_key}: not a time: {row[time_key]!r}"
            ) from None
        try:
            value = float(row[column] or "")
        except ValueError:
            raise TraceError(
                f"{path}:line {line}: {column}: not a number: {row[column]!r}"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise TraceError(f"{path}:line {line}: {column}: must be a number >= 0, got {value}")
        if times and when <= times[-1]:
            raise TraceError(f"{path}:line {line}: {time_key}: not after the previous row")
        times.append(when)
        values.append(value)
    if len(times) < 2:
        raise TraceError(f"{path}: needs at least two rows")
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    interval = gaps[len(gaps) // 2] / compression
    offsets = tuple((t - times[0]) / compression for t in times)
    return Trace(
        start=times[0],
        offsets=offsets,
        rates=tuple(v * scale for v in values),
        end=offsets[-1] + interval,
    )
