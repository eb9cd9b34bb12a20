"""Blocked factored-attention kernels against exact oracles; scores from the factors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnpotts.dca import FactoredDCA
from attnpotts.errors import ShapeError, ValidationError
from attnpotts.evaluation import contact_scores, frobenius_scores
from attnpotts.inference.objectives import coupling_penalty, masked_cross_entropy
from attnpotts.models import FactoredAttention, factored_kernels, kernels
from attnpotts.models.factored_kernels import (
    _pl_dense,
    _pl_numba,
    block_sites,
    blocked_pass,
    default_block,
    factored_logits,
    factored_pseudo_likelihood,
    pl_block,
    reference_factored_logits,
    transposed_overlap,
)


def _factors(H: int, L: int, q: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(H, L, L, generator=g, dtype=torch.float64) * (1 - torch.eye(L, dtype=torch.float64))
    V = torch.randn(H, q, q, generator=g, dtype=torch.float64)
    h = torch.randn(L, q, generator=g, dtype=torch.float64)
    return A, V, h


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("block", [1, 2, 3, 7])
def test_blocked_pseudo_likelihood_equals_the_reference(block: int, symmetric: bool) -> None:
    """Loss and gradients of every block size = masked CE of the per-head-embedding logits (float64)."""
    H, L, q, N = 3, 7, 4, 40
    A, V, h = _factors(H, L, q, 1)
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, q, (N, L), generator=g)
    w = torch.rand(N, generator=g, dtype=torch.float64)
    params = [t.clone().requires_grad_() for t in (A, V, h)]
    fast = factored_pseudo_likelihood(*params, tokens, w, block=block, symmetric=symmetric)
    g_fast = torch.autograd.grad(fast, params)
    ref_params = [t.clone().requires_grad_() for t in (A, V, h)]
    logits = reference_factored_logits(ref_params[0], ref_params[1], tokens, symmetric=symmetric)
    logits = logits + ref_params[2]
    ref = masked_cross_entropy(logits, tokens, None, w, reduction="sum")
    g_ref = torch.autograd.grad(ref, ref_params)
    assert float(fast.detach()) == pytest.approx(float(ref.detach()), rel=1e-13)
    for a, b in zip(g_fast, g_ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("symmetric", [False, True])
def test_blocked_pseudo_likelihood_gradcheck(symmetric: bool) -> None:
    H, L, q, N = 2, 5, 3, 12
    A, V, h = _factors(H, L, q, 3)
    tokens = torch.randint(0, q, (N, L), generator=torch.Generator().manual_seed(4))
    w = torch.rand(N, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    params = tuple(t.clone().requires_grad_() for t in (A, V, h))
    assert torch.autograd.gradcheck(
        lambda a, v, hh: factored_pseudo_likelihood(a, v, hh, tokens, w, block=2, symmetric=symmetric), params
    )


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dense_path_equals_the_numba_path(dtype: torch.dtype, symmetric: bool) -> None:
    """The matrix-product pass (CUDA's) and the numba pass give the same loss and gradients."""
    H, L, q, N = 3, 9, 5, 30
    A, V, h = (t.to(dtype) for t in _factors(H, L, q, 6))
    tokens = torch.randint(0, q, (N, L), generator=torch.Generator().manual_seed(7))
    w = torch.rand(N, generator=torch.Generator().manual_seed(8), dtype=dtype)
    out = []
    for run in (_pl_numba, _pl_dense):
        grads = [torch.zeros_like(A), torch.zeros_like(V), torch.zeros_like(h)]
        loss = float(run(A, V, h, tokens, w, 4, *grads, symmetric))
        out.append((loss, grads))
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    assert out[0][0] == pytest.approx(out[1][0], rel=tol)
    for a, b in zip(out[0][1], out[1][1], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("symmetric", [False, True])
def test_the_matrix_product_pass_gives_the_same_sums_in_chunks(
    symmetric: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sequences in chunks of the one-hot budget (one reused buffer, the gradient accumulated in
    place), several blocks: the loss and gradients of the whole alignment in one chunk."""
    H, L, q, N = 3, 9, 5, 31
    A, V, h = _factors(H, L, q, 16)
    tokens = torch.randint(0, q, (N, L), generator=torch.Generator().manual_seed(17))
    w = torch.rand(N, generator=torch.Generator().manual_seed(18), dtype=torch.float64)
    out = []
    for budget in (10**9, 7 * L * q * 8):  # all sequences; chunks of 7 (the last one of 3)
        monkeypatch.setattr(factored_kernels, "DENSE_CHUNK_BYTES", budget)
        grads = [torch.zeros_like(A), torch.zeros_like(V), torch.zeros_like(h)]
        loss = _pl_dense(A, V, h, tokens, w, 4, *grads, symmetric)
        assert loss.dtype == torch.float64 and loss.ndim == 0  # a tensor: no synchronisation
        out.append((float(loss), grads))
    assert factored_kernels.dense_chunk_rows(N, L, q, 8) == 7
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-13)
    for a, b in zip(out[0][1], out[1][1], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("symmetric", [False, True])
def test_blocked_logits_equal_the_reference_with_mask_tokens(symmetric: bool) -> None:
    H, L, q, N = 3, 6, 4, 20
    A, V, h = _factors(H, L, q, 9)
    tokens = torch.randint(0, q + 1, (N, L), generator=torch.Generator().manual_seed(10))
    ref = reference_factored_logits(A, V, tokens, symmetric=symmetric) + h
    for block in (1, 4, 6):
        got = factored_logits(A, V, tokens, bias=h, block=block, symmetric=symmetric)
        np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-12)
    params = (A.clone().requires_grad_(), V.clone().requires_grad_())
    assert torch.autograd.gradcheck(
        lambda a, v: factored_logits(a, v, tokens, block=4, symmetric=symmetric), params)


def test_symmetric_reference_is_the_symmetric_part_of_the_couplings() -> None:
    """The oracle itself: its logits are those of ``(J[i, j, a, b] + J[j, i, b, a]) / 2`` formed whole."""
    H, L, q, N = 2, 5, 3, 15
    A, V, _ = _factors(H, L, q, 11)
    tokens = torch.randint(0, q, (N, L), generator=torch.Generator().manual_seed(12))
    J = torch.einsum("hij,hab->ijab", A, V)
    J = 0.5 * (J + J.permute(1, 0, 3, 2))
    x = torch.nn.functional.one_hot(tokens, q).to(torch.float64)
    want = torch.einsum("ijab,njb->nia", J, x)
    np.testing.assert_allclose(reference_factored_logits(A, V, tokens, symmetric=True).numpy(),
                               want.numpy(), atol=1e-12)


def test_bad_inputs_name_the_problem() -> None:
    A, V, h = _factors(2, 4, 3, 0)
    tokens = torch.zeros(5, 4, dtype=torch.long)
    w = torch.ones(5, dtype=torch.float64)
    with pytest.raises(ShapeError, match="attention"):
        factored_pseudo_likelihood(A[0], V, h, tokens, w)
    with pytest.raises(ShapeError, match="values"):
        factored_pseudo_likelihood(A, V[:1], h, tokens, w)
    with pytest.raises(ValidationError, match="no \\[MASK\\]"):
        factored_pseudo_likelihood(A, V, h, tokens + 3, w)
    for bad, seen in ((tokens - 1, "-1..-1"), (tokens + 4, "4..4")):  # [MASK] is 3
        for call in (lambda t: factored_pseudo_likelihood(A, V, h, t, w), lambda t: factored_logits(A, V, t)):
            with pytest.raises(ValidationError, match=f"must lie in 0..2.*got values in {seen}"):
                call(bad)
    with pytest.raises(ValidationError, match="block"):
        factored_pseudo_likelihood(A, V, h, tokens, w, block=0)
    with pytest.raises(ShapeError, match="seq_weights"):
        factored_pseudo_likelihood(A, V, h, tokens, w[:2])


def test_block_sites_keeps_the_block_small_and_at_least_two_sites() -> None:
    assert block_sites(1000, 21, 4) == 3  # 1.76 MB per site, 6 MiB budget
    assert block_sites(5000, 21, 8) == 2
    assert block_sites(10, 21, 4) == 10
    assert block_sites(1, 21, 4) == 1


@pytest.mark.parametrize("symmetric", [False, True])
def test_the_sub_block_pass_equals_the_chunk_pass(monkeypatch: pytest.MonkeyPatch, symmetric: bool) -> None:
    """From ``L q = 2000`` on, the CPU pass runs the full model's blocked kernel on sub-blocks of
    ``J``'s block into one gradient; it gives the chunk pass's loss and gradients (float64), with
    an uneven last sub-block (blocks of 10 sites: 8 + 2) and an uneven last block (3 sites)."""
    H, L, q, N = 3, 23, 5, 37
    A, V, h = _factors(H, L, q, 21)
    tokens = torch.randint(0, q, (N, L), generator=torch.Generator().manual_seed(22))
    w = torch.rand(N, generator=torch.Generator().manual_seed(23), dtype=torch.float64)
    out = []
    for width in (10**9, 0):  # per-thread chunks, then sub-blocks
        monkeypatch.setattr(kernels, "_PAIR_BLOCKED_MIN_WIDTH", width)
        assert blocked_pass(L, q, 8) == (width == 0)
        grads = [torch.zeros_like(A), torch.zeros_like(V), torch.zeros_like(h)]
        out.append((_pl_numba(A, V, h, tokens, w, 10, *grads, symmetric=symmetric), grads))
    assert out[1][0] == pytest.approx(out[0][0], rel=1e-13)
    for a, b in zip(out[1][1], out[0][1], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


def test_the_block_of_the_pass_follows_the_kernel() -> None:
    """One sub-block of 8 sites per thread where the CPU pass runs by sub-blocks (``L q >= 2000``
    and a sub-block per thread within BLOCK_BYTES), else the cache-sized block; the matrix
    products keep theirs."""
    assert blocked_pass(96, 21, 4, 2) and not blocked_pass(95, 21, 4, 2)  # L q = 2016, 1995
    assert blocked_pass(222, 21, 4, 2) and not blocked_pass(223, 21, 4, 2)  # 2 x 8 sites <= 6 MiB
    assert not blocked_pass(202, 21, 4, 3) and not blocked_pass(202, 21, 8, 2)
    assert pl_block(202, 21, 4, fused=True, n_threads=2) == 16
    assert pl_block(120, 21, 4, fused=True, n_threads=3) == 24
    assert pl_block(1000, 21, 4, fused=True, n_threads=2) == default_block(1000, 21, 4, fused=True) == 3
    assert pl_block(76, 21, 4, fused=True, n_threads=2) == default_block(76, 21, 4, fused=True) == 46
    assert pl_block(202, 21, 4, fused=False, n_threads=2) == default_block(202, 21, 4, fused=False)


def test_the_matrix_product_pass_takes_larger_blocks_with_the_same_result() -> None:
    """The default block follows the pass: cache-sized for the numba kernel, ``J`` whole here
    for the matrix products (a GPU's); both give the loss and gradients of either block."""
    H, L, q, N = 2, 120, 21, 40
    assert default_block(L, q, 8, fused=True) == block_sites(L, q, 8) == 14
    assert default_block(L, q, 8, fused=False) == L
    assert default_block(1000, 21, 4, fused=False) == 152  # 256 MiB of 1.76 MB sites
    A, V, h = _factors(H, L, q, 13)
    tokens = torch.randint(0, q, (N, L), generator=torch.Generator().manual_seed(14))
    w = torch.rand(N, generator=torch.Generator().manual_seed(15), dtype=torch.float64)
    out = []
    for run, fused in ((_pl_numba, True), (_pl_dense, False)):
        grads = [torch.zeros_like(A), torch.zeros_like(V), torch.zeros_like(h)]
        loss = float(run(A, V, h, tokens, w, default_block(L, q, 8, fused=fused), *grads))
        out.append((loss, grads))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-12)
    for a, b in zip(out[0][1], out[1][1], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("symmetric", [False, True])
def test_norm_and_scores_from_the_factors_equal_those_of_the_tensor(symmetric: bool) -> None:
    m = FactoredAttention(9, 5, 3, variant="softmax", key_dim=4, init_std=1.0, seed=1, dtype=torch.float64,
                          symmetric=symmetric)
    J = m.coupling_tensor().detach().numpy()
    if symmetric:
        np.testing.assert_allclose(J, J.transpose(1, 0, 3, 2), atol=1e-15)
    assert float(coupling_penalty(m).detach()) == pytest.approx(float((J * J).sum()), rel=1e-12)
    for ex in (None, 0, 4):
        np.testing.assert_allclose(m.frobenius_scores(ex, block=4), frobenius_scores(J, exclude_state=ex),
                                   atol=1e-12)
    with pytest.raises(ValidationError, match="exclude_state"):
        m.frobenius_scores(5)


@pytest.mark.parametrize("block", [1, 3, None])
def test_transposed_overlap_equals_einsum_and_its_gradient_is_exact(block: int | None) -> None:
    A = _factors(3, 7, 2, seed=4)[0].requires_grad_(True)
    T = transposed_overlap(A, block=block)
    torch.testing.assert_close(T, torch.einsum("hij,gji->hg", A, A), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a: transposed_overlap(a, block=block), (A,))
    with pytest.raises(ShapeError, match="attention"):
        transposed_overlap(A[:, :, :5])


def test_symmetric_penalty_gradient_equals_that_of_the_tensor() -> None:
    """The blocked <J, J^T> term gives the gradient of ||J||^2 of the formed symmetric tensor."""
    grads = []
    for from_factors in (True, False):
        m = FactoredAttention(8, 4, 3, variant="softmax", key_dim=3, init_std=1.0, seed=2, dtype=torch.float64,
                              symmetric=True)
        J = m.coupling_tensor()
        (m.coupling_squared_norm() if from_factors else (J * J).sum()).backward()
        grads.append([p.grad.clone() for p in (m.query, m.key, m.value) if p is not None and p.grad is not None])
    assert len(grads[0]) == 3
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_factored_dca_scores_without_the_tensor_match_the_tensor() -> None:
    rng = np.random.default_rng(0)
    states = rng.integers(0, 5, size=(60, 10))
    est = FactoredDCA(n_heads=2, key_dim=3, max_iter=5, dtype="float64").fit(states, np.ones(60))
    J = est.couplings_  # formed on access
    assert J.shape == (10, 10, 5, 5)
    np.testing.assert_allclose(est.scores_, contact_scores(J, exclude_state=None), atol=1e-10)
    np.testing.assert_allclose(est.scores_for(0), contact_scores(J, exclude_state=0), atol=1e-10)
