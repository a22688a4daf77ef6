"""MASE, sMAPE and the SPEC RG elasticity metrics on arrays small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.metrics import elasticity, mase, seasonal_naive_scale, smape


def a(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def test_mase_scales_by_the_in_sample_seasonal_naive_error() -> None:
    history = a(1, 2, 3, 5, 4, 6)  # season 2: |3-1|, |5-2|, |4-3|, |6-5| -> mean 7/4
    assert seasonal_naive_scale(history, 2) == pytest.approx(1.75)
    # errors 1 and 2.5 -> mean 1.75 -> MASE 1
    assert mase(a(10, 20), a(11, 17.5), history, 2) == pytest.approx(1.0)
    assert mase(a(10, 20), a(10, 20), history, 2) == 0.0


def test_mase_of_a_constant_history_is_undefined_not_zero() -> None:
    assert math.isnan(mase(a(1), a(2), a(5, 5, 5), 1))


def test_mase_needs_more_history_than_one_season() -> None:
    with pytest.raises(ValueError, match="more than 3 values"):
        seasonal_naive_scale(a(1, 2, 3), 3)


def test_smape_in_percent_with_zero_over_zero_counting_zero() -> None:
    # 2*|110-100|/210, 2*|50-100|/150, 0/0 -> (0.095238 + 0.666667 + 0) / 3
    assert smape(a(100, 100, 0), a(110, 50, 0)) == pytest.approx(100 * (20 / 210 + 100 / 150) / 3)
    assert smape(a(0), a(5)) == pytest.approx(200.0)


def test_elasticity_by_hand() -> None:
    demand = a(10, 10, 20, 0)
    supply = a(5, 10, 30, 2)
    e = elasticity(demand, supply)
    # theta over d > 0 only: under (5/10, 0, 0) -> 16.67 %, over (0, 0, 10/20) -> 16.67 %
    assert e.theta_u == pytest.approx(100 * 0.5 / 3)
    assert e.theta_o == pytest.approx(100 * 0.5 / 3)
    # tau over every step: s < d once (25 %), s > d twice (50 %: the d = 0 step counts)
    assert e.tau_u == pytest.approx(25.0)
    assert e.tau_o == pytest.approx(50.0)


def test_elasticity_of_exact_supply_is_zero_everywhere() -> None:
    e = elasticity(a(3, 4), a(3, 4))
    assert (e.theta_u, e.theta_o, e.tau_u, e.tau_o) == (0.0, 0.0, 0.0, 0.0)


def test_theta_without_positive_demand_is_undefined() -> None:
    e = elasticity(a(0, 0), a(1, 0))
    assert math.isnan(e.theta_u) and math.isnan(e.theta_o)
    assert e.tau_o == 50.0


def test_elasticity_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match="same shape"):
        elasticity(a(1, 2), a(1))
