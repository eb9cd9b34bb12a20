"""Built-in tasks of ``attnpotts reproduce``, registered by name (imported lazily by the registry).

Each task is a pure function ``fn(params, seed) -> TaskResult``: the result depends only on the
parameters and the run's ``SeedSequence``. The science modules (sampling, models, training,
inference, theory) are imported inside the functions so that importing the registry stays cheap.

Data sets are regenerated from their recipe (``params["data"]``, which includes the data seed) in
every worker process that needs them and memoised per process, so workers need no shared files
and every run of the same recipe sees exactly the same sequences.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError
from .registry import TaskResult, register_task
from .spec import thaw

__all__ = [
    "DATA_KEYS",
    "Dataset",
    "dataset_from_params",
    "depth_study_run",
    "equivalence_check",
    "theory_curve",
    "theory_simulation",
]

logger = logging.getLogger(__name__)

#: Keys of ``params["data"]`` besides the options of :class:`attnpotts.sampling.dataset.SampleConfig`.
DATA_KEYS = ("n_validation",)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A synthetic data set split three ways (validation is carved from the sampled train split).

    Attributes:
        model: the true :class:`~attnpotts.potts.PottsModel` (at the sampled beta).
        train, validation, test: ``(M, L)`` int8 sequences, disjoint.
        manifest: the sampler's manifest (calibration, diagnostics).
    """

    model: Any
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    manifest: dict[str, Any]


@functools.lru_cache(maxsize=2)
def _dataset_cached(recipe_json: str) -> Dataset:
    from ..sampling import SampleConfig, sample_dataset

    recipe = json.loads(recipe_json)
    if not recipe.pop("calibrate", True):
        recipe["target_distance"] = None  # sample at the given beta
    n_val = int(recipe.pop("n_validation", 0))
    if n_val < 0:
        raise ValidationError(f"data.n_validation must be >= 0, got {n_val}")
    n_train = int(recipe.get("n_train", SampleConfig().n_train))
    config = SampleConfig.from_dict({**recipe, "n_train": n_train + n_val})
    logger.info("sampling the data set %s", recipe_json)
    ds = sample_dataset(config)
    train, validation = ds.train[:n_train], ds.train[n_train:]
    return Dataset(ds.model, train, validation, ds.test, ds.manifest)


def dataset_from_params(data: Mapping[str, Any]) -> Dataset:
    """The data set of a recipe: :class:`SampleConfig` options plus ``n_validation`` (memoised)."""
    return _dataset_cached(json.dumps(thaw(data), sort_keys=True))


def _seed_int(seed: np.random.SeedSequence, k: int) -> int:
    """The ``k``-th 63-bit integer seed derived from ``seed`` (for APIs that take an int seed)."""
    return int(seed.generate_state(k + 1, dtype=np.uint64)[k] % (2**63 - 1))


#: Sampler diagnostics copied into the metrics of every depth-study run.
_DIAGNOSTICS = (
    "test_mean_pairwise_hamming",
    "tau_sweeps",
    "energy_split_rhat",
    "mixing_ok",
    "conditional_entropy",
)


def _data_info(manifest: Mapping[str, Any]) -> dict[str, Any]:
    diag = manifest.get("diagnostics", {}) or {}
    info: dict[str, Any] = {k: diag.get(k) for k in _DIAGNOSTICS if k in diag}
    cal = manifest.get("calibration")
    if isinstance(cal, Mapping):
        info["calibrated"] = True
        info["target_distance"] = cal.get("target")
        info["calibrated_distance"] = cal.get("distance")
    else:
        info["calibrated"] = False
    return info


def _optional_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _loss_dict(est: Any) -> dict[str, float | int]:
    return {"mean": float(est.mean), "stderr": float(est.stderr), "n": int(est.n)}


