"""Verdicts on the paper's claims, computed from a results document by stated rules.

:func:`evaluate_claims` is a pure function of the ``results.json`` document of
``attnpotts reproduce``: one :class:`Claim` per claim of the paper, each with its evidence (numbers
with their standard errors and their paths in the document), a verdict and the reason for it.
Verdicts are one of :data:`VERDICTS`:

* ``reproduced`` - the evidence meets the claim's rule beyond the statistical uncertainty;
* ``not reproduced`` - the evidence contradicts the rule beyond the uncertainty;
* ``inconclusive`` - the error bars straddle the threshold, or a run the claim rests on did not
  converge (stopped by the epoch cap instead of early stopping), or too few points;
* ``not run`` - the stage that tests the claim was not selected.

"Beyond the uncertainty" means by more than :data:`Z` standard errors. The thresholds are module
constants, and each claim's rule is stated in words (:attr:`Claim.rule`) with the numbers filled in,
so the report prints exactly the rule that produced the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "COUPLING_R_MIN",
    "EXCESS_REL_TOL",
    "THEORY_POINT_LEVEL",
    "VERDICTS",
    "Claim",
    "Evidence",
    "Z",
    "binomial_quantile",
    "evaluate_claims",
]

#: Possible verdicts.
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run")
#: Standard errors that separate "beyond the uncertainty" from "within it".
Z = 2.0
#: Claim (a): the factored layer's excess loss over the true model, relative to the optimal loss.
EXCESS_REL_TOL = 0.01
#: Claims (a), (f): smallest correlation of learned and true couplings (or factors) that counts.
COUPLING_R_MIN = 0.9
#: Claim (c): each simulation point disagrees with the theory by chance with about this probability
#: (the agreement rule is 2 standard errors + 2%); more disagreements than the 99% quantile of the
#: binomial distribution of that count reject the theory.
THEORY_POINT_LEVEL = 0.05


@dataclass(frozen=True)
class Evidence:
    """One number behind a verdict.

    Attributes:
        label: what it is.
        value: the number (``None``: not available).
        key: its dotted path in the results document.
        fmt: format spec for display.
        stderr, stderr_key: its standard error and that one's path (if any).
    """

    label: str
    value: float | int | None
    key: str
    fmt: str = ".4g"
    stderr: float | None = None
    stderr_key: str = ""


@dataclass(frozen=True)
class Claim:
    """A claim of the paper and what the results say about it.

    Attributes:
        id: short name (``"a"``, ``"b"``, ...).
        statement: the claim, as the paper makes it.
        verdict: one of :data:`VERDICTS`.
        reason: why this verdict (the numbers that decided it).
        rule: the rule, with its thresholds.
        evidence: the numbers behind it.
        figure: name of the figure that shows it (``figures/<name>.png``), or ``None``.
    """

    id: str
    statement: str
    verdict: str
    reason: str
    rule: str
    evidence: list[Evidence] = field(default_factory=list)
    figure: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON)."""
        return asdict(self)


def binomial_quantile(n: int, p: float, level: float = 0.99) -> int:
    """Smallest ``k`` with ``P(X <= k) >= level`` for ``X ~ Binomial(n, p)``."""
    total = 0.0
    for k in range(n + 1):
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if total >= level:
            return k
    return n


