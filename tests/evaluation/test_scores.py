"""Frobenius norm, APC and precision against hand-computed cases; gauge invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.evaluation import (
    apc,
    contact_precision,
    contact_scores,
    frobenius_scores,
    precision_at,
    precision_table,
    ranked_pairs,
    symmetrize_couplings,
)


def one_block(L: int, q: int, i: int, j: int, block: np.ndarray) -> np.ndarray:
    J = np.zeros((L, L, q, q))
    J[i, j] = block
    J[j, i] = block.T
    return J


def test_frobenius_hand_computed() -> None:
    # block [[1, 0], [0, 0]]: zero-sum gauge gives [[1/4, -1/4], [-1/4, 1/4]], norm 1/2
    J = one_block(3, 2, 0, 2, np.array([[1.0, 0.0], [0.0, 0.0]]))
    F = frobenius_scores(J)
    expected = np.zeros((3, 3))
    expected[0, 2] = expected[2, 0] = 0.5
    np.testing.assert_allclose(F, expected, atol=1e-15)
    # the excluded state (e.g. gap) is removed after gauge fixing: only 1/4 is left
    assert frobenius_scores(J, exclude_state=0)[0, 2] == pytest.approx(0.25)
    # without gauge fixing the block is scored as given
    assert frobenius_scores(J, gauge="none")[0, 2] == pytest.approx(1.0)
    # q = 3, block e_{00}: entries (1 - 1/3)^2 ... norm = sqrt(4/9 * ...): compute by formula
    B = np.zeros((3, 3))
    B[0, 0] = 1.0
    B0 = B - B.mean(0, keepdims=True) - B.mean(1, keepdims=True) + B.mean()
    J3 = one_block(4, 3, 1, 3, B)
    assert frobenius_scores(J3)[1, 3] == pytest.approx(math.sqrt((B0**2).sum()))
    assert math.sqrt((B0**2).sum()) == pytest.approx(2 / 3)


def test_scores_are_gauge_invariant() -> None:
    rng = np.random.default_rng(0)
    L, q = 5, 4
    J = rng.normal(size=(L, L, q, q))
    J = symmetrize_couplings(J)
    J[np.arange(L), np.arange(L)] = 0
    u = rng.normal(size=(L, L, q))  # J[i, j, a, b] += u[i, j, a] + u[j, i, b]: a gauge change
    G = J + u[:, :, :, None] + u.transpose(1, 0, 2)[:, :, None, :]
    G[np.arange(L), np.arange(L)] = 0
    np.testing.assert_allclose(frobenius_scores(G), frobenius_scores(J), atol=1e-12)
    np.testing.assert_allclose(
        contact_scores(G, exclude_state=0), contact_scores(J, exclude_state=0)
    )


def test_asymmetric_couplings_are_symmetrised_first() -> None:
    B = np.array([[1.0, 0.0], [0.0, 0.0]])
    J = np.zeros((3, 3, 2, 2))
    J[0, 1] = B  # only one direction: symmetrised block is B / 2
    F = frobenius_scores(J)
    assert F[0, 1] == F[1, 0] == pytest.approx(0.25)


def test_apc_hand_computed() -> None:
    S = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    # row means over j != i: [1.5, 2, 2.5]; overall mean 2
    out = apc(S)
    assert out[0, 1] == pytest.approx(1 - 1.5 * 2 / 2)
    assert out[0, 2] == pytest.approx(2 - 1.5 * 2.5 / 2)
    assert out[1, 2] == pytest.approx(3 - 2 * 2.5 / 2)
    assert np.all(np.diag(out) == 0) and np.allclose(out, out.T)
    np.testing.assert_array_equal(apc(np.zeros((3, 3))), np.zeros((3, 3)))
    with pytest.raises(ValidationError, match="at least 3"):
        apc(np.zeros((2, 2)))
    with pytest.raises(ShapeError):
        apc(np.zeros((3, 4)))


def test_precision_tiny_example() -> None:
    # L = 10; scores rank pairs (0,9) > (0,5) > (1,8) > (2,3) > everything else (0)
    L = 10
    S = np.zeros((L, L))
    for (i, j), s in {(0, 9): 4.0, (0, 5): 3.0, (1, 8): 2.0, (2, 3): 1.0}.items():
        S[i, j] = S[j, i] = s
    D = np.full((L, L), 20.0)
    D[0, 9] = D[9, 0] = 5.0  # contact
    D[1, 8] = D[8, 1] = 7.99  # contact
    D[0, 5] = D[5, 0] = 8.0  # not a contact (strict <)
    D[2, 3] = D[3, 2] = 3.0  # contact but |i - j| = 1 < 6
    pairs = ranked_pairs(S, min_separation=6)
    np.testing.assert_array_equal(pairs[:2], [[0, 9], [1, 8]])  # (0, 5) has separation 5
    assert contact_precision(S, D, top=2) == 1.0
    assert contact_precision(S, D, top=2, min_separation=5) == 0.5  # (0,9) hit, (0,5) miss
    assert contact_precision(S, D, top=3, min_separation=5) == pytest.approx(2 / 3)
    assert contact_precision(S, D, top=1, min_separation=1, cutoff=3.5) == 0.0
    # precision@L/k: L/10 = 1, L/5 = 2, L/2 = 5, L = 10 pairs
    p = precision_at(S, D)
    assert p["L/10"] == 1.0 and p["L/5"] == 1.0
    # top 5 with separation >= 6: (0,9), (1,8), then zero-score pairs in (i, j) order:
    # (0,6), (0,7), (0,8) -> 2 of 5
    assert p["L/2"] == pytest.approx(2 / 5)
    table = precision_table(S, D, separations=(6, 9))
    assert set(table) == {">=6", ">=9"} and table[">=9"]["L/10"] == 1.0
    assert table[">=9"]["L"] == pytest.approx(1.0)  # only (0, 9) qualifies
    # unknown distances are left out of the ranking
    D2 = D.copy()
    D2[0, 9] = D2[9, 0] = np.nan
    assert contact_precision(S, D2, top=1) == 1.0  # (1, 8) is first now
    # positions: original columns where column 9 was really column 4 -> (0,9) separation 4
    pos = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 4])
    assert ranked_pairs(S, positions=pos)[0].tolist() == [1, 8]


def test_precision_bad_inputs() -> None:
    S = np.zeros((8, 8))
    with pytest.raises(ShapeError):
        contact_precision(S, np.zeros((7, 7)), top=1)
    with pytest.raises(ValidationError, match="top"):
        contact_precision(S, S, top=0)
    with pytest.raises(ValidationError, match="min_separation"):
        ranked_pairs(S, min_separation=0)
    assert math.isnan(contact_precision(S, np.full((8, 8), np.nan), top=1))


def _frobenius_oracle(J: np.ndarray, exclude: int | None, sym: bool, gauge: str) -> np.ndarray:
    """The NumPy formula of ``evaluation.scores``' docstring, with its temporaries."""
    from attnpotts.potts import zero_sum_gauge
    from attnpotts.potts.layout import transpose_couplings

    B = 0.5 * (J + transpose_couplings(J)) if sym else J
    if gauge == "zero-sum":
        B, _ = zero_sum_gauge(B)
    keep = np.array([a != exclude for a in range(J.shape[2])])
    F = np.sqrt((B[:, :, keep][:, :, :, keep] ** 2).sum(axis=(2, 3)))
    np.fill_diagonal(F, 0.0)
    return F if sym else 0.5 * (F + F.T)


