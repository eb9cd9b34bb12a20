"""Fast one-hot coupling contraction ``logits[n, i, a] = sum_j W[i, a, j, s_nj]`` and its gradient.

This is the only expensive operation of pseudo-likelihood for a full Potts model: with
``W: (L, q, L, q)`` (``W[i, a, j, b] = J[i, j, a, b]``) and tokens ``s: (N, L)`` the logits of
every site's conditional are a sum of ``L`` columns of ``W`` picked by the tokens. Written as a
dense product with the one-hot encoding ``X: (N, L q)`` it costs ``2 N (L q)^2`` flops of which a
fraction ``1/q`` is useful. The methods offered (:data:`KERNEL_METHODS`):

* ``"sparse"`` (CPU default; float32/float64): numba kernels that gather (forward) and scatter-add
  (backward) contiguous rows of ``W^T``; exact in the working dtype, ``N L (L q)`` additions per
  pass, parallel over sequences (forward) and over blocks of sites (backward, no write conflicts).
  Sequences sorted lexicographically (as :func:`numpy.unique` returns them) reuse cached rows.
* ``"dense"``: one-hot matrix product in the dtype of ``W`` (any device; CUDA default).
* ``"dense-bf16"``: the same product with bfloat16 inputs (exact for the one-hot factor, ``W`` and
  the output gradient rounded to 8 significant bits); on CPUs with AVX-512 BF16 it is about three
  times faster than float32 but the logits carry a relative rounding error of about ``4e-3``.

The ``[MASK]`` token ``q`` contributes nothing, like the zero row of the one-hot encoding.
All methods have the same autograd semantics (gradient with respect to ``W`` only), verified
against the plain formulation with :func:`torch.autograd.gradcheck` in float64.
"""

from __future__ import annotations

from typing import Any, Literal

import numba as nb
import numpy as np
import torch

from ..errors import ShapeError, ValidationError
from ._rows import gather_rows as _gather_rows
from ._rows import row_index as _row_index
from ._rows import scatter_rows as _scatter_rows
from .base import check_tokens, one_hot_states

__all__ = [
    "KERNEL_METHODS",
    "CouplingContraction",
    "FusedPairPseudoLikelihood",
    "FusedPseudoLikelihood",
    "PairWorkspace",
    "check_kernel",
    "coupling_logits",
    "fused_applies",
    "fused_pair_pseudo_likelihood",
    "fused_pseudo_likelihood",
    "reference_coupling_logits",
    "sum_of_squares",
]

KernelMethod = Literal["auto", "sparse", "dense", "dense-bf16"]
#: Accepted values of ``method`` in :func:`coupling_logits`.
KERNEL_METHODS: tuple[str, ...] = ("auto", "sparse", "dense", "dense-bf16")

#: Symmetric fused pass (:class:`PairWorkspace`): from this width ``L q`` on, the pass runs in
#: blocks of :data:`_PAIR_BLOCK_SITES` predicted sites (:func:`_fused_pl_blocked`) instead of
#: per-thread chunks of sequences. Measured (process CPU time of the pass alone, 2 threads, two
#: rounds, random couplings on real sequences): L q = 4242 (L = 202, N = 700) 0.48-0.50 s
#: against 0.60-0.67 s; L q = 2499 (L = 119, N = 1,300) 0.198 s against 0.23-0.25 s; L q = 1512
#: (L = 72, N = 6,130) 0.27-0.29 s against 0.28-0.30 s (a tie); L q = 1113 (L = 53, N = 8,871)
#: 0.17-0.19 s against 0.155 s (chunks win while the coupling matrix stays in cache). Blocks
#: also need one gradient accumulator instead of one per thread.
_PAIR_BLOCKED_MIN_WIDTH = 2000
_PAIR_BLOCK_SITES = 8

#: Sites per block of the sparse backward pass: a block of rows of ``grad W^T`` stays in cache
#: while every sequence is streamed through it once (measured best on PF00595, L = 82, q = 21).
_SITE_BLOCK = 8


def _check(weights: torch.Tensor, tokens: torch.Tensor) -> tuple[int, int]:
    if not isinstance(weights, torch.Tensor) or not isinstance(tokens, torch.Tensor):
        raise ValidationError("weights and tokens must be torch tensors")
    if (
        weights.ndim != 4
        or weights.shape[0] != weights.shape[2]
        or weights.shape[1] != weights.shape[3]
    ):
        raise ShapeError(
            f"weights must have shape (L, q, L, q) (W[i, a, j, b] = J[i, j, a, b]), got "
            f"{tuple(weights.shape)}; from couplings J (L, L, q, q) pass attnpotts.potts.layout.coupling_blocks(J)"
        )
    if not weights.dtype.is_floating_point:
        raise ValidationError(f"weights must be floating point, got {weights.dtype}")
    n_sites, n_states = int(weights.shape[0]), int(weights.shape[1])
    check_tokens(tokens, n_sites, n_states)
    return n_sites, n_states


def check_kernel(kernel: str) -> str:
    """``kernel`` if it names a method of :data:`KERNEL_METHODS` (a model's constructor argument)."""
    if kernel not in KERNEL_METHODS:
        raise ValidationError(f"kernel must be one of {KERNEL_METHODS}, got {kernel!r}")
    return kernel


