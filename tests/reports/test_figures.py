"""Figures of attnpotts.plotting.experiments (used by the reports): they render and check inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.plotting import (
    figure_to_png,
    plot_coupling_comparison,
    plot_depth_study,
    plot_equivalence,
    plot_learning_curves,
    plot_training_curve,
)


def _is_png(b: bytes) -> bool:
    return b.startswith(b"\x89PNG\r\n\x1a\n") and len(b) > 1000


def test_depth_study_figure() -> None:
    curves = [
        {"label": f"transformer {k}", "compute": np.geomspace(1, 100, 5),
         "loss": 2.0 - 0.1 * k - np.linspace(0, 0.5, 5), "test_loss": 1.5 - 0.1 * k,
         "test_stderr": 0.01, "final_compute": 100.0}
        for k in range(1, 4)
    ]
    fig = plot_depth_study(curves, optimal_loss=1.2, optimal_stderr=0.01)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "optimal loss (true model)"
    png = figure_to_png(fig)
    assert _is_png(png)
    assert figure_to_png(fig) == png  # deterministic bytes
    with pytest.raises(ShapeError, match="equal length"):
        plot_depth_study([{"label": "x", "compute": [1, 2], "loss": [1.0]}], optimal_loss=1.0)
    with pytest.raises(ValidationError, match="NaN"):
        plot_depth_study([{"label": "x", "compute": [1, 2], "loss": [1.0, np.nan]}], optimal_loss=1.0)
    with pytest.raises(ValidationError, match="at least one"):
        plot_depth_study([], optimal_loss=1.0)


def test_coupling_and_learning_curve_and_equivalence_figures() -> None:
    rng = np.random.default_rng(0)
    s = rng.standard_normal((6, 6))
    c = rng.standard_normal((4, 4))
    fig = plot_coupling_comparison(s, s + 0.1, c, c, site_correlation=0.99, colour_correlation=1.0)
    assert "r = 0.990" in fig.axes[1].get_title()
    _check_coupling_panels(fig, s, s + 0.1, c, c)
    assert _is_png(figure_to_png(fig))
    with pytest.raises(ShapeError, match=r"\(L, L\)"):
        plot_coupling_comparison(s, s[:5, :5], c, c)

    alpha = np.geomspace(0.5, 8, 6)
    fig = plot_learning_curves(
        [{"label": "lambda=0.1", "alpha": alpha, "eps_g": 1 / alpha + 0.5}],
        [{"label": "lambda=0.1", "alpha": alpha, "mean": 1 / alpha + 0.5, "stderr": 0.01 + 0 * alpha}],
        optimal=0.5,
    )
    assert _is_png(figure_to_png(fig))
    with pytest.raises(ShapeError):
        plot_learning_curves([{"label": "x", "alpha": alpha, "eps_g": alpha[:2]}])

    fig = plot_equivalence([1.0, 2.0], [1.0, 2.0 + 1e-15], labels=["a", "b"])
    assert _is_png(figure_to_png(fig))
    with pytest.raises(ShapeError):
        plot_equivalence([1.0], [1.0, 2.0])


def test_unknown_plotting_name() -> None:
    import attnpotts.plotting as plotting

    with pytest.raises(AttributeError, match="no attribute"):
        plotting.plot_nothing  # noqa: B018


def test_training_curve_figure() -> None:
    fig = plot_training_curve([1, 2, 3], [2.0, 1.5, 1.2], [None, 1.6, 1.4], optimal_loss=1.0,
                              best_epoch=3, title="t")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["training", "validation", "optimal loss", "best validation epoch"]
    assert _is_png(figure_to_png(fig))


def _check_coupling_panels(fig: Any, ts: Any, ls: Any, tc: Any, lc: Any) -> None:
    """Four labelled panels, numbered axes, one colour scale per compared pair."""
    panels = fig.axes[:4]
    for ax, first, what in zip(panels, ("1", "1", "0", "0"), ("site", "site", "colour", "colour"), strict=True):
        assert ax.get_xlabel().startswith(what) and ax.get_ylabel().startswith(what)
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t.get_text() for t in axis.get_ticklabels()]
            assert labels and labels[0] == first
    # true and learned panels of a pair share their colour limits, wide enough for both
    for (a, b), (x, y) in (((0, 1), (ts, ls)), ((2, 3), (tc, lc))):
        lim_a, lim_b = panels[a].images[0].get_clim(), panels[b].images[0].get_clim()
        assert lim_a == lim_b
        vmax = max(np.abs(x).max(), np.abs(y).max())
        assert lim_a == pytest.approx((-vmax, vmax))
    # one colour bar per pair, labelled
    bars = fig.axes[4:]
    assert len(bars) == 2 and all(bar.get_ylabel() for bar in bars)


def test_coupling_panels_with_different_ranges() -> None:
    rng = np.random.default_rng(2)
    s = rng.standard_normal((20, 20))
    c = rng.standard_normal((20, 20))
    fig = plot_coupling_comparison(s, 3 * s, c, 0.1 * c)
    _check_coupling_panels(fig, s, 3 * s, c, 0.1 * c)
    sites = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert sites[0] == "1" and sites[-1] == "20" and len(sites) <= 8
