"""The depth-study figure with several training seeds per model, and the learning curves in M."""

from __future__ import annotations

import numpy as np
import pytest

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.experiments.fits import fit_power_law
from attnpotts.plotting import figure_to_png, plot_depth_study, plot_sample_curves


def test_depth_study_groups_seeds_under_one_legend_entry() -> None:
    curves = []
    for model in ("factored", "transformer 1"):
        for seed in range(2):
            curves.append({
                "label": model if seed == 0 else None, "group": model,
                "compute": np.geomspace(1, 50, 4) * (seed + 1), "loss": np.linspace(2.0, 1.5, 4),
                "test_loss": 1.5, "test_stderr": 0.01, "final_compute": 50.0 * (seed + 1),
            })  # fmt: skip
    fig = plot_depth_study(curves, optimal_loss=1.4, compute_label="training compute (process CPU seconds)")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["factored", "transformer 1", "optimal loss (true model)"]
    assert ax.get_xlabel() == "training compute (process CPU seconds)"
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) == 4]
    # the two seeds of a model share its colour; the two models differ
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()


def test_sample_curves_figure() -> None:
    sizes = np.array([300.0, 1000.0, 3000.0, 10000.0])
    fac = 3.0 / sizes
    fit = fit_power_law(sizes, fac, 0.1 * fac)
    assert fit is not None
    models = [
        {"label": "factored", "sizes": sizes, "mean": fac, "stderr": 0.1 * fac, "fit": fit.as_dict()},
        {"label": "transformer", "sizes": sizes, "mean": [0.2, 0.1, 0.05, -0.01], "stderr": [0.01] * 4},
    ]
    fig = plot_sample_curves(models)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "~ M^-1 (guide)"
    assert f"factored (slope -1.00 ± {fit.slope_stderr:.2f})" in labels and "transformer" in labels
    # the non-positive mean is marked at the bottom edge, not dropped
    triangles = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
    assert len(triangles) == 1 and list(triangles[0].get_xdata()) == [10000.0]
    png = figure_to_png(fig)
    assert png.startswith(b"\x89PNG") and figure_to_png(fig) == png
    with pytest.raises(ShapeError):
        plot_sample_curves([{"label": "x", "sizes": [1.0, 2.0], "mean": [1.0], "stderr": [0.1]}])
    with pytest.raises(ValidationError, match="at least one"):
        plot_sample_curves([])
