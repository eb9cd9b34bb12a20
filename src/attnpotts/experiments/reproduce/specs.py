"""What ``reproduce`` runs: the experiment specs of every stage, built from a :class:`ReproduceConfig`.

Each spec names a registered task (:mod:`attnpotts.experiments.tasks`), its parameters and a seed
derived from the configuration's seed (:meth:`ReproduceConfig.derived_seed`), so the same
configuration always expands into the same runs (the same run ids: a rerun resumes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import ReproduceConfig
from ..spec import ExperimentSpec

__all__ = [
    "data_recipe",
    "equivalence_spec",
    "factored_spec",
    "pipeline_specs",
    "scaling_data_seeds",
    "scaling_specs",
    "theory_alpha_grid",
    "theory_curve_spec",
    "theory_simulation_spec",
    "training_specs",
    "transformer_spec",
]


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


def _run_params(config: ReproduceConfig, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a ``depth_study_run`` of model ``kind`` on the data set ``data``."""
    if kind == "factored":
        model, training = _factored_model(config), _factored_training(config)
    else:
        model, training = _transformer_model(config), _transformer_training(config)
    return {"data": data, "device": config.device, "model": model, "training": training}


def factored_spec(config: ReproduceConfig) -> ExperimentSpec:
    """One factored layer, swept over the L2 on the coupling product."""
    return ExperimentSpec(
        name="depth-factored",
        task="depth_study_run",
        seed=config.derived_seed(1),
        params=_run_params(config, "factored", data_recipe(config)),
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
        params=_run_params(config, "transformer", data_recipe(config)),
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
    data = _scaling_data(config)
    specs = [
        ExperimentSpec(
            name="scaling-factored",
            task="depth_study_run",
            seed=config.derived_seed(7),
            params={**_run_params(config, "factored", data), "train_size": min(config.scaling_sizes)},
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
                params={**_run_params(config, "transformer", data), "train_size": min(config.scaling_sizes)},
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


def training_specs(cfg: ReproduceConfig) -> list[ExperimentSpec]:
    """Every spec that trains a model on synthetic data (run as one sweep: one pool of workers)."""
    specs = []
    if "depth" in cfg.stages or "couplings" in cfg.stages:
        specs += [factored_spec(cfg), transformer_spec(cfg)] if "depth" in cfg.stages else [factored_spec(cfg)]
    if "scaling" in cfg.stages:
        specs += scaling_specs(cfg)
    return specs


def pipeline_specs(cfg: ReproduceConfig) -> list[ExperimentSpec]:
    """Every spec the selected stages run (for the ETA)."""
    specs = training_specs(cfg)
    if "theory" in cfg.stages:
        specs += [theory_curve_spec(cfg), theory_simulation_spec(cfg)]
    if "equivalence" in cfg.stages:
        specs.append(equivalence_spec(cfg))
    return specs


