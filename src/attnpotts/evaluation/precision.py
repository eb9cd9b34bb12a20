"""Contact-prediction precision: the fraction of true contacts among the top-ranked pairs.

Convention: pairs ``i < j`` with ``|p_i - p_j| >= min_separation`` (``p``: column positions, by
default ``0..L-1``; pass the alignment's ``column_map`` when columns were dropped so separations
are measured in the original alignment), ranked by decreasing score (ties: smaller ``i``, then
smaller ``j`` first); pairs of unknown distance (NaN) are left out of the ranking; a pair is a
contact when its distance is ``< cutoff`` (8 A by default). ``precision@L/k`` looks at the top
``floor(L / k)`` (at least 1) pairs, with ``L`` the number of columns unless ``length`` is given;
when fewer candidate pairs exist, all of them are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ShapeError, ValidationError

__all__ = [
    "DEFAULT_FRACTIONS",
    "DEFAULT_SEPARATIONS",
    "contact_precision",
    "precision_at",
    "precision_table",
    "ranked_pairs",
]

#: ``k`` of the ``precision@L/k`` columns.
DEFAULT_FRACTIONS: tuple[int, ...] = (1, 2, 5, 10)
#: Minimum separations evaluated by :func:`precision_table`.
DEFAULT_SEPARATIONS: tuple[int, ...] = (6, 12, 24)


def _square(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShapeError(f"{name} must be (L, L), got shape {a.shape}")
    return a


def ranked_pairs(
    scores: Any,
    *,
    min_separation: int = 6,
    distances: Any = None,
    positions: Any = None,
) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, by decreasing score: ``(P, 2)`` 0-based column indices.

    Pairs closer than ``min_separation`` (in ``positions``) and, when ``distances`` are given,
    pairs of unknown (NaN) distance are left out.
    """
    S = _square(scores, "scores")
    L = S.shape[0]
    pos = np.arange(L) if positions is None else np.asarray(positions, dtype=np.int64)
    if pos.shape != (L,):
        raise ShapeError(f"positions must have shape ({L},), got {pos.shape}")
    if min_separation < 1:
        raise ValidationError(f"min_separation must be >= 1, got {min_separation}")
    i, j = np.triu_indices(L, k=1)
    ok = np.abs(pos[i] - pos[j]) >= min_separation
    if distances is not None:
        D = _square(distances, "distances")
        if D.shape != S.shape:
            raise ShapeError(f"distances {D.shape} and scores {S.shape} differ in shape")
        ok &= np.isfinite(D[i, j])
    i, j = i[ok], j[ok]
    s = S[i, j]
    if np.isnan(s).any():
        raise ValidationError("scores contain NaN for candidate pairs")
    order = np.argsort(-s, kind="stable")  # stable: ties keep the (i, j) order
    return np.stack([i[order], j[order]], axis=1)


def contact_precision(
    scores: Any,
    distances: Any,
    *,
    top: int,
    cutoff: float = 8.0,
    min_separation: int = 6,
    positions: Any = None,
) -> float:
    """Fraction of contacts (``distance < cutoff``) among the ``top`` best-scoring pairs.

    Returns NaN when there is no candidate pair.
    """
    if top < 1:
        raise ValidationError(f"top must be >= 1, got {top}")
    if cutoff <= 0:
        raise ValidationError(f"cutoff must be positive, got {cutoff}")
    D = _square(distances, "distances")
    pairs = ranked_pairs(scores, min_separation=min_separation, distances=D, positions=positions)[
        :top
    ]
    if pairs.shape[0] == 0:
        return float("nan")
    return float(np.mean(D[pairs[:, 0], pairs[:, 1]] < cutoff))


def precision_at(
    scores: Any,
    distances: Any,
    *,
    cutoff: float = 8.0,
    min_separation: int = 6,
    fractions: Sequence[int] = DEFAULT_FRACTIONS,
    length: int | None = None,
    positions: Any = None,
) -> dict[str, float]:
    """``{"L": p, "L/2": p, ...}``: precision of the top ``L/k`` pairs for each ``k``."""
    S = _square(scores, "scores")
    L = S.shape[0] if length is None else int(length)
    if L < 1:
        raise ValidationError(f"length must be >= 1, got {L}")
    D = _square(distances, "distances")
    pairs = ranked_pairs(S, min_separation=min_separation, distances=D, positions=positions)
    hits = D[pairs[:, 0], pairs[:, 1]] < cutoff
    out: dict[str, float] = {}
    for k in fractions:
        if k < 1:
            raise ValidationError(f"fractions must be >= 1, got {k}")
        n = max(1, L // k)
        key = "L" if k == 1 else f"L/{k}"
        out[key] = float(hits[:n].mean()) if hits.size else float("nan")
    return out


def precision_table(
    scores: Any,
    distances: Any,
    *,
    cutoff: float = 8.0,
    separations: Sequence[int] = DEFAULT_SEPARATIONS,
    fractions: Sequence[int] = DEFAULT_FRACTIONS,
    length: int | None = None,
    positions: Any = None,
) -> dict[str, dict[str, float]]:
    """``{">=6": {"L": p, "L/2": p, ...}, ">=12": {...}, ">=24": {...}}`` at one ``cutoff``."""
    return {
        f">={s}": precision_at(
            scores,
            distances,
            cutoff=cutoff,
            min_separation=s,
            fractions=fractions,
            length=length,
            positions=positions,
        )
        for s in separations
    }
