"""Predicted-vs-true contact map figure.

Lower triangle: the true contacts (``distance < cutoff``, ``|i - j| >= min_separation``) in grey,
columns of unknown distance shaded. Upper triangle: the ``top`` best-scoring pairs (same
separation rule), blue when they are contacts, red when they are not, hollow when their distance is
unknown. Axes are numbered from 1 like every output file, by the original alignment columns when
``positions`` (1-based columns) are given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ShapeError, ValidationError
from . import new_figure
from .experiments import index_ticks

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_contact_map"]


def plot_contact_map(
    scores: Any,
    distances: Any = None,
    *,
    top: int | None = None,
    cutoff: float = 8.0,
    min_separation: int = 6,
    positions: Any = None,
    position_label: str = "column",
    title: str | None = None,
) -> Figure:
    """Draw the top-``top`` predicted pairs over the true contact map.

    Args:
        scores: ``(L, L)`` contact scores (e.g. Frobenius + APC).
        distances: ``(L, L)`` distances in Angstrom (NaN: unknown), or ``None`` for predictions
            only.
        top: number of predicted pairs shown (default ``L``).
        cutoff: contact distance cutoff in Angstrom.
        min_separation: minimum ``|i - j|`` of the pairs shown (in ``positions``).
        positions: ``(L,)`` 1-based numbers of the sites for the axes (default ``1..L``), e.g.
            the original alignment columns (``msa.columns``) or residue numbers.
        position_label: what ``positions`` count (the axis labels: "<label> i", "<label> j").
        title: first line of the title; the second (or only) line says which pairs are shown
            and, when distances are given, their precision.
    """
    S = np.asarray(scores, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ShapeError(f"scores must be (L, L), got shape {S.shape}")
    L = S.shape[0]
    pos = np.arange(1, L + 1) if positions is None else np.asarray(positions, dtype=np.int64)
    if pos.shape != (L,):
        raise ShapeError(f"positions must have shape ({L},), got {pos.shape}")
    n_top = L if top is None else int(top)
    if n_top < 1:
        raise ValidationError(f"top must be >= 1, got {top}")
    D = None
    if distances is not None:
        D = np.asarray(distances, dtype=np.float64)
        if D.shape != S.shape:
            raise ShapeError(f"distances {D.shape} and scores {S.shape} differ in shape")
    i, j = np.triu_indices(L, k=1)
    ok = np.abs(pos[i] - pos[j]) >= min_separation
    i, j = i[ok], j[ok]
    order = np.argsort(-S[i, j], kind="stable")[:n_top]
    pi, pj = i[order], j[order]

    fig = new_figure(5.5, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    precision = None
    if D is not None:
        known = np.isfinite(D)
        with np.errstate(invalid="ignore"):
            contact = known & np.less(D, cutoff)
        ci, cj = np.nonzero(np.tril(contact, k=-1))
        sep_ok = np.abs(pos[ci] - pos[cj]) >= min_separation
        ax.scatter(
            pos[cj[sep_ok]],
            pos[ci[sep_ok]],
            s=12,
            marker="s",
            c="0.7",
            label=f"contacts (< {cutoff:g} Å)",
        )
        unknown_cols = np.flatnonzero(~known.any(axis=1))
        for c in unknown_cols:
            ax.axvspan(pos[c] - 0.5, pos[c] + 0.5, color="0.93", zorder=0)
        pd = D[pi, pj]
        is_known = np.isfinite(pd)
        with np.errstate(invalid="ignore"):
            hit = is_known & (pd < cutoff)
        miss = is_known & ~hit
        ax.scatter(pos[pj[hit]], pos[pi[hit]], s=14, c="tab:blue", label="predicted, contact")
        ax.scatter(pos[pj[miss]], pos[pi[miss]], s=14, c="tab:red", label="predicted, no contact")
        if (~is_known).any():
            ax.scatter(
                pos[pj[~is_known]],
                pos[pi[~is_known]],
                s=14,
                facecolors="none",
                edgecolors="0.4",
                label="predicted, unknown",
            )
        if is_known.any():
            precision = float(hit[is_known].mean())
    else:
        ax.scatter(pos[pj], pos[pi], s=14, c="tab:blue", label="predicted")
    # 1-based numbers as in every output file; the first column is always labelled
    lo, hi = int(pos.min()), int(pos.max())
    idx, labels = index_ticks(hi - lo + 1, first=lo)
    ticks = [lo + k for k in idx]
    ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.set_ylim(hi + 0.5, lo - 0.5)
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_aspect("equal")
    ax.set_xlabel(f"{position_label} j")
    ax.set_ylabel(f"{position_label} i")
    shown = f"top {len(pi)} pairs, |i - j| >= {min_separation}"
    if precision is not None:
        shown += f": precision {precision:.2f}"
    ax.set_title(shown if title is None else f"{title}\n{shown}", fontsize=10)
    fig.legend(loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    return fig
