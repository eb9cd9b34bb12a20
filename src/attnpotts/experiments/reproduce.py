"""``attnpotts reproduce``: the paper's experiments as one pipeline of sweeps, a JSON document and a report.

Stages (``docs/experiments.md``; each is a sweep of registered tasks run through the results store, so
a killed pipeline resumes where it stopped and any executor gives the same numbers):

* ``depth`` - test loss against training compute (process CPU seconds) for vanilla transformers
  with 1..4 layers and one factored layer on synthetic generalized-Potts data (``L = q = 20``,
  the paper's ``M = 3000``; transformer width 32 by default, so that every run converges within
  about 15 minutes on 2 cores; ``--full``: width 64), each regularised (a grid,
  the value chosen on a validation set distinct from the test set) and trained until early stopping
  on that validation set, 2 training seeds; the optimal loss (mean conditional entropy of the true
  model) with standard errors; the smallest depth within ``match_tolerance`` (1%) of the factored
  layer's test loss, or none.
* ``scaling`` - learning curves in the number of training sequences ``M``: excess test loss over
  the true model, mean ± s.e. over data sets, with fitted power-law slopes.
* ``couplings`` - the learned attention ``A`` and value ``V`` of the factored layer next to the true
  ``Jsite`` and ``Ucol``, with gauge-invariant correlations.
* ``theory`` - replica learning curves (``docs/theory.md``) against finite-``N`` simulations.
* ``equivalence`` - the MLM loss of factored attention and ``-(1/(M L)) log PL`` of the converted
  Potts model, for random parameters of both variants and for the trained model.

Everything the report says comes from ``results.json`` (:mod:`attnpotts.reports.reproduce`); the
verdicts on the paper's claims are computed from it by :mod:`attnpotts.experiments.claims`.

Library defaults (documented, not from the paper): the data model of
:class:`attnpotts.sampling.dataset.SampleConfig` (sparse ``Jsite`` of mean degree 3, Gaussian
``Ucol``, beta calibrated to a mean pairwise Hamming distance of 0.88, where the optimal loss is
1-2 nats); transformers with 4 heads trained by AdamW (1 warm-up epoch) on 4 masked copies of
every sequence, each with one different position masked (one masked position per sequence gives
so noisy a validation signal that early stopping fires at a poor loss); factored attention (one
free head with fields) fitted by full-batch L-BFGS on all positions (pseudo-likelihood; Adam's
minibatch noise left a floor in the excess loss: 0.011 nats at both M = 3000 and 10000).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ValidationError
from ..storage import atomic_write_bytes, atomic_write_json, environment_info, to_jsonable
from .claims import evaluate_claims
from .config import MODES, STAGES, ReproduceConfig
from .executors import Executor, LocalExecutor
from .spec import ExperimentSpec, RunSpec
from .store import ResultsStore, StoredRun
from .sweep import SweepReport, run_runs

__all__ = [
    "MODES",
    "STAGES",
    "ReproduceConfig",
    "ReproduceResult",
    "reproduce",
]

logger = logging.getLogger(__name__)

#: Version of the results document (``results.json``).
RESULTS_SCHEMA_ID = "attnpotts.reproduce/2"


# --------------------------------------------------------------------------- specs
def data_recipe(config: ReproduceConfig) -> dict[str, Any]:
    """The ``params["data"]`` table of the depth-study runs."""
    recipe: dict[str, Any] = {
        "n_sites": config.n_sites,
        "n_states": config.n_states,
        "n_train": config.n_train,
        "n_validation": config.n_validation,
        "n_test": config.n_test,
        "n_chains": config.n_chains,
        "pilot_sweeps": config.pilot_sweeps,
        "seed": config.derived_seed(0),
        "calibrate": config.calibrate,
    }
    if config.calibrate:
        recipe["target_distance"] = config.target_distance
    else:
        recipe["beta"] = config.beta
    return recipe


def _factored_model(config: ReproduceConfig) -> dict[str, Any]:
    return {
        "kind": "factored", "n_heads": config.factored_heads,
        "variant": config.factored_variant, "fields": True,
    }  # fmt: skip


def _factored_training(config: ReproduceConfig) -> dict[str, Any]:
    t: dict[str, Any] = {
        "optimizer": config.factored_optimizer, "learning_rate": config.factored_lr,
        "max_epochs": config.factored_epochs, "masking": "all", "patience": config.patience,
        "coupling_l2": float(config.factored_coupling_l2[0]),
    }  # fmt: skip
    if config.factored_optimizer != "lbfgs":  # L-BFGS is always full batch
        t["batch_size"] = config.factored_batch_size
    return t


def _transformer_model(config: ReproduceConfig) -> dict[str, Any]:
    return {
        "kind": "transformer", "n_layers": config.depths[0], "width": config.width,
        "n_heads": config.transformer_heads, "dropout": float(config.transformer_dropout[0]),
    }  # fmt: skip


def _transformer_training(config: ReproduceConfig) -> dict[str, Any]:
    t: dict[str, Any] = {
        "optimizer": "adamw", "learning_rate": config.transformer_lr,
        "max_epochs": config.transformer_epochs, "batch_size": config.transformer_batch_size,
        "masking": config.transformer_masking, "patience": config.patience,
        "weight_decay": config.transformer_weight_decay,
    }  # fmt: skip
    # the newer options only when they differ from the training loop's defaults
    if config.transformer_masking == "copies" and config.transformer_mask_copies:
        t["n_mask_copies"] = config.transformer_mask_copies
    if config.transformer_warmup_epochs:
        t["warmup_epochs"] = float(config.transformer_warmup_epochs)
    if config.transformer_lr_schedule != "constant":
        t["lr_schedule"] = config.transformer_lr_schedule
    return t


def factored_spec(config: ReproduceConfig) -> ExperimentSpec:
    """One factored layer, swept over the L2 on the coupling product."""
    return ExperimentSpec(
        name="depth-factored",
        task="depth_study_run",
        seed=config.derived_seed(1),
        params={
            "data": data_recipe(config),
            "device": config.device,
            "model": _factored_model(config),
            "training": _factored_training(config),
        },
        sweep={"training.coupling_l2": list(config.factored_coupling_l2)},
        n_seeds=config.n_seeds,
        description="one factored self-attention layer (all positions = pseudo-likelihood)",
    )


def transformer_spec(config: ReproduceConfig) -> ExperimentSpec:
    """Transformers of every depth, swept over dropout (weight decay fixed)."""
    return ExperimentSpec(
        name="depth-transformer",
        task="depth_study_run",
        seed=config.derived_seed(2),
        params={
            "data": data_recipe(config),
            "device": config.device,
            "model": _transformer_model(config),
            "training": _transformer_training(config),
        },
        sweep={
            "model.n_layers": list(config.depths),
            "model.dropout": list(config.transformer_dropout),
        },
        n_seeds=config.n_seeds,
        description="vanilla transformer encoders of several depths",
    )


def scaling_data_seeds(config: ReproduceConfig) -> list[int]:
    """Data seeds of the learning curves: the depth study's, then one new model per extra seed."""
    return [config.derived_seed(0)] + [config.derived_seed(100 + k) for k in range(1, config.scaling_data_seeds)]


