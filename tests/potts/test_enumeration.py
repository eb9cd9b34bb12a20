"""Exact enumeration: partition function, marginals, exact samples, limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from attnpotts.errors import EnumerationLimitError, ValidationError
from attnpotts.potts import MAX_STATES, ConditionalPotts, ExactPotts, PottsModel, all_states

from .conftest import random_factored_model


def test_all_states_lexicographic() -> None:
    s = all_states(3, 2)
    assert s.shape == (8, 3)
    np.testing.assert_array_equal(s[5], [1, 0, 1])
    assert len({tuple(r) for r in all_states(3, 3)}) == 27


def test_independent_sites_closed_form() -> None:
    # J = 0: log Z = sum_i logsumexp(beta h_i), marginals = softmax(beta h_i)
    rng = np.random.default_rng(0)
    h = rng.normal(size=(4, 3))
    model = PottsModel(h, np.zeros((4, 4, 3, 3)), beta=1.4)
    exact = ExactPotts(model)
    assert exact.log_partition == pytest.approx(logsumexp(1.4 * h, axis=1).sum(), rel=1e-13)
    soft = np.exp(1.4 * h - logsumexp(1.4 * h, axis=1, keepdims=True))
    np.testing.assert_allclose(exact.single_site_marginals(), soft, atol=1e-13)


def test_two_site_ising_partition_function() -> None:
    # q = 2, L = 2, J[0,1] = diag(K, K): Z = 2 e^{beta K} + 2
    K, beta = 0.7, 1.3
    J = np.zeros((2, 2, 2, 2))
    J[0, 1] = J[1, 0] = np.eye(2) * K
    exact = ExactPotts(PottsModel(None, J, beta))
    assert exact.log_partition == pytest.approx(np.log(2 * np.exp(beta * K) + 2), rel=1e-14)


def test_marginals_consistent() -> None:
    exact = ExactPotts(random_factored_model(4, 3, seed=2))
    p1 = exact.single_site_marginals()
    p2 = exact.pair_marginals()
    np.testing.assert_allclose(p1.sum(1), 1.0, atol=1e-13)
    np.testing.assert_allclose(
        p2.sum(axis=3), np.broadcast_to(p1[:, None, :], (4, 4, 3)), atol=1e-13
    )
    np.testing.assert_allclose(p2[1, 1], np.diag(p1[1]), atol=1e-14)
    np.testing.assert_allclose(p2[0, 2], p2[2, 0].T, atol=1e-14)


def test_exact_samples_follow_distribution() -> None:
    exact = ExactPotts(random_factored_model(3, 3, seed=4, beta=0.5))
    n = 200_000
    samples = exact.sample(n, seed=1)
    codes = (samples.astype(int) * np.array([9, 3, 1])).sum(1)
    freq = np.bincount(codes, minlength=27) / n
    # multinomial standard error per cell; 5 sigma bound over 27 cells
    se = np.sqrt(exact.probabilities * (1 - exact.probabilities) / n)
    assert np.all(np.abs(freq - exact.probabilities) < 5 * se + 1e-12)
    np.testing.assert_array_equal(exact.sample(10, seed=3), exact.sample(10, seed=3))


def test_conditional_entropy_is_mean_site_entropy() -> None:
    model = random_factored_model(3, 2, seed=5)
    exact = ExactPotts(model)
    p = model.conditional_probabilities(exact.states)
    h = -(p * np.log(p)).sum(-1).mean(1)
    assert exact.conditional_entropy() == pytest.approx(exact.probabilities @ h, rel=1e-13)


def test_refuses_large_systems() -> None:
    with pytest.raises(EnumerationLimitError, match="MCMC"):
        all_states(30, 3)
    assert 3**13 <= MAX_STATES < 3**14
    with pytest.raises(ValidationError, match="symmetrized"):
        ExactPotts(ConditionalPotts(None, np.zeros((2, 2, 2, 2))))  # type: ignore[arg-type]
