"""Figures of ``attnpotts reproduce``: depth study, learned vs true couplings, learning curves,
the MLM / pseudo-likelihood equivalence.

Every function takes plain numbers and arrays (never a results folder), returns a
:class:`matplotlib.figure.Figure` and draws only what it is given, so figures are reproducible from
the JSON/NPZ results of a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ShapeError, ValidationError
from . import new_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "index_ticks",
    "plot_coupling_comparison",
    "plot_depth_study",
    "plot_equivalence",
    "plot_learning_curves",
    "plot_sample_curves",
    "plot_training_curve",
]


def _finite(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} contains NaN or infinite values")
    return arr


def plot_depth_study(
    curves: Sequence[Mapping[str, Any]],
    *,
    optimal_loss: float,
    optimal_stderr: float | None = None,
    compute_label: str = "training compute (process CPU seconds)",
    title: str = "",
) -> Figure:
    """Held-out loss against training compute for several models, with the optimal-loss line.

    Args:
        curves: one mapping per training run with ``label`` (legend text, or ``None`` for further
            runs of the same model), optional ``group`` (runs of one model share a colour; default:
            the label), ``compute`` ``(T,)`` and ``loss`` ``(T,)`` (the validation loss during
            training), and the ``test_loss``, ``test_stderr`` and ``final_compute`` of the
            early-stopped model (drawn as a marker with an error bar).
        optimal_loss: the true model's mean conditional entropy on the test set (dashed line).
        optimal_stderr: its standard error (shaded band).
        compute_label: x-axis label (log scale).
    """
    if not curves:
        raise ValidationError("plot_depth_study needs at least one curve")
    groups: list[str] = []
    for c in curves:
        g = str(c.get("group") or c["label"])
        if g not in groups:
            groups.append(g)
    colour_of = dict(zip(groups, _colours(len(groups)), strict=True))
    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    for c in curves:
        name = str(c.get("group") or c["label"])
        colour = colour_of[name]
        x = _finite(c["compute"], f"{name} compute")
        y = _finite(c["loss"], f"{name} loss")
        if x.shape != y.shape or x.ndim != 1:
            raise ShapeError(
                f"{name}: compute and loss must be 1-D of equal length, got {x.shape} and {y.shape}"
            )
        label = None if c.get("label") is None else str(c["label"])
        ax.plot(x, y, color=colour, lw=1.4, alpha=0.8, label=label)
        if c.get("test_loss") is not None:
            ax.errorbar(
                [float(c["final_compute"])],
                [float(c["test_loss"])],
                yerr=[float(c.get("test_stderr") or 0.0)],
                fmt="o",
                color=colour,
                ms=6,
                capsize=3,
                mec="black",
                mew=0.6,
            )
    ax.axhline(optimal_loss, color="black", ls="--", lw=1.2, label="optimal loss (true model)")
    if optimal_stderr is not None and np.isfinite(optimal_stderr):
        ax.axhspan(optimal_loss - optimal_stderr, optimal_loss + optimal_stderr, color="grey",
                   alpha=0.25, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel(compute_label)
    ax.set_ylabel("loss (nats per site)")
    ax.set_title(title or "Held-out loss vs compute (one line per training seed); "
                 "markers: test loss ± s.e. at the best epoch", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3, which="both")
    return fig


def plot_sample_curves(
    models: Sequence[Mapping[str, Any]],
    *,
    reference_slope: float | None = -1.0,
    title: str = "",
) -> Figure:
    """Excess test loss over the true model against the number of training sequences (log-log).

    Args:
        models: one mapping per model with ``label``, ``sizes`` ``(n,)``, ``mean`` ``(n,)`` and
            ``stderr`` ``(n,)`` (over data sets), and optionally ``fit`` (a mapping with ``slope``,
            ``slope_stderr``, ``intercept``: the fitted power law, drawn over the sizes and quoted
            in the legend). Points with a mean <= 0 cannot be drawn on a log axis; they are marked
            with a triangle at the bottom edge instead of being dropped silently.
        reference_slope: a dotted guide ``~ M^reference_slope`` through the first model's largest
            size (``-1``: the rate of a consistent parametric estimator; ``None``: no guide).
    """
    if not models:
        raise ValidationError("plot_sample_curves needs at least one model")
    fig = new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    colours = _colours(len(models))
    positive_all: list[float] = []
    for m in models:
        positive_all += [float(v) for v in _finite(m["mean"], "mean") if v > 0]
    floor = min(positive_all) / 3 if positive_all else 1e-4
    for colour, m in zip(colours, models, strict=True):
        x = _finite(m["sizes"], f"{m['label']} sizes")
        y = _finite(m["mean"], f"{m['label']} mean")
        se = _finite(m.get("stderr", np.zeros_like(y)), f"{m['label']} stderr")
        if not (x.ndim == 1 and x.shape == y.shape == se.shape):
            raise ShapeError(f"{m['label']}: sizes, mean and stderr must be 1-D of equal length")
        fit = m.get("fit")
        label = str(m["label"])
        if fit:
            label += f" (slope {fit['slope']:.2f} ± {fit['slope_stderr']:.2f})"
        pos = y > 0
        lower = np.minimum(se, y - floor / 2)  # keep the lower error bar on the log axis
        ax.errorbar(x[pos], y[pos], yerr=[np.maximum(lower[pos], 0), se[pos]], fmt="o-", ms=5,
                    capsize=3, color=colour, mec="black", mew=0.5, lw=1.0, label=label)
        if (~pos).any():
            ax.plot(x[~pos], np.full((~pos).sum(), floor), marker="v", ls="none", color=colour,
                    mec="black", mew=0.5)
        if fit:
            xs = np.geomspace(x.min(), x.max(), 50)
            ax.plot(xs, np.exp(fit["intercept"]) * xs ** fit["slope"], color=colour, ls="--", lw=1)
    if reference_slope is not None:
        x0 = _finite(models[0]["sizes"], "sizes")
        y0 = _finite(models[0]["mean"], "mean")
        if y0.size and y0[-1] > 0:
            xs = np.geomspace(x0.min(), x0.max(), 20)
            ax.plot(xs, y0[-1] * (xs / x0[-1]) ** reference_slope, color="grey", ls=":", lw=1.2,
                    label=f"~ M^{reference_slope:g} (guide)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training sequences M")
    ax.set_ylabel("test loss - true model's loss (nats per site)")
    ax.set_title(title or "Excess loss vs number of training sequences (± s.e. over data sets; "
                 "triangles: mean <= 0)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return fig


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(v) for v in np.linspace(0.0, 0.85, max(n, 1))][:n]


def index_ticks(n: int, first: int = 1, max_ticks: int = 8) -> tuple[list[int], list[str]]:
    """Tick positions (0-based indices) and labels for ``n`` items numbered from ``first``.

    The first item is always labelled; the others at multiples of a round step (1, 2, 5, 10, ...)
    chosen so that at most about ``max_ticks`` labels show.
    """
    step = 1
    for base in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        step = base
        if n / base <= max_ticks:
            break
    idx = [k for k in range(n) if k == 0 or (k + first) % step == 0]
    if len(idx) > 1 and idx[1] < step / 2:
        idx.pop(1)  # keep the first label clear of its neighbour
    return idx, [str(k + first) for k in idx]


def _heatmap(
    ax: Axes, m: np.ndarray, title: str, *, vmax: float, first: int, xlabel: str, ylabel: str
) -> Any:
    """One matrix panel with labelled, numbered axes; returns the image for a shared colour bar."""
    im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    for n, set_ticks, set_labels in (
        (m.shape[1], ax.set_xticks, ax.set_xticklabels),
        (m.shape[0], ax.set_yticks, ax.set_yticklabels),
    ):
        pos, labels = index_ticks(n, first)
        set_ticks(pos)
        set_labels(labels, fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    return im


def plot_coupling_comparison(
    true_site: Any,
    learned_site: Any,
    true_colour: Any,
    learned_colour: Any,
    *,
    site_correlation: float | None = None,
    colour_correlation: float | None = None,
) -> Figure:
    """Learned attention ``A`` and value ``V`` next to the true ``Jsite`` and ``Ucol``.

    Args:
        true_site, learned_site: ``(L, L)`` matrices.
        true_colour, learned_colour: ``(q, q)`` matrices.
        site_correlation, colour_correlation: shown in the titles when given.

    Each compared pair (true vs learned) shares one symmetric colour scale and one colour bar, so
    equal colours mean equal values. Sites are numbered from 1 (as in every file), colours by
    their state index from 0. The learned matrices are shown as they are: the scale gauge
    ``(cA, V/c)`` and the sign of the pair are fixed by the caller.
    """
    ts, ls = _finite(true_site, "true_site"), _finite(learned_site, "learned_site")
    tc, lc = _finite(true_colour, "true_colour"), _finite(learned_colour, "learned_colour")
    if ts.ndim != 2 or ts.shape != ls.shape or ts.shape[0] != ts.shape[1]:
        raise ShapeError(f"site matrices must both be (L, L), got {ts.shape} and {ls.shape}")
    if tc.ndim != 2 or tc.shape != lc.shape or tc.shape[0] != tc.shape[1]:
        raise ShapeError(f"colour matrices must both be (q, q), got {tc.shape} and {lc.shape}")
    fig = new_figure(8.0, 7.0)
    axes = fig.subplots(2, 2)

    def r(v: float | None) -> str:
        return "" if v is None else f" (r = {v:.3f})"

    rows = (
        (ts, ls, "true Jsite", "learned A" + r(site_correlation), 1, "site i", "site j", "Jsite, A"),
        (tc, lc, "true Ucol", "learned V" + r(colour_correlation), 0,
         "colour a (state)", "colour b (state)", "Ucol, V"),
    )  # fmt: skip
    for row, (true, learned, t_title, l_title, first, ylabel, xlabel, bar) in enumerate(rows):
        vmax = float(max(np.abs(true).max(), np.abs(learned).max())) or 1.0
        for col, (m, title) in enumerate(((true, t_title), (learned, l_title))):
            im = _heatmap(
                axes[row, col], m, title, vmax=vmax, first=first, xlabel=xlabel, ylabel=ylabel
            )
        cbar = fig.colorbar(im, ax=list(axes[row]), shrink=0.85)
        cbar.set_label(bar, fontsize=8)
    return fig


def plot_learning_curves(
    theory: Sequence[Mapping[str, Any]],
    simulations: Sequence[Mapping[str, Any]] = (),
    *,
    optimal: Any = None,
    ylabel: str = "generalization error (test cross-entropy, nats)",
) -> Figure:
    """Replica-theory learning curves (lines) against simulations (points with error bars).

    Args:
        theory: one mapping per curve with ``label``, ``alpha`` ``(n,)`` and ``eps_g`` ``(n,)``.
        simulations: one mapping per curve with ``label``, ``alpha``, ``mean`` and ``stderr``.
        optimal: the optimal loss, a number or ``(alpha, value)`` arrays (dashed).
    """
    if not theory and not simulations:
        raise ValidationError("plot_learning_curves needs theory curves or simulation points")
    fig = new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    colours = _colours(max(len(theory), len(simulations)))
    for k, t in enumerate(theory):
        a, e = _finite(t["alpha"], "alpha"), _finite(t["eps_g"], "eps_g")
        if a.shape != e.shape:
            raise ShapeError(f"theory {t['label']}: alpha {a.shape} and eps_g {e.shape} differ")
        ax.plot(a, e, color=colours[k % len(colours)], lw=1.5, label=f"theory, {t['label']}")
    for k, s in enumerate(simulations):
        a, m = _finite(s["alpha"], "alpha"), _finite(s["mean"], "mean")
        se = _finite(s.get("stderr", np.zeros_like(m)), "stderr")
        if not (a.shape == m.shape == se.shape):
            raise ShapeError(f"simulation {s['label']}: alpha, mean, stderr shapes differ")
        ax.errorbar(a, m, yerr=se, fmt="o", ms=4, capsize=2, color=colours[k % len(colours)],
                    mec="black", mew=0.5, label=f"simulation, {s['label']}")
    if optimal is not None:
        if np.ndim(optimal) == 0:
            ax.axhline(float(optimal), color="black", ls="--", lw=1, label="optimal loss")
        else:
            oa, ov = (_finite(v, "optimal") for v in optimal)
            ax.plot(oa, ov, color="black", ls="--", lw=1, label="optimal loss")
    ax.set_xscale("log")
    ax.set_xlabel("alpha = M / N (samples per coupling row)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return fig


def plot_equivalence(mlm_loss: Any, pseudo_likelihood_loss: Any, *, labels: Sequence[str] = ()) -> Figure:
    """MLM loss against ``-(1/(M L)) log PL`` of the converted Potts model (points on the diagonal).

    Args:
        mlm_loss: ``(n,)`` all-positions MLM losses of factored-attention models.
        pseudo_likelihood_loss: ``(n,)`` the matching pseudo-likelihood losses.
        labels: optional names of the points.
    """
    x, y = _finite(mlm_loss, "mlm_loss"), _finite(pseudo_likelihood_loss, "pseudo_likelihood_loss")
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ShapeError(f"need two equal non-empty 1-D arrays, got {x.shape} and {y.shape}")
    fig = new_figure(9.0, 4.0)
    ax1, ax2 = fig.subplots(1, 2)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax1.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", lw=1, ls="--")
    ax1.scatter(x, y, s=25, color="C0", edgecolors="black", linewidths=0.5, zorder=3)
    for k, lab in enumerate(labels):
        ax1.annotate(str(lab), (x[k], y[k]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax1.set_xlabel("MLM loss of factored attention (nats per site)")
    ax1.set_ylabel("-log PL / (M L) of the converted Potts model")
    rel = np.abs(x - y) / np.maximum(np.abs(x), np.finfo(np.float64).tiny)
    floor = 1e-18  # exact agreement (difference 0) is drawn at the floor and labelled "0"
    ax2.bar(np.arange(x.size), np.maximum(rel, floor), color="C1")
    for zero in np.flatnonzero(rel == 0):
        ax2.annotate("0", (int(zero), floor), ha="center", va="bottom", fontsize=7)
    ax2.set_yscale("log")
    ax2.axhline(np.finfo(np.float64).eps, color="black", ls=":", lw=1, label="float64 epsilon")
    ax2.set_xticks(np.arange(x.size))
    ax2.set_xticklabels([str(v) for v in labels] if labels else [str(k) for k in range(x.size)],
                        fontsize=7, rotation=45)
    ax2.set_ylabel("relative difference")
    ax2.legend(fontsize=7)
    return fig


def plot_training_curve(
    epochs: Any,
    train_loss: Any,
    validation_loss: Any = None,
    *,
    optimal_loss: float | None = None,
    best_epoch: int | None = None,
    title: str = "",
) -> Figure:
    """Training (and validation) loss per epoch of one run, with the optimal loss if known.

    Args:
        epochs: ``(T,)`` epoch numbers; train_loss, validation_loss: ``(T,)`` (``None`` entries
            are skipped).
        optimal_loss: drawn as a dashed line; best_epoch: marked with a vertical line.
    """
    ep = _finite(epochs, "epochs")
    fig = new_figure(5.0, 3.5)
    ax = fig.add_subplot()
    for values, label in ((train_loss, "training"), (validation_loss, "validation")):
        if values is None:
            continue
        pts = [(e, v) for e, v in zip(ep, values, strict=True) if v is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=label)
    if optimal_loss is not None:
        ax.axhline(optimal_loss, color="black", ls="--", lw=1, label="optimal loss")
    if best_epoch is not None:
        ax.axvline(best_epoch, color="grey", ls=":", lw=1, label="best validation epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats per site)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig
