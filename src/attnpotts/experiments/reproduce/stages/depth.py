"""Stage ``depth``: transformers of several depths against one factored layer (test loss vs compute)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...store import StoredRun
from ..context import StageContext, StageOutput
from ..eta import estimated_cost
from ..specs import factored_spec, training_specs, transformer_spec
from ..statistics import (
    combine,
    mean_test_losses,
    regularisation,
    select,
    stopped_early,
    training_cpu_s,
)

__all__ = ["stage_depth"]

#: x-axes of the depth figure, best first: (key in a run's curve, axis label).
_COMPUTE_AXES = (
    ("cpu_s", "training compute (process CPU seconds)"),
    ("tokens", "training tokens (masked positions predicted)"),
    ("compute_s", "training wall-clock seconds (including per-epoch validation)"),
)


def stage_depth(ctx: StageContext) -> StageOutput:
    """Depth study: transformers of several depths against one factored layer."""
    cfg = ctx.config
    ctx.run(*training_specs(cfg), first=estimated_cost)
    fac_runs = ctx.results(factored_spec(cfg))
    tr_runs = ctx.results(transformer_spec(cfg))
    by_depth: dict[int, list[StoredRun]] = {}
    for r in tr_runs:
        by_depth.setdefault(int(r.run.params["model"]["n_layers"]), []).append(r)
    groups = [fac_runs, *(by_depth[d] for d in sorted(by_depth))]
    models = _model_summaries(groups, sorted(by_depth), cfg.patience, cfg.match_tolerance)
    matching = [s["n_layers"] for s in models[1:] if s["within_tolerance"]]
    first = fac_runs[0].metrics
    opt = first["optimal_loss"]
    all_runs = fac_runs + tr_runs
    capped = [r.run.run_id for r in all_runs if not stopped_early(r, cfg.patience)]
    axis_key, axis_label = _compute_axis(all_runs)
    summary: dict[str, Any] = {
        "models": models,
        "optimal_loss": opt["mean"],
        "optimal_loss_stderr": opt["stderr"],
        "true_model_loss": first["true_model_loss"]["mean"],
        "true_model_loss_stderr": first["true_model_loss"]["stderr"],
        "beta": first["beta"],
        "data": {**first["data_sizes"], **first.get("data", {})},
        "match_tolerance": cfg.match_tolerance,
        "layers_to_match": min(matching) if matching else None,
        "max_depth": max(cfg.depths),
        "patience": cfg.patience,
        "n_runs": len(all_runs),
        "n_early_stopped": len(all_runs) - len(capped),
        "not_early_stopped": capped,
        "compute_measure": axis_label,
        "transformer_masking": cfg.transformer_masking,
    }
    figures = _depth_figure(models, groups, axis_key, axis_label, opt)
    return StageOutput(summary, figures, [r.run.run_id for r in all_runs])


def _model_summaries(
    groups: list[list[StoredRun]], depths: list[int], patience: int, tolerance: float
) -> list[dict[str, Any]]:
    """One summary per model (``groups[0]`` the factored layer, then one per depth), with the
    relative gap of its test loss to the factored layer's and whether that is within ``tolerance``."""
    models = [_model_summary("factored attention (1 layer)", None, groups[0], patience)]
    for depth, runs in zip(depths, groups[1:], strict=True):
        label = f"transformer, {depth} layer{'s' if depth > 1 else ''}"
        models.append(_model_summary(label, depth, runs, patience))
    ref = models[0]["test_loss"]
    ref_seq = mean_test_losses(select(groups[0]))
    for s, runs in zip(models, groups, strict=True):
        s["relative_gap_to_factored"] = s["test_loss"] / ref - 1.0
        s["within_tolerance"] = bool(s["test_loss"] <= (1.0 + tolerance) * ref)
        # paired on the same test sequences: the s.e. of the gap, without the test-set noise
        # common to both models
        diff = mean_test_losses(select(runs)) - ref_seq
        s["relative_gap_stderr"] = (
            float(diff.std(ddof=1) / math.sqrt(diff.size)) / ref if diff.size > 1 else math.nan
        )
    return models


