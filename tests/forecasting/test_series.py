"""Reading traces onto a regular grid; bad files are errors that name the file and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from forecasting.errors import SeriesError
from forecasting.series import Series, read_series


def test_reads_iso_timestamps_as_utc(write_trace: Callable[[str], Path]) -> None:
    path = write_trace("timestamp,value\n2014-07-01 00:00:00,1\n2014-07-01 00:30:00,2.5\n")
    series = read_series(path)
    assert series.step_seconds == 1800
    assert series.start == 1404172800  # 2014-07-01T00:00:00Z
    np.testing.assert_array_equal(series.values, [1.0, 2.5])


def test_reads_unix_seconds_under_ts_and_another_column(
    write_trace: Callable[[str], Path],
) -> None:
    path = write_trace("ts,value,rps\n0,1,10\n60,2,20\n120,3,30\n")
    series = read_series(path, column="rps")
    assert series.step_seconds == 60
    np.testing.assert_array_equal(series.values, [10.0, 20.0, 30.0])


def test_missing_steps_are_interpolated(write_trace: Callable[[str], Path]) -> None:
    path = write_trace("ts,value\n0,0\n300,3\n900,9\n1200,12\n")
    np.testing.assert_array_equal(read_series(path).values, [0.0, 3.0, 6.0, 9.0, 12.0])


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("ts,value\n0,1\nyesterday,2\n", "line 3: ts: not a time: 'yesterday'"),
        ("ts,value\n0,1\n60,ten\n", "line 3: value: not a number: 'ten'"),
        ("ts,value\n0,1\n60,nan\n", "line 3: value: must be finite"),
        ("ts,value\n0,1\n60,2\n30,3\n", "line 4: ts: not after the previous row"),
        ("ts,value\n0,1\n60,2\n120,3\n130,4\n", "line 5: ts: falls in the same 60 s step"),
        ("when,value\n0,1\n", "line 1: no time column"),
        ("ts,rps\n0,1\n", "line 1: no column 'value'; columns are ts, rps"),
        ("ts,value\n0,1\n", "needs at least two rows"),
    ],
)
def test_bad_trace_names_file_and_line(
    write_trace: Callable[[str], Path], text: str, where: str
) -> None:
    path = write_trace(text)
    with pytest.raises(SeriesError) as caught:
        read_series(path)
    assert str(caught.value).startswith(f"{path}:")
    assert where in str(caught.value)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match=r"missing\.csv: cannot read"):
        read_series(tmp_path / "missing.csv")


def test_coarsened_averages_blocks_aligned_to_the_end() -> None:
    series = Series(np.arange(7, dtype=np.float64), 60.0, start=0.0)
    coarse = series.coarsened(3)
    np.testing.assert_array_equal(coarse.values, [2.0, 5.0])  # drops the oldest value, 0
    assert coarse.step_seconds == 180
    assert coarse.start == 60
