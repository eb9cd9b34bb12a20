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
from ..potts.layout import check_couplings_shape, transpose_couplings

__all__ = ["apc", "contact_scores", "frobenius_scores", "symmetrize_couplings"]


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


def frobenius_scores(
    couplings: Any,
    *,
    exclude_state: int | None = None,
    gauge: Literal["zero-sum", "none"] = "zero-sum",
    symmetrize: bool = True,
) -> np.ndarray:
    """Frobenius norm of every coupling block: ``(L, L)``, symmetric, zero diagonal.

    One pass over the couplings without temporaries of their size (a numba kernel, checked
    against the NumPy formula of the module docstring by the tests).

    Args:
        couplings: ``(L, L, q, q)`` (numpy or torch).
        exclude_state: a state left out of the norm, typically the gap
            (``alphabet.gap_index``); excluded *after* the gauge fixing over all ``q`` states.
        gauge: ``"zero-sum"`` (default) or ``"none"`` to score the blocks as given.
        symmetrize: symmetrise the couplings first (no change for symmetric input); without it
            the norms of ``J[i, j]`` and ``J[j, i]`` are averaged.
    """
    from ._frobenius import block_frobenius

    J = np.ascontiguousarray(_as_couplings(couplings))
    L, q = J.shape[0], J.shape[2]
    if gauge not in ("zero-sum", "none"):
        raise ValidationError(f"gauge must be 'zero-sum' or 'none', got {gauge!r}")
    if exclude_state is not None and not 0 <= exclude_state < q:
        raise ValidationError(f"exclude_state must lie in 0..{q - 1}, got {exclude_state}")
    keep = np.array([a != exclude_state for a in range(q)])
    F = np.empty((L, L))
    block_frobenius(J, keep, bool(symmetrize), gauge == "zero-sum", F)
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
