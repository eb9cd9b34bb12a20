"""Gauge transformations on raw arrays (for code that holds couplings but no model object)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError

__all__ = ["zero_sum_gauge"]


def zero_sum_gauge(
    couplings: np.ndarray, fields: np.ndarray | None = None, *, exclude_fields: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-sum gauge of ``couplings: (L, L, q, q)`` and ``fields: (L, q)``.

    Each block ``J[i, j]`` gets zero row and column sums (double centring); the removed row means
    ``sum_j mean_b J[i, j, a, b]`` move into ``h[i, a]``, then each ``h[i]`` is centred. This keeps
    every conditional ``P(s_i | s_rest)``. Works for asymmetric couplings too.

    Returns:
        ``(couplings0, fields0)`` as new float64 arrays.
    """
    J = np.asarray(couplings, dtype=np.float64)
    if J.ndim != 4 or J.shape[0] != J.shape[1] or J.shape[2] != J.shape[3]:
        raise ShapeError(f"couplings must have shape (L, L, q, q), got {J.shape}")
    L, q = J.shape[0], J.shape[2]
    h = np.zeros((L, q)) if fields is None else np.asarray(fields, dtype=np.float64)
    if h.shape != (L, q):
        raise ShapeError(f"fields must have shape {(L, q)}, got {h.shape}")
    row = J.mean(axis=3, keepdims=True)
    col = J.mean(axis=2, keepdims=True)
    tot = J.mean(axis=(2, 3), keepdims=True)
    J0 = J - row - col + tot
    h = h if exclude_fields else h + row[..., 0].sum(axis=1)
    return J0, h - h.mean(axis=1, keepdims=True)
