"""Stage ``couplings``: the learned attention ``A`` and values ``V`` next to the true ``Jsite``, ``Ucol``."""

from __future__ import annotations

import numpy as np

from ....errors import ValidationError
from ..context import StageContext, StageOutput
from ..specs import factored_spec
from ..statistics import double_centre, select

__all__ = ["stage_couplings"]


def stage_couplings(ctx: StageContext) -> StageOutput:
    """Learned attention and values of the factored layer next to the true factors."""
    from ....evaluation import pearson
    from ....plotting import figure_to_png, plot_coupling_comparison

    fac_runs = ctx.results(factored_spec(ctx.config))
    run = select(fac_runs)[0]
    arrays = run.arrays()
    if "attention" not in arrays:
        raise ValidationError(
            f"run {run.run.run_id} stored no attention/value arrays (the true model has no factors)"
        )
    rec = run.metrics["recovery"]
    head = int(rec.get("matched_heads", [0])[0])
    comp = int(rec.get("matched_components", [0])[0])
    A, V = arrays["attention"][head], arrays["value"][head]
    S, U = arrays["true_site"][comp], arrays["true_colour"][comp]
    L = S.shape[0]
    off = ~np.eye(L, dtype=bool)
    # Fix the gauges for display only: sign and scale (A, V) -> (cA, V/c) so that A has the norm
    # of Jsite; V and Ucol double-centred (row/column shifts of V are fields).
    sign = -1.0 if pearson(A[off], S[off]) < 0 else 1.0
    c = sign * float(np.linalg.norm(S[off])) / max(float(np.linalg.norm(A[off])), 1e-300)
    A_disp = c * A
    V_disp = double_centre(V / c)
    U_disp = double_centre(U)
    fig = plot_coupling_comparison(
        S, A_disp, U_disp, V_disp,
        site_correlation=rec["attention_correlation"][0],
        colour_correlation=rec["value_correlation"][0],
    )  # fmt: skip
    summary = {
        "run_id": run.run.run_id,
        "attention_correlation": rec["attention_correlation"][0],
        "value_correlation": rec["value_correlation"][0],
        "coupling_correlation": rec["coupling_correlation"],
        "relative_error": rec["relative_error"],
        "score_correlation": rec["score_correlation"],
        "top_pair_recovery": rec["top_pair_recovery"],
        "n_true_pairs": rec["n_true_pairs"],
        "display_scale": abs(c),
        "beta": run.metrics["beta"],
        "value_vs_beta_ucol_scale": float(
            np.sum(V_disp * U_disp) / max(np.sum(U_disp * U_disp), 1e-300)
        ),
    }
    return StageOutput(summary, {"couplings": figure_to_png(fig)}, [run.run.run_id])


