"""The mean-field start of factored attention against dense oracles; its wiring into FactoredDCA
and the default iterations it implies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attnpotts.dca import (
    FACTORED_ITER_AT_1000,
    FACTORED_ITER_PER_DOUBLING,
    FACTORED_ITER_SHRINK_POWER,
    FACTORED_MAX_ITER,
    FACTORED_MAX_ITER_RANDOM,
    FACTORED_MIN_ITER,
    FactoredDCA,
    estimate_memory,
    factored_iterations,
    prepare_data,
)
from attnpotts.dca import factored_start as fs
from attnpotts.errors import ValidationError
from attnpotts.evaluation import apc
from attnpotts.models import FactoredAttention


def _dense_mean_field_scores(states: np.ndarray, w: np.ndarray, q: int, lam: float) -> np.ndarray:
    """mfDCA written out: one-hot frequencies, pseudocount, covariance, inverse, gauge, norm, APC."""
    N, L = states.shape
    x = np.zeros((N, L, q))
    x[np.arange(N)[:, None], np.arange(L)[None, :], states] = 1.0
    w = w / w.sum()
    f1 = (1 - lam) * np.einsum("n,nia->ia", w, x) + lam / q
    f2 = (1 - lam) * np.einsum("n,nia,njb->iajb", w, x, x) + lam / q**2
    for i in range(L):
        f2[i, :, i, :] = np.diag(f1[i])
    C = f2 - np.einsum("ia,jb->iajb", f1, f1)
    r = q - 1
    J = -np.linalg.inv(C[:, :r, :, :r].reshape(L * r, L * r)).reshape(L, r, L, r).transpose(0, 2, 1, 3)
    J = J - J.mean(2, keepdims=True) - J.mean(3, keepdims=True) + J.mean((2, 3), keepdims=True)
    S = np.sqrt((J**2).sum((2, 3)))
    np.fill_diagonal(S, 0.0)
    return np.asarray(apc(S))


def _data(L: int = 8, q: int = 4, N: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    states = rng.integers(0, q, (N, L))
    states[:, 5] = np.where(rng.random(N) < 0.8, states[:, 1], states[:, 5])  # one coupled pair
    return states, rng.uniform(0.5, 1.5, N)


@pytest.mark.parametrize("lam", [0.5, 0.1])
def test_mean_field_scores_equal_the_dense_formulation(lam: float) -> None:
    states, w = _data()
    got = fs.mean_field_scores(states, w, 4, pseudocount=lam)
    np.testing.assert_allclose(got, _dense_mean_field_scores(states, w, 4, lam), rtol=1e-10, atol=1e-12)
    assert np.unravel_index(np.argmax(got), got.shape) in ((1, 5), (5, 1))
    with pytest.raises(ValidationError, match="pseudocount"):
        fs.mean_field_scores(states, w, 4, pseudocount=1.0)


def test_spectral_query_key_reproduce_the_scaled_map_without_noise() -> None:
    """L <= d: Q K^T / sqrt(d) is sharpness times the standardised map, exactly; noise is per head."""
    rng = np.random.default_rng(1)
    L, d, H = 6, 8, 3
    S = rng.random((L, L))
    S = S + S.T
    np.fill_diagonal(S, 0.0)
    Q, K = fs.spectral_query_key(S, H, d, sharpness=2.5, noise=0.0, generator=torch.Generator().manual_seed(0))
    off = ~np.eye(L, dtype=bool)
    T = (S - S[off].mean()) / S[off].std()
    np.fill_diagonal(T, 0.0)
    for h in range(H):
        np.testing.assert_allclose((Q[h] @ K[h].T).numpy() / np.sqrt(d), 2.5 * T, atol=1e-10)
    Qn, _ = fs.spectral_query_key(S, H, d, sharpness=2.5, noise=0.5, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(Qn[0], Qn[1])  # the heads differ


def test_factored_dca_starts_from_the_mean_field_map_and_records_it() -> None:
    states, w = _data(L=10, q=5, N=200, seed=2)
    opts = {"n_heads": 2, "key_dim": 3, "max_iter": 1, "dtype": "float64", "seed": 4, "start": "mean-field"}
    a = FactoredDCA(**opts).fit(states, w)
    b = FactoredDCA(**opts).fit(states, w)
    assert a.start_ == "mean-field"
    np.testing.assert_array_equal(a.scores_, b.scores_)  # same seed, same result
    # with max_iter=1 the fit moved the start; rebuild it to compare with the module's functions
    est = FactoredDCA(**opts)
    data = prepare_data(states, w)
    model = est._build(data, torch.float64)
    assert isinstance(model, FactoredAttention) and model.query is not None
    from attnpotts.random import spawn_seeds, torch_generator

    S = fs.mean_field_scores(data.states, data.weights, 5)
    Q, K = fs.spectral_query_key(S, 2, 3, sharpness=est.start_sharpness, noise=est.start_noise,
                                 generator=torch_generator(spawn_seeds(4, 1)[0]))
    Qm, Km = model.positions()  # the parameters times position_scale
    torch.testing.assert_close(Qm.detach(), Q)
    torch.testing.assert_close(Km.detach(), K)


def test_random_start_above_the_cap_for_the_free_variant_and_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    states, w = _data(L=10, q=5, N=200, seed=3)
    assert FactoredDCA(n_heads=2, key_dim=3, max_iter=1).fit(states, w).start_ == "mean-field"  # default
    assert FactoredDCA(n_heads=2, key_dim=3, max_iter=1, start="random").fit(states, w).start_ == "random"
    mf = {"start": "mean-field", "max_iter": 1, "n_heads": 2}
    assert FactoredDCA(variant="free", **mf).fit(states, w).start_ == "random"
    assert FactoredDCA(key_dim=3, **mf).fit(states, w).start_ == "mean-field"
    monkeypatch.setattr(fs, "MEAN_FIELD_MAX_DIM", 39)  # L (q-1) = 40
    assert FactoredDCA(key_dim=3, **mf).fit(states, w).start_ == "random"
    assert fs.mean_field_start_bytes(10, 5) == 0


def test_default_iterations_follow_the_start_and_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    states, w = _data(L=10, q=5, N=200, seed=3)
    est = FactoredDCA(n_heads=2, key_dim=3)
    assert est.max_iter is None
    assert est._max_iter(10, 5, 1000.0) == factored_iterations(1000.0) == FACTORED_ITER_AT_1000
    assert est._max_iter(10, 5, 4000.0) == FACTORED_ITER_AT_1000 + 2 * FACTORED_ITER_PER_DOUBLING
    assert FactoredDCA(start="random")._max_iter(10, 5, 1000.0) == FACTORED_MAX_ITER_RANDOM
    # a fit on groups of neighbours (shrink = distinct sequences per fitted row) gets
    # shrink ** FACTORED_ITER_SHRINK_POWER times the iterations, within the bounds
    for shrink in (1.0, 1.9, 3.8):
        base = FACTORED_ITER_AT_1000 + FACTORED_ITER_PER_DOUBLING * math.log2(1.5)
        want = min(FACTORED_MAX_ITER, max(FACTORED_MIN_ITER, round(base * shrink**FACTORED_ITER_SHRINK_POWER)))
        assert est._max_iter(10, 5, 1500.0, shrink) == factored_iterations(1500.0, shrink) == want
    with pytest.raises(ValidationError, match="shrink"):
        factored_iterations(1000.0, 0.5)
    assert FactoredDCA(max_iter=7)._max_iter(10, 5, 1000.0) == 7  # given: used whatever the start
    monkeypatch.setattr(fs, "MEAN_FIELD_MAX_DIM", 39)  # L (q-1) = 40: the random fallback
    assert est._max_iter(10, 5, 1000.0) == FACTORED_MAX_ITER_RANDOM
    with pytest.raises(ValidationError, match="max_iter"):
        FactoredDCA(max_iter=0).fit(states, w)


@given(st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_factored_iterations_grow_with_the_data_within_bounds(n_eff: float) -> None:
    it = factored_iterations(n_eff)
    assert FACTORED_MIN_ITER <= it <= FACTORED_MAX_ITER
    assert factored_iterations(2 * n_eff) >= it  # more data, never fewer iterations
    exact = FACTORED_ITER_AT_1000 + FACTORED_ITER_PER_DOUBLING * math.log2(n_eff / 1000)
    if FACTORED_MIN_ITER + 1 < exact < FACTORED_MAX_ITER - 1:
        assert abs(it - exact) <= 0.5


@pytest.mark.parametrize("bad", [0.0, -3.0, math.nan, math.inf])
def test_factored_iterations_refuse_a_meaningless_n_eff(bad: float) -> None:
    with pytest.raises(ValidationError, match="n_eff"):
        factored_iterations(bad)


def test_memory_estimate_counts_the_start_matrix() -> None:
    mf = estimate_memory(2000, 280, 21, model="factored", n_heads=4, start="mean-field")
    rnd = estimate_memory(2000, 280, 21, model="factored", n_heads=4, start="random")
    assert mf.parts["start"] > 0 and rnd.parts["start"] == 0
    assert mf.total_bytes - rnd.total_bytes == mf.parts["start"]
    # the start's matrix (8 (L (q-1))^2 bytes) beyond the largest phase of the fit
    assert mf.parts["start"] >= 8 * (280 * 20) ** 2 - rnd.parts["attention_and_blocks"] - rnd.parts["activations"]
    assert estimate_memory(2000, 301, 21, model="factored").parts["start"] == 0  # above the cap
    with pytest.raises(ValidationError, match="start"):
        estimate_memory(10, 10, 4, model="factored", start="spectral")


@pytest.mark.parametrize(
    ("options", "name"),
    [({"start": "spectral"}, "start"), ({"start_sharpness": 0.0}, "start_sharpness"),
     ({"start_noise": -1.0}, "start_noise"), ({"start_noise": float("nan")}, "start_noise")],
)
def test_bad_start_options_name_the_option(options: dict, name: str) -> None:
    states, w = _data()
    with pytest.raises(ValidationError, match=name):
        FactoredDCA(**options).fit(states, w)
