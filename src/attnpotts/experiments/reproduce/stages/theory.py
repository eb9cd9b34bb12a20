"""Stage ``theory``: replica learning curves against finite-``N`` simulations of the same scenario."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...store import StoredRun
from ..context import StageContext, StageOutput
from ..specs import theory_curve_spec, theory_simulation_spec

__all__ = ["AGREEMENT_RULE", "stage_theory"]

#: When a simulation point agrees with the theory line (stated in the results).
AGREEMENT_RULE = "|simulation - theory| <= 2 standard errors + 2% of theory"


def stage_theory(ctx: StageContext) -> StageOutput:
    """Replica learning curves against simulation points."""
    from ....plotting import figure_to_png, plot_learning_curves

    cfg = ctx.config
    ctx.run(theory_curve_spec(cfg), theory_simulation_spec(cfg))
    curves = ctx.results(theory_curve_spec(cfg))
    sims = ctx.results(theory_simulation_spec(cfg))
    out_curves = []
    theory_lines = []
    sim_points = []
    n_agree = n_points = 0
    max_rel = 0.0
    all_converged = True
    for lam in cfg.theory_lambdas:
        t = next(r for r in curves if r.run.params["lambda"] == lam)
        curve, rel = _compare(lam, t, [r for r in sims if r.run.params["lambda"] == lam])
        all_converged &= curve["converged"]
        agree = curve["simulation"]["agree"]
        n_agree += sum(agree)
        n_points += len(agree)
        if np.isfinite(rel).any():
            max_rel = max(max_rel, float(np.nanmax(rel)))
        out_curves.append(curve)
        eps = np.asarray(curve["eps_g"], dtype=float)
        ok = np.isfinite(eps)
        alphas = np.asarray(curve["alpha"], dtype=float)
        theory_lines.append({"label": f"lambda = {lam:g}", "alpha": alphas[ok], "eps_g": eps[ok]})
        sim = curve["simulation"]
        sim_points.append({"label": f"lambda = {lam:g}", "alpha": np.asarray(sim["alpha"]),
                           "mean": np.asarray(sim["mean"]), "stderr": np.asarray(sim["stderr"])})  # fmt: skip
    eps_opt = float(np.mean([c["eps_opt"] for c in out_curves]))
    fig = plot_learning_curves(theory_lines, sim_points, optimal=eps_opt)
    summary = {
        "scenario": {
            "q": cfg.theory_states, "ucol": cfg.theory_ucol, "beta": cfg.theory_beta,
            "rho": cfg.theory_rho, "n_sites": cfg.simulation_sites,
            "n_seeds": cfg.simulation_seeds, "n_test": cfg.simulation_test,
        },
        "curves": out_curves,
        "optimal_loss": eps_opt,
        "n_points": n_points,
        "n_agree": n_agree,
        "agreement_rule": AGREEMENT_RULE,
        "max_relative_deviation": max_rel,
        "all_converged": all_converged,
    }  # fmt: skip
    return StageOutput(summary, {"learning_curves": figure_to_png(fig)},
                       [r.run.run_id for r in curves + sims])  # fmt: skip


def _compare(lam: float, theory: StoredRun, seeds: list[StoredRun]) -> tuple[dict[str, Any], np.ndarray]:
    """One lambda: the theory line, the simulations' mean ± s.e. over seeds, and at each simulated
    alpha the nearest theory point and whether they agree; with the relative deviations ``(A,)``."""
    alphas = np.asarray(theory.metrics["alpha"], dtype=float)
    # a point that did not converge is stored as null: NaN here, left out of the line and
    # never counted as agreeing
    eps = np.array([np.nan if v is None else v for v in theory.metrics["eps_g"]], dtype=float)
    eps[~np.asarray(theory.metrics["converged"], dtype=bool)] = np.nan
    sim_alpha = np.asarray(seeds[0].metrics["alpha"], dtype=float)
    per_seed = np.array([r.metrics["eps_g"] for r in seeds], dtype=float)  # (S, A)
    mean = per_seed.mean(0)
    n = per_seed.shape[0]
    se = per_seed.std(0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros_like(mean)
    theory_at = np.array([eps[np.argmin(np.abs(alphas - a))] for a in sim_alpha])
    dev = np.abs(mean - theory_at)
    agree = dev <= 2 * se + 0.02 * np.abs(theory_at)
    curve = {
        "lambda": lam,
        "alpha": alphas.tolist(),
        "eps_g": eps.tolist(),
        "eps_opt": float(np.mean(theory.metrics["eps_opt"])),
        "converged": bool(all(theory.metrics["converged"])),
        "simulation": {
            "alpha": sim_alpha.tolist(), "mean": mean.tolist(), "stderr": se.tolist(),
            "theory": theory_at.tolist(), "agree": [bool(a) for a in agree],
            "n_seeds": int(n),
        },
    }  # fmt: skip
    return curve, dev / np.abs(theory_at)
