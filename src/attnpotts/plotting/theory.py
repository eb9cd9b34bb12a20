"""Figure of the replica theory against simulations: a learning curve per regularisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ValidationError
from . import new_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_theory_curves"]

_LABELS = {
    "eps_g": "generalization error (test cross-entropy, nats)",
    "kl": "KL gap eps_g - eps_opt (nats)",
    "coupling_error": "coupling error |a - beta w*|^2 / N",
    "class_error": "classification error",
}


def plot_theory_curves(
    points: Sequence[Mapping[str, Any]],
    *,
    quantity: str = "eps_g",
    title: str | None = None,
    log_alpha: bool = True,
) -> Figure:
    """Theory lines (one per lambda) of ``quantity`` against alpha, with simulation points.

    Args:
        points: records with ``alpha``, ``lambda``, ``quantity`` and ``eps_opt``; a record may
            carry ``simulation`` = ``{"mean": {...}, "stderr": {...}}`` drawn as error bars
            (two standard errors). Records flagged ``optimal_lambda`` form the optimal-lambda line.
        quantity: ``eps_g``, ``kl``, ``coupling_error`` or ``class_error``.
        title: figure title; log_alpha: logarithmic alpha axis.

    Returns:
        A matplotlib figure (render with :func:`attnpotts.plotting.figure_to_png`).
    """
    if quantity not in _LABELS:
        raise ValidationError(f"quantity must be one of {', '.join(_LABELS)}, got {quantity!r}")
    if not points:
        raise ValidationError("no points to plot")
    fig = new_figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    grid = [p for p in points if not p.get("optimal_lambda")]
    lams = sorted({float(p["lambda"]) for p in grid})
    colours = [f"C{i % 10}" for i in range(len(lams))]
    for lam, colour in zip(lams, colours, strict=True):
        row = sorted((p for p in grid if float(p["lambda"]) == lam), key=lambda p: p["alpha"])
        a = np.array([p["alpha"] for p in row], dtype=float)
        y = np.array([np.nan if p[quantity] is None else p[quantity] for p in row], dtype=float)
        ax.plot(a, y, "-", color=colour, label=f"theory, lambda = {lam:g}")
        sims = [p for p in row if p.get("simulation")]
        if sims:
            sa = np.array([p["alpha"] for p in sims], dtype=float)
            sm = np.array([p["simulation"]["mean"].get(quantity, np.nan) for p in sims], float)
            se = np.array([p["simulation"]["stderr"].get(quantity, np.nan) for p in sims], float)
            n = sims[0]["simulation"].get("n_sites", "?")
            ax.errorbar(
                sa,
                sm,
                yerr=2 * np.nan_to_num(se),
                fmt="o",
                color=colour,
                ms=4,
                capsize=2,
                label=f"simulation N = {n}, lambda = {lam:g} (+-2 s.e.)",
            )
    opt = sorted((p for p in points if p.get("optimal_lambda")), key=lambda p: p["alpha"])
    if opt:
        ax.plot(
            [p["alpha"] for p in opt],
            [p[quantity] for p in opt],
            "k:",
            label="theory, optimal lambda",
        )
    if quantity == "eps_g":
        eps_opt = float(np.mean([p["eps_opt"] for p in grid]))
        ax.axhline(eps_opt, color="0.4", ls="--", lw=1, label=f"optimal loss {eps_opt:.3f}")
    if log_alpha:
        ax.set_xscale("log")
    ax.set_xlabel("alpha = M / N")
    ax.set_ylabel(_LABELS[quantity])
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig
