"""Fixtures of the forecasting tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from forecasting.series import Series
from tests.forecasting.synthetic import hourly, seasonal_values


@pytest.fixture
def daily_hourly() -> Series:
    """Ten days of hourly values with a daily cycle."""
    return hourly(seasonal_values(240))


@pytest.fixture
def write_trace(tmp_path: Path) -> Callable[..., Path]:
    """Write CSV text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "trace.csv") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
