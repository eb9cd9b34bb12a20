"""Diagnostics against processes with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.sampling import (
    autocorrelation,
    effective_sample_size,
    integrated_autocorr_time,
    mean_pairwise_hamming,
    split_rhat,
    trace_summary,
)


def _ar1(phi: float, n: int, C: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((n, C))
    x[0] = rng.standard_normal(C) / np.sqrt(1 - phi**2)
    noise = rng.standard_normal((n, C))
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_tau_of_ar1_matches_closed_form(phi: float) -> None:
    n, C = 20000, 8
    x = _ar1(phi, n, C, seed=int(phi * 10))
    exact = (1 + phi) / (1 - phi)
    tau = integrated_autocorr_time(x)
    # Madras-Sokal variance of the windowed estimator: var(tau) ~ 2 (2W + 1) tau^2 / N, W ~ 5 tau
    sigma = exact * np.sqrt(2 * (2 * 5 * exact + 1) / (n * C))
    assert abs(tau - exact) < 5 * sigma
    np.testing.assert_allclose(effective_sample_size(x), n * C / tau)
    rho = autocorrelation(x)
    assert rho[0] == pytest.approx(1.0)
    assert abs(rho[1] - phi) < 5 / np.sqrt(n * C)


def test_constant_trace() -> None:
    rho = autocorrelation(np.ones(10))
    np.testing.assert_array_equal(rho, np.eye(1, 10)[0])
    assert np.isnan(split_rhat(np.ones((10, 3))))


def test_split_rhat_detects_unmixed_chains() -> None:
    x = np.random.default_rng(0).standard_normal((1000, 4))
    assert split_rhat(x) < 1.01
    shifted = x + np.array([0.0, 0.0, 3.0, 3.0])
    assert split_rhat(shifted) > 1.5
    trend = x + np.linspace(0, 5, 1000)[:, None]  # non-stationary: halves differ
    assert split_rhat(trend) > 1.3  # halves 2.5 apart: sqrt((1.52 + 1.79) / 1.52) = 1.47
    s = trace_summary(x)
    assert s["n_chains"] == 4 and s["tau"] > 0 and s["stderr"] > 0


def test_bad_traces() -> None:
    with pytest.raises(ShapeError):
        integrated_autocorr_time(np.zeros((3, 3, 3)))
    with pytest.raises(ValidationError, match="NaN"):
        autocorrelation(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValidationError, match="at least 4"):
        split_rhat(np.zeros((3, 2)))


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 7), st.integers(1, 5), st.integers(2, 4), st.integers(0, 2**32 - 1))
def test_mean_pairwise_hamming_equals_brute_force(M: int, L: int, q: int, seed: int) -> None:
    s = np.random.default_rng(seed).integers(0, q, size=(M, L))
    brute = np.mean([np.mean(a != b) for a, b in itertools.combinations(s, 2)])
    assert mean_pairwise_hamming(s, q) == pytest.approx(brute, abs=1e-12)