@register_task("depth_study_run")
def depth_study_run(params: Mapping[str, Any], seed: np.random.SeedSequence) -> TaskResult:
    """Train one model on a synthetic data set; test loss, optimal loss, learning curve.

    Params:
        data: the data recipe (see :func:`dataset_from_params`).
        model: ``{"kind": "factored" | "transformer" | "potts", **constructor options}``.
        training: :class:`~attnpotts.training.TrainingConfig` options (``seed`` is derived from
            the run's seed, ``patience`` needs validation data).
        device: torch device (default ``"cpu"``); ``dtype``: ``"float32"`` (default) or
            ``"float64"``.
        train_size: train on the first ``train_size`` training sequences only (the split is
            shuffled, so this is a random subset; nested for growing sizes: learning curves in
            ``M``). Default: all of them.

    Metrics: ``test_loss``, ``excess_loss`` (paired, against the true model on the same test
    tokens), ``optimal_loss`` (mean conditional entropy), ``true_model_loss``, each
    ``{"mean", "stderr", "n"}``; ``curve`` with per-epoch ``compute_s`` (cumulative training wall
    seconds), ``cpu_s`` (cumulative process CPU seconds of training, when the training loop
    reports them, else ``None``), ``tokens`` (cumulative masked training targets, likewise),
    ``sequences_seen``, ``validation_loss``; ``training_cpu_s`` (process CPU seconds of the whole
    ``train`` call); the training summary; for models with Potts
    couplings the coupling recovery and the MLM / pseudo-likelihood equivalence on the test set.
    Arrays: ``test_losses`` ``(M_test,)`` per-sequence test losses (for paired comparisons);
    for factored attention also ``attention`` ``(H, L, L)``, ``value`` ``(H, q, q)``,
    ``true_site`` ``(K, L, L)``, ``true_colour`` ``(K, q, q)`` (``beta`` folded into neither).
    Figure ``training``: training and validation loss per epoch.
    """
    import torch

    from ..evaluation import coupling_recovery
    from ..inference import mlm_loss, to_conditional_potts
    from ..models import PottsParameters, build_model
    from ..training import TrainingConfig, train
    from ..workflows._train import test_estimates

    p = thaw(params)
    for key in ("data", "model", "training"):
        if key not in p:
            raise ValidationError(f"depth_study_run needs params.{key}")
    device = str(p.get("device", "cpu"))
    dtype_name = str(p.get("dtype", "float32"))
    if dtype_name not in ("float32", "float64"):
        raise ValidationError(f"dtype must be 'float32' or 'float64', got {dtype_name!r}")
    dtype = getattr(torch, dtype_name)
    data = dataset_from_params(p["data"])
    true = data.model
    model_opts = dict(p["model"])
    kind = model_opts.pop("kind")
    model = build_model(
        kind, n_sites=true.n_sites, n_states=true.n_states, seed=_seed_int(seed, 0),
        dtype=dtype, device=device, **model_opts,
    )
    training = dict(p["training"])
    if "seed" in training:
        raise ValidationError("params.training.seed is derived from the run's seed; leave it out")
    config = TrainingConfig.from_dict({**training, "seed": _seed_int(seed, 1)})
    validation = data.validation if data.validation.shape[0] else None
    train_states = data.train
    if "train_size" in p:
        size = int(p["train_size"])
        if not 1 <= size <= data.train.shape[0]:
            raise ValidationError(
                f"train_size must lie in [1, {data.train.shape[0]}] (the data recipe's n_train), "
                f"got {size}; raise data.n_train or lower train_size"
            )
        train_states = data.train[:size]
    cpu0 = time.process_time()
    result = train(model, train_states, config=config, validation=validation)
    training_cpu_s = time.process_time() - cpu0
    model.eval()

    # the same test losses as the ``train`` command's (one function for both)
    per_seq, est = test_estimates(model, data.test, true)  # per_seq: (M_test,) nats per site
    metrics: dict[str, Any] = {
        "model_kind": kind,
        "model": model.hyperparameters(),
        "n_parameters": int(model.n_parameters()),
        "training": result.summary(),
        "training_cpu_s": training_cpu_s,
        "test_loss": _loss_dict(est["test_loss"]),
        "excess_loss": _loss_dict(est["excess_loss"]),
        "optimal_loss": _loss_dict(est["optimal_loss"]),
        "true_model_loss": _loss_dict(est["true_model_loss"]),
        "beta": float(true.beta),
        "data": _data_info(data.manifest),
        "data_sizes": {
            "train": int(train_states.shape[0]),
            "validation": int(data.validation.shape[0]),
            "test": int(data.test.shape[0]),
        },
        "curve": {
            "epoch": [int(r["epoch"]) for r in result.history],
            "compute_s": [float(r["elapsed_s"]) for r in result.history],
            "cpu_s": [_optional_float(r.get("cpu_s")) for r in result.history],
            "tokens": [_optional_float(r.get("tokens_seen")) for r in result.history],
            "sequences_seen": [int(r["sequences_seen"]) for r in result.history],
            "validation_loss": [r.get("validation_loss") for r in result.history],
            "train_loss": [r.get("train_loss") for r in result.history],
        },
    }
    arrays: dict[str, np.ndarray] = {"test_losses": per_seq}
    if isinstance(model, PottsParameters):
        # Everything below in float64 (exact up to rounding: the identity is checked there).
        model = model.to(torch.float64)
        conditional = to_conditional_potts(model)
        beta_J = true.beta * np.asarray(true.couplings)
        recovery_kwargs: dict[str, Any] = {}
        if kind == "factored" and true.site_couplings is not None:
            fac: Any = model
            with torch.no_grad():
                A = fac.attention_matrices().detach().cpu().double().numpy()  # (H, L, L)
                V = fac.value_matrices().detach().cpu().double().numpy()  # (H, q, q)
            arrays |= {
                "attention": A,
                "value": V,
                "true_site": np.asarray(true.site_couplings),
                "true_colour": np.asarray(true.colour_couplings),
            }
            recovery_kwargs = {
                "attention": A, "values": V, "site_couplings": true.site_couplings,
                "colour_couplings": true.colour_couplings,
            }
        metrics["recovery"] = coupling_recovery(
            beta_J, conditional.couplings, **recovery_kwargs
        ).as_dict()
        # The exact mapping: the MLM loss of the trained model and -log PL / (M L) of its Potts
        # conditionals on the test set (float64 evaluation of the float64-converted parameters).
        mlm = mlm_loss(model, data.test)
        pll = -float(conditional.pseudo_log_likelihood(data.test, reduction="mean"))
        metrics["equivalence"] = {
            "mlm_loss": mlm,
            "pseudo_likelihood_loss": pll,
            "abs_difference": abs(mlm - pll),
            "rel_difference": abs(mlm - pll) / abs(pll) if pll else math.inf,
        }
    from ..plotting import figure_to_png, plot_training_curve

    curve = metrics["curve"]
    fig = plot_training_curve(
        curve["epoch"], curve["train_loss"], curve["validation_loss"],
        optimal_loss=metrics["optimal_loss"]["mean"], best_epoch=result.best_epoch,
        title=f"{kind} {model_opts.get('n_layers', '')}".strip(),
    )
    return TaskResult(metrics=metrics, arrays=arrays, figures={"training": figure_to_png(fig)})


