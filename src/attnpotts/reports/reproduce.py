"""The results document of ``attnpotts reproduce`` (its schema) and the HTML report built from it.

The report is a pure function of ``results.json`` and the figures: every number in it is a
:class:`~attnpotts.reports.Num` tagged with its path in the document, and every sentence that states
a conclusion (which depth matches the factored layer, whether theory and simulation agree) is chosen
from the document's numbers, never written in advance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .html import Fragment, Link, Num, Report, Section
from .schema import validate

__all__ = ["RESULTS_SCHEMA", "build_report", "validate_results"]

#: Stage names (as in :data:`attnpotts.experiments.reproduce.STAGES`; reports never import experiments).
_STAGES = ("depth", "scaling", "couplings", "theory", "equivalence")

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_INT = {"type": "integer", "minimum": 0}
_STR = {"type": "string"}
_NUM_LIST = {"type": "array", "items": _NUM}


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None, *, extra: bool = True) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": extra,
    }


_MODEL = _obj({
    "label": _STR, "kind": {"enum": ["factored", "transformer", "potts"]},
    "n_layers": {"type": ["integer", "null"], "minimum": 1}, "n_parameters": _INT,
    "test_loss": _NUM, "test_loss_stderr": _NUM, "excess_loss": _NUM,
    "excess_loss_stderr": _NUM, "relative_gap_to_factored": _NUM,
    "relative_gap_stderr": _NUM_OR_NULL,
    "within_tolerance": {"type": "boolean"}, "n_seeds": {"type": "integer", "minimum": 1},
    "run_ids": {"type": "array", "minItems": 1, "items": _STR},
    "stop_reasons": {"type": "array", "items": _STR},
    "best_epochs": {"type": "array", "items": {"type": ["integer", "null"]}},
    "epochs": {"type": "array", "items": _INT}, "converged": {"type": "boolean"},
    "train_cpu_s": _NUM_OR_NULL,
})  # fmt: skip

_DEPTH = _obj({
    "models": {"type": "array", "minItems": 2, "items": _MODEL},
    "optimal_loss": _NUM, "optimal_loss_stderr": _NUM, "true_model_loss": _NUM,
    "beta": _NUM, "data": _obj({"train": _INT, "validation": _INT, "test": _INT}),
    "match_tolerance": {"type": "number", "exclusiveMinimum": 0},
    "layers_to_match": {"type": ["integer", "null"], "minimum": 1},
    "max_depth": {"type": "integer", "minimum": 1}, "compute_measure": _STR,
    "patience": {"type": "integer", "minimum": 1}, "n_runs": _INT, "n_early_stopped": _INT,
    "not_early_stopped": {"type": "array", "items": _STR},
})  # fmt: skip

_FIT = {"anyOf": [{"type": "null"}, _obj({
    "slope": _NUM, "slope_stderr": _NUM, "intercept": _NUM, "n_points": _INT, "chi2_dof": _NUM_OR_NULL,
})]}  # fmt: skip

_SCALING = _obj({
    "sizes": {"type": "array", "minItems": 2, "items": _INT},
    "n_data_sets": {"type": "integer", "minimum": 1}, "n_test": _INT, "patience": _INT,
    "fit_rule": _STR, "stderr_rule": _STR,
    "models": {"type": "array", "minItems": 1, "items": _obj({
        "label": _STR, "kind": {"enum": ["factored", "transformer"]},
        "n_layers": {"type": ["integer", "null"], "minimum": 1},
        "points": {"type": "array", "minItems": 2, "items": _obj({
            "train_size": _INT, "excess_loss": _NUM, "excess_loss_stderr": _NUM, "test_loss": _NUM,
            "test_loss_stderr": _NUM, "n_data_sets": _INT, "n_early_stopped": _INT,
            "stop_reasons": {"type": "array", "items": _STR},
        })},
        "fit": _FIT, "last_slope": _FIT, "run_ids": {"type": "array", "items": _STR},
    })},
})  # fmt: skip

_CLAIM = _obj({
    "id": _STR, "statement": _STR, "verdict": {"enum": ["reproduced", "not reproduced", "inconclusive", "not run"]},
    "reason": _STR, "rule": _STR, "figure": {"type": ["string", "null"]},
    "evidence": {"type": "array", "items": _obj({
        "label": _STR, "value": _NUM_OR_NULL, "key": _STR, "fmt": _STR, "stderr": _NUM_OR_NULL,
        "stderr_key": _STR,
    })},
}, extra=False)  # fmt: skip

_COUPLINGS = _obj({
    "run_id": _STR, "attention_correlation": _NUM, "value_correlation": _NUM,
    "coupling_correlation": _NUM, "relative_error": _NUM, "score_correlation": _NUM_OR_NULL,
    "top_pair_recovery": _NUM_OR_NULL, "n_true_pairs": _INT, "beta": _NUM,
})  # fmt: skip

_NUM_OR_NULL_LIST = {"type": "array", "items": _NUM_OR_NULL}

_CURVE = _obj({
    "lambda": {"type": "number", "minimum": 0}, "alpha": _NUM_LIST, "eps_g": _NUM_OR_NULL_LIST,
    "eps_opt": _NUM, "converged": {"type": "boolean"},
    "simulation": _obj({
        "alpha": _NUM_LIST, "mean": _NUM_LIST, "stderr": _NUM_LIST, "theory": _NUM_OR_NULL_LIST,
        "agree": {"type": "array", "items": {"type": "boolean"}},
        "n_seeds": {"type": "integer", "minimum": 1},
    }),
})  # fmt: skip

_THEORY = _obj({
    "scenario": _obj({"q": _INT, "beta": _NUM, "rho": _NUM, "n_sites": _INT, "n_seeds": _INT}),
    "curves": {"type": "array", "minItems": 1, "items": _CURVE},
    "optimal_loss": _NUM, "n_points": _INT, "n_agree": _INT, "agreement_rule": _STR,
    "max_relative_deviation": _NUM, "all_converged": {"type": "boolean"},
})  # fmt: skip

_EQUIVALENCE = _obj({
    "checks": {"type": "array", "minItems": 1, "items": _obj({
        "label": _STR, "mlm_loss": _NUM, "pseudo_likelihood_loss": _NUM,
        "rel_difference": {"type": "number", "minimum": 0}, "run_id": _STR,
    })},
    "max_rel_difference": {"type": "number", "minimum": 0}, "tolerance": _NUM,
    "agree": {"type": "boolean"}, "precision": _STR,
})  # fmt: skip


def _stage(summary: dict[str, Any]) -> dict[str, Any]:
    return _obj(
        {
            "status": {"const": "done"},
            "summary": summary,
            "figures": {"type": "array", "items": {"type": "string", "pattern": r"^figures/[\w.-]+\.png$"}},
            "runs": {"type": "array", "items": _STR},
        },
        extra=False,
    )


#: Schema of ``results.json`` (checked by :func:`validate_results`).
RESULTS_SCHEMA: dict[str, Any] = _obj(
    {
        "schema": {"const": "attnpotts.reproduce/2"},
        "attnpotts_version": _STR,
        "created": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T"},
        "mode": {"enum": ["quick", "default", "full"]},
        "seed": _INT,
        "config": {"type": "object"},
        "environment": _obj({"python": _STR, "numpy": _STR}),
        "executor": _obj({"kind": {"enum": ["local", "dask"]}}),
        "stages": _obj(
            {},
            {
                "depth": _stage(_DEPTH),
                "scaling": _stage(_SCALING),
                "couplings": _stage(_COUPLINGS),
                "theory": _stage(_THEORY),
                "equivalence": _stage(_EQUIVALENCE),
            },
            extra=False,
        ),
        "not_run": {"type": "array", "items": {"enum": list(_STAGES)}},
        "claims": {"type": "array", "minItems": 1, "items": _CLAIM},
        "sweeps": {"type": "array", "items": _obj({
            "experiment": _STR, "n_runs": _INT, "n_computed": _INT, "n_skipped": _INT,
            "n_failed": _INT,
        })},
        "timings": _obj({"total_s": _NUM, "stages_s": {"type": "object", "additionalProperties": _NUM}}),
    },
    extra=False,
)


def validate_results(doc: Any) -> None:
    """Check a results document against :data:`RESULTS_SCHEMA` (raises :class:`SchemaError`)."""
    validate(doc, RESULTS_SCHEMA, what="results.json")


# --------------------------------------------------------------------------- the report
def build_report(results: Mapping[str, Any], figures: Mapping[str, bytes]) -> Report:
    """The HTML report of a results document (figures by name, as in ``figures/<name>.png``)."""
    rep = Report(
        "Factored attention and generalized Potts models: reproduction report",
        subtitle="Rende, Gerace, Laio & Goldt, Phys. Rev. Research 6, 023057 (2024), as run by "
        "attnpotts reproduce",
    )
    _claims(rep, results)
    _overview(rep, results)
    stages = results["stages"]
    if "depth" in stages:
        _depth(rep, stages["depth"], figures)
    if "scaling" in stages:
        _scaling(rep, stages["scaling"], figures)
    if "couplings" in stages:
        _couplings(rep, stages["couplings"], figures)
    if "theory" in stages:
        _theory(rep, stages["theory"], figures)
    if "equivalence" in stages:
        _equivalence(rep, stages["equivalence"], figures)
    _reproducibility(rep, results)
    return rep


def _figure(sec: Any, stage: Mapping[str, Any], figures: Mapping[str, bytes], name: str, caption: str,
            **values: Any) -> None:
    if f"figures/{name}.png" in stage["figures"] and name in figures:
        sec.figure(figures[name], name=name, caption=caption, **values)


_VERDICT_TEXT = {
    "reproduced": "REPRODUCED",
    "not reproduced": "NOT REPRODUCED",
    "inconclusive": "INCONCLUSIVE",
    "not run": "not run",
}


def _evidence_cell(claim_index: int, evidence: list[Mapping[str, Any]]) -> Fragment:
    parts, values = [], {}
    for j, e in enumerate(evidence):
        ek = f"claims.{claim_index}.evidence.{j}."
        values[f"v{j}"] = Num(e["value"], e["key"] or ek + "value", e["fmt"])
        part = f"{e['label']}: {{v{j}}}"
        if e.get("stderr") is not None:
            values[f"s{j}"] = Num(e["stderr"], e["stderr_key"] or ek + "stderr", e["fmt"])
            part += f" ± {{s{j}}}"
        parts.append(part)
    return Fragment("; ".join(parts), values)


def _claims(rep: Report, r: Mapping[str, Any]) -> None:
    """The verdict on every claim (computed from this document by attnpotts.experiments.claims)."""
    sec = rep.section("Claims")
    sec.text(
        "Each claim of the paper with the evidence from this run and a verdict computed from "
        "results.json by the rule stated below it (reproduced, not reproduced, inconclusive with "
        "the reason, or not run); ± values are standard errors."
    )
    rows = []
    for i, c in enumerate(r["claims"]):
        fig = Link(c["figure"], f"#fig-{c['figure']}") if c.get("figure") else ""
        rows.append([f"({c['id']})", c["statement"], _VERDICT_TEXT[c["verdict"]],
                     _evidence_cell(i, c["evidence"]), c["reason"], fig])  # fmt: skip
    sec.table(["", "claim", "verdict", "evidence", "why", "figure"], rows, text=True)
    sec.bullets([f"({c['id']}) {c['rule']}." for c in r["claims"]])


def _overview(rep: Report, r: Mapping[str, Any]) -> None:
    sec = rep.section("Overview")
    sec.text(
        "Mode {mode}, seed {seed}, attnpotts {version}; {n} stage(s) run in {total} on a {kind} "
        "executor. Every number below is read from results.json of this run.",
        mode=r["mode"], seed=Num(r["seed"], "seed", "d"), version=r["attnpotts_version"],
        n=Num(len(r["stages"]), "", "d"),
        total=Num(r["timings"]["total_s"], "timings.total_s", ".1f", "s"),
        kind=r["executor"]["kind"],
    )  # fmt: skip
    if r["not_run"]:
        sec.note("Stages not run (not selected): {names}.", names=", ".join(r["not_run"]))
    what = {
        "depth": "Depth study: held-out loss of vanilla transformers of several depths and of one "
        "factored attention layer against training compute, with the optimal loss (the true "
        "model's mean conditional entropy on the test set) as the floor no model can beat in "
        "expectation.",
        "scaling": "Learning curves in M: the excess test loss over the true model against the "
        "number of training sequences, for one factored layer and transformers, with fitted slopes.",
        "couplings": "Learned couplings: the factored layer's attention and value matrices next to "
        "the true site and colour interactions, up to the gauges that leave every conditional "
        "unchanged.",
        "theory": "Theory: replica-symmetric learning curves against simulations of the same "
        "scenario.",
        "equivalence": "Equivalence: the masked-language-model loss equals minus the log "
        "pseudo-likelihood per site of the Potts model the attention maps to.",
    }
    sec.bullets([what[name] for name in what if name in r["stages"]])


def _depth(rep: Report, stage: Mapping[str, Any], figures: Mapping[str, bytes]) -> None:
    s = stage["summary"]
    k = "stages.depth.summary."
    sec = rep.section("Depth study")
    _depth_setup(sec, s, k)
    _depth_conclusion(sec, s, k)
    _depth_table(sec, s["models"], k)
    _depth_stopping(sec, s, k)
    _figure(
        sec, stage, figures, "depth_study",
        "Validation loss during training against {measure}; markers: test loss ± s.e. of the "
        "early-stopped model; dashed: optimal loss ± s.e.",
        measure=s["compute_measure"],
    )


def _depth_setup(sec: Section, s: Mapping[str, Any], k: str) -> None:
    """The data and how the models are trained."""
    d = s["data"]
    sec.text(
        "Data: sequences sampled from a generalized Potts model at beta = {beta}; {train} training, "
        "{val} validation (early stopping and the choice of regularisation) and {test} test "
        "sequences. Optimal loss: {opt} ± {opt_se} nats per site; the true model's own loss on the "
        "test tokens: {true}.",
        beta=Num(s["beta"], k + "beta", ".4g"),
        train=Num(d["train"], k + "data.train", "d"), val=Num(d["validation"], k + "data.validation", "d"),
        test=Num(d["test"], k + "data.test", "d"),
        opt=Num(s["optimal_loss"], k + "optimal_loss", ".4f"),
        opt_se=Num(s["optimal_loss_stderr"], k + "optimal_loss_stderr", ".4f"),
        true=Num(s["true_model_loss"], k + "true_model_loss", ".4f"),
    )  # fmt: skip
    if d.get("test_mean_pairwise_hamming") is not None:
        sec.text(
            "Mean pairwise Hamming distance of the test sequences: {dist}.",
            dist=Num(d["test_mean_pairwise_hamming"], k + "data.test_mean_pairwise_hamming", ".3f"),
        )
    masking = {
        "copies": "several masked copies of every sequence per step, each with one different "
        "position masked (a smooth validation curve, so early stopping does not fire on noise)",
        "one": "one masked position per sequence", "all": "every position (one copy per position)",
        "bert": "BERT-style random masking",
    }  # fmt: skip
    if s.get("transformer_masking") in masking:
        sec.text(
            "Every model is trained until early stopping on the validation loss; the factored layer "
            "predicts all positions (its loss is the pseudo-likelihood), the transformers are "
            "trained on {how}.",
            how=masking[s["transformer_masking"]],
        )


def _depth_conclusion(sec: Section, s: Mapping[str, Any], k: str) -> None:
    """The factored layer's loss, and which transformer depth (if any) matches it."""
    models = s["models"]
    fac = models[0]
    sec.text(
        "One factored attention layer ({params} parameters) reached a test loss of {loss} ± {se} "
        "nats, {exc} ± {exc_se} nats above the true model on the same test tokens.",
        params=Num(fac["n_parameters"], k + "models.0.n_parameters", "d"),
        loss=Num(fac["test_loss"], k + "models.0.test_loss", ".4f"),
        se=Num(fac["test_loss_stderr"], k + "models.0.test_loss_stderr", ".4f"),
        exc=Num(fac["excess_loss"], k + "models.0.excess_loss", ".4f"),
        exc_se=Num(fac["excess_loss_stderr"], k + "models.0.excess_loss_stderr", ".4f"),
    )
    tol = Num(s["match_tolerance"], k + "match_tolerance", ".0%")
    if s["layers_to_match"] is not None:
        sec.text(
            "A vanilla transformer needs {n} layer(s) to come within {tol} of the factored layer's "
            "test loss.",
            n=Num(s["layers_to_match"], k + "layers_to_match", "d"), tol=tol,
        )
    else:
        transformers = list(enumerate(models))[1:]
        i, best = min(transformers, key=lambda im: im[1]["test_loss"])
        sec.text(
            "No transformer with up to {depth} layers came within {tol} of the factored layer "
            "{how}; the closest, {label}, ended {gap} ± {se} (paired standard error on the test "
            "sequences) above it.",
            how="at convergence (every run early-stopped)" if all(m.get("converged") for m in models)
            else "within this training budget (some runs stopped at their epoch cap)",
            depth=Num(s["max_depth"], k + "max_depth", "d"), tol=tol, label=best["label"],
            gap=Num(best["relative_gap_to_factored"], k + f"models.{i}.relative_gap_to_factored", ".1%"),
            se=Num(best["relative_gap_stderr"], k + f"models.{i}.relative_gap_stderr", ".1%"),
        )  # fmt: skip


def _depth_table(sec: Section, models: list[Mapping[str, Any]], k: str) -> None:
    """One row per model: parameters, regularisation, losses, gap to the factored layer, stops."""
    rows = []
    for i, m in enumerate(models):
        mk = k + f"models.{i}."
        reg = "; ".join(", ".join(f"{a}={b}" for a, b in r.items()) for r in m["selected_regularisation"])
        rows.append([
            m["label"], Num(m["n_parameters"], mk + "n_parameters", "d"), reg,
            Num(m["test_loss"], mk + "test_loss", ".4f"),
            Num(m["test_loss_stderr"], mk + "test_loss_stderr", ".4f"),
            Num(m["excess_loss"], mk + "excess_loss", ".4f"),
            Num(m["relative_gap_to_factored"], mk + "relative_gap_to_factored", ".2%"),
            Num(m["relative_gap_stderr"], mk + "relative_gap_stderr", ".2%"),
            m["within_tolerance"], _stops(m, mk),
            Num(m.get("train_cpu_s"), mk + "train_cpu_s", ".1f"),
        ])  # fmt: skip
    sec.table(
        ["model", "parameters", "selected regularisation", "test loss", "± s.e.", "excess",
         "gap to factored", "± s.e. (paired)", "within tolerance",
         "stopped by (best epoch / last epoch), per seed", "training CPU s"],
        rows,
        caption="Test loss in nats per site; s.e. from the test set (and training seeds); excess = "
        "paired difference to the true model's loss; regularisation chosen on the validation set; "
        "early stopping restores the parameters of the best validation epoch.",
    )  # fmt: skip


