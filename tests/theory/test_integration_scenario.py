"""Integration rules, the scenario's derived quantities and the proximal step."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.theory import Scenario, SolverOptions, centering_basis, make_ucol
from attnpotts.theory._channel import _prox, softmax
from attnpotts.theory._gauss import gauss_hermite, randomized_qmc


def test_gauss_hermite_exact_moments() -> None:
    rule = gauss_hermite(2, 6)
    x, y = rule.nodes.T
    w = rule.weights
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    # Gaussian moments: E x^2 = 1, E x^4 = 3, E x^2 y^2 = 1, E x^6 y^4 = 15 * 3 (degree <= 11).
    assert w @ x**2 == pytest.approx(1.0, abs=1e-13)
    assert w @ x**4 == pytest.approx(3.0, abs=1e-12)
    assert w @ (x**2 * y**2) == pytest.approx(1.0, abs=1e-13)
    assert w @ (x**6 * y**4) == pytest.approx(45.0, abs=1e-10)
    assert w @ (x**3 * y) == pytest.approx(0.0, abs=1e-13)


def test_qmc_rule_groups_and_accuracy() -> None:
    rule = randomized_qmc(3, 1024, 4, seed=1)
    assert rule.nodes.shape == (4096, 3)
    assert rule.n_groups == 4
    # E exp(a . x) = exp(|a|^2 / 2); each randomization is within a few standard errors.
    a = np.array([0.3, -0.2, 0.1])
    vals = np.exp(rule.nodes @ a)
    per_group = [vals[rule.groups == g].mean() for g in range(4)]
    exact = np.exp(a @ a / 2)
    se = np.std(per_group, ddof=1) / 2
    assert abs(np.mean(per_group) - exact) < max(5 * se, 1e-6)
    assert abs(np.mean(per_group) - exact) < 1e-3
    # Same seed, same rule.
    np.testing.assert_array_equal(rule.nodes, randomized_qmc(3, 1024, 4, seed=1).nodes)


def _enumerated_feature_moments(ucol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of Phi = Ucol[:, s] over uniform s, by enumeration."""
    q = ucol.shape[0]
    feats = np.array([ucol[:, s] for s in range(q)])  # (q states, q colours)
    mean = feats.mean(axis=0)
    cov = (feats - mean).T @ (feats - mean) / q
    return mean, cov


@pytest.mark.parametrize("kind,q", [("identity", 3), ("gaussian", 4), ("gaussian", 2)])
def test_scenario_readout_matches_enumeration(kind: str, q: int) -> None:
    ucol = make_ucol(kind, q, seed=3)
    scn = Scenario(ucol, beta=2.0, rho=0.5)
    mean, cov = _enumerated_feature_moments(ucol)
    pi = np.eye(q) - 1.0 / q
    np.testing.assert_allclose(scn.readout @ scn.readout.T, pi @ cov @ pi, atol=1e-12)
    np.testing.assert_allclose(scn.mean_dir, pi @ mean, atol=1e-12)
    assert scn.has_mean == (kind == "gaussian")
    assert scn.rank == np.linalg.matrix_rank(pi @ cov @ pi)


def test_centering_basis_is_orthonormal() -> None:
    for q in (2, 3, 7):
        p = centering_basis(q)
        assert p.shape == (q, q - 1)
        np.testing.assert_allclose(p.T @ p, np.eye(q - 1), atol=1e-12)
        np.testing.assert_allclose(p.sum(axis=0), 0.0, atol=1e-12)
    # written out (Helmert), not whatever basis a LAPACK build returns for the degenerate subspace
    s2, s6 = np.sqrt(2.0), np.sqrt(6.0)
    np.testing.assert_array_almost_equal(
        centering_basis(3), [[1 / s2, 1 / s6], [-1 / s2, 1 / s6], [0.0, -2 / s6]], decimal=15)
    assert centering_basis(1).shape == (1, 0)


def test_readout_is_fixed_by_the_scenario_not_by_lapack() -> None:
    """With repeated eigenvalues (Ucol = I) the eigenvectors are LAPACK's choice; the readout is
    instead ``P M^(1/2)`` in the Helmert basis, so ``Ucol = I`` gives ``sqrt(c) P`` exactly."""
    for q in (3, 5):
        scn = Scenario(np.eye(q), beta=1.0)
        c = 1.0 / q  # Pi I Pi I^T Pi / q = Pi / q
        np.testing.assert_allclose(scn.readout, np.sqrt(c) * centering_basis(q), atol=1e-14)
    u = make_ucol("gaussian", 4, seed=3)
    scn = Scenario(u, beta=1.0)
    pi = np.eye(4) - 0.25
    p = centering_basis(4)
    assert scn.rank == 3
    np.testing.assert_allclose(p.T @ scn.readout, (p.T @ scn.readout).T, atol=1e-12)  # the PSD root
    np.testing.assert_allclose(scn.readout @ scn.readout.T, pi @ (u @ pi @ u.T / 4) @ pi, atol=1e-12)


def test_scenario_validation() -> None:
    with pytest.raises(ValidationError, match="symmetric"):
        Scenario(np.array([[1.0, 2.0], [0.0, 1.0]]), beta=1.0)
    with pytest.raises(ShapeError):
        Scenario(np.ones((2, 3)), beta=1.0)
    with pytest.raises(ValidationError, match="beta"):
        Scenario(np.eye(3), beta=-1.0)
    with pytest.raises(ValidationError, match="rho"):
        Scenario(np.eye(3), beta=1.0, rho=0.0)
    with pytest.raises(ValidationError, match="do not depend"):
        Scenario(np.ones((3, 3)), beta=1.0)
    with pytest.raises(ValidationError, match="unknown Ucol"):
        make_ucol("sparse", 3)
    with pytest.raises(ValidationError, match="qmc_points"):
        SolverOptions(qmc_points=100)


def test_prox_matches_direct_minimisation_and_hessian() -> None:
    rng = np.random.default_rng(0)
    q, r = 4, 3
    ls = rng.normal(size=(q, r))
    cs = rng.normal(size=q)
    a = rng.normal(size=(r, r))
    v = a @ a.T + 0.5 * np.eye(r)
    vinv = np.linalg.inv(v)
    omega = 3 * rng.normal(size=(5, r))
    zhat, p, kinv = _prox(omega, vinv, ls, cs, None)
    for i, y in itertools.product(range(5), range(q)):

        def obj(z: np.ndarray, i: int = i, y: int = y) -> float:
            d = z - omega[i]
            logits = ls @ z + cs
            return 0.5 * d @ vinv @ d - logits[y] + np.log(np.exp(logits).sum())

        ref = minimize(obj, omega[i], method="BFGS", options={"gtol": 1e-10}).x
        np.testing.assert_allclose(zhat[i, y], ref, atol=1e-6)
        np.testing.assert_allclose(p[i, y], softmax(ls @ zhat[i, y] + cs), atol=1e-12)
    # d zhat / d omega = (V^-1 + H)^-1 V^-1 = kinv V^-1, by central finite differences.
    h = 1e-5
    for k in range(r):
        e = np.zeros(r)
        e[k] = h
        zp, _, _ = _prox(omega + e, vinv, ls, cs, None)
        zm, _, _ = _prox(omega - e, vinv, ls, cs, None)
        fd = (zp - zm) / (2 * h)  # (5, q, r)
        analytic = (kinv @ vinv)[..., :, k]
        np.testing.assert_allclose(fd, analytic, atol=1e-6)
