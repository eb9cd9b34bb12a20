"""Random site/colour matrices and the generalized Potts factory."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from attnpotts.errors import ValidationError
from attnpotts.potts import PottsModel
from attnpotts.potts.synthetic import (
    GeneralizedPottsSpec,
    dense_site_couplings,
    ferromagnetic_colour_couplings,
    gaussian_colour_couplings,
    generalized_potts,
    identity_colour_couplings,
    sparse_site_couplings,
)


def _symmetric_zero_diagonal(a: np.ndarray) -> None:
    np.testing.assert_array_equal(a, a.T)
    np.testing.assert_array_equal(np.diag(a), 0.0)


def test_sparse_graph_is_symmetric_with_the_requested_mean_degree() -> None:
    L, d = 400, 3.0
    J = sparse_site_couplings(L, d, scale=2.0, seed=1)
    _symmetric_zero_diagonal(J)
    n_pairs = L * (L - 1) // 2
    p = d / (L - 1)
    edges = int(np.count_nonzero(np.triu(J, 1)))
    # edge count is Binomial(n_pairs, p): 5 standard deviations
    assert abs(edges - n_pairs * p) < 5 * np.sqrt(n_pairs * p * (1 - p))
    w = J[np.triu(J, 1) != 0]
    # weights N(0, 4): chi-square test of the variance at the 1e-4 level
    chi2 = (w**2).sum() / 4.0
    assert stats.chi2.ppf(1e-4, w.size) < chi2 < stats.chi2.isf(1e-4, w.size)


def test_dense_site_couplings_have_variance_s2_over_L() -> None:
    L, s = 300, 1.5
    J = dense_site_couplings(L, scale=s, seed=2)
    _symmetric_zero_diagonal(J)
    w = J[np.triu_indices(L, 1)]
    chi2 = (w**2).sum() / (s**2 / L)
    assert stats.chi2.ppf(1e-4, w.size) < chi2 < stats.chi2.isf(1e-4, w.size)


def test_colour_matrices() -> None:
    U = gaussian_colour_couplings(6, scale=0.5, seed=3)
    np.testing.assert_array_equal(U, U.T)
    np.testing.assert_array_equal(identity_colour_couplings(4), np.eye(4))
    F = ferromagnetic_colour_couplings(6, scale=0.5, diagonal=2.0, seed=3)
    np.testing.assert_allclose(F - U, 2.0 * np.eye(6))


def test_seeded_and_reproducible() -> None:
    a = sparse_site_couplings(30, 3, seed=7)
    np.testing.assert_array_equal(a, sparse_site_couplings(30, 3, seed=7))
    assert not np.array_equal(a, sparse_site_couplings(30, 3, seed=8))


@pytest.mark.parametrize("site", ["sparse", "dense"])
@pytest.mark.parametrize("colour", ["gaussian", "identity", "ferromagnetic"])
def test_generalized_potts_factory(site, colour) -> None:
    m = generalized_potts(7, 4, site=site, colour=colour, beta=0.7, seed=5)
    assert isinstance(m, PottsModel) and m.beta == 0.7
    Jsite, Ucol = m.site_couplings[0], m.colour_couplings[0]
    np.testing.assert_allclose(m.couplings, np.einsum("ij,ab->ijab", Jsite, Ucol))
    np.testing.assert_array_equal(m.fields, 0.0)
    spec = GeneralizedPottsSpec(7, 4, site, colour=colour, beta=0.7)
    assert spec.build(seed=5).allclose(m)


def test_bad_inputs() -> None:
    with pytest.raises(ValidationError, match="mean_degree"):
        sparse_site_couplings(5, 10)
    with pytest.raises(ValidationError, match="n_sites"):
        dense_site_couplings(1)
    with pytest.raises(ValidationError, match="scale"):
        gaussian_colour_couplings(3, scale=-1)
    with pytest.raises(ValidationError, match="colour"):
        GeneralizedPottsSpec(colour="random")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="beta"):
        generalized_potts(5, 3, beta=float("nan"))
