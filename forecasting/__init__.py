"""Forecasting for predictive scaling. Not built yet: see the predictive-scaling issue."""