def _scaling_data(config: ReproduceConfig) -> dict[str, Any]:
    # one pool per data seed, as large as the largest size; runs take nested prefixes of it
    return {**data_recipe(config), "n_train": max(config.scaling_sizes)}


def scaling_specs(config: ReproduceConfig) -> list[ExperimentSpec]:
    """Learning curves in M: the factored layer and transformers of ``scaling_depths``."""
    sweep: dict[str, list[Any]] = {
        "data.seed": scaling_data_seeds(config),
        "train_size": sorted(config.scaling_sizes),
    }
    specs = [
        ExperimentSpec(
            name="scaling-factored",
            task="depth_study_run",
            seed=config.derived_seed(7),
            params={
                "data": _scaling_data(config), "device": config.device,
                "model": _factored_model(config), "training": _factored_training(config),
                "train_size": min(config.scaling_sizes),
            },
            sweep=sweep,
            description="one factored layer trained on M sequences, for several M and data sets",
        )
    ]  # fmt: skip
    tr_sizes = sorted(m for m in config.scaling_sizes if m <= config.scaling_transformer_max_size)
    if config.scaling_depths and len(tr_sizes) >= 2:
        specs.append(
            ExperimentSpec(
                name="scaling-transformer",
                task="depth_study_run",
                seed=config.derived_seed(8),
                params={
                    "data": _scaling_data(config), "device": config.device,
                    "model": _transformer_model(config), "training": _transformer_training(config),
                    "train_size": min(config.scaling_sizes),
                },
                sweep={**sweep, "train_size": tr_sizes, "model.n_layers": list(config.scaling_depths)},
                description="transformers trained on M sequences, for several M, data sets, depths",
            )
        )  # fmt: skip
    return specs


def _theory_params(config: ReproduceConfig) -> dict[str, Any]:
    return {
        "q": config.theory_states,
        "ucol": config.theory_ucol,
        "ucol_seed": config.derived_seed(3),
        "beta": config.theory_beta,
        "rho": config.theory_rho,
        "lambda": config.theory_lambdas[0],
    }


def theory_alpha_grid(config: ReproduceConfig) -> list[float]:
    """Alphas of the theory lines: log-spaced over the simulated range, plus the simulated ones."""
    lo, hi = min(config.theory_alphas), max(config.theory_alphas)
    grid = np.geomspace(lo, hi, config.theory_curve_points)
    return sorted({float(a) for a in grid} | {float(a) for a in config.theory_alphas})