def _depth_stopping(sec: Section, s: Mapping[str, Any], k: str) -> None:
    """How many runs ended by early stopping (a note when some hit their epoch cap)."""
    n_runs, n_early = s.get("n_runs"), s.get("n_early_stopped")
    if n_runs is not None:
        msg = (
            "{n_early} of {n_runs} training runs of the depth study (every regularisation and seed) "
            "ended by early stopping, their best epoch at least {patience} epochs before the last."
        )
        vals = {"n_early": Num(n_early, k + "n_early_stopped", "d"), "n_runs": Num(n_runs, k + "n_runs", "d"),
                    "patience": Num(s["patience"], k + "patience", "d")}  # fmt: skip
        if n_early == n_runs:
            sec.text(msg, **vals)
        else:
            sec.note(msg + " The others stopped at the epoch cap while possibly still improving: "
                     "their losses measure the training budget, not the model.", **vals)

def _stops(m: Mapping[str, Any], mk: str) -> Fragment:
    parts, values = [], {}
    for j, reason in enumerate(m["stop_reasons"]):
        best = (m.get("best_epochs") or [None] * (j + 1))[j]
        last = (m.get("epochs") or [None] * (j + 1))[j]
        values[f"b{j}"] = Num(best, mk + f"best_epochs.{j}", "d")
        values[f"e{j}"] = Num(last, mk + f"epochs.{j}", "d")
        parts.append(f"{reason.replace('_', ' ')} ({{b{j}}} / {{e{j}}})")
    return Fragment("; ".join(parts), values)


