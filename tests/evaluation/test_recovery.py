"""Coupling-recovery metrics: exact values on constructed cases, gauges, head matching."""

from __future__ import annotations

import numpy as np
import pytest

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.evaluation import (
    coupling_recovery,
    factor_correlations,
    pearson,
    relative_coupling_error,
)
from attnpotts.potts import PottsModel


def random_factors(L: int, q: int, K: int, seed: int, sparse: bool = False):
    rng = np.random.default_rng(seed)
    site = rng.normal(size=(K, L, L))
    site = 0.5 * (site + site.transpose(0, 2, 1))
    site[:, np.arange(L), np.arange(L)] = 0
    if sparse:
        mask = np.triu(rng.random((L, L)) < 0.3, 1)
        site = site * (mask | mask.T)
    colour = rng.normal(size=(K, q, q))
    colour = 0.5 * (colour + colour.transpose(0, 2, 1))
    return site, colour


def gauge_change(J: np.ndarray, seed: int) -> np.ndarray:
    """Add ``u[i, j, a] + v[i, j, b]`` to every block (keeps all conditionals up to fields)."""
    rng = np.random.default_rng(seed)
    L, q = J.shape[0], J.shape[2]
    u = rng.normal(size=(L, L, q))
    v = rng.normal(size=(L, L, q))
    G = J + u[:, :, :, None] + v[:, :, None, :]
    G[np.arange(L), np.arange(L)] = 0
    return G


def test_relative_error_exact_values() -> None:
    site, colour = random_factors(6, 3, 1, seed=1)
    J = PottsModel.from_factors(site, colour).couplings
    assert relative_coupling_error(J, gauge_change(J, 2)) == pytest.approx(0.0, abs=1e-12)
    assert relative_coupling_error(J, 2 * J) == pytest.approx(1.0)
    assert relative_coupling_error(J, np.zeros_like(J)) == pytest.approx(1.0)
    # asymmetric learned couplings: only J[i, j] for i < j is kept -> error of the lower half
    upper = J.copy()
    upper[np.tril_indices(6, -1)] = 0
    assert relative_coupling_error(J, upper) == pytest.approx(np.sqrt(0.5))
    with pytest.raises(ValidationError, match="vanish"):
        relative_coupling_error(np.zeros_like(J), J)
    with pytest.raises(ShapeError):
        relative_coupling_error(J, J[:5, :5])


def test_factor_correlations_scale_and_sign_gauge() -> None:
    site, colour = random_factors(7, 4, 1, seed=3)
    c = -2.5  # scale and sign gauge: A = c Jsite, V = Ucol / c, plus row/column shifts of V
    A = c * site[0]
    V = colour[0] / c + np.arange(4)[:, None] + 0.3 * np.arange(4)[None, :]
    fc = factor_correlations(A, V, site, colour)
    assert fc.attention == pytest.approx((1.0,)) and fc.value == pytest.approx((1.0,))
    # the wrong sign of the product shows in the value correlation
    fc_bad = factor_correlations(A, -V, site, colour)
    assert fc_bad.attention == pytest.approx((1.0,)) and fc_bad.value == pytest.approx((-1.0,))
    # softmax-like attention (asymmetric, non-negative) is only partially correlated
    rng = np.random.default_rng(0)
    noisy = A + rng.normal(scale=5.0, size=A.shape)
    assert 0 < factor_correlations(noisy, V, site, colour).attention[0] < 0.9


def test_factor_correlations_match_heads_to_components() -> None:
    site, colour = random_factors(8, 4, 3, seed=5)
    perm = [2, 0, 1]
    A = np.stack([3.0 * site[k] for k in perm])
    V = np.stack([colour[k] / 3.0 for k in perm])
    fc = factor_correlations(A, V, site, colour)
    assert fc.attention == pytest.approx((1.0,) * 3) and fc.value == pytest.approx((1.0,) * 3)
    assert dict(zip(fc.heads, fc.components, strict=True)) == {0: 2, 1: 0, 2: 1}
    # fewer heads than components: the best ones are matched
    fc2 = factor_correlations(A[:1], V[:1], site, colour)
    assert fc2.components == (2,)
    with pytest.raises(ShapeError, match="heads"):
        factor_correlations(A, V[:2], site, colour)


def test_coupling_recovery_report() -> None:
    site, colour = random_factors(10, 3, 1, seed=7, sparse=True)
    J = PottsModel.from_factors(site, colour, beta=1.0).couplings
    rep = coupling_recovery(
        J,
        gauge_change(0.5 * J, 1),
        attention=0.5 * site,
        values=colour,
        site_couplings=site,
        colour_couplings=colour,
    )
    assert rep.relative_error == pytest.approx(0.5)
    assert rep.coupling_correlation == pytest.approx(1.0)
    assert rep.score_correlation == pytest.approx(1.0)
    n_true = int((np.triu(site[0], 1) != 0).sum())
    assert rep.n_true_pairs == n_true and rep.top_pair_recovery == pytest.approx(1.0)
    assert rep.top_pair_recovery_apc is not None and 0.5 < rep.top_pair_recovery_apc <= 1.0
    d = rep.as_dict()
    assert d["attention_correlation"] == pytest.approx([1.0]) and d["value_correlation"] == [
        pytest.approx(1.0)
    ]
    # random learned couplings recover about the base rate of true pairs
    rng = np.random.default_rng(0)
    noise = rng.normal(size=J.shape)
    rep2 = coupling_recovery(J, noise)
    assert rep2.relative_error > 1.0 and abs(rep2.coupling_correlation) < 0.2
    with pytest.raises(ValidationError, match="together"):
        coupling_recovery(J, J, attention=site)


def test_pearson() -> None:
    assert pearson(np.arange(5), 3 * np.arange(5) + 1) == pytest.approx(1.0)
    assert np.isnan(pearson(np.ones(3), np.arange(3)))
    with pytest.raises(ShapeError):
        pearson(np.ones(3), np.ones(4))