def theory_curve_spec(config: ReproduceConfig) -> ExperimentSpec:
    """Replica-theory learning curves, one run per lambda."""
    return ExperimentSpec(
        name="theory-curves",
        task="theory_curve",
        seed=config.derived_seed(4),
        params={**_theory_params(config), "alphas": theory_alpha_grid(config), "student": "factored"},
        sweep={"lambda": list(config.theory_lambdas)},
        description="replica-symmetric fixed point of the factored student (docs/theory.md)",
    )


def theory_simulation_spec(config: ReproduceConfig) -> ExperimentSpec:
    """Finite-N simulations of the same scenario, one run per lambda and seed."""
    return ExperimentSpec(
        name="theory-simulations",
        task="theory_simulation",
        seed=config.derived_seed(5),
        params={
            **_theory_params(config),
            "alphas": sorted(float(a) for a in config.theory_alphas),
            "n_sites": config.simulation_sites,
            "n_test": config.simulation_test,
            "student": "convex",
        },
        sweep={"lambda": list(config.theory_lambdas)},
        n_seeds=config.simulation_seeds,
        description="simulations with a convex solver of the same objective",
    )


def equivalence_spec(config: ReproduceConfig) -> ExperimentSpec:
    """Random factored attention of both variants, with and without fields."""
    return ExperimentSpec(
        name="equivalence",
        task="equivalence_check",
        seed=config.derived_seed(6),
        params={
            "n_sites": config.equivalence_sites,
            "n_states": config.equivalence_states,
            "n_heads": 2,
            "n_sequences": config.equivalence_sequences,
            "init_std": 0.5,
            "variant": "free",
            "fields": True,
        },
        sweep={"variant": ["free", "softmax"], "fields": [True, False]},
        n_seeds=config.equivalence_draws,
        description="MLM loss vs pseudo-likelihood for random parameters (float64)",
    )


# --------------------------------------------------------------------------- stage machinery
@dataclass
class StageOutput:
    """What a stage produced: a JSON summary, PNG figures and the runs it used."""

    summary: dict[str, Any]
    figures: dict[str, bytes] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Eta:
    """Progress of the whole pipeline: runs done, and the time left from the runs' cost estimates.

    The estimates (:func:`estimated_cost`, CPU seconds) are converted to wall time by the speed
    observed so far (elapsed wall seconds per estimated second of the runs computed), so a loaded
    machine, several workers or a wrong constant all correct themselves as runs finish.
    """

    costs: dict[str, float]
    n_workers: int
    report: Callable[[dict[str, Any]], None]
    t0: float = field(default_factory=time.perf_counter)
    done: set[str] = field(default_factory=set)
    computed_cost: float = 0.0
    stage: str = ""

    def update(self, run: RunSpec, outcome: Any) -> None:
        """Record a finished (``outcome``) or already stored (``None``) run and report."""
        if run.run_id in self.done:
            return
        self.done.add(run.run_id)
        cost = self.costs.setdefault(run.run_id, estimated_cost(run))
        if outcome is not None:
            self.computed_cost += cost
        elapsed = time.perf_counter() - self.t0
        remaining = sum(c for rid, c in self.costs.items() if rid not in self.done)
        rate = elapsed / self.computed_cost if self.computed_cost > 0 else 1.0 / max(self.n_workers, 1)
        self.report({
            "stage": self.stage, "done": len(self.done), "total": len(self.costs),
            "elapsed_s": elapsed, "eta_s": remaining * rate,
        })  # fmt: skip


@dataclass
class _Context:
    config: ReproduceConfig
    store: ResultsStore
    executor: Executor
    progress: bool
    cache: dict[str, list[StoredRun]] = field(default_factory=dict)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    eta: _Eta | None = None

    def run(self, *specs: ExperimentSpec, first: Callable[[RunSpec], float] | None = None) -> None:
        """Run the specs not run yet in this pipeline as one sweep (one pool of workers, so a
        worker's memoised data set serves every run), submitting in ``first``-descending order
        (longest first keeps the workers busy; results do not depend on the order)."""
        todo = [s for s in specs if s.name not in self.cache]
        if not todo:
            return
        runs = [r for s in todo for r in s.expand()]
        if first is not None:
            runs.sort(key=first, reverse=True)
        report: SweepReport = run_runs(
            runs, self.store, self.executor, progress=self.progress,
            description="+".join(s.name for s in todo),
            on_result=None if self.eta is None else self.eta.update,
        )  # fmt: skip
        self.sweeps.append({"experiment": "+".join(s.name for s in todo), **report.summary()})
        for s in todo:
            self.cache[s.name] = [self.store.load(r) for r in s.expand()]

    def results(self, spec: ExperimentSpec) -> list[StoredRun]:
        """Run ``spec`` (resuming) once per pipeline and return its stored runs in order."""
        self.run(spec)
        return self.cache[spec.name]


def _combine(values: Sequence[float], stderrs: Sequence[float]) -> tuple[float, float]:
    """Mean over training seeds and its standard error.

    All seeds share the test set, so the test-set error does not average out: the total error is
    ``sqrt(mean(se_test)^2 + var_seeds / n)`` (the second term only with several seeds).
    """
    v = np.asarray(values, dtype=float)
    se = float(np.mean(np.asarray(stderrs, dtype=float)))
    between = float(v.var(ddof=1) / v.size) if v.size > 1 else 0.0
    return float(v.mean()), math.sqrt(se**2 + between)


