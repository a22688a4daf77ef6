"""Every registered model fits, forecasts the right length, and keeps lower <= mean <= upper."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.errors import ModelError
from forecasting.forecast import ModelSpec
from forecasting.harmonic import fourier_terms
from forecasting.models import BASELINE, MODELS, make_model
from forecasting.series import Series
from forecasting.smoothing import FittedHoltWinters
from forecasting.window import MAX_FIT_POINTS, FitWindow, fit_window
from tests.forecasting.synthetic import hourly, seasonal_values


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("periods", [(24,), ()], ids=["seasonal", "no-season"])
def test_model_forecasts_steps_with_an_ordered_interval(
    name: str, periods: tuple[int, ...], daily_hourly: Series
) -> None:
    forecast = make_model(name, ModelSpec(periods)).fit(daily_hourly).forecast(30)
    for values in forecast:
        assert values.shape == (30,)
        assert np.isfinite(values).all()
    assert (forecast.lower <= forecast.mean).all()
    assert (forecast.mean <= forecast.upper).all()
    assert (forecast.lower < forecast.upper).all()


@pytest.mark.parametrize("name", sorted(set(MODELS) - {BASELINE}))
def test_seasonal_models_follow_the_cycle(name: str, daily_hourly: Series) -> None:
    forecast = make_model(name, ModelSpec((24,))).fit(daily_hourly).forecast(24)
    truth = 10 + 3 * np.sin(2 * np.pi * np.arange(240, 264) / 24)
    assert np.mean(np.abs(forecast.mean - truth)) < 0.6  # noise sd 0.3; the cycle spans 6


def test_seasonal_naive_is_exact_on_a_periodic_series() -> None:
    cycle = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    series = Series(np.tile(cycle, 5), 60.0)
    forecast = make_model(BASELINE, ModelSpec((6,))).fit(series).forecast(14)
    np.testing.assert_array_equal(forecast.mean, np.tile(cycle, 3)[:14])
    np.testing.assert_array_equal(forecast.lower, forecast.mean)  # no in-sample error


def test_seasonal_naive_uses_the_longest_period_and_widens_by_whole_seasons() -> None:
    values = np.arange(12, dtype=np.float64)  # each 3-step season is 3 higher than the last
    fitted = make_model(BASELINE, ModelSpec((2, 3), quantile=0.8413447)).fit(Series(values, 1.0))
    forecast = fitted.forecast(6)
    np.testing.assert_array_equal(forecast.mean, [9, 10, 11, 9, 10, 11])
    # sigma = 3 (every seasonal difference); z = 1; k whole seasons ahead -> 3 * sqrt(k + 1)
    np.testing.assert_allclose(
        forecast.upper - forecast.mean, 3 * np.sqrt([1, 1, 1, 2, 2, 2]), rtol=1e-5
    )


def test_naive_without_a_season_repeats_the_last_value() -> None:
    forecast = make_model(BASELINE, ModelSpec()).fit(Series(np.array([1.0, 4, 2]), 1.0))
    np.testing.assert_array_equal(forecast.forecast(3).mean, [2, 2, 2])


def test_a_wider_quantile_gives_a_wider_interval(daily_hourly: Series) -> None:
    widths = []
    for quantile in (0.8, 0.95):
        f = make_model("holt_winters", ModelSpec((24,), quantile)).fit(daily_hourly).forecast(5)
        widths.append(f.upper - f.lower)
    assert (widths[1] > widths[0]).all()


def test_holt_winters_variance_grows_from_sigma_squared() -> None:
    fitted = FittedHoltWinters(
        result=None, alpha=0.5, beta=0.1, gamma=0.2, phi=0.9, season=2, sigma2=4.0, z=1.0
    )
    # c1 = 0.5 + 0.1 * 0.9 = 0.59; c2 = 0.5 + 0.1 * (0.9 + 0.81) + 0.2 = 0.871
    np.testing.assert_allclose(
        fitted.variance(3), 4.0 * np.array([1, 1 + 0.59**2, 1 + 0.59**2 + 0.871**2])
    )


def test_forecasts_of_non_negative_history_stay_non_negative() -> None:
    values = np.maximum(seasonal_values(240, noise=2.0) - 10, 0)  # zero half of each day
    for name in MODELS:
        forecast = make_model(name, ModelSpec((24,))).fit(hourly(values)).forecast(24)
        assert (forecast.lower >= 0).all(), name


def test_long_histories_fit_a_coarser_window() -> None:
    # a week at 5 min is 2016 steps: four weeks, averaged over 4 steps (20 min), is 2016 points
    assert fit_window((288, 2016), 30_000) == FitWindow(length=8064, factor=4)
    assert fit_window((288,), 30_000) == FitWindow(length=1152, factor=1)
    assert fit_window((), 30_000) == FitWindow(length=1000, factor=1)
    assert fit_window((24,), 50) == FitWindow(length=50, factor=1)
    assert fit_window((2016,), 10**6).length // fit_window((2016,), 10**6).factor <= MAX_FIT_POINTS


def test_a_coarsened_fit_forecasts_at_the_series_step() -> None:
    period = 2016  # a week at 5 min
    t = np.arange(period * 4)
    series = Series(100 + 20 * np.sin(2 * np.pi * t / period), 300.0)
    forecast = make_model("holt_winters", ModelSpec((period,))).fit(series).forecast(12)
    assert forecast.mean.shape == (12,)
    assert len(set(forecast.mean[:4])) == 1  # one 20-minute block: one value
    truth = 100 + 20 * np.sin(2 * np.pi * np.arange(len(t), len(t) + 12) / period)
    np.testing.assert_allclose(forecast.mean, truth, atol=1.0)


def test_fourier_terms_drop_the_zero_sine_at_the_nyquist_harmonic() -> None:
    terms = fourier_terms(0, 8, (4,), harmonics=3)
    assert terms is not None
    assert terms.shape == (8, 3)  # k=1: sin, cos; k=2 = 4/2: cos only
    np.testing.assert_allclose(terms[:, 2], [1, -1, 1, -1, 1, -1, 1, -1], atol=1e-12)
    assert fourier_terms(0, 8, ()) is None


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ModelError, match="unknown model 'prophet'; known: seasonal_naive, "):
        make_model("prophet", ModelSpec())


def test_too_short_a_history_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="seasonal_naive: needs more than 24 values"):
        make_model(BASELINE, ModelSpec((24,))).fit(Series(np.ones(24), 1.0))


@pytest.mark.parametrize(
    "spec", [{"quantile": 0.5}, {"quantile": 1.0}, {"periods": (24, 12)}, {"periods": (1,)}]
)
def test_bad_specs_are_rejected(spec: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ModelSpec(**spec)  # type: ignore[arg-type]
