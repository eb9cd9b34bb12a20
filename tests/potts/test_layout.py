"""The canonical coupling layout and its converters: exact round trips and the definitions.

Every converter is checked against its defining index formula, element by element, and against
its inverse (float64, exact equality), for numpy arrays and torch tensors, over random small
``L`` and ``q``; and the layouts the kernels build are checked to be these converters' output.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnpotts.errors import ShapeError
from attnpotts.potts import (
    ConditionalPotts,
    coupling_blocks,
    coupling_matrix,
    couplings_from_blocks,
    couplings_from_factors,
    couplings_from_matrix,
    couplings_from_padded,
    fields_from_padded,
    pack_pairs,
    padded_fields,
    padded_transposed,
    pair_indices,
    pair_position,
    transpose_couplings,
    unpack_pairs,
)

SETTINGS = settings(max_examples=40, deadline=None)
SIZES = {"L": st.integers(1, 5), "q": st.integers(1, 5), "seed": st.integers(0, 2**32 - 1)}


def random_couplings(L: int, q: int, seed: int, *, symmetric: bool = False) -> np.ndarray:
    """Float64 couplings ``(L, L, q, q)`` with zero diagonal blocks."""
    J = np.random.default_rng(seed).normal(size=(L, L, q, q))
    if symmetric:
        J = 0.5 * (J + J.transpose(1, 0, 3, 2))
    J[np.arange(L), np.arange(L)] = 0.0
    return J


def both(J: np.ndarray) -> list[np.ndarray | torch.Tensor]:
    return [J, torch.from_numpy(J.copy())]


def as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@SETTINGS
@given(**SIZES)
def test_blocks_and_matrix_follow_their_definitions_and_invert(L: int, q: int, seed: int) -> None:
    J = random_couplings(L, q, seed)
    for x in both(J):
        W4, W = coupling_blocks(x), coupling_matrix(x)
        assert type(W4) is type(x) and type(W) is type(x)
        assert tuple(W4.shape) == (L, q, L, q) and tuple(W.shape) == (L * q, L * q)
        W4n, Wn = as_numpy(W4), as_numpy(W)
        for i, j, a, b in itertools.product(range(L), range(L), range(q), range(q)):
            assert W4n[i, a, j, b] == J[i, j, a, b]
            assert Wn[i * q + a, j * q + b] == J[i, j, a, b]
        np.testing.assert_array_equal(as_numpy(couplings_from_blocks(W4)), J)
        np.testing.assert_array_equal(as_numpy(couplings_from_matrix(W, q)), J)


@SETTINGS
@given(**SIZES, extra=st.integers(0, 9))
def test_padded_transposed_follows_its_definition_and_inverts(
    L: int, q: int, seed: int, extra: int
) -> None:
    J = random_couplings(L, q, seed)
    h = np.random.default_rng(seed + 1).normal(size=(L, q))
    q_pad = q + extra
    for x in both(J):
        Jt = padded_transposed(x, q_pad)
        assert Jt.shape == (L, L, q, q_pad) and Jt.flags.c_contiguous and Jt.dtype == np.float64
        for i, j, a, b in itertools.product(range(L), range(L), range(q), range(q)):
            assert Jt[i, j, b, a] == J[i, j, a, b]
        assert not Jt[..., q:].any()
        np.testing.assert_array_equal(couplings_from_padded(Jt), J)
    hp = padded_fields(h, q_pad)
    assert hp.shape == (L, q_pad) and not hp[:, q:].any()
    np.testing.assert_array_equal(fields_from_padded(hp, q), h)


@SETTINGS
@given(**SIZES)
def test_packed_pairs_round_trip_for_symmetric_couplings(L: int, q: int, seed: int) -> None:
    J = random_couplings(L, q, seed, symmetric=True)
    i, j = pair_indices(L)
    assert len(i) == L * (L - 1) // 2 and np.all(i < j)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == list(zip(i.tolist(), j.tolist(), strict=True))
    for p, (a, b) in enumerate(zip(i.tolist(), j.tolist(), strict=True)):
        assert pair_position(a, b, L) == p
    for x in both(J):
        T = pack_pairs(x)
        assert type(T) is type(x) and tuple(T.shape) == (L * (L - 1) // 2, q, q)
        for p, (a, b) in enumerate(zip(i.tolist(), j.tolist(), strict=True)):
            np.testing.assert_array_equal(as_numpy(T)[p], J[a, b])
        back = unpack_pairs(T, L)
        assert type(back) is type(x)
        np.testing.assert_array_equal(as_numpy(back), J)
        np.testing.assert_array_equal(as_numpy(pack_pairs(back)), as_numpy(T))


@SETTINGS
@given(**SIZES)
def test_transpose_couplings_is_the_symmetry_partner(L: int, q: int, seed: int) -> None:
    J = random_couplings(L, q, seed)
    for x in both(J):
        Jp = as_numpy(transpose_couplings(x))
        for i, j, a, b in itertools.product(range(L), range(L), range(q), range(q)):
            assert Jp[i, j, a, b] == J[j, i, b, a]
        np.testing.assert_array_equal(as_numpy(transpose_couplings(transpose_couplings(x))), J)
    S = random_couplings(L, q, seed, symmetric=True)
    np.testing.assert_array_equal(transpose_couplings(S), S)


@SETTINGS
@given(L=st.integers(1, 5), q=st.integers(1, 4), K=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_factors_give_the_sum_of_outer_products(L: int, q: int, K: int, seed: int) -> None:
    # small integers: every product and sum is exact in float64, so equality is exact
    rng = np.random.default_rng(seed)
    site = rng.integers(-4, 5, size=(K, L, L)).astype(np.float64)
    colour = rng.integers(-4, 5, size=(K, q, q)).astype(np.float64)
    expected = sum(site[k][:, :, None, None] * colour[k][None, None] for k in range(K))
    np.testing.assert_array_equal(couplings_from_factors(site, colour), expected)
    got = couplings_from_factors(torch.from_numpy(site), torch.from_numpy(colour))
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_torch_converters_keep_autograd() -> None:
    L, q = 4, 3
    T = torch.randn(L * (L - 1) // 2, q, q, dtype=torch.float64, requires_grad=True)
    J = unpack_pairs(T, L)
    (J * torch.arange(J.numel(), dtype=torch.float64).reshape(J.shape)).sum().backward()
    assert T.grad is not None
    # each packed entry receives the weights of both tied entries J[i, j, a, b] and J[j, i, b, a]
    idx = np.arange(L * L * q * q, dtype=np.float64).reshape(L, L, q, q)
    i, j = pair_indices(L)
    np.testing.assert_array_equal(T.grad.numpy(), idx[i, j] + idx[j, i].transpose(0, 2, 1))


def test_kernel_layouts_are_the_converters_output() -> None:
    from attnpotts.models import FullPotts
    from attnpotts.sampling.kernels import coupling_layout, padded_colours

    L, q = 5, 3
    J = random_couplings(L, q, 7, symmetric=True)
    h = np.random.default_rng(8).normal(size=(L, q))
    Jt, hp = coupling_layout(J, h, np.float64)
    np.testing.assert_array_equal(couplings_from_padded(Jt), J)
    np.testing.assert_array_equal(fields_from_padded(hp, q), h)
    assert Jt.shape[3] == padded_colours(q)
    np.testing.assert_array_equal(ConditionalPotts(h, J).coupling_matrix(), coupling_matrix(J))
    model = FullPotts(L, q, symmetric=True, dtype=torch.float64)
    with torch.no_grad():
        model.couplings.copy_(torch.from_numpy(pack_pairs(J)))
    np.testing.assert_array_equal(model.coupling_tensor().detach().numpy(), J)


def test_the_fused_kernels_expansion_of_packed_pairs_is_the_coupling_matrix() -> None:
    from attnpotts.models.kernels import _expand_pairs

    L, q = 6, 4
    J = random_couplings(L, q, 3, symmetric=True)
    W = np.zeros((L * q, L * q))  # the kernel leaves the diagonal blocks as they are
    _expand_pairs(pack_pairs(J), q, W)
    np.testing.assert_array_equal(W, coupling_matrix(J))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: coupling_matrix(np.zeros((2, 3, 2, 2))), r"\(L, L, q, q\)"),
        (lambda: couplings_from_blocks(np.zeros((2, 3, 2, 2))), r"\(L, q, L, q\)"),
        (lambda: couplings_from_matrix(np.zeros((6, 6)), 4), "q = 4"),
        (lambda: padded_transposed(np.zeros((2, 2, 3, 3)), 2), "q_pad = 2"),
        (lambda: unpack_pairs(np.zeros((2, 3, 3)), 3), r"\(3, q, q\)"),
        (lambda: pair_position(2, 1, 3), r"0 <= i < j < L = 3"),
        (lambda: couplings_from_factors(np.zeros((2, 3, 3)), np.zeros((1, 2, 2))), "same K"),
    ],
)
def test_wrong_shapes_are_named(call, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        call()