def _select(runs: list[StoredRun]) -> list[StoredRun]:
    """Per training seed (replicate), the run of the regularisation with the lowest validation loss."""
    by_rep: dict[int, list[StoredRun]] = {}
    for r in runs:
        by_rep.setdefault(r.run.replicate, []).append(r)

    def val(r: StoredRun) -> float:
        t = r.metrics["training"]
        v = t.get("best_validation_loss")
        if v is None:
            v = t.get("final_validation_loss")
        return math.inf if v is None else float(v)

    return [min(group, key=val) for _, group in sorted(by_rep.items())]


def _regularisation(run: StoredRun) -> dict[str, Any]:
    p = run.run.params
    if p["model"]["kind"] == "transformer":
        return {"dropout": p["model"]["dropout"], "weight_decay": p["training"]["weight_decay"]}
    return {"coupling_l2": p["training"]["coupling_l2"]}


def _stopped_early(run: StoredRun, patience: int) -> bool:
    """The run ended by early stopping, its best epoch at least ``patience`` epochs before the last."""
    t = run.metrics["training"]
    best = t.get("best_epoch")
    return bool(
        t.get("stop_reason") == "early_stopping" and best is not None
        and int(t["epochs"]) - int(best) >= patience
    )  # fmt: skip


def _training_cpu_s(run: StoredRun) -> float:
    """Process CPU seconds of a run's training (older runs: the whole task's CPU time)."""
    v = run.metrics.get("training_cpu_s")
    return float(v) if v is not None else float(run.timings.get("cpu_s", math.nan))


def _model_summary(label: str, n_layers: int | None, runs: list[StoredRun], patience: int) -> dict[str, Any]:
    chosen = _select(runs)
    m0 = chosen[0].metrics
    test, test_se = _combine(
        [r.metrics["test_loss"]["mean"] for r in chosen],
        [r.metrics["test_loss"]["stderr"] for r in chosen],
    )
    exc, exc_se = _combine(
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
        "selected_regularisation": [_regularisation(r) for r in chosen],
        "regularisation_grid_size": len(runs) // max(len(chosen), 1),
        "epochs": [int(r.metrics["training"]["epochs"]) for r in chosen],
        "best_epochs": [r.metrics["training"].get("best_epoch") for r in chosen],
        "stop_reasons": [str(r.metrics["training"]["stop_reason"]) for r in chosen],
        "early_stopped": [_stopped_early(r, patience) for r in chosen],
        "converged": all(_stopped_early(r, patience) for r in chosen),
        "train_time_s": float(np.mean([r.metrics["training"]["wall_time_s"] for r in chosen])),
        "train_cpu_s": float(np.mean([_training_cpu_s(r) for r in chosen])),
        "run_ids": [r.run.run_id for r in chosen],
    }


def _mean_test_losses(runs: list[StoredRun]) -> np.ndarray:
    """Per-test-sequence losses ``(M_test,)`` averaged over the runs (training seeds)."""
    return np.mean([r.arrays()["test_losses"] for r in runs], axis=0)


#: x-axes of the depth figure, best first: (key in a run's curve, axis label).
_COMPUTE_AXES = (
    ("cpu_s", "training compute (process CPU seconds)"),
    ("tokens", "training tokens (masked positions predicted)"),
    ("compute_s", "training wall-clock seconds (including per-epoch validation)"),
)


def _compute_axis(runs: Sequence[StoredRun]) -> tuple[str, str]:
    """The best compute measure every run's curve has (CPU seconds when the loop reports them)."""
    for key, label in _COMPUTE_AXES:
        if all(
            r.metrics["curve"].get(key) and all(v is not None for v in r.metrics["curve"][key])
            for r in runs
        ):
            return key, label
    return _COMPUTE_AXES[-1]


def _curve(run: StoredRun, key: str) -> dict[str, Any] | None:
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


def _training_specs(cfg: ReproduceConfig) -> list[ExperimentSpec]:
    """Every spec that trains a model on synthetic data (run as one sweep: one pool of workers)."""
    specs = []
    if "depth" in cfg.stages or "couplings" in cfg.stages:
        specs += [factored_spec(cfg), transformer_spec(cfg)] if "depth" in cfg.stages else [factored_spec(cfg)]
    if "scaling" in cfg.stages:
        specs += scaling_specs(cfg)
    return specs


def pipeline_specs(cfg: ReproduceConfig) -> list[ExperimentSpec]:
    """Every spec the selected stages run (for the ETA)."""
    specs = _training_specs(cfg)
    if "theory" in cfg.stages:
        specs += [theory_curve_spec(cfg), theory_simulation_spec(cfg)]
    if "equivalence" in cfg.stages:
        specs.append(equivalence_spec(cfg))
    return specs


def stage_depth(ctx: _Context) -> StageOutput:
    """Depth study: transformers of several depths against one factored layer."""
    from ..plotting import figure_to_png, plot_depth_study

    cfg = ctx.config
    ctx.run(*_training_specs(cfg), first=estimated_cost)
    fac_runs = ctx.results(factored_spec(cfg))
    tr_runs = ctx.results(transformer_spec(cfg))
    factored = _model_summary("factored attention (1 layer)", None, fac_runs, cfg.patience)
    models = [factored]
    by_depth: dict[int, list[StoredRun]] = {}
    for r in tr_runs:
        by_depth.setdefault(int(r.run.params["model"]["n_layers"]), []).append(r)
    for depth in sorted(by_depth):
        s = _model_summary(f"transformer, {depth} layer{'s' if depth > 1 else ''}", depth,
                           by_depth[depth], cfg.patience)  # fmt: skip
        models.append(s)
    ref = factored["test_loss"]
    groups = [fac_runs, *(by_depth[d] for d in sorted(by_depth))]
    ref_seq = _mean_test_losses(_select(fac_runs))
    for s, runs in zip(models, groups, strict=True):
        s["relative_gap_to_factored"] = s["test_loss"] / ref - 1.0
        s["within_tolerance"] = bool(s["test_loss"] <= (1.0 + cfg.match_tolerance) * ref)
        # paired on the same test sequences: the s.e. of the gap, without the test-set noise
        # common to both models
        diff = _mean_test_losses(_select(runs)) - ref_seq
        s["relative_gap_stderr"] = (
            float(diff.std(ddof=1) / math.sqrt(diff.size)) / ref if diff.size > 1 else math.nan
        )
    matching = [s["n_layers"] for s in models[1:] if s["within_tolerance"]]
    first = fac_runs[0].metrics
    opt = first["optimal_loss"]
    all_runs = fac_runs + tr_runs
    capped = [r.run.run_id for r in all_runs if not _stopped_early(r, cfg.patience)]
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
    curves = []
    for s, runs in [(factored, fac_runs), *((models[k + 1], by_depth[d]) for k, d in enumerate(sorted(by_depth)))]:
        chosen = {r.run.run_id: r for r in runs}
        for seed_no, run_id in enumerate(s["run_ids"]):
            c = _curve(chosen[run_id], axis_key)
            if c is not None:
                curves.append({"label": s["label"] if seed_no == 0 else None, "group": s["label"], **c})
    figures: dict[str, bytes] = {}
    if curves:
        fig = plot_depth_study(curves, optimal_loss=opt["mean"], optimal_stderr=opt["stderr"],
                               compute_label=axis_label)  # fmt: skip
        figures["depth_study"] = figure_to_png(fig)
    return StageOutput(summary, figures, [r.run.run_id for r in all_runs])


def _mean_se(values: Sequence[float], stderrs: Sequence[float]) -> tuple[float, float]:
    """Mean over data sets and its standard error (between data sets; one data set: its own s.e.)."""
    v = np.asarray(values, dtype=float)
    if v.size > 1:
        return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))
    return float(v[0]), float(stderrs[0])


