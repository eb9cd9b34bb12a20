from __future__ import annotations

import math

import numpy as np
import pytest

from attnpotts.errors import ShapeError
from attnpotts.experiments.fits import fit_power_law, local_slope


def test_exact_power_law_is_recovered() -> None:
    m = np.array([300.0, 1000.0, 3000.0, 10000.0, 30000.0])
    y = 5.0 * m**-1.0
    fit = fit_power_law(m, y, 0.05 * y)
    assert fit is not None
    assert fit.slope == pytest.approx(-1.0, abs=1e-12)
    assert fit.intercept == pytest.approx(math.log(5.0), abs=1e-10)
    assert fit.chi2_dof == pytest.approx(0.0, abs=1e-20)
    # with a perfect fit the s.e. comes from the error bars alone: 5% relative on every point
    lx = np.log(m)
    expected = 0.05 / math.sqrt(np.sum((lx - lx.mean()) ** 2))
    assert fit.slope_stderr == pytest.approx(expected, rel=1e-10)
    assert fit.n_points == 5


def test_noisy_slopes_fall_within_their_error_bars() -> None:
    """Over many synthetic curves the fitted slope is within 2 s.e. of the truth ~95% of the time."""
    rng = np.random.default_rng(0)
    m = np.array([300.0, 1000.0, 3000.0, 10000.0])
    truth = -0.8
    hits = 0
    n = 400
    for _ in range(n):
        y = 2.0 * m**truth
        se = 0.1 * y
        noisy = y + se * rng.standard_normal(m.size)
        fit = fit_power_law(m, noisy, se)
        assert fit is not None
        hits += abs(fit.slope - truth) <= 2 * fit.slope_stderr
    assert 0.9 <= hits / n <= 1.0


def test_points_that_cannot_be_on_a_log_axis_are_left_out() -> None:
    m = [100.0, 300.0, 1000.0, 3000.0]
    y = [0.1, 0.03, -0.001, 0.0033]
    fit = fit_power_law(m, y, [0.01, 0.003, 0.001, 0.0003])
    assert fit is not None and fit.n_points == 3
    assert fit_power_law([100.0, 300.0], [0.1, -0.1], [0.01, 0.01]) is None
    assert fit_power_law([100.0, 100.0], [0.1, 0.2], [0.01, 0.01]) is None
    assert fit_power_law([100.0, 300.0, 1000.0], [0.1, 0.03, 0.01], [0.0, 0.0, 0.0]) is None


def test_scatter_beyond_the_error_bars_widens_the_slope_error() -> None:
    m = np.array([100.0, 300.0, 1000.0, 3000.0, 10000.0])
    y = m**-1.0 * np.array([1.0, 1.5, 0.7, 1.4, 0.8])
    tight = fit_power_law(m, y, 0.001 * y)
    assert tight is not None and tight.chi2_dof is not None and tight.chi2_dof > 1
    lx = np.log(m)
    unscaled = 0.001 / math.sqrt(np.sum((lx - lx.mean()) ** 2))
    assert tight.slope_stderr == pytest.approx(unscaled * math.sqrt(tight.chi2_dof), rel=1e-10)


def test_local_slope() -> None:
    seg = local_slope([1000.0, 10000.0], [0.01, 0.001], [0.001, 0.0001])
    assert seg is not None
    assert seg.slope == pytest.approx(-1.0)
    assert seg.slope_stderr == pytest.approx(math.hypot(0.1, 0.1) / math.log(10.0))
    flat = local_slope([1000.0, 10000.0], [0.01, 0.01], [0.001, 0.001])
    assert flat is not None and flat.slope == pytest.approx(0.0, abs=1e-12)
    assert local_slope([1000.0, 10000.0], [0.01, -0.001], [0.001, 0.001]) is None
    with pytest.raises(ShapeError):
        local_slope([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(ShapeError):
        fit_power_law([1.0, 2.0], [1.0], [1.0])