def _scaling(rep: Report, stage: Mapping[str, Any], figures: Mapping[str, bytes]) -> None:
    s = stage["summary"]
    k = "stages.scaling.summary."
    sec = rep.section("Learning curves in the number of training sequences")
    sec.text(
        "Each model is trained on the first M sequences of a sampled pool (nested random subsets) "
        "for {n} data sets, each a new model of the ensemble with its own samples, "
        "{val}-sequence validation set (early stopping, patience {patience} epochs) and "
        "{test}-sequence test set. Plotted: the test loss minus the true model's loss on the same "
        "test tokens (the excess loss), mean ± s.e. over the data sets.",
        n=Num(s["n_data_sets"], k + "n_data_sets", "d"), val=Num(s.get("n_validation"), k + "n_validation", "d"),
        patience=Num(s["patience"], k + "patience", "d"), test=Num(s["n_test"], k + "n_test", "d"),
    )  # fmt: skip
    rows = []
    for i, m in enumerate(s["models"]):
        mk = k + f"models.{i}."
        fit = m["fit"]
        for j, pnt in enumerate(m["points"]):
            pk = mk + f"points.{j}."
            rows.append([
                m["label"] if j == 0 else "", Num(pnt["train_size"], pk + "train_size", "d"),
                Num(pnt["excess_loss"], pk + "excess_loss", ".4f"),
                Num(pnt["excess_loss_stderr"], pk + "excess_loss_stderr", ".4f"),
                Fragment("{a} of {b}", {"a": Num(pnt["n_early_stopped"], pk + "n_early_stopped", "d"),
                                        "b": Num(pnt["n_data_sets"], pk + "n_data_sets", "d")}),
                Fragment("{s} ± {e}", {"s": Num(fit["slope"], mk + "fit.slope", ".2f"),
                                       "e": Num(fit["slope_stderr"], mk + "fit.slope_stderr", ".2f")})
                if fit is not None and j == 0 else "",
            ])  # fmt: skip
    sec.table(["model", "M", "excess loss", "± s.e.", "early-stopped runs", "fitted slope"], rows,
              caption="Excess loss in nats per site. Slope: " + s["fit_rule"] + ".")
    _figure(
        sec, stage, figures, "sample_curves",
        "Excess loss against M on log-log axes, ± s.e. over data sets; dashed: fitted power laws; "
        "dotted: a 1/M guide (the rate of a consistent estimator).",
    )