def stage_scaling(ctx: _Context) -> StageOutput:
    """Learning curves in M: excess loss over the true model against the number of sequences."""
    from ..plotting import figure_to_png, plot_sample_curves
    from .fits import fit_power_law, local_slope

    cfg = ctx.config
    ctx.run(*_training_specs(cfg), first=estimated_cost)
    specs = scaling_specs(cfg)
    groups: list[tuple[str, int | None, list[StoredRun]]] = [
        ("factored attention (1 layer)", None, ctx.results(specs[0]))
    ]
    if len(specs) > 1:
        tr = ctx.results(specs[1])
        for n_layers in sorted(cfg.scaling_depths):
            runs = [r for r in tr if int(r.run.params["model"]["n_layers"]) == n_layers]
            groups.append((f"transformer, {n_layers} layer{'s' if n_layers > 1 else ''}", n_layers, runs))
    sizes = sorted(cfg.scaling_sizes)
    models: list[dict[str, Any]] = []
    for label, depth, runs in groups:
        points: list[dict[str, Any]] = []
        for size in sorted({int(r.run.params["train_size"]) for r in runs}):
            at = [r for r in runs if int(r.run.params["train_size"]) == size]
            exc, exc_se = _mean_se([r.metrics["excess_loss"]["mean"] for r in at],
                                   [r.metrics["excess_loss"]["stderr"] for r in at])  # fmt: skip
            test, test_se = _mean_se([r.metrics["test_loss"]["mean"] for r in at],
                                     [r.metrics["test_loss"]["stderr"] for r in at])  # fmt: skip
            points.append({
                "train_size": size, "excess_loss": exc, "excess_loss_stderr": exc_se,
                "test_loss": test, "test_loss_stderr": test_se, "n_data_sets": len(at),
                "n_early_stopped": sum(_stopped_early(r, cfg.patience) for r in at),
                "stop_reasons": sorted({str(r.metrics["training"]["stop_reason"]) for r in at}),
                "train_cpu_s": float(np.mean([_training_cpu_s(r) for r in at])),
            })  # fmt: skip
        x = [p["train_size"] for p in points]
        y = [p["excess_loss"] for p in points]
        se = [p["excess_loss_stderr"] for p in points]
        fit = fit_power_law(x, y, se)
        last = local_slope(x[-2:], y[-2:], se[-2:])
        models.append({
            "label": label, "kind": "factored" if depth is None else "transformer",
            "n_layers": depth, "points": points,
            "fit": None if fit is None else fit.as_dict(),
            "last_slope": None if last is None else last.as_dict(),
            "run_ids": [r.run.run_id for r in runs],
        })  # fmt: skip
    first = groups[0][2][0].metrics
    summary: dict[str, Any] = {
        "sizes": sizes,
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


#: Rough CPU seconds per unit of work of the built-in tasks (measured on a 2-core machine; only
#: their ratios matter for the ETA, which is rescaled by the observed speed as runs finish).
_COST = {
    "factored_per_seq_epoch": 1.2e-4,  # L-BFGS, per sequence and epoch at L = q = 20 (~8 epochs)
    "factored_epochs": 10,
    "transformer_per_token_layer": 2.1e-4,  # per masked copy and layer at L = 20, width 64
    "transformer_per_token": 0.4e-4,  # embedding, read-out, optimizer
    "transformer_epochs": 50,  # default run: early stops after 31-64 epochs
    "run_overhead": 3.0,  # test evaluation, coupling recovery, figures
    "theory_curve": 5.0,
    "theory_simulation": 1.0,
    "equivalence_check": 0.1,
}


def estimated_cost(run: RunSpec) -> float:
    """Rough CPU seconds of a run (for the order of submission and the ETA; never for results)."""
    p = run.params
    if run.task != "depth_study_run":
        return _COST.get(run.task, 1.0)
    data, training, model = p["data"], p["training"], p["model"]
    M = int(p.get("train_size", data["n_train"]))
    L, q = int(data["n_sites"]), int(data["n_states"])
    if model["kind"] == "transformer":
        epochs = min(int(training["max_epochs"]), _COST["transformer_epochs"])
        masking = training.get("masking", "one")
        per_seq = {"all": L, "copies": int(training.get("n_mask_copies", L)), "one": 1}.get(masking, 0.15 * L)
        # measured: width 32 costs about half of width 64 per token (small matrices: overheads)
        width = int(model.get("width", 64)) / 64.0
        per_token = _COST["transformer_per_token"] + _COST["transformer_per_token_layer"] * width * int(
            model.get("n_layers", 1)
        )
        return _COST["run_overhead"] + per_token * (L / 20.0) * M * per_seq * epochs
    epochs = min(int(training["max_epochs"]), _COST["factored_epochs"])
    return _COST["run_overhead"] + _COST["factored_per_seq_epoch"] * (L / 20.0) ** 2 * (q / 20.0) * M * epochs


def stage_couplings(ctx: _Context) -> StageOutput:
    """Learned attention and values of the factored layer next to the true factors."""
    from ..evaluation import pearson
    from ..plotting import figure_to_png, plot_coupling_comparison

    fac_runs = ctx.results(factored_spec(ctx.config))
    run = _select(fac_runs)[0]
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
    V_disp = _double_centre(V / c)
    U_disp = _double_centre(U)
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


def _double_centre(m: np.ndarray) -> np.ndarray:
    return m - m.mean(0, keepdims=True) - m.mean(1, keepdims=True) + m.mean()


def stage_theory(ctx: _Context) -> StageOutput:
    """Replica learning curves against simulation points."""
    from ..plotting import figure_to_png, plot_learning_curves

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
        alphas = np.asarray(t.metrics["alpha"], dtype=float)
        # a point that did not converge is stored as null: NaN here, left out of the line and
        # never counted as agreeing
        eps = np.array([np.nan if v is None else v for v in t.metrics["eps_g"]], dtype=float)
        eps[~np.asarray(t.metrics["converged"], dtype=bool)] = np.nan
        all_converged &= bool(all(t.metrics["converged"]))
        seeds = [r for r in sims if r.run.params["lambda"] == lam]
        sim_alpha = np.asarray(seeds[0].metrics["alpha"], dtype=float)
        per_seed = np.array([r.metrics["eps_g"] for r in seeds], dtype=float)  # (S, A)
        mean = per_seed.mean(0)
        se = per_seed.std(0, ddof=1) / math.sqrt(per_seed.shape[0]) if per_seed.shape[0] > 1 else np.zeros_like(mean)
        theory_at = np.array([eps[np.argmin(np.abs(alphas - a))] for a in sim_alpha])
        dev = np.abs(mean - theory_at)
        agree = dev <= 2 * se + 0.02 * np.abs(theory_at)
        n_agree += int(agree.sum())
        n_points += int(agree.size)
        rel = dev / np.abs(theory_at)
        if np.isfinite(rel).any():
            max_rel = max(max_rel, float(np.nanmax(rel)))
        out_curves.append({
            "lambda": lam,
            "alpha": alphas.tolist(),
            "eps_g": eps.tolist(),
            "eps_opt": float(np.mean(t.metrics["eps_opt"])),
            "converged": bool(all(t.metrics["converged"])),
            "simulation": {
                "alpha": sim_alpha.tolist(), "mean": mean.tolist(), "stderr": se.tolist(),
                "theory": theory_at.tolist(), "agree": [bool(a) for a in agree],
                "n_seeds": int(per_seed.shape[0]),
            },
        })  # fmt: skip
        ok = np.isfinite(eps)
        theory_lines.append({"label": f"lambda = {lam:g}", "alpha": alphas[ok], "eps_g": eps[ok]})
        sim_points.append({"label": f"lambda = {lam:g}", "alpha": sim_alpha, "mean": mean, "stderr": se})
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
        "agreement_rule": "|simulation - theory| <= 2 standard errors + 2% of theory",
        "max_relative_deviation": max_rel,
        "all_converged": all_converged,
    }
    return StageOutput(summary, {"learning_curves": figure_to_png(fig)},
                       [r.run.run_id for r in curves + sims])


def stage_equivalence(ctx: _Context) -> StageOutput:
    """MLM loss vs pseudo-likelihood of the converted Potts model."""
    from ..plotting import figure_to_png, plot_equivalence

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
        for r in _select(ctx.results(factored_spec(cfg))):
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


#: Relative agreement required of the two losses (float64; the tests' standard).
EQUIVALENCE_RTOL = 1e-10

_STAGE_FUNCS: dict[str, Callable[[_Context], StageOutput]] = {
    "depth": stage_depth,
    "scaling": stage_scaling,
    "couplings": stage_couplings,
    "theory": stage_theory,
    "equivalence": stage_equivalence,
}


# --------------------------------------------------------------------------- the pipeline
@dataclass(frozen=True)
class ReproduceResult:
    """Paths of what :func:`reproduce` wrote and the results document."""

    out: Path
    results: dict[str, Any]
    report: Path
    results_path: Path
    figures: dict[str, Path]


def _check_out(out: Path, config_doc: dict[str, Any], overwrite: bool) -> None:
    """Refuse an --out folder of another configuration (unless overwrite, which clears it).

    The same configuration (up to the stage selection) resumes: its finished runs are reused.
    """
    if not out.exists() or not any(out.iterdir()):
        return
    cfg_path = out / "config.json"
    same = False

    def key(doc: Any) -> Any:
        # the stage selection does not change any run, so it may differ between calls
        return {k: v for k, v in doc.items() if k != "stages"} if isinstance(doc, dict) else doc

    if cfg_path.is_file():
        try:
            same = key(json.loads(cfg_path.read_text()).get("config")) == key(config_doc)
        except (json.JSONDecodeError, UnicodeDecodeError):
            same = False
    if same:
        logger.info("resuming in %s (same configuration)", out)
        return
    if not overwrite:
        raise FileExistsError(
            f"output folder {out} holds results of another configuration (or is not a reproduce "
            "folder); choose another --out, or pass --overwrite to replace it"
        )
    if not cfg_path.is_file() and not (out / "runs").is_dir():
        raise FileExistsError(
            f"{out} does not look like a reproduce output folder; refusing to delete it even with "
            "--overwrite; choose another --out"
        )
    shutil.rmtree(out)


