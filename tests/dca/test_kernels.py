"""The one-hot coupling contraction kernels against the plain formulation (values and gradients)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.models.kernels import coupling_logits, reference_coupling_logits


def _problem(n: int, L: int, q: int, seed: int, dtype: torch.dtype = torch.float64, mask: bool = True):
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(L, q, L, q, generator=gen, dtype=dtype)
    tokens = torch.randint(0, q + 1 if mask else q, (n, L), generator=gen)
    return W, tokens


def _explicit_loop(W: torch.Tensor, tokens: torch.Tensor) -> np.ndarray:
    """Hand-written triple loop of logits[n, i, a] = sum_j W[i, a, j, s_nj] (mask adds 0)."""
    Wn = W.detach().numpy()
    L, q = Wn.shape[:2]
    out = np.zeros((tokens.shape[0], L, q))
    for n, s in enumerate(tokens.numpy()):
        for i in range(L):
            for j in range(L):
                if s[j] < q:
                    out[n, i] += Wn[i, :, j, s[j]]
    return out


@pytest.mark.parametrize("method", ["sparse", "dense", "auto"])
def test_values_match_explicit_loop(method: str) -> None:
    W, tokens = _problem(7, 5, 4, seed=1)
    expected = _explicit_loop(W, tokens)
    got = coupling_logits(W, tokens, method=method)  # type: ignore[arg-type]
    assert got.shape == (7, 5, 4) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(reference_coupling_logits(W, tokens).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_gradcheck_float64(method: str) -> None:
    W, tokens = _problem(6, 4, 3, seed=2)
    W.requires_grad_(True)

    def f(w: torch.Tensor) -> torch.Tensor:
        # a nonlinear read-out so that every element of the output gradient differs
        return coupling_logits(w, tokens, method=method).sin().sum()  # type: ignore[arg-type]

    assert torch.autograd.gradcheck(f, (W,), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_gradient_matches_reference_autograd(method: str) -> None:
    W, tokens = _problem(40, 9, 5, seed=3)
    gen = torch.Generator().manual_seed(4)
    upstream = torch.randn(40, 9, 5, generator=gen, dtype=torch.float64)
    W1 = W.clone().requires_grad_(True)
    W2 = W.clone().requires_grad_(True)
    (coupling_logits(W1, tokens, method=method) * upstream).sum().backward()  # type: ignore[arg-type]
    (reference_coupling_logits(W2, tokens) * upstream).sum().backward()
    assert W1.grad is not None and W2.grad is not None
    np.testing.assert_allclose(W1.grad.numpy(), W2.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_float32_sparse_matches_float64() -> None:
    W, tokens = _problem(300, 12, 21, seed=5, mask=False)
    exact = coupling_logits(W, tokens, method="dense")
    got = coupling_logits(W.float(), tokens, method="sparse")
    assert got.dtype == torch.float32
    # float32 sums of 12 unit Gaussians: error ~ 12 * 2^-24 * |terms|
    np.testing.assert_allclose(got.double().numpy(), exact.numpy(), atol=1e-5)


def test_bf16_is_close_within_its_rounding() -> None:
    W, tokens = _problem(200, 10, 6, seed=6, mask=False)
    exact = coupling_logits(W, tokens, method="dense")
    got = coupling_logits(W.float(), tokens, method="dense-bf16")
    # inputs rounded to 8 significant bits (rel. 2^-9) and output rounded once more
    bound = 2.0**-8 * (W.abs().amax() * 10 + exact.abs().amax())
    assert float((got.double() - exact).abs().max()) <= float(bound)


def test_permuted_view_and_mask_token() -> None:
    gen = torch.Generator().manual_seed(7)
    J = torch.randn(4, 4, 3, 3, generator=gen, dtype=torch.float64)
    tokens = torch.full((2, 4), 3)  # all [MASK]
    out = coupling_logits(J.permute(0, 2, 1, 3), tokens)
    assert torch.equal(out, torch.zeros(2, 4, 3, dtype=torch.float64))


def test_bad_inputs() -> None:
    W, tokens = _problem(3, 4, 3, seed=8)
    with pytest.raises(ShapeError, match=r"\(L, q, L, q\)"):
        coupling_logits(W.reshape(12, 12), tokens)
    with pytest.raises(ShapeError, match="tokens have length 3 but the model has L = 4"):
        coupling_logits(W, tokens[:, :3])
    with pytest.raises(ValidationError, match=r"0\.\.2 \(states\) or 3 \(\[MASK\]\).*got values in 5\.\.8"):
        coupling_logits(W, tokens + 5)
    with pytest.raises(ValidationError, match="integers"):
        coupling_logits(W, tokens.double())
    with pytest.raises(ValidationError, match="method"):
        coupling_logits(W, tokens, method="magic")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="sparse"):
        coupling_logits(W.bfloat16(), tokens, method="sparse")


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_bias_is_fused_and_differentiable(method: str) -> None:
    W, tokens = _problem(5, 4, 3, seed=9)
    bias = torch.randn(4, 3, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    got = coupling_logits(W, tokens, bias=bias, method=method)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.numpy(), _explicit_loop(W, tokens) + bias.numpy()[None], atol=1e-12)
    W.requires_grad_(True)
    bias.requires_grad_(True)

    def f(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return coupling_logits(w, tokens, bias=b, method=method).cos().sum()  # type: ignore[arg-type]

    assert torch.autograd.gradcheck(f, (W, bias), eps=1e-6, atol=1e-8, rtol=1e-6)
    with pytest.raises(ShapeError, match="bias"):
        coupling_logits(W, tokens, bias=bias[:3])


def test_fused_pseudo_likelihood_matches_the_generic_objective() -> None:
    from attnpotts.inference.objectives import masked_cross_entropy
    from attnpotts.models.kernels import fused_pseudo_likelihood

    W, tokens = _problem(30, 5, 4, seed=11, mask=False)
    gen = torch.Generator().manual_seed(12)
    bias = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    w = torch.rand(30, generator=gen, dtype=torch.float64)
    W1, b1 = W.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    W2, b2 = W.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    fused = fused_pseudo_likelihood(W1, b1, tokens, w)
    generic = masked_cross_entropy(reference_coupling_logits(W2, tokens) + b2, tokens, None, w,
                                   reduction="sum")
    assert float(fused.detach()) == pytest.approx(float(generic.detach()), rel=1e-12)
    (2.5 * fused).backward()
    (2.5 * generic).backward()
    np.testing.assert_allclose(W1.grad.numpy(), W2.grad.numpy(), atol=1e-11)  # type: ignore[union-attr]
    np.testing.assert_allclose(b1.grad.numpy(), b2.grad.numpy(), atol=1e-11)  # type: ignore[union-attr]


def test_fused_pseudo_likelihood_in_float32_matches_float64() -> None:
    """The float32 path (vectorised exp) agrees with the float64 one to float32 precision."""
    from attnpotts.models.kernels import fused_pseudo_likelihood

    W, tokens = _problem(200, 9, 21, seed=13, mask=False)
    W = 0.5 * W  # logits spread over ~+-10: a real softmax, not one-hot
    gen = torch.Generator().manual_seed(14)
    bias = torch.randn(9, 21, generator=gen, dtype=torch.float64)
    w = torch.rand(200, generator=gen, dtype=torch.float64)
    grads = []
    values = []
    for dt in (torch.float64, torch.float32):
        Wd = W.detach().to(dt).clone().requires_grad_(True)
        bd = bias.detach().to(dt).clone().requires_grad_(True)
        val = fused_pseudo_likelihood(Wd, bd, tokens, w.to(dt))
        val.backward()
        values.append(float(val.detach()))
        grads.append((Wd.grad.double().numpy(), bd.grad.double().numpy()))  # type: ignore[union-attr]
    assert values[1] == pytest.approx(values[0], rel=1e-6)
    for g64, g32 in zip(grads[0], grads[1], strict=True):
        np.testing.assert_allclose(g32, g64, rtol=0, atol=1e-5 * np.abs(g64).max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_fused_pseudo_likelihood_of_non_finite_couplings_is_non_finite(dtype: torch.dtype, bad: float) -> None:
    """A non-finite coupling gives a non-finite loss (what the training loop calls divergence),
    not an exception from inside the kernel."""
    from attnpotts.models.kernels import fused_pseudo_likelihood

    W, tokens = _problem(40, 6, 5, seed=15, mask=False)
    W = W.to(dtype)
    W[1, 2, 3, 4] = bad
    loss = fused_pseudo_likelihood(W, torch.zeros(6, 5, dtype=dtype), tokens, torch.ones(40, dtype=dtype))
    assert not math.isfinite(float(loss))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_exponential_is_accurate(dtype: type) -> None:
    from attnpotts.models.kernels import _exp_shifted

    x = np.linspace(-120.0, 0.0, 200_001).astype(dtype)
    shift = np.full_like(x, 3.0)
    out = np.empty_like(x)
    _exp_shifted(x + dtype(3.0), shift, out, np.empty(x.size, dtype=np.int32))
    exact = np.exp((x + dtype(3.0)).astype(np.float64) - 3.0)
    normal = exact > 2.0**-125  # below that the float32 path returns 2^-125 (negligible in a softmax)
    rel = np.abs(out[normal] - exact[normal]) / exact[normal]
    assert rel.max() < (2e-7 if dtype == np.float32 else 1e-15)
    assert np.all(out[~normal] <= 2.0**-124)


def test_fused_symmetric_shortcut_equals_the_general_path() -> None:
    from attnpotts.models.kernels import fused_pseudo_likelihood

    W, tokens = _problem(40, 6, 5, seed=15, mask=False)
    W = W + W.permute(2, 3, 0, 1)  # W[i, a, j, b] = W[j, b, i, a]
    gen = torch.Generator().manual_seed(16)
    bias = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    w = torch.rand(40, generator=gen, dtype=torch.float64)
    out = []
    for symmetric in (False, True):
        Wd = W.detach().clone().requires_grad_(True)
        val = fused_pseudo_likelihood(Wd, bias, tokens, w, symmetric=symmetric)
        val.backward()
        out.append((float(val.detach()), Wd.grad))
    assert out[0][0] == out[1][0]
    torch.testing.assert_close(out[0][1], out[1][1], rtol=0, atol=0)


@pytest.mark.parametrize("block_sites", [None, 0, 1, 2, 4, 6])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_pairs_match_the_full_symmetric_path_and_reuse_the_workspace(
    dtype: torch.dtype, block_sites: int | None
) -> None:
    """The triangle-stored kernel = the full symmetric one (values, gradients of both tied entries),
    also when its workspace is reused for new parameters; per-thread chunks (0) and blocks of
    sites (1, 2, 4: uneven last block, 6: one block)."""
    from attnpotts.models.kernels import (
        PairWorkspace,
        fused_pair_pseudo_likelihood,
        fused_pseudo_likelihood,
    )

    L, q, n = 6, 5, 40
    gen = torch.Generator().manual_seed(17)
    tokens = torch.randint(0, q, (n, L), generator=gen)
    w = torch.rand(n, generator=gen, dtype=torch.float64).to(dtype)
    i, j = torch.triu_indices(L, L, offset=1)
    ws = PairWorkspace(L, q, dtype, block_sites=block_sites)
    assert ws.block_sites == (0 if block_sites is None else block_sites)  # L q = 30: chunks by default
    for trial in range(2):
        T = (0.5 * torch.randn(len(i), q, q, generator=gen, dtype=torch.float64)).to(dtype)
        bias = torch.randn(L, q, generator=gen, dtype=torch.float64).to(dtype)
        T1, b1 = T.clone().requires_grad_(True), bias.clone().requires_grad_(True)
        T2, b2 = T.clone().requires_grad_(True), bias.clone().requires_grad_(True)
        J = torch.zeros(L, L, q, q, dtype=dtype)
        J[i, j] = T2
        J[j, i] = T2.transpose(1, 2)
        full = fused_pseudo_likelihood(J.permute(0, 2, 1, 3), b2, tokens, w, symmetric=True)
        pairs = fused_pair_pseudo_likelihood(T1, b1, tokens, w, ws)
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        assert float(pairs.detach()) == pytest.approx(float(full.detach()), rel=tol), trial
        (1.5 * pairs).backward()
        (1.5 * full).backward()
        scale = float(T2.grad.abs().max())  # type: ignore[union-attr]
        np.testing.assert_allclose(T1.grad.numpy(), T2.grad.numpy(), rtol=0, atol=tol * scale)  # type: ignore[union-attr]
        np.testing.assert_allclose(b1.grad.numpy(), b2.grad.numpy(), rtol=0, atol=tol * scale)  # type: ignore[union-attr]


def test_fused_pair_gradients_do_not_alias_the_workspace() -> None:
    """The backward hands autograd workspace buffers: a leaf's ``.grad`` (new or accumulated) and a
    non-leaf's gradient must still survive later evaluations with the same workspace unchanged."""
    from attnpotts.models.kernels import PairWorkspace, fused_pair_pseudo_likelihood

    L, q, n = 5, 4, 30
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, q, (n, L), generator=gen)
    w = torch.rand(n, generator=gen, dtype=torch.float64)
    ws = PairWorkspace(L, q, torch.float64)
    T = torch.randn(L * (L - 1) // 2, q, q, generator=gen, dtype=torch.float64).requires_grad_(True)
    bias = torch.randn(L, q, generator=gen, dtype=torch.float64).requires_grad_(True)
    (0.5 * fused_pair_pseudo_likelihood(T, bias, tokens, w, ws)).backward()  # .grad created
    first = T.grad.clone()  # type: ignore[union-attr]
    assert torch.equal(first, 0.5 * ws.grad_pairs)
    (0.5 * fused_pair_pseudo_likelihood(T, bias, tokens, w, ws)).backward()  # .grad accumulated
    torch.testing.assert_close(T.grad, 2 * first, rtol=0, atol=0)
    kept = T.grad.clone()  # type: ignore[union-attr]
    base = torch.randn(T.numel(), generator=gen, dtype=torch.float64).requires_grad_(True)
    fused_pair_pseudo_likelihood(base.view_as(T), bias, tokens, w, ws).backward()  # through a view
    through_view = base.grad.clone()  # type: ignore[union-attr]
    other = (2 * T.detach()).requires_grad_(True)
    fused_pair_pseudo_likelihood(other, bias.detach(), tokens, w, ws).backward()  # new buffers
    torch.testing.assert_close(T.grad, kept, rtol=0, atol=0)
    torch.testing.assert_close(base.grad, through_view, rtol=0, atol=0)


def test_fused_pairs_reject_bad_shapes() -> None:
    from attnpotts.models.kernels import fused_pair_pseudo_likelihood

    T = torch.zeros(10, 4, 4)
    tokens = torch.zeros(3, 5, dtype=torch.long)
    with pytest.raises(ShapeError, match="pairs"):
        fused_pair_pseudo_likelihood(T, torch.zeros(4, 4), tokens, torch.ones(3))
    with pytest.raises(ValidationError, match="states"):
        fused_pair_pseudo_likelihood(T, torch.zeros(5, 4), tokens + 4, torch.ones(3))


def test_full_potts_coupling_squared_norm_equals_that_of_the_tensor() -> None:
    from attnpotts.models import FullPotts

    for symmetric in (True, False):
        model = FullPotts(5, 3, symmetric=symmetric, init_std=0.7, seed=3, dtype=torch.float64)
        with torch.no_grad():
            J = model.coupling_tensor()
            assert float(model.coupling_squared_norm()) == pytest.approx(float((J * J).sum()), rel=1e-12)


def test_sum_of_squares_against_a_float64_sum() -> None:
    from attnpotts.models.kernels import sum_of_squares

    gen = torch.Generator().manual_seed(5)
    for n in (0, 1, 7, 64, 1000, 300_001):
        for dtype in (torch.float32, torch.float64):
            x = torch.randn(n, generator=gen, dtype=dtype) * 0.01
            want = float((x.double() ** 2).sum())
            assert sum_of_squares(x) == pytest.approx(want, rel=1e-13, abs=1e-300)
    x = torch.randn(6, 5, 4, generator=gen).transpose(0, 2)  # not contiguous
    assert sum_of_squares(x) == pytest.approx(float((x.double() ** 2).sum()), rel=1e-13)
    assert math.isnan(sum_of_squares(torch.tensor([1.0, float("nan")])))
    assert math.isinf(sum_of_squares(torch.tensor([1.0, float("inf")])))
    with pytest.raises(ValidationError, match="float32/float64"):
        sum_of_squares(torch.ones(3, dtype=torch.float16))


def test_symmetric_coupling_penalty_gradient_is_that_of_the_plain_formula_bitwise() -> None:
    """The hand-written penalty (float64-summed value, gradient ``2 g T``) against autograd's."""
    from attnpotts.models import FullPotts

    for dtype in (torch.float32, torch.float64):
        model = FullPotts(6, 4, symmetric=True, init_std=0.3, seed=2, dtype=dtype)
        T = model.couplings
        (0.37 * model.coupling_squared_norm()).backward()
        fast = T.grad.clone()
        T.grad = None
        plain = 0.37 * (2.0 * (T * T).sum())
        plain.backward()
        assert torch.equal(fast, T.grad)
        with torch.no_grad():
            value = float(model.coupling_squared_norm())
        assert value == pytest.approx(float(plain.detach()) / 0.37, rel=1e-6)
    model = FullPotts(4, 3, symmetric=True, init_std=0.5, seed=1, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: model.coupling_squared_norm() + 0 * t.sum(), (model.couplings,))


@pytest.mark.parametrize("L", [2, 3, 6, 7])
@pytest.mark.parametrize("chunks", [1, 2, 3])
def test_pair_expansion_and_gradient_reduction_match_their_definitions(L: int, chunks: int) -> None:
    """The triangle <-> full-matrix kernels against numpy loops: odd and even ``L`` (the middle
    block-row of the balanced split), one to three per-thread accumulators."""
    from attnpotts.models.kernels import _expand_pairs, _reduce_pairs

    q = 3
    rng = np.random.default_rng(L * 10 + chunks)
    i, j = np.triu_indices(L, 1)
    pairs = rng.standard_normal((len(i), q, q))
    w = np.zeros((L * q, L * q))
    _expand_pairs(pairs, q, w)
    expected = np.zeros_like(w)
    for p, (a, b) in enumerate(zip(i, j, strict=True)):
        expected[a * q:(a + 1) * q, b * q:(b + 1) * q] = pairs[p]
        expected[b * q:(b + 1) * q, a * q:(a + 1) * q] = pairs[p].T
    np.testing.assert_array_equal(w, expected)

    grads = rng.standard_normal((chunks, L * q, L * q))
    out = np.full_like(pairs, np.nan)
    _reduce_pairs(grads, q, out)
    total = grads.sum(0)
    want = np.stack([total[a * q:(a + 1) * q, b * q:(b + 1) * q] + total[b * q:(b + 1) * q, a * q:(a + 1) * q].T
                     for a, b in zip(i, j, strict=True)]) if len(i) else out
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