def _couplings(rep: Report, stage: Mapping[str, Any], figures: Mapping[str, bytes]) -> None:
    s = stage["summary"]
    k = "stages.couplings.summary."
    sec = rep.section("Learned couplings")
    sec.text(
        "The factored layer's attention correlates with the true site couplings Jsite at r = {ra} "
        "(off-diagonal entries) and its value matrix with the true colour couplings Ucol at "
        "r = {rv} (both double-centred: row and column shifts of V are fields). The mapped couplings "
        "correlate with beta J at r = {rj} in the zero-sum gauge, with a relative Frobenius error of "
        "{err}.",
        ra=Num(s["attention_correlation"], k + "attention_correlation", ".3f"),
        rv=Num(s["value_correlation"], k + "value_correlation", ".3f"),
        rj=Num(s["coupling_correlation"], k + "coupling_correlation", ".3f"),
        err=Num(s["relative_error"], k + "relative_error", ".3f"),
    )
    if s.get("top_pair_recovery") is not None:
        sec.text(
            "Of the {n} truly coupled site pairs, {frac} are among the same number of top pairs by "
            "Frobenius norm with the average product correction.",
            n=Num(s["n_true_pairs"], k + "n_true_pairs", "d"),
            frac=Num(s["top_pair_recovery"], k + "top_pair_recovery", ".0%"),
        )
    _figure(
        sec, stage, figures, "couplings",
        "Left: true Jsite and Ucol (Ucol double-centred). Right: learned A and V, sign and scale fixed by "
        "the gauge (A, V) -> (cA, V/c) so that A has the norm of Jsite; V then estimates beta Ucol "
        "(beta = {beta}).",
        beta=Num(s["beta"], k + "beta", ".4g"),
    )


