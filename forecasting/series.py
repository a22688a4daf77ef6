"""Regular time series: the value type every model fits, and the CSV reader that makes one."""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from forecasting.errors import SeriesError

FloatArray = npt.NDArray[np.float64]

TIME_COLUMNS = ("timestamp", "ts")


@dataclass(frozen=True, eq=False)
class Series:
    """Values on a regular grid: `values[i]` is the value at `start + i * step_seconds`."""

    values: FloatArray
    step_seconds: float
    start: float = 0.0  # epoch seconds of values[0]

    def __post_init__(self) -> None:
        if self.values.ndim != 1:
            raise ValueError("a Series holds a one-dimensional array")
        if not self.step_seconds > 0:
            raise ValueError(f"step_seconds must be > 0, got {self.step_seconds}")

    def __len__(self) -> int:
        return len(self.values)

    def head(self, stop: int) -> Series:
        """The first `stop` values: the history a forecast made at index `stop` may see."""
        return Series(self.values[:stop], self.step_seconds, self.start)

    def tail(self, count: int) -> Series:
        """The last `count` values, with `start` moved to the first of them."""
        first = max(len(self.values) - count, 0)
        return Series(
            self.values[first:], self.step_seconds, self.start + first * self.step_seconds
        )

    def coarsened(self, factor: int) -> Series:
        """Means over blocks of `factor` steps, aligned to the end (the oldest partial block is
        dropped), so that the last block ends where the history ends."""
        if factor == 1:
            return self
        usable = len(self.values) // factor * factor
        kept = self.tail(usable)
        return Series(
            kept.values.reshape(-1, factor).mean(axis=1), self.step_seconds * factor, kept.start
        )


def parse_time(text: str) -> float:
    """Epoch seconds from unix seconds or ISO 8601; naive times are UTC (as in NAB traces)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def read_series(path: Path, column: str = "value") -> Series:
    """Read a `timestamp,value` or `ts,value` CSV onto a regular grid.

    The step is the median gap between rows. Rows are placed on the nearest step; steps with no
    row are filled by linear interpolation between their neighbours (a few dropped samples are
    common in CloudWatch exports). Two rows on the same step, a time that does not increase, or
    a value that is not a finite number is an error naming the file and line.
    """
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SeriesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    time_key = next((c for c in TIME_COLUMNS if c in header), None)
    if time_key is None:
        raise SeriesError(f"{path}:line 1: no time column (looked for {', '.join(TIME_COLUMNS)})")
    if column not in header:
        raise SeriesError(f"{path}:line 1: no column {column!r}; columns are {', '.join(header)}")
    times: list[float] = []
    values: list[float] = []
    rows: list[int] = []
    for line, row in enumerate(reader, start=2):
        stamp, raw = row.get(time_key) or "", row.get(column) or ""
        try:
            when = parse_time(stamp)
        except ValueError:
            raise SeriesError(f"{path}:line {line}: {time_key}: not a time: {stamp!r}") from None
        try:
            value = float(raw)
        except ValueError:
            raise SeriesError(f"{path}:line {line}: {column}: not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise SeriesError(f"{path}:line {line}: {column}: must be finite, got {raw!r}")
        if times and when <= times[-1]:
            raise SeriesError(f"{path}:line {line}: {time_key}: not after the previous row")
        times.append(when)
        values.append(value)
        rows.append(line)
    if len(times) < 2:
        raise SeriesError(f"{path}: needs at least two rows, found {len(times)}")
    step = float(np.median([b - a for a, b in itertools.pairwise(times)]))
    slots = [round((t - times[0]) / step) for t in times]
    for (before, after), line in zip(itertools.pairwise(slots), rows[1:], strict=True):
        if after == before:
            raise SeriesError(
                f"{path}:line {line}: {time_key}: falls in the same {step:g} s step "
                "as the previous row"
            )
    grid = np.arange(slots[-1] + 1, dtype=np.float64)
    filled = np.interp(grid, np.asarray(slots, dtype=np.float64), np.asarray(values))
    return Series(filled.astype(np.float64), step, times[0])