@register_task("equivalence_check")
def equivalence_check(params: Mapping[str, Any], seed: np.random.SeedSequence) -> TaskResult:
    """MLM loss of random factored attention vs the pseudo-likelihood of its Potts conditionals.

    Params: ``n_sites``, ``n_states``, ``n_heads``, ``variant`` (``"free"``/``"softmax"``),
    ``fields`` (bool), ``n_sequences``, ``init_std``. Random parameters and uniformly random
    sequences from the seed, everything in float64. Metrics: ``mlm_loss``,
    ``pseudo_likelihood_loss`` (``-log PL / (M L)`` of :func:`to_conditional_potts`), their
    absolute and relative difference.
    """
    import torch

    from ..inference import mlm_loss, to_conditional_potts
    from ..models import FactoredAttention

    p = thaw(params)
    L, q = int(p["n_sites"]), int(p["n_states"])
    model = FactoredAttention(
        L, q, int(p.get("n_heads", 1)), variant=p.get("variant", "free"),
        fields=bool(p.get("fields", True)), init_std=float(p.get("init_std", 0.5)),
        seed=_seed_int(seed, 0), dtype=torch.float64,
    )
    if bool(p.get("fields", True)):
        # non-zero fields, so that the check covers the bias term too
        with torch.no_grad():
            gen = torch.Generator().manual_seed(_seed_int(seed, 2))
            for prm in model.field_parameters():
                prm.add_(torch.randn(prm.shape, generator=gen, dtype=prm.dtype))
    rng = np.random.default_rng(seed.spawn(1)[0])
    states = rng.integers(0, q, size=(int(p["n_sequences"]), L))
    mlm = mlm_loss(model, states)
    pll = -float(to_conditional_potts(model).pseudo_log_likelihood(states, reduction="mean"))
    return TaskResult(
        metrics={
            "mlm_loss": mlm,
            "pseudo_likelihood_loss": pll,
            "abs_difference": abs(mlm - pll),
            "rel_difference": abs(mlm - pll) / abs(pll),
            "variant": p.get("variant", "free"),
            "fields": bool(p.get("fields", True)),
        }
    )