def _stage(results: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    st = results.get("stages", {}).get(name)
    return None if st is None else st["summary"]


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None or not math.isfinite(float(v)) else format(v, spec)


def _claim_conditionals(results: Mapping[str, Any]) -> Claim:
    statement = (
        "One factored self-attention layer learns the conditionals of the generalized Potts model "
        "it is trained on."
    )
    rule = (
        f"reproduced if the factored layer's test loss, trained on the most data available (the "
        f"largest M of the learning curves, else the depth study), exceeds the true model's by less "
        f"than {EXCESS_REL_TOL:.0%} of the optimal loss, by more than {Z:g} s.e., its runs stopped early "
        f"on the validation loss, and its mapped couplings correlate with the true beta J at "
        f"r >= {COUPLING_R_MIN:g}; not reproduced if the excess is above that tolerance by more than "
        f"{Z:g} s.e. or r < {COUPLING_R_MIN:g}; otherwise inconclusive"
    )
    depth = _stage(results, "depth")
    if depth is None:
        return Claim("a", statement, "not run", "the depth stage was not run", rule)
    k = "stages.depth.summary."
    fac = depth["models"][0]
    opt = float(depth["optimal_loss"])
    exc, se = float(fac["excess_loss"]), float(fac["excess_loss_stderr"])
    where = f"M = {depth.get('data', {}).get('train', '?')} (depth study)"
    ev = [
        Evidence("excess loss of the factored layer, depth study (nats)", exc, k + "models.0.excess_loss",
                 ".4f", se, k + "models.0.excess_loss_stderr"),
        Evidence("optimal loss (nats)", opt, k + "optimal_loss", ".4f",
                 depth.get("optimal_loss_stderr"), k + "optimal_loss_stderr"),
    ]  # fmt: skip
    fig = "depth_study"
    sc = _stage(results, "scaling")
    if sc is not None:
        fig = "sample_curves"
        # the most data the factored layer was trained on: the largest size of the learning curve
        pts = sc["models"][0]["points"]
        j = len(pts) - 1
        sk = f"stages.scaling.summary.models.0.points.{j}."
        exc, se = float(pts[j]["excess_loss"]), float(pts[j]["excess_loss_stderr"])
        where = f"M = {pts[j]['train_size']} (largest size of the learning curve)"
        ev.append(Evidence(f"excess loss of the factored layer at M = {pts[j]['train_size']} (nats)", exc,
                           sk + "excess_loss", ".4f", se, sk + "excess_loss_stderr"))  # fmt: skip
    coup = _stage(results, "couplings")
    r = None
    if coup is not None:
        r = float(coup["coupling_correlation"])
        ev.append(Evidence("correlation of mapped and true couplings", r,
                           "stages.couplings.summary.coupling_correlation", ".3f"))
    tol = EXCESS_REL_TOL * opt
    rel = f"excess {exc:.4f} ± {se:.4f} nats at {where} = {exc / opt:.2%} of the optimal loss {opt:.4f}"
    if not fac.get("converged", False):
        return Claim("a", statement, "inconclusive",
                     f"{rel}, but a factored run stopped by {', '.join(fac.get('stop_reasons', []))} "
                     "rather than early stopping", rule, ev, fig)  # fmt: skip
    if exc - Z * se > tol:
        return Claim("a", statement, "not reproduced", f"{rel}, above the {EXCESS_REL_TOL:.0%} tolerance",
                     rule, ev, fig)  # fmt: skip
    if r is not None and r < COUPLING_R_MIN:
        return Claim("a", statement, "not reproduced",
                     f"coupling correlation r = {r:.3f} < {COUPLING_R_MIN:g}", rule, ev, "couplings")
    if exc + Z * se <= tol:
        tail = f"; coupling correlation r = {r:.3f}" if r is not None else " (couplings stage not run)"
        verdict = "reproduced" if r is not None else "inconclusive"
        return Claim("a", statement, verdict, rel + tail, rule, ev, fig)
    return Claim("a", statement, "inconclusive",
                 f"{rel}: the error bar straddles the {EXCESS_REL_TOL:.0%} tolerance", rule, ev, fig)


def _claim_equivalence(results: Mapping[str, Any]) -> Claim:
    statement = (
        "Training factored attention by masked language modelling on all positions is exactly "
        "pseudo-likelihood maximisation of the mapped Potts model."
    )
    eq = _stage(results, "equivalence")
    rule = "reproduced if the MLM loss and -log PL / (M L) agree within the stated relative tolerance " \
           "(float64) in every check; otherwise not reproduced"  # fmt: skip
    if eq is None:
        return Claim("b", statement, "not run", "the equivalence stage was not run", rule)
    k = "stages.equivalence.summary."
    d, tol = float(eq["max_rel_difference"]), float(eq["tolerance"])
    ev = [
        Evidence("largest relative difference", d, k + "max_rel_difference", ".2e"),
        Evidence("tolerance", tol, k + "tolerance", ".0e"),
        Evidence("checks", len(eq["checks"]), "", "d"),
    ]
    if d <= tol:
        return Claim("b", statement, "reproduced",
                     f"largest relative difference {d:.2e} <= {tol:.0e} over {len(eq['checks'])} checks",
                     rule, ev, "equivalence")  # fmt: skip
    return Claim("b", statement, "not reproduced", f"relative difference {d:.2e} > {tol:.0e}", rule, ev,
                 "equivalence")


def _claim_theory(results: Mapping[str, Any]) -> Claim:
    statement = (
        "The replica calculation predicts the generalization error of the factored layer measured "
        "in simulations."
    )
    th = _stage(results, "theory")
    rule = (
        "each simulation point agrees if |simulation - theory| <= 2 s.e. + 2% of theory (by chance "
        f"a point fails with probability about {THEORY_POINT_LEVEL:g}); reproduced if no more points "
        "disagree than the 99% quantile of Binomial(n points, "
        f"{THEORY_POINT_LEVEL:g}), not reproduced if more; inconclusive if a theory point did not converge"
    )
    if th is None:
        return Claim("c", statement, "not run", "the theory stage was not run", rule)
    k = "stages.theory.summary."
    n, agree = int(th["n_points"]), int(th["n_agree"])
    allowed = binomial_quantile(n, THEORY_POINT_LEVEL)
    ev = [
        Evidence("simulation points agreeing", agree, k + "n_agree", "d"),
        Evidence("simulation points", n, k + "n_points", "d"),
        Evidence("largest relative deviation", th["max_relative_deviation"], k + "max_relative_deviation", ".1%"),
    ]
    what = f"{agree} of {n} points agree ({n - agree} disagree; {allowed} allowed)"
    if not th.get("all_converged", True):
        return Claim("c", statement, "inconclusive", f"{what}, but some theory points did not converge",
                     rule, ev, "learning_curves")  # fmt: skip
    verdict = "reproduced" if n - agree <= allowed else "not reproduced"
    return Claim("c", statement, verdict, what, rule, ev, "learning_curves")


def _claim_depth(results: Mapping[str, Any]) -> Claim:
    statement = (
        "An off-the-shelf transformer needs several layers to learn what one factored layer learns."
    )
    depth = _stage(results, "depth")
    tol = float(depth["match_tolerance"]) if depth is not None else 0.01
    rule = (
        f"a depth matches the factored layer if its relative test-loss gap + {Z:g} paired s.e. <= "
        f"{tol:.0%}, and is worse if the gap - {Z:g} s.e. > {tol:.0%}; reproduced if 1 layer is worse "
        "and a deeper transformer matches; not reproduced if 1 layer matches; inconclusive if a "
        "model's runs did not stop early (still learning at the epoch cap), if 1 layer is neither, "
        "or if no tested depth matches"
    )
    if depth is None:
        return Claim("d", statement, "not run", "the depth stage was not run", rule)
    k = "stages.depth.summary."
    models = depth["models"]
    ev: list[Evidence] = []
    state: dict[int, str] = {}
    for i, m in enumerate(models[1:], start=1):
        gap, se = float(m["relative_gap_to_factored"]), m.get("relative_gap_stderr")
        se_v = float(se) if se is not None and math.isfinite(float(se)) else math.inf
        ev.append(Evidence(f"test-loss gap to the factored layer, {m['label']}", gap,
                           k + f"models.{i}.relative_gap_to_factored", ".2%", se,
                           k + f"models.{i}.relative_gap_stderr"))  # fmt: skip
        state[int(m["n_layers"])] = (
            "matches" if gap + Z * se_v <= tol else "worse" if gap - Z * se_v > tol else "unclear"
        )
    described = "; ".join(f"{d} layer{'s' if d > 1 else ''}: {s}" for d, s in sorted(state.items()))
    unconverged = [m["label"] for m in models if not m.get("converged", False)]
    if unconverged:
        return Claim("d", statement, "inconclusive",
                     f"{described}; but {'; '.join(unconverged)} did not stop by early stopping "
                     "(the comparison would measure the training budget)", rule, ev, "depth_study")  # fmt: skip
    if 1 not in state:
        return Claim("d", statement, "inconclusive", f"{described}; no 1-layer transformer was trained",
                     rule, ev, "depth_study")  # fmt: skip
    if state[1] == "matches":
        return Claim("d", statement, "not reproduced",
                     f"{described}: one transformer layer already matches the factored layer", rule, ev,
                     "depth_study")  # fmt: skip
    if state[1] == "unclear":
        return Claim("d", statement, "inconclusive",
                     f"{described}: the 1-layer gap is within {Z:g} s.e. of the tolerance", rule, ev,
                     "depth_study")  # fmt: skip
    deeper = [d for d, s in sorted(state.items()) if d > 1 and s == "matches"]
    if deeper:
        return Claim("d", statement, "reproduced",
                     f"{described}: {deeper[0]} layers are needed", rule, ev, "depth_study")
    return Claim("d", statement, "inconclusive",
                 f"{described}: one layer is not enough, but no tested depth (up to "
                 f"{max(state)}) matches the factored layer either", rule, ev, "depth_study")


def _claim_scaling(results: Mapping[str, Any]) -> Claim:
    statement = (
        "One factored layer learns the Potts model exactly in the limit of infinite sampling: its "
        "excess loss goes to zero as the number of training sequences M grows."
    )
    rule = (
        "power law excess ~ M^slope fitted over the sizes (weighted least squares on log-log axes); "
        f"reproduced if the fitted slope + {Z:g} s.e. < 0 and the curve still falls between the two "
        f"largest M (that segment's slope + {Z:g} s.e. < 0) or the excess at the largest M is within "
        f"{Z:g} s.e. of 0; not reproduced if the fitted slope - {Z:g} s.e. >= 0, or the excess levels "
        f"off (the last segment's slope is within {Z:g} s.e. of 0 and above the fitted slope by more "
        f"than {Z:g} combined s.e.); inconclusive otherwise, with fewer than 3 usable sizes, or if a "
        "run did not stop early"
    )
    sc = _stage(results, "scaling")
    if sc is None:
        return Claim("e", statement, "not run", "the scaling stage was not run", rule)
    k = "stages.scaling.summary.models.0."
    fac = sc["models"][0]
    pts = fac["points"]
    last = pts[-1]
    j = len(pts) - 1
    ev = [
        Evidence(f"excess loss at M = {last['train_size']} (nats)", last["excess_loss"],
                 k + f"points.{j}.excess_loss", ".4f", last["excess_loss_stderr"],
                 k + f"points.{j}.excess_loss_stderr"),
        Evidence(f"excess loss at M = {pts[0]['train_size']} (nats)", pts[0]["excess_loss"],
                 k + "points.0.excess_loss", ".4f", pts[0]["excess_loss_stderr"],
                 k + "points.0.excess_loss_stderr"),
    ]  # fmt: skip
    fit, seg = fac.get("fit"), fac.get("last_slope")
    if fit is not None:
        ev.append(Evidence("fitted slope", fit["slope"], k + "fit.slope", ".2f", fit["slope_stderr"],
                           k + "fit.slope_stderr"))
    if seg is not None:
        ev.append(Evidence("slope between the two largest M", seg["slope"], k + "last_slope.slope", ".2f",
                           seg["slope_stderr"], k + "last_slope.slope_stderr"))
    if fit is None or int(fit["n_points"]) < 3:
        return Claim("e", statement, "inconclusive", "fewer than 3 sizes with a positive mean excess",
                     rule, ev, "sample_curves")  # fmt: skip
    s, s_se = float(fit["slope"]), float(fit["slope_stderr"])
    text = f"slope {s:.2f} ± {s_se:.2f}"
    if abs(s + 1) <= Z * s_se:
        text += " (consistent with the 1/M of a consistent estimator)"
    if seg is not None:
        text += f"; between the two largest M {seg['slope']:.2f} ± {seg['slope_stderr']:.2f}"
    text += f"; excess {_fmt(last['excess_loss'], '.4f')} ± {_fmt(last['excess_loss_stderr'], '.4f')} at M = {last['train_size']}"
    stalled = [p["train_size"] for p in pts if p.get("n_early_stopped", 0) < p.get("n_data_sets", 1)]
    if stalled:
        return Claim("e", statement, "inconclusive",
                     f"{text}; but runs at M = {', '.join(map(str, stalled))} did not stop early", rule, ev,
                     "sample_curves")  # fmt: skip
    if s - Z * s_se >= 0:
        return Claim("e", statement, "not reproduced", f"{text}: the excess does not fall", rule, ev,
                     "sample_curves")  # fmt: skip
    if seg is not None:
        g, g_se = float(seg["slope"]), float(seg["slope_stderr"])
        if abs(g) <= Z * g_se and g - s > Z * math.hypot(g_se, s_se):
            return Claim("e", statement, "not reproduced", f"{text}: the excess levels off at the largest M",
                         rule, ev, "sample_curves")  # fmt: skip
    still_falling = seg is not None and float(seg["slope"]) + Z * float(seg["slope_stderr"]) < 0
    at_zero = float(last["excess_loss"]) - Z * float(last["excess_loss_stderr"]) <= 0
    if s + Z * s_se < 0 and (still_falling or at_zero):
        return Claim("e", statement, "reproduced", text, rule, ev, "sample_curves")
    return Claim("e", statement, "inconclusive", f"{text}: not significant at {Z:g} s.e.", rule, ev,
                 "sample_curves")


def _claim_factors(results: Mapping[str, Any]) -> Claim:
    statement = (
        "The factored layer's attention matrix recovers the site interactions Jsite and its value "
        "matrix the colour interactions Ucol (up to the gauges that leave the model unchanged)."
    )
    rule = f"reproduced if both correlations are >= {COUPLING_R_MIN:g}; otherwise not reproduced"
    coup = _stage(results, "couplings")
    if coup is None:
        return Claim("f", statement, "not run", "the couplings stage was not run", rule)
    k = "stages.couplings.summary."
    ra, rv = float(coup["attention_correlation"]), float(coup["value_correlation"])
    ev = [
        Evidence("correlation of A and Jsite", ra, k + "attention_correlation", ".3f"),
        Evidence("correlation of V and Ucol", rv, k + "value_correlation", ".3f"),
    ]
    verdict = "reproduced" if min(ra, rv) >= COUPLING_R_MIN else "not reproduced"
    return Claim("f", statement, verdict, f"r(A, Jsite) = {ra:.3f}, r(V, Ucol) = {rv:.3f}", rule, ev,
                 "couplings")


def evaluate_claims(results: Mapping[str, Any]) -> list[Claim]:
    """Verdicts on every claim, from a results document of ``attnpotts reproduce`` (pure)."""
    return [
        _claim_conditionals(results),
        _claim_equivalence(results),
        _claim_theory(results),
        _claim_depth(results),
        _claim_scaling(results),
        _claim_factors(results),
    ]
