"""Row-index helpers shared by the coupling kernels of the full model and factored attention.

Both pseudo-likelihood kernels (:mod:`attnpotts.models.kernels`,
:mod:`attnpotts.models.factored_kernels`) read couplings in the layout ``w_t: (L q, K)`` whose
row ``j q + b`` holds what a neighbour ``j`` in state ``b`` adds to the ``K`` logits; a sequence's
logits are then the sum of ``L`` gathered rows, and the gradient of ``w_t`` the same rows
scattered back. This module holds that row index and the gather and scatter (numba, parallel),
so that the two kernel modules do not each carry a copy.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

__all__ = ["gather_rows", "row_index", "scatter_rows"]


@nb.njit(parallel=True, fastmath=True, cache=True)
def gather_rows(
    rows: np.ndarray, w_t: np.ndarray, bias: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover
    """``out[n] = bias + sum_j w_t[rows[n, j]]`` over ``rows[n, j] >= 0``.

    Shapes: ``rows: (N, L)``, ``w_t: (R, K)``, ``bias: (K,)``, ``out: (N, K)``.
    """
    n_seq, n_sites = rows.shape
    width = w_t.shape[1]
    for n in nb.prange(n_seq):
        acc = bias.copy()
        for j in range(n_sites):
            r = rows[n, j]
            if r >= 0:
                for k in range(width):
                    acc[k] += w_t[r, k]
        for k in range(width):
            out[n, k] = acc[k]


@nb.njit(parallel=True, fastmath=True, cache=True)
def scatter_rows(
    rows: np.ndarray, grad: np.ndarray, grad_w_t: np.ndarray, n_states: int, site_block: int
) -> None:  # pragma: no cover
    """``grad_w_t[rows[n, j]] += grad[n]`` for all ``n, j`` (``grad_w_t`` zeroed first).

    Parallel over blocks of ``site_block`` sites ``j``: the rows of site ``j`` are
    ``j q .. j q + q - 1``, so blocks own disjoint rows and no two threads write the same memory.
    Shapes: ``rows: (N, L)``, ``grad: (N, K)``, ``grad_w_t: (L q, K)``.
    """
    n_seq, n_sites = rows.shape
    width = grad.shape[1]
    n_blocks = (n_sites + site_block - 1) // site_block
    for blk in nb.prange(n_blocks):
        j0 = blk * site_block
        j1 = min(n_sites, j0 + site_block)
        for r in range(j0 * n_states, j1 * n_states):
            for k in range(width):
                grad_w_t[r, k] = 0.0
        for n in range(n_seq):
            for j in range(j0, j1):
                r = rows[n, j]
                if r >= 0:
                    for k in range(width):
                        grad_w_t[r, k] += grad[n, k]


def row_index(tokens: torch.Tensor, n_states: int) -> np.ndarray:
    """``rows[n, j] = j q + s_nj`` as int32 ``(N, L)``, ``-1`` for the ``[MASK]`` token ``q``."""
    tok = tokens.detach().cpu().numpy().astype(np.int32, copy=False)
    rows = tok + (np.arange(tok.shape[1], dtype=np.int32) * n_states)[None, :]
    rows[tok == n_states] = -1
    return np.ascontiguousarray(rows)
