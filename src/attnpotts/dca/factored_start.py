"""Start of a factored-attention fit from mean-field couplings (a spectral start of queries and keys).

Why: from random factors the L-BFGS fit of factored attention needs 100-600 iterations, most of
them spent finding *which* pairs of sites interact (the attention), while the full model's convex
fit takes 20. The mean-field estimate of the couplings (the negative inverse of the regularised
covariance, mfDCA) already ranks the contacts well and costs one Cholesky factorisation. The
attention logits ``Q_h K_h^T / sqrt(d)`` are started at ``beta`` times the rank-``d``
approximation of the standardised mean-field contact map (its ``d`` eigenvectors of largest
``|eigenvalue|``), plus Gaussian noise of standard deviation ``noise`` per head (the heads must
differ, or they stay alike); the values and fields start as before. The fit then refines
positions and values together.

Cost: the pair frequencies (``N L^2`` work, numba) into one ``(L (q-1))^2`` float64 matrix,
factorised and inverted in place (``(L (q-1))^3 / 3``), then ``L x L`` work. Above
:data:`MEAN_FIELD_MAX_DIM` (``L (q-1)``; ``L = 300`` at ``q = 21``) the matrix (288 MB) is
not formed and the fit starts from random factors; :func:`mean_field_start_bytes` is the start's
memory for :func:`attnpotts.dca.estimate_memory`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from ..errors import ValidationError

__all__ = [
    "MEAN_FIELD_MAX_DIM",
    "MEAN_FIELD_PSEUDOCOUNT",
    "mean_field_scores",
    "mean_field_start_bytes",
    "spectral_query_key",
]

#: Largest ``L (q - 1)`` for which the mean-field start forms its covariance matrix (float64,
#: ``8 (L (q-1))^2`` bytes: 288 MB at 6000); larger fits start from random factors.
MEAN_FIELD_MAX_DIM = 6000
#: Pseudocount weight of the mean-field covariance (mfDCA's 0.5): keeps it well conditioned.
MEAN_FIELD_PSEUDOCOUNT = 0.5


def mean_field_start_bytes(n_sites: int, n_states: int) -> int:
    """Peak bytes of :func:`mean_field_scores` (0 when ``L (q-1)`` exceeds the cap)."""
    dim = int(n_sites) * (int(n_states) - 1)
    if dim > MEAN_FIELD_MAX_DIM:
        return 0
    return 8 * dim * dim + 6 * 8 * int(n_sites) ** 2


@nb.njit(parallel=True, cache=True)
def _pair_frequencies(states: np.ndarray, weights: np.ndarray, n_kept: int, out: np.ndarray) -> None:  # pragma: no cover
    """``out[i r + a, j r + b] += w_n`` for ``s_ni = a < r``, ``s_nj = b < r`` (``r = q - 1``).

    Parallel over sites ``i``: each thread owns the rows of its sites. ``out`` zeroed first.
    """
    n_seq, n_sites = states.shape
    for i in nb.prange(n_sites):
        for n in range(n_seq):
            a = states[n, i]
            if a >= n_kept:
                continue
            row = i * n_kept + a
            wn = weights[n]
            for j in range(n_sites):
                b = states[n, j]
                if b < n_kept:
                    out[row, j * n_kept + b] += wn


def mean_field_scores(
    states: np.ndarray, weights: np.ndarray, n_states: int,
    pseudocount: float = MEAN_FIELD_PSEUDOCOUNT,
) -> np.ndarray:
    """APC-corrected Frobenius scores ``(L, L)`` of the mean-field couplings ``J = -C^{-1}``.

    ``C`` is the covariance of the one-hot states with the last state ``q - 1`` left out as the
    reference (mfDCA's gauge), frequencies mixed with the uniform ones at weight ``pseudocount``;
    each ``J_ij`` block is put in the zero-sum gauge over the kept states before its norm.

    Args:
        states: ``(N, L)`` integer states ``0..q-1``.
        weights: ``(N,)`` non-negative sequence weights.
        n_states: ``q``.
        pseudocount: in ``(0, 1)``.
    """
    from scipy.linalg import lapack

    from ..evaluation import apc

    if not 0.0 < pseudocount < 1.0:
        raise ValidationError(f"pseudocount must lie in (0, 1), got {pseudocount}")
    x = np.ascontiguousarray(states, dtype=np.int32)
    L = x.shape[1]
    q = int(n_states)
    r = q - 1
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    dim = L * r
    C = np.zeros((dim, dim))
    _pair_frequencies(x, w, r, C)
    f = np.ascontiguousarray(np.diagonal(C)).copy()  # single-site frequencies f_i(a), a < r
    lam = float(pseudocount)
    f1 = (1.0 - lam) * f + lam / q
    for i0 in range(0, dim, r):  # rows of one site at a time: no (dim, dim) temporaries
        blk = C[i0 : i0 + r]
        blk *= 1.0 - lam
        blk += lam / (q * q) - f1[i0 : i0 + r, None] * f1[None, :]
        blk[:, i0 : i0 + r] = np.diag(f1[i0 : i0 + r]) - np.outer(f1[i0 : i0 + r], f1[i0 : i0 + r])
    C = C.T  # symmetric: the transpose is the same matrix in LAPACK's (Fortran) layout, no copy
    chol, info = lapack.dpotrf(C, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        raise ValidationError(f"the mean-field covariance is not positive definite (LAPACK info {info})")
    inv, info = lapack.dpotri(chol, lower=1, overwrite_c=1)
    if info != 0:
        raise ValidationError(f"the mean-field covariance could not be inverted (LAPACK info {info})")
    S = np.zeros((L, L))
    for i in range(1, L):  # blocks (i, j < i) lie in the lower triangle, which dpotri filled
        J = -np.asarray(inv[i * r : (i + 1) * r, : i * r]).reshape(r, i, r).transpose(1, 0, 2)
        J = J - J.mean(1, keepdims=True) - J.mean(2, keepdims=True) + J.mean((1, 2), keepdims=True)
        S[i, :i] = np.sqrt((J * J).sum((1, 2)))
    S = S + S.T
    return np.asarray(apc(S))


def spectral_query_key(
    scores: np.ndarray, n_heads: int, key_dim: int, *, sharpness: float, noise: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries and keys ``(H, L, d)`` float64 with ``Q_h K_h^T / sqrt(d) ~ sharpness * T_d``.

    ``T`` is ``scores`` standardised over its off-diagonal entries, ``T_d`` its approximation by
    the ``d`` eigenpairs of largest ``|eigenvalue|`` (all of them when ``L < d``); every head gets
    the same ``T_d`` plus independent Gaussian noise of standard deviation ``noise`` on ``Q_h``
    and ``K_h``.
    """
    S = np.asarray(scores, dtype=np.float64)
    L = S.shape[0]
    H, d = int(n_heads), int(key_dim)
    off = ~np.eye(L, dtype=bool)
    sd = float(S[off].std())
    T = (S - S[off].mean()) / (sd if sd > 0 else 1.0)
    np.fill_diagonal(T, 0.0)
    lam, U = np.linalg.eigh(T)
    idx = np.argsort(-np.abs(lam), kind="stable")[: min(d, L)]
    scale = np.sqrt(np.abs(lam[idx]) * float(sharpness)) * d**0.25
    q_base = np.zeros((L, d))
    k_base = np.zeros((L, d))
    q_base[:, : idx.size] = U[:, idx] * scale
    k_base[:, : idx.size] = U[:, idx] * scale * np.sign(lam[idx])
    shape = (H, L, d)
    Q = torch.as_tensor(q_base)[None] + noise * torch.randn(shape, generator=generator, dtype=torch.float64)
    K = torch.as_tensor(k_base)[None] + noise * torch.randn(shape, generator=generator, dtype=torch.float64)
    return Q, K
