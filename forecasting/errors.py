"""Errors of the forecasting package; each message names the place (file and line, or model)."""

from __future__ import annotations


class ForecastError(ValueError):
    """Base of every error this package raises on bad input; never retried."""


class SeriesError(ForecastError):
    """A trace that cannot be used: the message names the file and line."""


class ModelError(ForecastError):
    """An unknown model name, or a model that cannot fit the history it was given."""