def _theory(rep: Report, stage: Mapping[str, Any], figures: Mapping[str, bytes]) -> None:
    s = stage["summary"]
    k = "stages.theory.summary."
    sc = s["scenario"]
    sec = rep.section("Replica theory against simulations")
    sec.text(
        "Scenario (one masked site, N other uniform spins; docs/theory.md): q = {q} colours, beta = {beta}, teacher variance "
        "rho = {rho}; simulations with N = {n} sites averaged over {seeds} seeds. {agree} of {pts} "
        "simulation points agree with the theory ({rule}); the largest relative deviation is {dev}.",
        q=Num(sc["q"], k + "scenario.q", "d"), beta=Num(sc["beta"], k + "scenario.beta", ".3g"),
        rho=Num(sc["rho"], k + "scenario.rho", ".3g"), n=Num(sc["n_sites"], k + "scenario.n_sites", "d"),
        seeds=Num(sc["n_seeds"], k + "scenario.n_seeds", "d"),
        agree=Num(s["n_agree"], k + "n_agree", "d"), pts=Num(s["n_points"], k + "n_points", "d"),
        rule=s["agreement_rule"],
        dev=Num(s["max_relative_deviation"], k + "max_relative_deviation", ".1%"),
    )  # fmt: skip
    if not s["all_converged"]:
        sec.note("Some theory points did not converge; their values are shown but not trusted.")
    rows = []
    for i, c in enumerate(s["curves"]):
        sim = c["simulation"]
        for j, a in enumerate(sim["alpha"]):
            ck = k + f"curves.{i}.simulation."
            rows.append([
                Num(c["lambda"], k + f"curves.{i}.lambda", ".3g"), Num(a, ck + f"alpha.{j}", ".3g"),
                Num(sim["theory"][j], ck + f"theory.{j}", ".4f"),
                Num(sim["mean"][j], ck + f"mean.{j}", ".4f"),
                Num(sim["stderr"][j], ck + f"stderr.{j}", ".4f"), sim["agree"][j],
            ])  # fmt: skip
    sec.table(["lambda", "alpha", "theory eps_g", "simulation", "± s.e.", "agree"], rows,
              caption="Generalization error = test cross-entropy in nats.")
    _figure(
        sec, stage, figures, "learning_curves",
        "Lines: replica theory; points: simulations ± s.e.; dashed: optimal loss {opt}.",
        opt=Num(s["optimal_loss"], k + "optimal_loss", ".4f"),
    )


