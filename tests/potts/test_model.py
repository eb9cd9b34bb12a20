"""PottsModel / ConditionalPotts: energies, conditionals, PLL, gauge, persistence, validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnpotts.errors import DataFormatError, ShapeError, ValidationError
from attnpotts.potts import ConditionalPotts, ExactPotts, PottsModel, zero_sum_gauge

from .conftest import random_factored_model


def brute_energy(model: PottsModel, s: np.ndarray) -> float:
    """H(s) = -sum_{i<j} J[i,j,s_i,s_j] - sum_i h[i,s_i], written as loops."""
    L = model.n_sites
    e = 0.0
    for i in range(L):
        e -= model.fields[i, s[i]]
        for j in range(i + 1, L):
            e -= model.couplings[i, j, s[i], s[j]]
    return e


def test_hand_computed_two_site_ising_like() -> None:
    # L = 2, q = 2, J[0,1] = [[1, -1], [-1, 1]], h = [[0.5, 0], [0, 0]]
    J = np.zeros((2, 2, 2, 2))
    J[0, 1] = [[1.0, -1.0], [-1.0, 1.0]]
    J[1, 0] = J[0, 1].T
    h = np.array([[0.5, 0.0], [0.0, 0.0]])
    m = PottsModel(h, J, beta=2.0)
    s = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_allclose(m.energy(s), [-1.5, 0.5, 1.0, -1.0], rtol=0, atol=1e-15)
    # P(s_0 = 0 | s_1 = 0) = e^{2*1.5} / (e^{2*1.5} + e^{2*(-1)})
    p = m.conditional_probabilities(s)
    expected = np.exp(3.0) / (np.exp(3.0) + np.exp(-2.0))
    assert p[0, 0, 0] == pytest.approx(expected, rel=1e-14)
    # logits at site 1 given s_0 = 1: beta * (J[1,0,a,1] + h[1,a]) = 2 * [-1, 1]
    np.testing.assert_allclose(m.conditional_logits(s)[2, 1], [-2.0, 2.0], atol=1e-15)


def test_energy_matches_loops(small_model: PottsModel) -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, size=(50, 4))
    np.testing.assert_allclose(
        small_model.energy(s), [brute_energy(small_model, x) for x in s], rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("fields", [True, False])
def test_conditionals_equal_ratio_of_joint_probabilities(fields: bool) -> None:
    model = random_factored_model(5, 3, K=1, seed=3, fields=fields, beta=1.3)
    exact = ExactPotts(model)
    L, q = model.n_sites, model.n_states
    p_joint = exact.probabilities.reshape((q,) * L)
    cond = model.conditional_probabilities(exact.states)
    worst = 0.0
    for n in range(0, exact.states.shape[0], 7):
        s = exact.states[n]
        for i in range(L):
            idx = [tuple(np.r_[s[:i], a, s[i + 1 :]]) for a in range(q)]
            joint = np.array([p_joint[k] for k in idx])
            worst = max(worst, float(np.abs(joint / joint.sum() - cond[n, i]).max()))
    assert worst < 1e-12


def test_logits_at_site_do_not_depend_on_its_own_state(small_model: PottsModel) -> None:
    rng = np.random.default_rng(1)
    s = rng.integers(0, 3, size=(20, 4))
    base = small_model.conditional_logits(s)
    for i in range(4):
        for a in range(3):
            t = s.copy()
            t[:, i] = a
            np.testing.assert_array_equal(small_model.conditional_logits(t)[:, i], base[:, i])


def test_pseudo_log_likelihood_definition(small_model: PottsModel) -> None:
    rng = np.random.default_rng(2)
    s = rng.integers(0, 3, size=(30, 4))
    w = rng.uniform(0.1, 2.0, size=30)
    p = small_model.conditional_probabilities(s)
    per_site = np.log(np.take_along_axis(p, s[..., None], -1)[..., 0])
    assert small_model.pseudo_log_likelihood(s) == pytest.approx(per_site.sum(), rel=1e-13)
    assert small_model.pseudo_log_likelihood(s, w) == pytest.approx(
        (w * per_site.sum(1)).sum(), rel=1e-13
    )
    assert small_model.pseudo_log_likelihood(s, w, reduction="mean") == pytest.approx(
        (w * per_site.sum(1)).sum() / (w.sum() * 4), rel=1e-13
    )
    np.testing.assert_allclose(
        small_model.pseudo_log_likelihood(s, reduction="none"), per_site.sum(1), rtol=1e-13
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_inputs_match_numpy(small_model: PottsModel, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(4)
    s = rng.integers(0, 3, size=(25, 4))
    t = torch.as_tensor(s)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for name in ("conditional_logits", "conditional_probabilities", "log_conditionals", "energy"):
        got = getattr(small_model, name)(t, dtype=dtype)
        assert isinstance(got, torch.Tensor) and got.dtype == dtype
        np.testing.assert_allclose(got.numpy(), getattr(small_model, name)(s), rtol=tol, atol=tol)
    pll = small_model.pseudo_log_likelihood(t, torch.ones(25, dtype=dtype), dtype=dtype)
    assert float(pll) == pytest.approx(small_model.pseudo_log_likelihood(s), rel=tol)


def test_numpy_float32_output(small_model: PottsModel) -> None:
    s = np.zeros((3, 4), dtype=np.int8)
    out = small_model.conditional_logits(s, dtype=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, small_model.conditional_logits(s), rtol=1e-6)


def test_zero_sum_gauge_keeps_conditionals_and_shifts_energy_by_constant() -> None:
    rng = np.random.default_rng(5)
    L, q = 5, 4
    J = rng.normal(size=(L, L, q, q))
    J = 0.5 * (J + J.transpose(1, 0, 3, 2))
    J[np.arange(L), np.arange(L)] = 0.0
    model = PottsModel(rng.normal(size=(L, q)), J, beta=0.9)
    gauged = model.zero_sum_gauge()
    assert isinstance(gauged, PottsModel)
    np.testing.assert_allclose(gauged.couplings.sum(axis=2), 0.0, atol=1e-13)
    np.testing.assert_allclose(gauged.couplings.sum(axis=3), 0.0, atol=1e-13)
    np.testing.assert_allclose(gauged.fields.sum(axis=1), 0.0, atol=1e-13)
    s = rng.integers(0, q, size=(200, L))
    np.testing.assert_allclose(
        gauged.conditional_probabilities(s), model.conditional_probabilities(s), atol=1e-13
    )
    diff = gauged.energy(s) - model.energy(s)
    np.testing.assert_allclose(diff, diff[0], atol=1e-12)
    # idempotent, and the same as the array function
    np.testing.assert_allclose(gauged.zero_sum_gauge().couplings, gauged.couplings, atol=1e-14)
    J0, h0 = zero_sum_gauge(J, model.fields)
    np.testing.assert_array_equal(J0, gauged.couplings)
    np.testing.assert_array_equal(h0, gauged.fields)


def test_gauge_on_asymmetric_conditional_model() -> None:
    rng = np.random.default_rng(6)
    L, q = 4, 3
    J = rng.normal(size=(L, L, q, q))
    J[np.arange(L), np.arange(L)] = 0.0
    cond = ConditionalPotts(rng.normal(size=(L, q)), J, beta=1.1)
    assert not cond.is_symmetric
    gauged = cond.zero_sum_gauge()
    s = rng.integers(0, q, size=(100, L))
    np.testing.assert_allclose(
        gauged.conditional_probabilities(s), cond.conditional_probabilities(s), atol=1e-13
    )
    sym = cond.symmetrized()
    assert isinstance(sym, PottsModel) and sym.is_symmetric
    np.testing.assert_allclose(sym.couplings, 0.5 * (J + J.transpose(1, 0, 3, 2)), rtol=0, atol=0)


def test_from_factors_is_sum_of_kronecker_products() -> None:
    model = random_factored_model(4, 3, K=2, seed=7, fields=False)
    site, colour = model.site_couplings, model.colour_couplings
    assert site is not None and colour is not None
    for i, j, a, b in itertools.product(range(4), range(4), range(3), range(3)):
        expected = site[0, i, j] * colour[0, a, b] + site[1, i, j] * colour[1, a, b]
        assert model.couplings[i, j, a, b] == pytest.approx(expected, abs=1e-15)


def test_beta_scaling_and_absorb() -> None:
    model = random_factored_model(4, 3, seed=8, beta=1.7)
    s = np.random.default_rng(0).integers(0, 3, size=(10, 4))
    absorbed = model.absorb_beta()
    assert absorbed.beta == 1.0
    np.testing.assert_allclose(
        absorbed.conditional_logits(s), model.conditional_logits(s), rtol=1e-14
    )
    assert model.with_beta(0.5).beta == 0.5
    np.testing.assert_array_equal(model.with_beta(0.5).couplings, model.couplings)


@pytest.mark.parametrize("cls", [PottsModel, ConditionalPotts])
def test_save_load_round_trip_is_exact(tmp_path, cls) -> None:
    model = random_factored_model(5, 4, K=2, seed=9, beta=0.37)
    if cls is ConditionalPotts:
        rng = np.random.default_rng(0)
        J = rng.normal(size=(5, 5, 4, 4))
        J[np.arange(5), np.arange(5)] = 0
        model = ConditionalPotts(model.fields, J, 0.37)
    path = model.save(tmp_path / "model")
    assert path.suffix == ".npz"
    back = ConditionalPotts.load(path)
    assert type(back) is cls
    np.testing.assert_array_equal(back.couplings, model.couplings)
    np.testing.assert_array_equal(back.fields, model.fields)
    assert back.beta == model.beta
    if cls is PottsModel:
        np.testing.assert_array_equal(back.site_couplings, model.site_couplings)
        np.testing.assert_array_equal(back.colour_couplings, model.colour_couplings)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary leftovers


def test_load_rejects_garbage(tmp_path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(DataFormatError, match=r"bad\.npz"):
        PottsModel.load(bad)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataFormatError, match="missing array"):
        PottsModel.load(tmp_path / "other.npz")


def test_validation_errors() -> None:
    J = np.zeros((3, 3, 2, 2))
    with pytest.raises(ShapeError, match=r"\(L, L, q, q\)"):
        PottsModel(None, np.zeros((3, 3, 2)))
    with pytest.raises(ShapeError, match="fields must have shape"):
        PottsModel(np.zeros((3, 3)), J)
    with pytest.raises(ValidationError, match="beta"):
        PottsModel(None, J, beta=-1.0)
    Jnan = J.copy()
    Jnan[0, 1, 0, 0] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        PottsModel(None, Jnan)
    Jasym = J.copy()
    Jasym[0, 1, 0, 1] = 1.0
    with pytest.raises(ValidationError, match=r"J\[i, j, a, b\] == J\[j, i, b, a\]"):
        PottsModel(None, Jasym)
    Jdiag = J.copy()
    Jdiag[1, 1, 0, 0] = 1.0
    with pytest.raises(ValidationError, match="self-couplings"):
        ConditionalPotts(None, Jdiag)
    model = PottsModel(None, J)
    with pytest.raises(ShapeError, match="length 4"):
        model.energy(np.zeros((2, 4), dtype=int))
    with pytest.raises(ValidationError, match=r"0\.\.1"):
        model.energy(np.full((2, 3), 2))
    with pytest.raises(ValidationError, match="integers"):
        model.energy(np.zeros((2, 3)))
    with pytest.raises(ValidationError, match="symmetric"):
        PottsModel.from_factors(np.triu(np.ones((3, 3)), 1), np.eye(2))
    with pytest.raises(ShapeError, match="same number K"):
        PottsModel.from_factors(np.zeros((2, 3, 3)), np.eye(2))


@settings(max_examples=30, deadline=None)
@given(
    L=st.integers(1, 5),
    q=st.integers(2, 4),
    seed=st.integers(0, 2**31),
    beta=st.floats(0.0, 3.0),
)
def test_gauge_invariance_property(L: int, q: int, seed: int, beta: float) -> None:
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(L, L, q, q))
    J = 0.5 * (J + J.transpose(1, 0, 3, 2))
    J[np.arange(L), np.arange(L)] = 0.0
    model = PottsModel(rng.normal(size=(L, q)), J, beta)
    s = rng.integers(0, q, size=(8, L))
    np.testing.assert_allclose(
        model.zero_sum_gauge().log_conditionals(s), model.log_conditionals(s), atol=1e-11
    )
