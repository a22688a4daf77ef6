"""Forecasting for predictive scaling: statsmodels models, automatic seasonality, backtests.

- series.py        Series (values on a regular grid) and the trace CSV reader
- seasonality.py   which of the hour/day/week cycles a series has (ACF peak + seasonal strength)
- forecast.py      the interface: Model.fit(Series) -> Fitted.forecast(steps) -> Forecast
- models.py        the registry by name; naive.py, smoothing.py, decomposition.py, harmonic.py
                   hold the models, window.py bounds, coarsens and log-scales their fits
- metrics.py       MASE, sMAPE, SPEC RG elasticity: pure functions over arrays
- origins.py       rolling origins; selection.py chooses `auto` by validation on the history
- backtest.py      the rolling-origin backtest and `run_backtest`, the CLI's entry point
"""