def _equivalence(rep: Report, stage: Mapping[str, Any], figures: Mapping[str, bytes]) -> None:
    s = stage["summary"]
    k = "stages.equivalence.summary."
    sec = rep.section("Equivalence of masked language modelling and pseudo-likelihood")
    verdict = "agree" if s["agree"] else "DISAGREE"
    sec.text(
        "Across {n} checks the MLM loss of factored attention and -log PL / (M L) of the converted "
        "Potts model differ by at most {diff} relative ({prec}); the two losses {verdict} within "
        "the tolerance {tol}.",
        n=Num(len(s["checks"]), "", "d"),
        diff=Num(s["max_rel_difference"], k + "max_rel_difference", ".2e"),
        prec=s["precision"], verdict=verdict, tol=Num(s["tolerance"], k + "tolerance", ".0e"),
    )  # fmt: skip
    rows = []
    for i, c in enumerate(s["checks"]):
        ck = k + f"checks.{i}."
        rows.append([
            Num(i + 1, "", "d"), c["label"], Num(c["mlm_loss"], ck + "mlm_loss", ".10f"),
            Num(c["pseudo_likelihood_loss"], ck + "pseudo_likelihood_loss", ".10f"),
            Num(c["rel_difference"], ck + "rel_difference", ".2e"),
        ])  # fmt: skip
    sec.table(["#", "model", "MLM loss", "-log PL / (M L)", "relative difference"], rows)
    _figure(sec, stage, figures, "equivalence",
            "Left: the two losses (points on the diagonal). Right: their relative difference.")


def _reproducibility(rep: Report, r: Mapping[str, Any]) -> None:
    sec = rep.section("Reproducibility")
    env = r["environment"]
    sec.text(
        "Python {py}, numpy {np}, torch {torch}; results in runs/ (one folder per run, named by "
        "the hash of its configuration and seed). Running the same command again reuses every "
        "finished run.",
        py=str(env.get("python")), np=str(env.get("numpy")), torch=str(env.get("torch")),
    )
    rows = [
        [sw["experiment"], Num(sw["n_runs"], f"sweeps.{i}.n_runs", "d"),
         Num(sw["n_computed"], f"sweeps.{i}.n_computed", "d"),
         Num(sw["n_skipped"], f"sweeps.{i}.n_skipped", "d"),
         Num(sw["wall_s"], f"sweeps.{i}.wall_s", ".1f")]
        for i, sw in enumerate(r["sweeps"])
    ]  # fmt: skip
    if rows:
        sec.table(["sweep", "runs", "computed now", "reused", "wall time (s)"], rows)
    import json

    sec.code(json.dumps(r["config"], indent=1, sort_keys=True))
