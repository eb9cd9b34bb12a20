"""Stage ``scaling``: learning curves in the number of training sequences ``M``, with power-law fits."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...fits import fit_power_law, local_slope
from ...store import StoredRun
from ..context import StageContext, StageOutput
from ..eta import estimated_cost
from ..specs import scaling_specs, training_specs
from ..statistics import mean_se, stopped_early, training_cpu_s

__all__ = ["stage_scaling"]


def stage_scaling(ctx: StageContext) -> StageOutput:
    """Learning curves in M: excess loss over the true model against the number of sequences."""
    from ....plotting import figure_to_png, plot_sample_curves

    cfg = ctx.config
    ctx.run(*training_specs(cfg), first=estimated_cost)
    specs = scaling_specs(cfg)
    groups: list[tuple[str, int | None, list[StoredRun]]] = [
        ("factored attention (1 layer)", None, ctx.results(specs[0]))
    ]
    if len(specs) > 1:
        tr = ctx.results(specs[1])
        for n_layers in sorted(cfg.scaling_depths):
            runs = [r for r in tr if int(r.run.params["model"]["n_layers"]) == n_layers]
            groups.append((f"transformer, {n_layers} layer{'s' if n_layers > 1 else ''}", n_layers, runs))
    models = [_learning_curve(label, depth, runs, cfg.patience) for label, depth, runs in groups]
    first = groups[0][2][0].metrics
    summary: dict[str, Any] = {
        "sizes": sorted(cfg.scaling_sizes),
        "n_data_sets": cfg.scaling_data_seeds,
        "n_validation": int(first["data_sizes"]["validation"]),
        "n_test": int(first["data_sizes"]["test"]),
        "patience": cfg.patience,
        "models": models,
        "fit_rule": (
            "least squares of log(excess) on log(M), each point weighted by its relative standard "
            "error (s.e./mean); points with mean excess <= 0 left out; slope s.e. from the fit, "
            "scaled up by sqrt(chi2/dof) when that exceeds 1"
        ),
        "stderr_rule": "standard error of the mean over data sets (each: new model, samples, test set)",
    }
    fig = plot_sample_curves(
        [{"label": m["label"], "sizes": [p["train_size"] for p in m["points"]],
          "mean": [p["excess_loss"] for p in m["points"]],
          "stderr": [p["excess_loss_stderr"] for p in m["points"]], "fit": m["fit"]}
         for m in models],
    )  # fmt: skip
    runs_used = [rid for m in models for rid in m["run_ids"]]
    return StageOutput(summary, {"sample_curves": figure_to_png(fig)}, runs_used)


def _learning_curve(label: str, depth: int | None, runs: list[StoredRun], patience: int) -> dict[str, Any]:
    """One model's points (mean ± s.e. over data sets at each size), its power-law fit and the slope
    between the two largest sizes."""
    points: list[dict[str, Any]] = []
    for size in sorted({int(r.run.params["train_size"]) for r in runs}):
        at = [r for r in runs if int(r.run.params["train_size"]) == size]
        exc, exc_se = mean_se([r.metrics["excess_loss"]["mean"] for r in at],
                              [r.metrics["excess_loss"]["stderr"] for r in at])  # fmt: skip
        test, test_se = mean_se([r.metrics["test_loss"]["mean"] for r in at],
                                [r.metrics["test_loss"]["stderr"] for r in at])  # fmt: skip
        points.append({
            "train_size": size, "excess_loss": exc, "excess_loss_stderr": exc_se,
            "test_loss": test, "test_loss_stderr": test_se, "n_data_sets": len(at),
            "n_early_stopped": sum(stopped_early(r, patience) for r in at),
            "stop_reasons": sorted({str(r.metrics["training"]["stop_reason"]) for r in at}),
            "train_cpu_s": float(np.mean([training_cpu_s(r) for r in at])),
        })  # fmt: skip
    x = [p["train_size"] for p in points]
    y = [p["excess_loss"] for p in points]
    se = [p["excess_loss_stderr"] for p in points]
    fit = fit_power_law(x, y, se)
    last = local_slope(x[-2:], y[-2:], se[-2:])
    return {
        "label": label, "kind": "factored" if depth is None else "transformer",
        "n_layers": depth, "points": points,
        "fit": None if fit is None else fit.as_dict(),
        "last_slope": None if last is None else last.as_dict(),
        "run_ids": [r.run.run_id for r in runs],
    }  # fmt: skip
