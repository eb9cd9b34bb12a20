"""Contact scores from couplings: zero-sum gauge, Frobenius norm per pair, average product correction.

The standard DCA score (Ekeberg et al. 2013; plmc, CCMpred, plmDCA):

1. symmetrise the couplings when they are not symmetric (asymmetric pseudo-likelihood and learned
   attention): ``J_sym[i, j, a, b] = (J[i, j, a, b] + J[j, i, b, a]) / 2``;
2. put every block ``J[i, j]`` in the zero-sum gauge over all ``q`` states
   (:func:`attnpotts.potts.zero_sum_gauge`), so the score does not depend on the gauge;
3. Frobenius norm of the block, optionally without the gap state's row and column
   ``F[i, j] = sqrt(sum_{a, b != gap} J0[i, j, a, b]^2)``;
4. average product correction ``APC[i, j] = F[i, j] - F[i, .] F[., j] / F[., .]`` with means over
   ``j != i`` and over all pairs ``i != j``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..errors import ShapeError, ValidationError
from ..potts import zero_sum_gauge
from ..potts.layout import check_couplings_shape, transpose_couplings

__all__ = ["DENSE_LIMIT_BYTES", "apc", "contact_scores", "frobenius_scores", "symmetrize_couplings"]


def _as_couplings(couplings: Any) -> np.ndarray:
    if type(couplings).__module__.split(".")[0] == "torch":
        couplings = couplings.detach().cpu().numpy()
    J = np.asarray(couplings, dtype=np.float64)
    check_couplings_shape(J)
    if not np.all(np.isfinite(J)):
        raise ValidationError("couplings contain NaN or infinite values")
    return J


def symmetrize_couplings(couplings: Any) -> np.ndarray:
    """``(J[i, j, a, b] + J[j, i, b, a]) / 2``: the symmetric couplings of a joint Potts model."""
    J = _as_couplings(couplings)
    return 0.5 * (J + transpose_couplings(J))


#: Couplings up to this many bytes are gauge-fixed in one call of ``zero_sum_gauge``; larger ones
#: block-row by block-row (same arithmetic, bounded temporary memory).
DENSE_LIMIT_BYTES = 256 * 1024**2


def frobenius_scores(
    couplings: Any,
    *,
    exclude_state: int | None = None,
    gauge: Literal["zero-sum", "none"] = "zero-sum",
    symmetrize: bool = True,
    dense_limit_bytes: int = DENSE_LIMIT_BYTES,
) -> np.ndarray:
    """Frobenius norm of every coupling block: ``(L, L)``, symmetric, zero diagonal.

    Args:
        couplings: ``(L, L, q, q)`` (numpy or torch).
        exclude_state: a state left out of the norm, typically the gap
            (``alphabet.gap_index``); excluded *after* the gauge fixing over all ``q`` states.
        gauge: ``"zero-sum"`` (default) or ``"none"`` to score the blocks as given.
        symmetrize: symmetrise the couplings first (no change for symmetric input).
        dense_limit_bytes: above this size the gauge is fixed in blocks of rows, so that the
            temporary memory stays near ``dense_limit_bytes`` instead of 4 copies of the couplings.
    """
    J = _as_couplings(couplings)
    L, q = J.shape[0], J.shape[2]
    if gauge not in ("zero-sum", "none"):
        raise ValidationError(f"gauge must be 'zero-sum' or 'none', got {gauge!r}")
    if exclude_state is not None and not 0 <= exclude_state < q:
        raise ValidationError(f"exclude_state must lie in 0..{q - 1}, got {exclude_state}")
    keep = np.array([a != exclude_state for a in range(q)])
    if J.nbytes <= dense_limit_bytes:
        if symmetrize:
            J = 0.5 * (J + transpose_couplings(J))
        if gauge == "zero-sum":
            J, _ = zero_sum_gauge(J)
        F = np.sqrt((J[:, :, keep][:, :, :, keep] ** 2).sum(axis=(2, 3)))
    else:
        F = np.empty((L, L))
        rows = max(1, int(dense_limit_bytes // max(1, 4 * J[0].nbytes)))
        for i0 in range(0, L, rows):
            blk = J[i0 : i0 + rows]  # (B, L, q, q)
            if symmetrize:
                # rows i0.. of transpose_couplings(J): J[j, i, b, a] for i in the block
                blk = 0.5 * (blk + J[:, i0 : i0 + rows].swapaxes(0, 1).swapaxes(2, 3))
            if gauge == "zero-sum":  # the double centring of zero_sum_gauge, block by block
                blk = (
                    blk
                    - blk.mean(axis=3, keepdims=True)
                    - blk.mean(axis=2, keepdims=True)
                    + blk.mean(axis=(2, 3), keepdims=True)
                )
            F[i0 : i0 + rows] = np.sqrt((blk[:, :, keep][:, :, :, keep] ** 2).sum(axis=(2, 3)))
    F[np.arange(L), np.arange(L)] = 0.0
    if not symmetrize:
        F = 0.5 * (F + F.T)
    return F


def apc(scores: Any) -> np.ndarray:
    """Average product correction of a symmetric score matrix ``(L, L)`` (diagonal ignored).

    ``S[i, j] - mean_{k != i} S[i, k] * mean_{k != j} S[k, j] / mean_{k != l} S[k, l]``; the
    diagonal of the result is 0. A matrix of zeros is returned unchanged.
    """
    S = np.array(scores, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ShapeError(f"scores must be (L, L), got shape {S.shape}")
    L = S.shape[0]
    if L < 3:
        raise ValidationError(f"APC needs at least 3 sites, got L = {L}")
    if not np.all(np.isfinite(S)):
        raise ValidationError("scores contain NaN or infinite values")
    off = ~np.eye(L, dtype=bool)
    S0 = np.where(off, S, 0.0)
    row = S0.sum(axis=1) / (L - 1)
    col = S0.sum(axis=0) / (L - 1)
    total = S0.sum() / (L * (L - 1))
    out = S0 - (np.outer(row, col) / total if total != 0 else 0.0)
    out[~off] = 0.0
    return out


def contact_scores(
    couplings: Any,
    *,
    exclude_state: int | None = None,
    use_apc: bool = True,
    gauge: Literal["zero-sum", "none"] = "zero-sum",
) -> np.ndarray:
    """Frobenius norm (zero-sum gauge, ``exclude_state`` left out) followed by APC: ``(L, L)``."""
    F = frobenius_scores(couplings, exclude_state=exclude_state, gauge=gauge)
    return apc(F) if use_apc else F
