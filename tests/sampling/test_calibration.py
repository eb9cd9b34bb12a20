"""Temperature calibration against exact enumeration, and refusal of unreachable targets."""

from __future__ import annotations

import numpy as np
import pytest

from attnpotts.errors import UnreachableTargetError
from attnpotts.potts import ExactPotts
from attnpotts.potts.synthetic import generalized_potts
from attnpotts.sampling import calibrate_beta, distance_curve, ensemble_distance
from attnpotts.sampling.calibration import reliable_prefix


def exact_distance(model) -> float:
    p = ExactPotts(model).single_site_marginals()
    return float(1.0 - (p**2).sum(-1).mean())


def test_ensemble_distance_of_independent_uniform_samples() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, size=(500, 10, 7))
    d, se = ensemble_distance(s, 4)
    assert abs(d - 0.75) < 5 * se and se > 0


def test_calibrated_beta_hits_the_exact_distance() -> None:
    model = generalized_potts(6, 3, site="dense", colour="ferromagnetic", site_scale=2.0, seed=1)
    curve_top = exact_distance(model.with_beta(0.0))
    assert curve_top == pytest.approx(2 / 3)
    target = 0.55
    res = calibrate_beta(
        model, target, beta_max=6.0, n_temperatures=10, n_sweeps=1500, burn_in=300, tol=0.01, seed=3
    )
    exact = exact_distance(model.with_beta(res.beta))
    # the measured distance is within its error bar of the exact one at the returned beta
    assert abs(res.distance - exact) < 5 * res.stderr + 1e-3
    assert abs(exact - target) < res_tol(res)
    # the coarse curve decreases and its stderr is honest against exact values at ladder points
    c = res.curve
    assert c.valid.all()
    exact_curve = np.array([exact_distance(model.with_beta(b)) for b in c.betas])
    z = (c.distances - exact_curve) / np.maximum(c.stderr, 1e-12)
    assert np.abs(z).max() < 5


def res_tol(res) -> float:
    return max(0.01, 2 * res.stderr) + 5 * res.stderr


def test_unreachable_targets_are_refused() -> None:
    model = generalized_potts(6, 3, seed=1)
    with pytest.raises(UnreachableTargetError, match=r"1 - 1/q = 0\.667"):
        calibrate_beta(model, 0.8, n_temperatures=5, n_sweeps=200, burn_in=50, seed=0)
    with pytest.raises(UnreachableTargetError, match="measured range"):
        calibrate_beta(
            model, 0.05, beta_max=0.5, n_temperatures=5, n_sweeps=200, burn_in=50, seed=0
        )
    with pytest.raises(UnreachableTargetError, match=r"\(0, 1\)"):
        calibrate_beta(model, 1.5)


def test_reliable_prefix_stops_at_a_rise_or_a_large_rhat() -> None:
    d = np.array([0.9, 0.8, 0.7, 0.75, 0.6])
    se = np.full(5, 0.005)
    ok = np.ones(5)
    np.testing.assert_array_equal(reliable_prefix(d, se, ok), [1, 1, 1, 0, 0])
    # a rise within noise is fine
    np.testing.assert_array_equal(reliable_prefix(d, np.full(5, 0.05), ok), [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(
        reliable_prefix(np.array([0.9, 0.8, 0.7]), se[:3], np.array([1.0, 1.2, 1.0])), [1, 0, 0]
    )
    np.testing.assert_array_equal(
        reliable_prefix(np.array([0.9, 0.8]), se[:2], np.array([1.0, np.nan])), [1, 0]
    )


def test_distance_curve_on_a_small_model() -> None:
    model = generalized_potts(6, 3, seed=1)
    c = distance_curve(
        model, np.array([0.0, 0.5, 1.0]), n_replicas=4, n_sweeps=300, burn_in=100, seed=1
    )
    assert c.valid.all() and c.reachable == (c.distances.min(), c.distances.max())
    assert c.to_dict()["reachable"] == list(c.reachable)
