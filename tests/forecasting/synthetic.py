"""Synthetic series with known seasons, shared by the forecasting tests."""

from __future__ import annotations

import numpy as np

from forecasting.series import FloatArray, Series

HOURLY = 3_600.0


def seasonal_values(
    length: int, periods: tuple[int, ...] = (24,), noise: float = 0.3, seed: int = 0
) -> FloatArray:
    """A level of 10, a sine of amplitude 3 per period, Gaussian noise."""
    t = np.arange(length)
    values = 10.0 + sum((3.0 * np.sin(2 * np.pi * t / p) for p in periods), np.zeros(length))
    return np.asarray(values + np.random.default_rng(seed).normal(0, noise, length))


def hourly(values: FloatArray) -> Series:
    return Series(np.asarray(values, dtype=np.float64), HOURLY)