def _scenario(p: Mapping[str, Any]) -> Any:
    """The scenario of the params: the one the ``theory`` command builds from the same values."""
    from ..workflows._theory import make_scenario

    return make_scenario(
        str(p["ucol"]), int(p["q"]), float(p["beta"]), float(p.get("rho", 1.0)),
        int(p.get("ucol_seed", 0)),
    )  # fmt: skip


@register_task("theory_curve")
def theory_curve(params: Mapping[str, Any], seed: np.random.SeedSequence) -> TaskResult:
    """Replica-theory learning curve of one lambda over ``alphas`` (deterministic; seed unused).

    Params: ``q``, ``ucol`` (``"identity"``/``"gaussian"``), ``ucol_seed``, ``beta``, ``rho``,
    ``lambda``, ``alphas`` (list), ``student`` (``"factored"``, ``"full"``, ``"ising"``).
    Metrics: lists over alpha of ``eps_g``, ``eps_opt``, ``kl``, ``coupling_error``,
    ``class_error``, ``converged``, ``residual``.
    """
    from ..theory import learning_curves

    p = thaw(params)
    curves = learning_curves(
        _scenario(p), [float(a) for a in p["alphas"]], [float(p["lambda"])],
        student=p.get("student", "factored"),
    )
    row = curves.points[0]
    return TaskResult(
        metrics={
            "lambda": float(p["lambda"]),
            "alpha": [float(a) for a in curves.alphas],
            "eps_g": [pt.eps_g for pt in row],
            "eps_opt": [pt.eps_opt for pt in row],
            "kl": [pt.kl for pt in row],
            "coupling_error": [pt.coupling_error for pt in row],
            "class_error": [pt.class_error for pt in row],
            "converged": [bool(pt.report.converged) for pt in row],
            "residual": [float(pt.report.residual) for pt in row],
        }
    )


@register_task("theory_simulation")
def theory_simulation(params: Mapping[str, Any], seed: np.random.SeedSequence) -> TaskResult:
    """One seed of the finite-N simulation of the replica scenario (teacher, data, fits).

    Params: as :func:`theory_curve` plus ``n_sites`` (N), ``n_test``, ``student``
    (``"convex"``: attention row with the value matrix fixed; ``"full"``).
    Metrics: lists over (sorted) alpha of ``eps_g``, ``eps_opt``, ``kl``, ``class_error``.
    """
    from ..theory import simulate_seed

    p = thaw(params)
    alphas = sorted(float(a) for a in p["alphas"])
    rows = simulate_seed(
        _scenario(p), alphas, float(p["lambda"]), int(p["n_sites"]),
        student=str(p.get("student", "convex")), n_test=int(p["n_test"]), seed=seed,
    )
    keys = ("eps_g", "eps_opt", "kl", "class_error")
    metrics: dict[str, Any] = {"lambda": float(p["lambda"]), "alpha": alphas}
    for k in keys:
        metrics[k] = [float(r[k]) for r in rows]
    return TaskResult(metrics=metrics)
