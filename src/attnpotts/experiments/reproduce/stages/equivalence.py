"""Stage ``equivalence``: the MLM loss of factored attention equals ``-(1/(M L)) log PL`` of its Potts model."""

from __future__ import annotations

from ..context import StageContext, StageOutput
from ..specs import equivalence_spec, factored_spec
from ..statistics import select

__all__ = ["EQUIVALENCE_RTOL", "stage_equivalence"]

#: Relative agreement required of the two losses (float64; the tests' standard).
EQUIVALENCE_RTOL = 1e-10


def stage_equivalence(ctx: StageContext) -> StageOutput:
    """MLM loss vs pseudo-likelihood of the converted Potts model."""
    from ....plotting import figure_to_png, plot_equivalence

    cfg = ctx.config
    runs = ctx.results(equivalence_spec(cfg))
    checks = []
    for r in runs:
        m = r.metrics
        checks.append({
            "label": f"random {m['variant']}{' + fields' if m['fields'] else ''} #{r.run.replicate + 1}",
            "mlm_loss": m["mlm_loss"], "pseudo_likelihood_loss": m["pseudo_likelihood_loss"],
            "rel_difference": m["rel_difference"], "run_id": r.run.run_id,
        })  # fmt: skip
    used = [r.run.run_id for r in runs]
    if "depth" in cfg.stages or "couplings" in cfg.stages:
        for r in select(ctx.results(factored_spec(cfg))):
            e = r.metrics["equivalence"]
            checks.append({
                "label": f"trained factored (seed {r.run.replicate + 1}, test set)",
                "mlm_loss": e["mlm_loss"], "pseudo_likelihood_loss": e["pseudo_likelihood_loss"],
                "rel_difference": e["rel_difference"], "run_id": r.run.run_id,
            })  # fmt: skip
            used.append(r.run.run_id)
    max_rel = max(c["rel_difference"] for c in checks)
    fig = plot_equivalence(
        [c["mlm_loss"] for c in checks],
        [c["pseudo_likelihood_loss"] for c in checks],
        labels=[str(k + 1) for k in range(len(checks))],
    )
    summary = {
        "checks": checks,
        "max_rel_difference": max_rel,
        "tolerance": EQUIVALENCE_RTOL,
        "agree": bool(max_rel <= EQUIVALENCE_RTOL),
        "precision": "float64",
    }
    return StageOutput(summary, {"equivalence": figure_to_png(fig)}, used)