def reproduce(
    config: ReproduceConfig,
    out: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
    overwrite: bool = False,
    progress: bool = False,
    on_stage: Callable[[str, str], None] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> ReproduceResult:
    """Run the selected stages into ``out`` and write ``results.json``, figures and ``report.html``.

    Layout of ``out``: ``config.json`` (resolved config, seed, environment), ``runs/`` (the results
    store: one folder per run; a rerun with the same config resumes from it), ``figures/*.png``,
    ``results.json`` (validated against :data:`attnpotts.reports.reproduce.RESULTS_SCHEMA`),
    ``report.html`` (self-contained) and ``summary.json`` (the main numbers). Every file is
    written atomically.

    Args:
        config: the settings (:meth:`ReproduceConfig.preset`).
        out: output folder.
        executor: where runs execute (default: inline).
        overwrite: replace an ``out`` folder that holds another configuration.
        progress: progress bars per sweep.
        on_stage: called as ``on_stage(stage, "start" | "done")`` (for the CLI's messages).
        on_progress: called after every run (computed or found stored) with ``stage``, ``done``,
            ``total`` (runs of the whole pipeline), ``elapsed_s`` and ``eta_s`` (estimated wall
            seconds left, from the runs' cost estimates rescaled by the speed observed so far).
    """
    from ..reports.reproduce import build_report, validate_results

    out = Path(out)
    if "depth" in config.stages or "couplings" in config.stages:
        _check_device(config.device)
    config_doc = config.to_dict()
    _check_out(out, config_doc, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    executor = executor if executor is not None else LocalExecutor(1)
    atomic_write_json(
        out / "config.json",
        {"config": config_doc, "seed": config.seed, "environment": environment_info(),
         "executor": executor.describe()},
    )  # fmt: skip
    ctx = _Context(config=config, store=ResultsStore(out / "runs"), executor=executor, progress=progress)
    if on_progress is not None:
        plan = {r.run_id: estimated_cost(r) for spec in pipeline_specs(config) for r in spec.expand()}
        ctx.eta = _Eta(plan, int(executor.describe().get("n_workers", 1) or 1), on_progress)
    t0 = time.perf_counter()
    stages: dict[str, Any] = {}
    figures: dict[str, bytes] = {}
    timings: dict[str, float] = {}
    for name in STAGES:
        if name not in config.stages:
            continue
        if on_stage is not None:
            on_stage(name, "start")
        ts = time.perf_counter()
        if ctx.eta is not None:
            ctx.eta.stage = name
        result = _STAGE_FUNCS[name](ctx)
        timings[name] = time.perf_counter() - ts
        overlap = set(result.figures) & set(figures)
        if overlap:  # pragma: no cover - figure names are fixed per stage
            raise RuntimeError(f"two stages wrote figures named {sorted(overlap)}")
        figures.update(result.figures)
        stages[name] = {
            "status": "done",
            "summary": to_jsonable(result.summary),
            "figures": [f"figures/{k}.png" for k in sorted(result.figures)],
            "runs": sorted(set(result.runs)),
        }
        if on_stage is not None:
            on_stage(name, "done")
    results = {
        "schema": RESULTS_SCHEMA_ID,
        "attnpotts_version": __version__,
        "created": datetime.now(UTC).isoformat(),
        "mode": config.mode,
        "seed": config.seed,
        "config": config_doc,
        "environment": environment_info(),
        "executor": executor.describe(),
        "stages": stages,
        "not_run": [s for s in STAGES if s not in config.stages],
        "sweeps": ctx.sweeps,
        "timings": {"total_s": time.perf_counter() - t0, "stages_s": timings},
    }
    results = to_jsonable(results)
    results["claims"] = to_jsonable([c.as_dict() for c in evaluate_claims(results)])
    validate_results(results)
    fig_paths = {k: atomic_write_bytes(out / "figures" / f"{k}.png", v) for k, v in figures.items()}
    results_path = atomic_write_json(out / "results.json", results)
    report = build_report(results, figures)
    report_path = report.write(out / "report.html")
    atomic_write_json(out / "summary.json", _summary(results))
    return ReproduceResult(out, results, report_path, results_path, fig_paths)


def _check_device(device: str) -> None:
    """Fail early (not in every worker) on a torch device this machine does not have."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(f"device {device!r} is not a torch device ({exc}); use cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError(
            f"device {device!r} asked for but torch sees no CUDA device here; use --device cpu "
            "(with --executor dask, the workers' devices count: pass the option they support)"
        )


def _summary(results: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers (``summary.json``)."""
    s: dict[str, Any] = {"mode": results["mode"], "seed": results["seed"],
                         "stages": sorted(results["stages"]), "total_s": results["timings"]["total_s"]}  # fmt: skip
    st = results["stages"]
    if "depth" in st:
        d = st["depth"]["summary"]
        s["depth"] = {
            "optimal_loss": d["optimal_loss"],
            "layers_to_match": d["layers_to_match"],
            "test_loss": {m["label"]: m["test_loss"] for m in d["models"]},
            "stop_reasons": {m["label"]: m["stop_reasons"] for m in d["models"]},
            "best_epochs": {m["label"]: m["best_epochs"] for m in d["models"]},
        }
    if "scaling" in st:
        sc = st["scaling"]["summary"]
        s["scaling"] = {
            m["label"]: {
                "sizes": [p["train_size"] for p in m["points"]],
                "excess_loss": [p["excess_loss"] for p in m["points"]],
                "slope": None if m["fit"] is None else m["fit"]["slope"],
                "slope_stderr": None if m["fit"] is None else m["fit"]["slope_stderr"],
            }
            for m in sc["models"]
        }
    if "couplings" in st:
        c = st["couplings"]["summary"]
        s["couplings"] = {k: c[k] for k in ("attention_correlation", "value_correlation", "coupling_correlation")}
    if "theory" in st:
        t = st["theory"]["summary"]
        s["theory"] = {k: t[k] for k in ("n_points", "n_agree", "max_relative_deviation")}
    if "equivalence" in st:
        e = st["equivalence"]["summary"]
        s["equivalence"] = {k: e[k] for k in ("max_rel_difference", "agree")}
    s["claims"] = {c["id"]: {"verdict": c["verdict"], "reason": c["reason"]} for c in results["claims"]}
    return s