@pytest.mark.parametrize("L, q", [(3, 2), (9, 4), (17, 21)])
def test_frobenius_kernel_equals_numpy_formula(L: int, q: int) -> None:
    rng = np.random.default_rng(L * q)
    J = rng.normal(size=(L, L, q, q)) + rng.normal(size=(1, 1, q, 1))  # asymmetric, not centred
    for sym in (True, False):
        for gauge in ("zero-sum", "none"):
            for exclude in (None, 0, q - 1):
                got = frobenius_scores(J, exclude_state=exclude, symmetrize=sym, gauge=gauge)
                np.testing.assert_allclose(got, _frobenius_oracle(J, exclude, sym, gauge),
                                           rtol=1e-12, atol=1e-14)
    # float32, torch and non-contiguous inputs give the float64 result of their values
    Jt = np.ascontiguousarray(J.transpose(1, 0, 3, 2))
    np.testing.assert_allclose(frobenius_scores(J.transpose(1, 0, 3, 2)), frobenius_scores(Jt))
    J32 = J.astype(np.float32)
    np.testing.assert_allclose(frobenius_scores(torch.from_numpy(J32)),
                               _frobenius_oracle(J32.astype(np.float64), None, True, "zero-sum"),
                               rtol=1e-12, atol=1e-14)
    with pytest.raises(ValidationError, match="exclude_state"):
        frobenius_scores(J, exclude_state=q)