def _model_summary(label: str, n_layers: int | None, runs: list[StoredRun], patience: int) -> dict[str, Any]:
    """Test and excess loss of one model over its training seeds, each seed's regularisation chosen
    on the validation set, with how each run ended."""
    chosen = select(runs)
    m0 = chosen[0].metrics
    test, test_se = combine(
        [r.metrics["test_loss"]["mean"] for r in chosen],
        [r.metrics["test_loss"]["stderr"] for r in chosen],
    )
    exc, exc_se = combine(
        [r.metrics["excess_loss"]["mean"] for r in chosen],
        [r.metrics["excess_loss"]["stderr"] for r in chosen],
    )
    return {
        "label": label,
        "kind": m0["model_kind"],
        "n_layers": n_layers,
        "n_parameters": int(m0["n_parameters"]),
        "test_loss": test,
        "test_loss_stderr": test_se,
        "excess_loss": exc,
        "excess_loss_stderr": exc_se,
        "n_seeds": len(chosen),
        "selected_regularisation": [regularisation(r) for r in chosen],
        "regularisation_grid_size": len(runs) // max(len(chosen), 1),
        "epochs": [int(r.metrics["training"]["epochs"]) for r in chosen],
        "best_epochs": [r.metrics["training"].get("best_epoch") for r in chosen],
        "stop_reasons": [str(r.metrics["training"]["stop_reason"]) for r in chosen],
        "early_stopped": [stopped_early(r, patience) for r in chosen],
        "converged": all(stopped_early(r, patience) for r in chosen),
        "train_time_s": float(np.mean([r.metrics["training"]["wall_time_s"] for r in chosen])),
        "train_cpu_s": float(np.mean([training_cpu_s(r) for r in chosen])),
        "run_ids": [r.run.run_id for r in chosen],
    }


def _compute_axis(runs: Sequence[StoredRun]) -> tuple[str, str]:
    """The best compute measure every run's curve has (CPU seconds when the loop reports them)."""
    for key, label in _COMPUTE_AXES:
        if all(
            r.metrics["curve"].get(key) and all(v is not None for v in r.metrics["curve"][key])
            for r in runs
        ):
            return key, label
    return _COMPUTE_AXES[-1]


def _depth_figure(
    models: list[dict[str, Any]],
    groups: list[list[StoredRun]],
    axis_key: str,
    axis_label: str,
    optimal: dict[str, Any],
) -> dict[str, bytes]:
    """The validation loss of every chosen run against compute (``{}`` when no run has a curve)."""
    from ....plotting import figure_to_png, plot_depth_study

    curves = []
    for s, runs in zip(models, groups, strict=True):
        chosen = {r.run.run_id: r for r in runs}
        for seed_no, run_id in enumerate(s["run_ids"]):
            c = _curve(chosen[run_id], axis_key)
            if c is not None:
                curves.append({"label": s["label"] if seed_no == 0 else None, "group": s["label"], **c})
    if not curves:
        return {}
    fig = plot_depth_study(curves, optimal_loss=optimal["mean"], optimal_stderr=optimal["stderr"],
                           compute_label=axis_label)  # fmt: skip
    return {"depth_study": figure_to_png(fig)}


def _curve(run: StoredRun, key: str) -> dict[str, Any] | None:
    """A run's validation loss against compute ``key``, and the compute at its best epoch."""
    c = run.metrics["curve"]
    pts = [
        (x, y) for x, y in zip(c[key], c["validation_loss"], strict=True)
        if y is not None and x is not None and x > 0
    ]  # fmt: skip
    if not pts:
        return None
    best = run.metrics["training"].get("best_epoch")
    final = c[key][-1]
    if best is not None and best in c["epoch"]:
        final = c[key][c["epoch"].index(best)]
    return {
        "compute": [p[0] for p in pts],
        "loss": [p[1] for p in pts],
        "test_loss": run.metrics["test_loss"]["mean"],
        "test_stderr": run.metrics["test_loss"]["stderr"],
        "final_compute": final,
    }