def _resolve(method: str, weights: torch.Tensor) -> str:
    if method not in KERNEL_METHODS:
        raise ValidationError(f"method must be one of {KERNEL_METHODS}, got {method!r}")
    if method == "auto":
        if weights.device.type == "cpu" and weights.dtype in (torch.float32, torch.float64):
            return "sparse"
        return "dense"
    if method == "sparse" and (
        weights.device.type != "cpu" or weights.dtype not in (torch.float32, torch.float64)
    ):
        raise ValidationError(
            f"method 'sparse' runs on the CPU in float32/float64, got {weights.dtype} on "
            f"{weights.device}; use method='dense' (or 'auto')"
        )
    return method


class CouplingContraction(torch.autograd.Function):
    """Autograd function ``(W (L, q, L, q), bias (L, q) or None, tokens (N, L), method) -> (N, L, q)``.

    Saves only the tokens (not the one-hot matrix); returns gradients for ``W`` and ``bias``.
    """

    @staticmethod
    def forward(
        ctx: Any, weights: torch.Tensor, bias: torch.Tensor | None, tokens: torch.Tensor, method: str
    ) -> torch.Tensor:
        n_sites, n_states = int(weights.shape[0]), int(weights.shape[1])
        width = n_sites * n_states
        n_seq = int(tokens.shape[0])
        w2 = weights.detach().reshape(width, width)  # w2[(i, a), (j, b)]
        ctx.method = method
        ctx.shape = (n_sites, n_states)
        ctx.has_bias = bias is not None
        ctx.save_for_backward(tokens)
        if method == "sparse":
            rows = _row_index(tokens, n_states)
            w_t = np.ascontiguousarray(w2.T.numpy())  # w_t[(j, b), (i, a)]
            b = (
                np.zeros(width, dtype=w_t.dtype)
                if bias is None
                else np.ascontiguousarray(bias.detach().reshape(width).numpy())
            )
            out = np.empty((n_seq, width), dtype=w_t.dtype)
            _gather_rows(rows, w_t, b, out)
            ctx.rows = rows
            return torch.from_numpy(out).reshape(n_seq, n_sites, n_states)
        if method == "dense-bf16":
            x = one_hot_states(tokens, n_states, torch.bfloat16).reshape(tokens.shape[0], -1)
            out_t = (x @ w2.to(torch.bfloat16).T).to(weights.dtype)
        else:
            x = one_hot_states(tokens, n_states, weights.dtype).reshape(tokens.shape[0], -1)
            out_t = x @ w2.T
        out_t = out_t.reshape(n_seq, n_sites, n_states)
        return out_t if bias is None else out_t + bias.detach()

    @staticmethod
    def backward(
        ctx: Any, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        (tokens,) = ctx.saved_tensors
        n_sites, n_states = ctx.shape
        width = n_sites * n_states
        grad = grad_out.reshape(-1, width)  # (N, L q): dloss/dlogits[n, (i, a)]
        grad_b = None
        if ctx.has_bias and ctx.needs_input_grad[1]:
            grad_b = grad.sum(0).reshape(n_sites, n_states)
        if not ctx.needs_input_grad[0]:
            return None, grad_b, None, None
        if ctx.method == "sparse":
            g = np.ascontiguousarray(grad.detach().numpy())
            grad_w_t = np.empty((width, width), dtype=g.dtype)
            _scatter_rows(ctx.rows, g, grad_w_t, n_states, _SITE_BLOCK)
            grad_w = torch.from_numpy(grad_w_t).T  # grad_w[(i, a), (j, b)]
        elif ctx.method == "dense-bf16":
            x = one_hot_states(tokens, n_states, torch.bfloat16).reshape(tokens.shape[0], -1)
            grad_w = (grad.to(torch.bfloat16).T @ x).to(grad_out.dtype)
        else:
            x = one_hot_states(tokens, n_states, grad_out.dtype).reshape(tokens.shape[0], -1)
            grad_w = grad.T @ x
        return grad_w.reshape(n_sites, n_states, n_sites, n_states), grad_b, None, None


def coupling_logits(
    weights: torch.Tensor,
    tokens: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    method: KernelMethod = "auto",
) -> torch.Tensor:
    """Return ``logits[n, i, a] = bias[i, a] + sum_j W[i, a, j, s_nj]`` (differentiable in ``W``, ``bias``).

    Args:
        weights: ``W: (L, q, L, q)`` float, ``W[i, a, j, b] = J[i, j, a, b]`` (the diagonal blocks
            ``W[i, :, i, :]`` are used as given: zero them for a structural model).
        tokens: ``(N, L)`` integers in ``0..q``; the ``[MASK]`` token ``q`` contributes nothing.
        bias: optional fields ``(L, q)`` added to every sequence's logits (fused: no extra pass).
        method: ``"auto"`` (``"sparse"`` on the CPU in float32/float64, else ``"dense"``),
            ``"sparse"``, ``"dense"`` or ``"dense-bf16"`` (see the module docstring).

    Returns:
        ``(N, L, q)`` logits in the dtype of ``weights``.

    Raises:
        ShapeError, ValidationError: inconsistent shapes, non-integer or out-of-range tokens, a
            method that cannot run on this device/dtype.
    """
    n_sites, n_states = _check(weights, tokens)
    if bias is not None and (bias.shape != (n_sites, n_states) or bias.dtype != weights.dtype):
        raise ShapeError(
            f"bias must have shape ({n_sites}, {n_states}) and dtype {weights.dtype}, got "
            f"{tuple(bias.shape)} {bias.dtype}"
        )
    resolved = _resolve(method, weights)
    tokens = tokens.to(weights.device)
    return CouplingContraction.apply(weights, bias, tokens, resolved)


def reference_coupling_logits(weights: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Plain autograd formulation of :func:`coupling_logits` (gather + sum), for tests."""
    n_sites, n_states = _check(weights, tokens)
    tok = tokens.long().to(weights.device)
    padded = torch.cat(
        [weights, torch.zeros_like(weights[..., :1])], dim=-1
    )  # (L, q, L, q + 1): [MASK] picks the zero column
    idx = tok[:, None, None, :, None].expand(-1, n_sites, n_states, -1, 1)  # (N, L, q, L, 1)
    picked = padded.unsqueeze(0).expand(tok.shape[0], -1, -1, -1, -1).gather(-1, idx)
    return picked[..., 0].sum(-1)  # (N, L, q)


# ------------------------------------------------------------------------------ fused objective
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


@nb.njit(fastmath=True, cache=True)
def _exp_shifted(acc: np.ndarray, shift: np.ndarray, out: np.ndarray, bits: np.ndarray) -> None:  # pragma: no cover
    """``out[k] = exp(acc[k] - shift[k])`` for ``acc <= shift`` (softmax numerators).

    float32: ``2^n 2^f`` with ``n = round(y)``, ``y = x log2(e)``, ``2^f`` by its degree-7 Taylor
    series on ``|f ln 2| <= ln(2) / 2`` (relative error < 1e-7, float32's own) and ``2^n`` built
    from its exponent bits in ``bits: (K,) int32``; arguments below ``-125 ln 2`` give ``2^-125``
    (negligible next to the maximum's 1). Unlike libm's scalar ``exp`` (no SVML on these
    machines), the loops vectorise: the fused objective runs 20% faster. float64: libm's ``exp``.
    """
    if acc.itemsize == 4:
        for k in range(acc.shape[0]):
            y = (acc[k] - shift[k]) * _LOG2E
            if y < -125.0:
                y = -125.0
            n = np.floor(y + 0.5)
            r = (y - n) * _LN2
            out[k] = 1.0 + r * (1.0 + r * (1.0 / 2.0 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (
                1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))))
            bits[k] = (np.int32(n) + 127) << 23
        scale = bits.view(np.float32)
        for k in range(acc.shape[0]):
            out[k] *= scale[k]
    else:
        for k in range(acc.shape[0]):
            out[k] = np.exp(acc[k] - shift[k])


@nb.njit(fastmath=True, cache=True, error_model="numpy")
def _site_softmax(
    acc: np.ndarray,
    shift: np.ndarray,
    grad: np.ndarray,
    bits: np.ndarray,
    targets: np.ndarray,
    first_site: int,
    n_states: int,
    wn: float,
    loss: float,
) -> float:  # pragma: no cover
    """One sequence's sites ``first_site ..`` (``len(acc) / q`` of them) from their logits ``acc``.

    Sets ``grad = wn (softmax(acc) - onehot(target))`` per site and returns ``loss`` plus
    ``wn sum_i -log P(target_i)``, added site by site; ``shift`` and ``bits`` are workspaces
    of ``acc``'s size. Shared by the fused kernels (per thread and by blocks of sites).
    Non-finite logits give a non-finite loss (numpy's error model: ``wn / 0`` is ``inf``, not
    an exception), which the training loop reports as divergence.
    """
    n_here = acc.shape[0] // n_states
    for i in range(n_here):
        base = i * n_states
        m = acc[base]
        for a in range(1, n_states):
            m = max(m, acc[base + a])
        for a in range(n_states):
            shift[base + a] = m
    _exp_shifted(acc, shift, grad, bits)  # softmax numerators, one exp per logit
    for i in range(n_here):
        base = i * n_states
        z = 0.0
        for a in range(n_states):
            z += grad[base + a]
        t = targets[first_site + i]
        loss += wn * (shift[base] + np.log(z) - acc[base + t])
        scale = wn / z
        for a in range(n_states):
            grad[base + a] *= scale
        grad[base + t] -= wn
    return loss


@nb.njit(parallel=True, fastmath=True, cache=True)
def _fused_pl_kernel(
    rows: np.ndarray,
    targets: np.ndarray,
    seq_weights: np.ndarray,
    w_t: np.ndarray,
    bias: np.ndarray,
    n_states: int,
    grad_buf: np.ndarray,
    gbias_buf: np.ndarray,
    loss_buf: np.ndarray,
) -> None:  # pragma: no cover
    """One pass per sequence: gather logits, log-sum-exp per site, loss, scatter the gradient.

    Shapes: ``rows: (N, L)`` (``j q + s_nj``), ``targets: (N, K)`` (the states at the ``K``
    predicted sites: all ``L`` for the full model, one block of sites for factored attention,
    :mod:`attnpotts.models.factored_kernels`), ``w_t: (L q, K q)`` with
    ``w_t[(j, b), (k, a)]`` the coupling of colour ``a`` at predicted site ``k`` with colour
    ``b`` at site ``j``, ``bias: (K q,)``; ``grad_buf: (C, L q, K q)``, ``gbias_buf: (C, K q)``
    and ``loss_buf: (C,)`` are per-chunk accumulators (no write conflicts between threads);
    the caller sums them.
    """
    n_seq, n_sites = rows.shape
    width = w_t.shape[1]
    n_chunks = grad_buf.shape[0]
    for c in nb.prange(n_chunks):
        start = c * n_seq // n_chunks
        stop = (c + 1) * n_seq // n_chunks
        g = grad_buf[c]
        gb = gbias_buf[c]
        for r in range(g.shape[0]):
            for k in range(width):
                g[r, k] = 0.0
        for k in range(width):
            gb[k] = 0.0
        acc = np.empty(width, dtype=w_t.dtype)
        grad = np.empty(width, dtype=w_t.dtype)
        shift = np.empty(width, dtype=w_t.dtype)
        bits = np.empty(width, dtype=np.int32)
        loss = 0.0
        for n in range(start, stop):
            for k in range(width):
                acc[k] = bias[k]
            for j in range(n_sites):
                r = rows[n, j]
                for k in range(width):
                    acc[k] += w_t[r, k]
            loss = _site_softmax(acc, shift, grad, bits, targets[n], 0, n_states, seq_weights[n], loss)
            for k in range(width):
                gb[k] += grad[k]
            for j in range(n_sites):
                r = rows[n, j]
                for k in range(width):
                    g[r, k] += grad[k]
        loss_buf[c] = loss


class FusedPseudoLikelihood(torch.autograd.Function):
    """``(W (L, q, L, q), bias (L, q), tokens (N, L), weights (N,)) -> sum_n w_n sum_i -log P``."""

    @staticmethod
    def forward(
        ctx: Any,
        weights: torch.Tensor,
        bias: torch.Tensor,
        tokens: torch.Tensor,
        seq_weights: torch.Tensor,
        symmetric: bool = False,
    ) -> torch.Tensor:
        n_sites, n_states = int(weights.shape[0]), int(weights.shape[1])
        width = n_sites * n_states
        w2 = weights.detach().reshape(width, width)
        # the kernel reads rows (j, b) of W^T; a symmetric W is its own transpose (saves a
        # strided copy of the L q x L q matrix per evaluation)
        w_t = np.ascontiguousarray((w2 if symmetric else w2.T).numpy())
        rows = _row_index(tokens, n_states)
        targets = np.ascontiguousarray(tokens.detach().numpy().astype(np.int32))
        sw = np.ascontiguousarray(seq_weights.detach().numpy().astype(w_t.dtype))
        b = np.ascontiguousarray(bias.detach().reshape(width).numpy())
        n_chunks = max(1, min(int(nb.get_num_threads()), int(tokens.shape[0])))
        grad_buf = np.empty((n_chunks, width, width), dtype=w_t.dtype)
        gbias_buf = np.empty((n_chunks, width), dtype=w_t.dtype)
        loss_buf = np.zeros(n_chunks, dtype=np.float64)
        _fused_pl_kernel(rows, targets, sw, w_t, b, n_states, grad_buf, gbias_buf, loss_buf)
        # G[(j, b), (i, a)] accumulates dLoss/dW[i, a, j, b]: hand back G^T as a view, no copy
        grad_w = torch.from_numpy(grad_buf.sum(0)).reshape(n_sites, n_states, n_sites, n_states)
        grad_w = grad_w.permute(2, 3, 0, 1)
        ctx.save_for_backward(grad_w, torch.from_numpy(gbias_buf.sum(0)).reshape(n_sites, n_states))
        return torch.tensor(float(loss_buf.sum()), dtype=weights.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None, None]:
        grad_w, grad_b = ctx.saved_tensors
        return grad_out * grad_w, grad_out * grad_b, None, None, None


def fused_pseudo_likelihood(
    weights: torch.Tensor,
    bias: torch.Tensor,
    tokens: torch.Tensor,
    seq_weights: torch.Tensor,
    *,
    symmetric: bool = False,
) -> torch.Tensor:
    """Negative weighted log pseudo-likelihood in one fused CPU pass (float32/float64).

    ``sum_n w_n sum_i -log softmax_a(bias[i, a] + sum_j W[i, a, j, s_nj])[s_ni]``, with the
    gradient for ``W`` and ``bias`` computed in the same pass (no ``(N, L, q)`` temporaries).
    It computes what the training loop's all-positions masked cross-entropy computes (times
    ``sum(w) L``); it is offered to the training loop as a faster objective for structural
    models and measured in ``benchmarks/bench_dca.py``. Tokens must be states (no ``[MASK]``).
    ``symmetric=True`` promises ``W[i, a, j, b] = W[j, b, i, a]`` (a symmetric Potts model), which
    spares a transposed copy of ``W``; with a non-symmetric ``W`` the result would be wrong.
    """
    n_sites, n_states = _check(weights, tokens)
    if weights.device.type != "cpu" or weights.dtype not in (torch.float32, torch.float64):
        raise ValidationError("fused_pseudo_likelihood runs on the CPU in float32/float64")
    if bias.shape != (n_sites, n_states) or bias.dtype != weights.dtype:
        raise ShapeError(f"bias must have shape ({n_sites}, {n_states}) and dtype {weights.dtype}")
    if tokens.numel() and int(tokens.max()) >= n_states:
        raise ValidationError(f"tokens must be states 0..{n_states - 1} (no [MASK])")
    if seq_weights.shape != (tokens.shape[0],):
        raise ShapeError(f"seq_weights must have shape ({tokens.shape[0]},), got {tuple(seq_weights.shape)}")
    return FusedPseudoLikelihood.apply(weights, bias, tokens, seq_weights, bool(symmetric))


def fused_applies(
    parameter: torch.Tensor, tokens: torch.Tensor, method: str, n_states: int
) -> bool:
    """Whether :func:`fused_pseudo_likelihood` can serve a model with this parameter and ``method``.

    True for ``method`` ``"auto"`` or ``"sparse"``, a CPU parameter in float32/float64 and tokens
    ``(B, L)`` on the CPU that hold states ``0..n_states-1`` only (no ``[MASK]``).
    """
    if method not in ("auto", "sparse"):
        return False
    if parameter.device.type != "cpu" or parameter.dtype not in (torch.float32, torch.float64):
        return False
    if tokens.ndim != 2 or tokens.device.type != "cpu" or tokens.numel() == 0:
        return False
    return int(tokens.max()) < n_states


@nb.njit(parallel=True, fastmath=True, cache=True)
def _fused_pl_blocked(
    rows: np.ndarray,
    targets: np.ndarray,
    seq_weights: np.ndarray,
    w_t: np.ndarray,
    bias: np.ndarray,
    n_states: int,
    block_sites: int,
    grad: np.ndarray,
    gbias: np.ndarray,
    loss_buf: np.ndarray,
) -> None:  # pragma: no cover
    """:func:`_fused_pl_kernel` by blocks of ``block_sites`` predicted sites (columns of ``W^T``;
    ``targets`` holds the states of all predicted sites, as there).

    The logits, softmax and gradient of the sites ``i`` in a block read and write only that
    block's columns ``(i, a)`` of ``w_t`` and ``grad``, so blocks run in parallel into ONE
    gradient ``grad: (R, K)`` (no per-thread accumulators to zero and sum). A block first copies
    its columns of ``w_t`` into a contiguous ``(R, k)`` slice and accumulates its gradient in
    another, written into ``grad`` at the end: every sequence streams through the two slices,
    which stay in the core's cache, where rows of ``k`` numbers ``K`` apart in ``w_t`` took a
    page (and a TLB entry) each. The same sums in the same order as reading ``w_t`` in place,
    0.5-0.9x its time (``docs/dca-measurements.md``, "The blocked pass reads contiguous slices"), for
    ``2 R k`` numbers per thread.
    ``gbias: (K,)``; ``loss_buf[b]`` gets block ``b``'s loss (``len(loss_buf)`` blocks), summed
    by the caller in a fixed order: the result does not depend on the thread count.
    """
    n_seq, n_sites = rows.shape
    n_rows = w_t.shape[0]
    n_pred = w_t.shape[1] // n_states  # predicted sites: all L (plm) or a block of J (factored)
    n_blocks = loss_buf.shape[0]
    for blk in nb.prange(n_blocks):
        i0 = blk * block_sites
        i1 = min(n_pred, i0 + block_sites)
        k0 = i0 * n_states
        nk = (i1 - i0) * n_states
        w_blk = np.empty((n_rows, nk), dtype=w_t.dtype)  # the block's columns, contiguous
        for r in range(n_rows):
            for k in range(nk):
                w_blk[r, k] = w_t[r, k0 + k]
        g_blk = np.zeros((n_rows, nk), dtype=w_t.dtype)
        for k in range(k0, k0 + nk):
            gbias[k] = 0.0
        acc = np.empty(nk, dtype=w_t.dtype)
        gr = np.empty(nk, dtype=w_t.dtype)
        shift = np.empty(nk, dtype=w_t.dtype)
        bits = np.empty(nk, dtype=np.int32)
        loss = 0.0
        for n in range(n_seq):
            for k in range(nk):
                acc[k] = bias[k0 + k]
            for j in range(n_sites):
                row = w_blk[rows[n, j]]
                for k in range(nk):
                    acc[k] += row[k]
            loss = _site_softmax(acc, shift, gr, bits, targets[n], i0, n_states, seq_weights[n], loss)
            for k in range(nk):
                gbias[k0 + k] += gr[k]
            for j in range(n_sites):
                row = g_blk[rows[n, j]]
                for k in range(nk):
                    row[k] += gr[k]
        for r in range(n_rows):
            for k in range(nk):
                grad[r, k0 + k] = g_blk[r, k]
        loss_buf[blk] = loss


# ----------------------------------------------------------------------------- sum of squares
@nb.njit(parallel=True, fastmath={"reassoc", "contract"}, cache=True)  # NaN and inf propagate
def _sum_squares_kernel(x: np.ndarray, partial: np.ndarray) -> None:  # pragma: no cover
    """``partial[c] = sum of x[k]^2`` over the ``c``-th of ``len(partial)`` slices, in float64."""
    n, n_parts = x.shape[0], partial.shape[0]
    for c in nb.prange(n_parts):
        seg = x[c * n // n_parts : (c + 1) * n // n_parts]  # a contiguous slice: the loop vectorises
        s = 0.0
        for k in range(seg.shape[0]):
            v = np.float64(seg[k])
            s += v * v
        partial[c] = s


def sum_of_squares(x: torch.Tensor) -> float:
    """``sum x^2`` of a CPU float32/float64 tensor, accumulated in float64, in one pass.

    No temporary the size of ``x`` (``(x * x).sum()`` makes one), and more accurate than a
    float32 ``torch.dot(x, x)``, whose float32 accumulation is off by ~1e-5 (relative) at 9 M
    numbers: the float64 partial sums of 64 slices are added in a fixed order, so the result
    does not depend on the thread count.
    """
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        raise ValidationError(f"sum_of_squares runs on CPU float32/float64 tensors, got {x.dtype} on {x.device}")
    flat = x.detach().reshape(-1)
    if not flat.is_contiguous():
        flat = flat.contiguous()
    partial = np.zeros(64)
    _sum_squares_kernel(flat.numpy(), partial)
    return float(partial.sum())


# ----------------------------------------------------------------------------------- pairs
@nb.njit(inline="always")
def _pair(i: int, j: int, n_sites: int) -> int:  # pragma: no cover
    """Index of the pair ``i < j`` in the row-major upper triangle (``np.triu_indices(L, 1)``)."""
    return i * n_sites - i * (i + 1) // 2 + j - i - 1


@nb.njit(inline="always")
def _split_row(t: int, side: int, n_sites: int) -> int:  # pragma: no cover
    """Block-row ``t`` (``side`` 0) or ``L - 1 - t`` (``side`` 1), taken by one thread in a
    triangle pass: together they hold ``L - 1`` pairs, whatever ``t``; -1 for the second when it
    is the first (the middle row of an odd ``L``). A signed integer (the index of a parallel
    loop is unsigned, and mixing the two would make it a float)."""
    first = np.int64(t)
    if side == 0:
        return int(first)
    second = np.int64(n_sites) - 1 - first
    return int(second) if second != first else -1


@nb.njit(parallel=True, fastmath=True, cache=True)
def _expand_pairs(pairs_t: np.ndarray, n_states: int, w: np.ndarray) -> None:  # pragma: no cover
    """``w[(i, a), (j, b)] = w[(j, b), (i, a)] = pairs_t[p, a, b]`` for the pairs ``p = (i < j)``.

    Shapes: ``pairs_t: (P, q, q)`` in the order of ``np.triu_indices(L, 1)``, ``w: (L q, L q)``;
    the diagonal blocks of ``w`` are not written (they stay zero). Each thread writes whole
    block-rows of ``w`` (``q`` rows), reading each pair's ``q x q`` block directly or transposed:
    every row of ``w`` is written by one thread, front to back.
    """
    q = n_states
    L = w.shape[0] // q
    for i in nb.prange(L):
        i0 = i * q
        for j in range(L):
            if j == i:
                continue
            j0 = j * q
            if j > i:
                p = _pair(i, j, L)
                for a in range(q):
                    for b in range(q):
                        w[i0 + a, j0 + b] = pairs_t[p, a, b]
            else:
                p = _pair(j, i, L)
                for a in range(q):
                    for b in range(q):
                        w[i0 + a, j0 + b] = pairs_t[p, b, a]


@nb.njit(parallel=True, fastmath=True, cache=True)
def _reduce_pairs(grad_buf: np.ndarray, n_states: int, out: np.ndarray) -> None:  # pragma: no cover
    """``out[p, a, b] = sum_c grad_buf[c, (i, a), (j, b)] + grad_buf[c, (j, b), (i, a)]``.

    The gradient for the stored upper triangle of a symmetric ``W`` (both entries it ties),
    summed over the per-thread accumulators ``grad_buf: (C, L q, L q)``; ``out: (P, q, q)`` in
    the order of ``np.triu_indices(L, 1)``. Two passes that read ``grad_buf`` row by row (all
    ``C`` accumulators together): the upper triangle (rows ``(i, a)``, pairs ``j > i``), then the
    lower one added (rows ``(j, b)``, pairs ``i < j``, written transposed into the block-row's
    pairs, which stay in cache). Each pass gives a thread the block-rows ``t`` and ``L - 1 - t``
    together, so the triangles split evenly.
    """
    q = n_states
    n_chunks = grad_buf.shape[0]
    L = grad_buf.shape[1] // q
    half = (L + 1) // 2
    for t in nb.prange(half):
        for side in range(2):
            i = _split_row(t, side, L)
            if i < 0:
                continue
            i0 = i * q
            for a in range(q):
                for j in range(i + 1, L):
                    p = _pair(i, j, L)
                    j0 = j * q
                    for b in range(q):
                        s = grad_buf[0, i0 + a, j0 + b]
                        for c in range(1, n_chunks):
                            s += grad_buf[c, i0 + a, j0 + b]
                        out[p, a, b] = s
    for t in nb.prange(half):
        for side in range(2):
            j = _split_row(t, side, L)
            if j < 0:
                continue
            j0 = j * q
            for b in range(q):
                for i in range(j):
                    p = _pair(i, j, L)
                    i0 = i * q
                    for a in range(q):
                        s = grad_buf[0, j0 + b, i0 + a]
                        for c in range(1, n_chunks):
                            s += grad_buf[c, j0 + b, i0 + a]
                        out[p, a, b] += s


class PairWorkspace:
    """Buffers of :func:`fused_pair_pseudo_likelihood`, allocated once and reused every evaluation.

    ``w: (L q, L q)`` (the symmetric coupling matrix the kernel reads, diagonal blocks zero),
    ``grad_buf: (C, L q, L q)`` (gradient accumulators), ``gbias_buf: (C, L q)``,
    ``grad_pairs: (P, q, q)`` and ``grad_bias: (L, q)`` (the gradients of the summed loss),
    ``out_pairs``, ``out_bias`` (those times the incoming gradient: what backward hands to
    autograd). ``C`` is 1 when the pass runs in blocks of ``block_sites`` sites (default from
    ``L q >=`` :data:`_PAIR_BLOCKED_MIN_WIDTH` on), else numba's thread count at creation
    (one accumulator per thread; ``block_sites=0`` forces that). Memory:
    ``(C + 1) (L q)^2 + 2 P q^2`` numbers of the dtype (``out_pairs`` replaces a temporary of
    that size per evaluation), and in blocks ``2 T L q k q`` more during the pass (a block's
    two contiguous slices, ``k = block_sites``, on each of ``T`` threads). The token-derived row
    indices are cached for the last token tensor seen.
    """

    def __init__(
        self, n_sites: int, n_states: int, dtype: torch.dtype, *, block_sites: int | None = None
    ) -> None:
        if dtype not in (torch.float32, torch.float64):
            raise ValidationError(f"PairWorkspace needs float32 or float64, got {dtype}")
        L, q = int(n_sites), int(n_states)
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        width = L * q
        self.n_sites, self.n_states, self.dtype = L, q, dtype
        self.n_chunks = max(1, int(nb.get_num_threads()))
        if block_sites is None:
            block_sites = _PAIR_BLOCK_SITES if width >= _PAIR_BLOCKED_MIN_WIDTH else 0
        if int(block_sites) < 0:
            raise ValidationError(f"block_sites must be >= 0 (0: per-thread chunks), got {block_sites}")
        #: sites per block of the blocked pass (:func:`_fused_pl_blocked`); 0: per-thread chunks
        self.block_sites = int(block_sites)
        self.w = np.zeros((width, width), dtype=np_dtype)
        # blocked: one gradient, one loss per block; else one accumulator per thread
        accumulators = 1 if self.block_sites else self.n_chunks
        self.grad_buf = np.empty((accumulators, width, width), dtype=np_dtype)
        self.gbias_buf = np.empty((accumulators, width), dtype=np_dtype)
        self.grad_pairs = torch.empty((L * (L - 1) // 2, q, q), dtype=dtype)
        self.grad_bias = torch.empty((L, q), dtype=dtype)
        self.out_pairs = torch.empty_like(self.grad_pairs)
        self.out_bias = torch.empty_like(self.grad_bias)
        n_losses = -(-L // self.block_sites) if self.block_sites else self.n_chunks
        self.loss_buf = np.zeros(n_losses, dtype=np.float64)
        self._tokens_key: tuple[int, tuple[int, ...], int] | None = None
        self._rows = self._targets = np.empty((0, 0), dtype=np.int32)

    def matches(self, n_sites: int, n_states: int, dtype: torch.dtype) -> bool:
        """Whether this workspace serves these sizes, dtype and numba's current thread count."""
        return (self.n_sites, self.n_states, self.dtype) == (n_sites, n_states, dtype) and (
            self.n_chunks == max(1, int(nb.get_num_threads()))
        )

    def token_rows(self, tokens: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``rows[n, j] = j q + s_nj`` and the targets ``s`` as int32 (cached per token tensor)."""
        key = (tokens.data_ptr(), tuple(tokens.shape), tokens._version)
        if key != self._tokens_key:
            self._rows = _row_index(tokens, self.n_states)
            self._targets = np.ascontiguousarray(tokens.detach().numpy().astype(np.int32))
            self._tokens_key = key
        return self._rows, self._targets


class FusedPairPseudoLikelihood(torch.autograd.Function):
    """``(T (P, q, q), bias (L, q), tokens (N, L), weights (N,)) -> sum_n w_n sum_i -log P``."""

    @staticmethod
    def forward(
        ctx: Any,
        pairs_t: torch.Tensor,
        bias: torch.Tensor,
        tokens: torch.Tensor,
        seq_weights: torch.Tensor,
        ws: PairWorkspace,
    ) -> torch.Tensor:
        q = ws.n_states
        _expand_pairs(pairs_t.detach().numpy(), q, ws.w)
        rows, targets = ws.token_rows(tokens)
        sw = np.ascontiguousarray(seq_weights.detach().numpy().astype(ws.w.dtype))
        b = np.ascontiguousarray(bias.detach().reshape(-1).numpy())
        if ws.block_sites:
            grad_buf, gbias_buf, loss_buf = ws.grad_buf, ws.gbias_buf, ws.loss_buf
            _fused_pl_blocked(rows, targets, sw, ws.w, b, q, ws.block_sites, grad_buf[0],
                              gbias_buf[0], loss_buf)
        else:
            n_chunks = min(ws.n_chunks, max(1, int(tokens.shape[0])))
            grad_buf, gbias_buf = ws.grad_buf[:n_chunks], ws.gbias_buf[:n_chunks]
            loss_buf = ws.loss_buf[:n_chunks]
            _fused_pl_kernel(rows, targets, sw, ws.w, b, q, grad_buf, gbias_buf, loss_buf)
        _reduce_pairs(grad_buf, q, ws.grad_pairs.numpy())
        np.sum(gbias_buf, axis=0, out=ws.grad_bias.numpy().reshape(-1))
        ctx.ws = ws
        # a leaf's gradient reaches .grad directly (added in, or copied when None); through
        # further autograd nodes it could be kept as a view of the workspace buffer
        ctx.leaves = pairs_t.is_leaf and bias.is_leaf
        return torch.tensor(float(loss_buf.sum()), dtype=pairs_t.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None, None]:
        ws: PairWorkspace = ctx.ws
        if torch.is_grad_enabled() or not ctx.leaves:  # fresh tensors: autograd may keep them
            return grad_out * ws.grad_pairs, grad_out * ws.grad_bias, None, None, None
        # into the workspace: no parameter-sized allocation per evaluation (autograd adds these
        # into .grad, or copies them when .grad is None, before the next evaluation can run)
        out_pairs = torch.mul(grad_out, ws.grad_pairs, out=ws.out_pairs)
        out_bias = torch.mul(grad_out, ws.grad_bias, out=ws.out_bias)
        return out_pairs, out_bias, None, None, None


def fused_pair_pseudo_likelihood(
    pairs_t: torch.Tensor,
    bias: torch.Tensor,
    tokens: torch.Tensor,
    seq_weights: torch.Tensor,
    workspace: PairWorkspace | None = None,
) -> torch.Tensor:
    """:func:`fused_pseudo_likelihood` of a symmetric Potts model stored as its upper triangle.

    ``pairs_t: (P, q, q)`` holds ``J[i_p, j_p]`` for the pairs ``i < j`` of
    ``torch.triu_indices(L, L, 1)`` (the layout of a symmetric
    :class:`~attnpotts.models.FullPotts`); ``J[j, i] = J[i, j]^T``. The gradient for ``pairs_t``
    is that of both tied entries. All full-size buffers live in ``workspace`` (created when
    ``None``; pass the same one every evaluation: nothing of size ``(L q)^2`` is allocated
    then), so an evaluation costs ``O(N L^2 q)`` for the sequences plus a few passes over
    ``(L q)^2`` numbers (expanding ``J``, summing the per-thread gradients). The returned value
    must be backpropagated before the next call with the same workspace (the gradients live
    there); the gradients backward hands back are workspace buffers too, so a caller of
    :func:`torch.autograd.grad` that keeps them across calls must copy them (``.grad``
    accumulation does).
    """
    if pairs_t.ndim != 3 or pairs_t.shape[1] != pairs_t.shape[2]:
        raise ShapeError(f"pairs_t must have shape (P, q, q), got {tuple(pairs_t.shape)}")
    n_states = int(pairs_t.shape[1])
    n_sites = int(bias.shape[0]) if bias.ndim == 2 else -1
    if n_sites < 2 or n_sites * (n_sites - 1) // 2 != pairs_t.shape[0]:
        raise ShapeError(
            f"pairs_t has {pairs_t.shape[0]} pairs, bias {tuple(bias.shape)}: need P = L (L - 1) / 2"
        )
    if pairs_t.device.type != "cpu" or pairs_t.dtype not in (torch.float32, torch.float64):
        raise ValidationError("fused_pair_pseudo_likelihood runs on the CPU in float32/float64")
    if bias.shape != (n_sites, n_states) or bias.dtype != pairs_t.dtype:
        raise ShapeError(f"bias must have shape ({n_sites}, {n_states}) and dtype {pairs_t.dtype}")
    if tokens.ndim != 2 or tokens.shape[1] != n_sites or tokens.dtype.is_floating_point:
        raise ShapeError(f"tokens must be integers of shape (N, {n_sites}), got {tuple(tokens.shape)}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= n_states):
        raise ValidationError(f"tokens must be states 0..{n_states - 1} (no [MASK])")
    if seq_weights.shape != (tokens.shape[0],):
        raise ShapeError(f"seq_weights must have shape ({tokens.shape[0]},), got {tuple(seq_weights.shape)}")
    ws = workspace
    if ws is None or not ws.matches(n_sites, n_states, pairs_t.dtype):
        ws = PairWorkspace(n_sites, n_states, pairs_t.dtype)
    return FusedPairPseudoLikelihood.apply(pairs_t.contiguous(), bias.contiguous(), tokens, seq_weights, ws)
