"""Pseudo-likelihood of factored attention, one block of the coupling tensor at a time.

The couplings of factored attention are ``J[i, j, a, b] = sum_h A_h[i, j] V_h[a, b]`` with
``A: (H, L, L)`` and ``V: (H, q, q)``, so the pseudo-likelihood logits are

    ``logits[n, i, a] = h[i, a] + sum_j J[i, j, a, s_nj]``.

Forming ``J`` whole costs ``L^2 q^2`` numbers (1.8 GB in float32 at ``L = 1000``, ``q = 21``)
and the per-head activations ``V_h[a, s_nj]`` over all sequences ``H N L q`` (27 GB at ``H = 32``,
``N = 10,000``). Neither is needed: the sites ``i`` are independent given the logits, so the
objective and its gradient are sums over blocks ``I`` of sites. For each block this module forms
``J[I]: (|I|, L, q, q)`` (one matrix product of ``A[:, I]`` with ``V``), streams every sequence
through it once (gather the logits of the block's sites, log-sum-exp, loss, scatter the gradient
of ``J[I]``; no per-sequence temporaries), and contracts the block's gradient back onto ``A[:, I]``
and ``V``. Work per evaluation: ``N L^2 q`` (the same gathers as the full model) plus
``3 H L^2 q^2`` for the products; memory: a few blocks of ``J`` and the factors' gradients.

On the CPU (float32/float64) the streaming step is the full model's fused numba kernel
(:mod:`attnpotts.models.kernels`: parallel over sequences, per-thread gradient accumulators,
its vectorised float32 ``exp``), given one block of ``J`` at a time; elsewhere (CUDA) it is a
one-hot matrix product per block and chunk of sequences. Both are exact in the working dtype and checked
against the plain formulation (:func:`reference_factored_logits`) with
:func:`torch.autograd.gradcheck` in float64.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
import torch

from ..errors import ShapeError, ValidationError
from . import kernels as _kernels
from ._rows import gather_rows, row_index, scatter_rows
from .base import check_tokens, one_hot_states
from .kernels import _fused_pl_blocked, _fused_pl_kernel

__all__ = [
    "BLOCK_BYTES",
    "FactoredLogits",
    "FactoredPseudoLikelihood",
    "block_sites",
    "blocked_pass",
    "default_block",
    "dense_chunk_rows",
    "factored_logits",
    "factored_pseudo_likelihood",
    "pl_block",
    "reference_factored_logits",
    "symmetric_heads",
    "transposed_overlap",
]

#: Target bytes of one block of ``J`` in the kernel's layout ``(L q, |I| q)``: every sequence
#: reads rows of it, so it should stay in cache. Measured (L = 400, N = 1000, H = 32, one thread,
#: CPU seconds per evaluation): 2 sites (2.7 MB) 3.1-3.6 s, 4 (5.4 MB) 2.6-2.8 s, 8 2.9-3.4 s,
#: 16 3.5-3.6 s, 32 4.4-4.5 s.
BLOCK_BYTES = 6 * 1024**2

#: Target bytes of one block of ``J`` where the pass is one-hot matrix products (CUDA, or
#: dtypes the numba kernel does not take). Every block launches its own products over all
#: sequences, so a GPU wants few large blocks rather than cache-sized ones: ``J`` whole up to
#: ``L q = 8192`` in float32 (``L = 390`` at ``q = 21``), a few blocks at ``L = 1000``.
#: ``benchmarks/bench_factored_cuda.py --block-mib ...`` measures the choice (docs/dca-measurements.md, "Blocks for the GPU").
DEVICE_BLOCK_BYTES = 256 * 1024**2

#: Target bytes of the one-hot rows of one chunk of sequences in the matrix-product pass
#: (:func:`dense_chunk_rows`): 3,200 sequences at ``L = 1000``, all of 10,000 up to ``L = 320``
#: (``q = 21``, float32). Fewer, larger products than a fixed count at short ``L``, where an
#: evaluation is a few milliseconds on a GPU and every launch counts.
DENSE_CHUNK_BYTES = 256 * 1024**2


def block_sites(n_sites: int, n_states: int, itemsize: int, budget: int = BLOCK_BYTES) -> int:
    """Sites per block: the largest ``|I|`` with ``L q |I| q * itemsize <= budget``, at least 2
    (a block of one site leaves the kernel's inner loops ``q`` long), at most ``L``."""
    per_site = n_sites * n_states * n_states * itemsize
    return int(max(min(2, n_sites), min(n_sites, budget // max(1, per_site))))


def default_block(n_sites: int, n_states: int, itemsize: int, *, fused: bool) -> int:
    """Sites per block of the pass that will run: :data:`BLOCK_BYTES` for the CPU's fused numba
    kernel (``fused``), :data:`DEVICE_BLOCK_BYTES` for the one-hot matrix products."""
    budget = BLOCK_BYTES if fused else DEVICE_BLOCK_BYTES
    return block_sites(n_sites, n_states, itemsize, budget)


def blocked_pass(n_sites: int, n_states: int, itemsize: int, n_threads: int | None = None) -> bool:
    """Whether the CPU pass runs by sub-blocks of :data:`~attnpotts.models.kernels.
    _PAIR_BLOCK_SITES` sites, one per thread, into one gradient (the full model's blocked kernel,
    :func:`attnpotts.models.kernels._fused_pl_blocked`) rather than by per-thread chunks of
    sequences: from the full model's width ``L q`` on, where a sub-block for each of the ``T``
    threads (``n_threads``, default numba's) fits :data:`BLOCK_BYTES` (``L <= 222`` at ``q = 21``,
    float32, 2 threads).

    Measured (the pass alone, 2 threads, random couplings): real sequences of PF13354 (``L =
    202``, ``N = 7,515``) 0.82 s by sub-blocks against 1.22 s by chunks, ``N = 700`` 0.129
    against 0.132 s; synthetic alignments (``N = 2,000``) 1.7 against 1.8 ms per site at ``L =
    202``, but 3.0 against 2.7 at ``L = 400`` and 22 against 17 at ``L = 1000``, where the
    sub-blocks no longer fit the budget (``docs/dca-measurements.md``, "The blocked kernel too").
    """
    if n_threads is None:
        n_threads = int(nb.get_num_threads())
    sub = _kernels._PAIR_BLOCK_SITES * n_sites * n_states * n_states * itemsize
    return (n_sites * n_states >= _kernels._PAIR_BLOCKED_MIN_WIDTH
            and max(1, int(n_threads)) * sub <= BLOCK_BYTES)


def pl_block(
    n_sites: int, n_states: int, itemsize: int, *, fused: bool, n_threads: int | None = None
) -> int:
    """Sites per block of ``J`` in the pseudo-likelihood pass: one sub-block per thread where
    the CPU pass runs by sub-blocks (:func:`blocked_pass`), else :func:`default_block`."""
    if n_threads is None:
        n_threads = int(nb.get_num_threads())
    if fused and blocked_pass(n_sites, n_states, itemsize, n_threads):
        return int(min(n_sites, _kernels._PAIR_BLOCK_SITES * max(1, int(n_threads))))
    return default_block(n_sites, n_states, itemsize, fused=fused)


# ------------------------------------------------------------------------------ helpers
def _check(attention: torch.Tensor, values: torch.Tensor, tokens: torch.Tensor,
           allow_mask: bool = True) -> tuple[int, int, int]:
    if not all(isinstance(t, torch.Tensor) for t in (attention, values, tokens)):
        raise ValidationError("attention, values and tokens must be torch tensors")
    if attention.ndim != 3 or attention.shape[1] != attention.shape[2]:
        raise ShapeError(f"attention must have shape (H, L, L), got {tuple(attention.shape)}")
    H, L = int(attention.shape[0]), int(attention.shape[1])
    if values.ndim != 3 or values.shape[0] != H or values.shape[1] != values.shape[2]:
        raise ShapeError(f"values must have shape ({H}, q, q), got {tuple(values.shape)}")
    if values.dtype != attention.dtype or not attention.dtype.is_floating_point:
        raise ValidationError(
            f"attention and values must share a floating dtype, got {attention.dtype} and {values.dtype}"
        )
    q = int(values.shape[1])
    check_tokens(tokens, L, q, allow_mask=allow_mask)
    return H, L, q


def _block_weights(
    attention: torch.Tensor, values: torch.Tensor, i0: int, i1: int, symmetric: bool = False
) -> torch.Tensor:
    """``w_t: (L q, K q)`` with ``w_t[(j, b), (k, a)] = J[i0 + k, j, a, b]``.

    ``J[i, j] = sum_h A[h, i, j] V[h]``, or with ``symmetric``
    ``J[i, j] = sum_h (A[h, i, j] V[h] + A[h, j, i] V[h]^T) / 2`` (so ``J[i, j, a, b] = J[j, i, b, a]``).
    """
    L, q = attention.shape[2], values.shape[1]
    K = i1 - i0
    a_blk, v = _block_factors(attention, values, i0, i1, symmetric)  # (H', K, L), (H', q q)
    # (K L, H') @ (H', q q) -> J[I]: (K, L, q_a, q_b), then the kernel's layout (L, q_b, K, q_a)
    J = (a_blk.reshape(a_blk.shape[0], K * L).T @ v).reshape(K, L, q, q)
    return J.permute(1, 3, 0, 2).reshape(L * q, K * q).contiguous()


def symmetric_heads(
    rows: torch.Tensor, columns_t: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``2 H`` heads of the symmetric couplings ``sum_h (A_h[i, j] V_h + A_h[j, i] V_h^T) / 2``.

    ``rows = A[:, I, :]`` and ``columns_t = A[:, :, I]`` transposed, both ``(H, K, L)`` (``I`` all
    sites: ``A`` and ``A^T``), ``values = V: (H, q, q)`` -> ``(2H, K, L)``, ``(2H, q, q)``: the
    heads ``A_h`` with ``V_h / 2`` and ``A_h^T`` with ``V_h^T / 2``.
    """
    return torch.cat([rows, columns_t]), 0.5 * torch.cat([values, values.transpose(1, 2)])


class _TransposedOverlap(torch.autograd.Function):
    """``T[h, g] = sum_ij A[h, i, j] A[g, j, i]`` by blocks of rows (no transposed copy of ``A``)."""

    @staticmethod
    def forward(ctx: Any, attention: torch.Tensor, block: int) -> torch.Tensor:
        ctx.save_for_backward(attention)
        ctx.block = block
        H, L, _ = attention.shape
        out = attention.new_zeros(H, H)
        for i0 in range(0, L, block):
            i1 = min(L, i0 + block)
            rows = attention[:, i0:i1, :].reshape(H, -1)  # A[h, i, :], i in the block
            cols = attention[:, :, i0:i1].transpose(1, 2).reshape(H, -1)  # A[g, :, i] (a block copy)
            out += rows @ cols.T
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        (attention,) = ctx.saved_tensors
        H, L, _ = attention.shape
        # d T[h, g] / d A[k, i, j] = [h = k] A[g, j, i] + [g = k] A[h, j, i]
        M = grad_out + grad_out.T
        grad = torch.empty_like(attention)
        for i0 in range(0, L, ctx.block):
            i1 = min(L, i0 + ctx.block)
            cols = attention[:, :, i0:i1].transpose(1, 2).reshape(H, -1)  # A[g, j, i], i in the block
            grad[:, i0:i1, :] = (M @ cols).reshape(H, i1 - i0, L)
        return grad, None


def transposed_overlap(attention: torch.Tensor, *, block: int | None = None) -> torch.Tensor:
    """``(H, H)`` overlaps ``T[h, g] = sum_ij A_h[i, j] A_g[j, i] = <A_h, A_g^T>`` of ``A: (H, L, L)``.

    The symmetric couplings' ``<J, J^T>`` needs them. Computed by blocks of rows, forward and
    backward, so neither keeps a transposed copy of ``A`` (``H L^2`` numbers: 128 MB at
    ``L = 1000``, ``H = 32`` in float32); a block copies at most :data:`BLOCK_BYTES`.
    """
    if attention.ndim != 3 or attention.shape[1] != attention.shape[2]:
        raise ShapeError(f"attention must be (H, L, L), got {tuple(attention.shape)}")
    H, L = attention.shape[:2]
    if block is None:
        block = max(1, BLOCK_BYTES // max(1, H * L * attention.element_size()))
    return _TransposedOverlap.apply(attention, int(block))


def _block_factors(
    attention: torch.Tensor, values: torch.Tensor, i0: int, i1: int, symmetric: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The block's attention rows and the values as ``(H', K, L)``, ``(H', q q)``: ``H' = H``,
    or ``2 H`` with ``symmetric`` (:func:`symmetric_heads`)."""
    H, q = attention.shape[0], values.shape[1]
    a_blk = attention[:, i0:i1, :]
    if not symmetric:
        return a_blk, values.reshape(H, q * q)
    b_blk = attention[:, :, i0:i1].transpose(1, 2)  # (H, K, L): A[h, j, i] for i in the block
    a2, v2 = symmetric_heads(a_blk, b_blk, values)
    return a2, v2.reshape(2 * H, q * q)


def _contract_block(
    grad_w_t: torch.Tensor, attention: torch.Tensor, values: torch.Tensor, i0: int, i1: int,
    grad_a: torch.Tensor, grad_v: torch.Tensor, symmetric: bool = False,
) -> None:
    """Add the block's ``dLoss/dJ[I]`` (kernel layout) to the gradients of ``A`` and ``V``
    (``grad_a[:, I]``, and with ``symmetric`` also ``grad_a[:, :, I]``)."""
    H, L = attention.shape[0], attention.shape[2]
    q = values.shape[1]
    K = i1 - i0
    gJ = grad_w_t.reshape(L, q, K, q).permute(2, 0, 3, 1).reshape(K * L, q * q)  # [(i, j), (a, b)]
    a_blk, v = _block_factors(attention, values, i0, i1, symmetric)
    g_a = (gJ @ v.T).T.reshape(-1, K, L)  # (H', K, L)
    g_v = (a_blk.reshape(-1, K * L) @ gJ).reshape(-1, q, q)  # (H', q, q)
    grad_a[:, i0:i1, :] += g_a[:H]  # the halves of symmetric heads are in v already
    if not symmetric:
        grad_v += g_v
        return
    grad_a[:, :, i0:i1] += g_a[H:].transpose(1, 2)
    grad_v += 0.5 * (g_v[:H] + g_v[H:].transpose(1, 2))


def _numba_ok(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)


def _pl_numba(
    A: torch.Tensor, V: torch.Tensor, h: torch.Tensor, tokens: torch.Tensor,
    seq_weights: torch.Tensor, block: int,
    grad_a: torch.Tensor, grad_v: torch.Tensor, grad_h: torch.Tensor, symmetric: bool = False,
) -> float:
    """The CPU pass (numba kernel per block); adds the gradients, returns the loss."""
    L, q = A.shape[1], V.shape[1]
    rows = row_index(tokens, q)
    tok = np.ascontiguousarray(tokens.detach().cpu().numpy().astype(np.int32))
    sw = np.ascontiguousarray(seq_weights.detach().cpu().numpy().astype(
        np.float32 if A.dtype == torch.float32 else np.float64))
    # sites per sub-block of the blocked kernel, or 0: per-thread chunks of sequences
    sub = _kernels._PAIR_BLOCK_SITES if blocked_pass(L, q, A.element_size()) else 0
    n_acc = 1 if sub else max(1, min(int(nb.get_num_threads()), int(tokens.shape[0])))  # gradients
    loss = 0.0
    for i0 in range(0, L, block):
        i1 = min(L, i0 + block)
        K = i1 - i0
        w_t = _block_weights(A, V, i0, i1, symmetric).numpy()
        bias = np.ascontiguousarray(h[i0:i1].reshape(K * q).numpy())
        targets = np.ascontiguousarray(tok[:, i0:i1])
        # sub-blocks in parallel into one gradient, or chunks of sequences into one each
        grad_buf = np.empty((n_acc, L * q, K * q), dtype=w_t.dtype)
        gbias_buf = np.empty((n_acc, K * q), dtype=w_t.dtype)
        loss_buf = np.zeros(-(-K // sub) if sub else n_acc, dtype=np.float64)
        if sub:
            _fused_pl_blocked(rows, targets, sw, w_t, bias, q, sub, grad_buf[0], gbias_buf[0], loss_buf)
        else:
            _fused_pl_kernel(rows, targets, sw, w_t, bias, q, grad_buf, gbias_buf, loss_buf)
        del w_t
        gw = torch.from_numpy(grad_buf.sum(0) if n_acc > 1 else grad_buf[0])
        del grad_buf
        _contract_block(gw, A, V, i0, i1, grad_a, grad_v, symmetric)
        grad_h[i0:i1] = torch.from_numpy(gbias_buf.sum(0)).reshape(K, q)
        loss += float(loss_buf.sum())
    return loss


def dense_chunk_rows(n_seq: int, n_sites: int, n_states: int, itemsize: int) -> int:
    """Sequences per chunk of the matrix-product pass: one-hot rows ``(C, L q)`` of at most
    :data:`DENSE_CHUNK_BYTES` (all ``N`` in one chunk at short ``L``), at least one."""
    per_row = n_sites * n_states * itemsize
    return int(max(1, min(n_seq, DENSE_CHUNK_BYTES // max(1, per_row))))


def _pl_dense(
    A: torch.Tensor, V: torch.Tensor, h: torch.Tensor, tokens: torch.Tensor,
    seq_weights: torch.Tensor, block: int,
    grad_a: torch.Tensor, grad_v: torch.Tensor, grad_h: torch.Tensor, symmetric: bool = False,
) -> torch.Tensor:
    """Any device: one-hot matrix products per block and chunk of sequences; adds the gradients
    and returns the loss as a float64 tensor on the device (no synchronisation).

    The one-hot rows of a chunk are written into one reused buffer (built once when all
    sequences fit one chunk), the gradient of a block accumulates in place (``addmm_``) and
    the softmax's gradient overwrites its log-probabilities: per chunk only its logits are new,
    per block its ``J[I]`` and their gradient.
    """
    N, L = int(tokens.shape[0]), int(A.shape[1])
    q = int(V.shape[1])
    tok = tokens.to(A.device).long()
    sw = seq_weights.to(device=A.device, dtype=A.dtype)
    C = dense_chunk_rows(N, L, q, A.element_size())
    x_buf = torch.empty((C, L, q), dtype=A.dtype, device=A.device)

    def one_hot(s0: int) -> torch.Tensor:  # (n, L q) rows of sequences s0.. in x_buf
        t = tok[s0 : s0 + C]
        return one_hot_states(t, q, A.dtype, out=x_buf[: t.shape[0]]).view(-1, L * q)

    x_all = one_hot(0) if C >= N else None
    loss = torch.zeros((), dtype=torch.float64, device=A.device)
    for i0 in range(0, L, block):
        i1 = min(L, i0 + block)
        K = i1 - i0
        w_t = _block_weights(A, V, i0, i1, symmetric)  # (L q, K q)
        gw = torch.zeros_like(w_t)
        for s0 in range(0, N, C):
            x = x_all if x_all is not None else one_hot(s0)
            n = x.shape[0]
            z = (x @ w_t).view(n, K, q).add_(h[i0:i1])
            logp = z.log_softmax(-1)  # (n, K, q)
            del z
            tgt = tok[s0 : s0 + n, i0:i1, None]
            w = sw[s0 : s0 + n, None]  # (n, 1)
            loss -= (logp.gather(-1, tgt)[..., 0] * w).sum().double()
            g = logp.exp_().mul_(w[..., None])  # softmax * w, in place
            g.scatter_add_(-1, tgt, -w[..., None].expand(-1, K, 1))
            grad_h[i0:i1] += g.sum(0)
            gw.addmm_(x.T, g.view(n, K * q))
            del logp, g
        _contract_block(gw, A, V, i0, i1, grad_a, grad_v, symmetric)
    return loss


# ------------------------------------------------------------------------------ objective
class FactoredPseudoLikelihood(torch.autograd.Function):
    """``(A (H, L, L), V (H, q, q), h (L, q), tokens (N, L), weights (N,), block, symmetric) -> sum_n w_n sum_i -log P``.

    Loss and the gradients of ``A``, ``V`` and ``h`` are computed together in the forward pass,
    block by block over sites; the backward pass only scales them.
    """

    @staticmethod
    def forward(
        ctx: Any,
        attention: torch.Tensor,
        values: torch.Tensor,
        fields: torch.Tensor,
        tokens: torch.Tensor,
        seq_weights: torch.Tensor,
        block: int,
        symmetric: bool,
    ) -> torch.Tensor:
        A, V, h = attention.detach(), values.detach(), fields.detach()
        grad_a = torch.zeros_like(A)
        grad_v = torch.zeros_like(V)
        grad_h = torch.zeros_like(h)
        run = _pl_numba if _numba_ok(A) else _pl_dense
        loss = run(A, V, h, tokens, seq_weights, block, grad_a, grad_v, grad_h, symmetric)
        ctx.save_for_backward(grad_a, grad_v, grad_h)
        return torch.as_tensor(loss, dtype=torch.float64, device=A.device).to(A.dtype)  # no sync

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        grad_a, grad_v, grad_h = ctx.saved_tensors
        return grad_out * grad_a, grad_out * grad_v, grad_out * grad_h, None, None, None, None


def factored_pseudo_likelihood(
    attention: torch.Tensor,
    values: torch.Tensor,
    fields: torch.Tensor,
    tokens: torch.Tensor,
    seq_weights: torch.Tensor,
    *,
    block: int | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """Negative weighted log pseudo-likelihood of factored attention, blocked over sites.

    ``sum_n w_n sum_i -log softmax_a(h[i, a] + sum_j J[i, j, a, s_nj])[s_ni]`` with
    ``J[i, j] = sum_h A[h, i, j] V[h]`` (or its symmetric form, ``symmetric``, see
    :func:`reference_factored_logits`) and gradients for ``A``, ``V`` and ``h``. The diagonal ``A[:, i, i]`` is used as given
    (zero it for a structural model). Memory: a block of ``J`` and the factors' gradients; never
    ``J`` whole nor per-head activations.

    Args:
        attention: ``A: (H, L, L)``.
        values: ``V: (H, q, q)``, ``V[h, a, b]``: contribution to colour ``a`` of a neighbour ``b``.
        fields: ``h: (L, q)``.
        tokens: ``(N, L)`` states ``0..q-1`` (no ``[MASK]``).
        seq_weights: ``(N,)`` sequence weights.
        block: sites per block (default :func:`pl_block`: one sub-block per thread or
            cache-sized on the CPU, larger for the matrix products on a GPU).
        symmetric: the couplings ``(J[i, j] + J[j, i]^T) / 2`` of the heads (a Potts model).
    """
    _, L, q = _check(attention, values, tokens, allow_mask=False)
    if fields.shape != (L, q) or fields.dtype != attention.dtype:
        raise ShapeError(f"fields must have shape ({L}, {q}) and dtype {attention.dtype}, got "
                         f"{tuple(fields.shape)} {fields.dtype}")
    if seq_weights.shape != (tokens.shape[0],):
        raise ShapeError(f"seq_weights must have shape ({tokens.shape[0]},), got {tuple(seq_weights.shape)}")
    if block is None:
        block = pl_block(L, q, attention.element_size(), fused=_numba_ok(attention))
    elif int(block) < 1:
        raise ValidationError(f"block must be >= 1 site, got {block}")
    return FactoredPseudoLikelihood.apply(attention, values, fields, tokens, seq_weights, int(block),
                                          bool(symmetric))


# ------------------------------------------------------------------------------ logits
class FactoredLogits(torch.autograd.Function):
    """``(A (H, L, L), V (H, q, q), tokens (N, L), block, symmetric) -> (N, L, q)`` coupling logits, blocked."""

    @staticmethod
    def forward(ctx: Any, attention: torch.Tensor, values: torch.Tensor, tokens: torch.Tensor,
                block: int, symmetric: bool) -> torch.Tensor:
        A, V = attention.detach(), values.detach()
        L, q = A.shape[1], V.shape[1]
        N = int(tokens.shape[0])
        ctx.block, ctx.symmetric = block, symmetric
        ctx.save_for_backward(attention, values, tokens)
        if _numba_ok(A):
            rows = row_index(tokens, q)
            out = np.empty((N, L, q), dtype=np.float32 if A.dtype == torch.float32 else np.float64)
            for i0 in range(0, L, block):
                i1 = min(L, i0 + block)
                w_t = _block_weights(A, V, i0, i1, symmetric).numpy()
                part = np.empty((N, (i1 - i0) * q), dtype=w_t.dtype)
                gather_rows(rows, w_t, np.zeros(w_t.shape[1], dtype=w_t.dtype), part)
                out[:, i0:i1] = part.reshape(N, i1 - i0, q)
            return torch.from_numpy(out)
        x = one_hot_states(tokens.to(A.device), q, A.dtype).reshape(N, L * q)
        out_t = torch.empty((N, L, q), dtype=A.dtype, device=A.device)
        for i0 in range(0, L, block):
            i1 = min(L, i0 + block)
            out_t[:, i0:i1] = (x @ _block_weights(A, V, i0, i1, symmetric)).reshape(N, i1 - i0, q)
        return out_t

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        attention, values, tokens = ctx.saved_tensors
        A, V = attention.detach(), values.detach()
        L, q = A.shape[1], V.shape[1]
        N = int(tokens.shape[0])
        grad_a = torch.zeros_like(A)
        grad_v = torch.zeros_like(V)
        block, symmetric = ctx.block, ctx.symmetric
        if _numba_ok(A):
            rows = row_index(tokens, q)
            g_all = grad_out.detach().contiguous().numpy()
            for i0 in range(0, L, block):
                i1 = min(L, i0 + block)
                g = np.ascontiguousarray(g_all[:, i0:i1].reshape(N, -1))
                g_w = np.empty((L * q, g.shape[1]), dtype=g.dtype)
                scatter_rows(rows, g, g_w, q, 1)
                _contract_block(torch.from_numpy(g_w), A, V, i0, i1, grad_a, grad_v, symmetric)
        else:
            x = one_hot_states(tokens.to(A.device), q, A.dtype).reshape(N, L * q)
            for i0 in range(0, L, block):
                i1 = min(L, i0 + block)
                gw = x.T @ grad_out[:, i0:i1].reshape(N, -1)
                _contract_block(gw, A, V, i0, i1, grad_a, grad_v, symmetric)
        return grad_a, grad_v, None, None, None


def factored_logits(
    attention: torch.Tensor,
    values: torch.Tensor,
    tokens: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    block: int | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """``logits[n, i, a] = bias[i, a] + sum_j J[i, j, a, s_nj]``: ``(N, L, q)``, with
    ``J[i, j] = sum_h A[h, i, j] V[h]`` or its symmetric form (``symmetric``).

    Differentiable in ``A``, ``V`` and ``bias``; one block of ``J`` at a time; the ``[MASK]``
    token ``q`` contributes nothing. The diagonal of ``A`` is used as given.
    """
    _, L, q = _check(attention, values, tokens)
    if block is None:
        block = default_block(L, q, attention.element_size(), fused=_numba_ok(attention))
    elif int(block) < 1:
        raise ValidationError(f"block must be >= 1 site, got {block}")
    out = FactoredLogits.apply(attention, values, tokens, int(block), bool(symmetric))
    return out if bias is None else out + bias


def reference_factored_logits(
    attention: torch.Tensor, values: torch.Tensor, tokens: torch.Tensor, *, symmetric: bool = False
) -> torch.Tensor:
    """Plain autograd formulation (per-head value embedding ``E_h[n, j, a] = V_h[a, s_nj]``), for tests.

    With ``symmetric``: the couplings ``J[i, j] = sum_h (A[h, i, j] V[h] + A[h, j, i] V[h]^T) / 2``.
    """
    _check(attention, values, tokens)
    q = int(values.shape[1])
    x = torch.nn.functional.one_hot(tokens.long(), q + 1)[..., :q].to(attention.dtype)  # (N, L, q)
    e = torch.einsum("njb,hab->hnja", x, values)  # (H, N, L, q)
    out = torch.einsum("hij,hnja->nia", attention, e)
    if not symmetric:
        return out
    e_t = torch.einsum("njb,hba->hnja", x, values)  # V_h^T[a, s_nj]
    return 0.5 * (out + torch.einsum("hji,hnja->nia", attention, e_t))
