"""``attnpotts train``: train factored attention, a full Potts model or a transformer by MLM."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import ValidationError
from ..storage import atomic_output_dir, atomic_write_json, environment_info
from .common import print_warnings, training_data_warnings
from .resources import check_train_resources

__all__ = ["MODEL_DEFAULTS", "TRAIN_DEFAULTS", "register", "run"]

_EPILOG = """examples:
  attnpotts train --data runs/sample --out runs/fa
      one factored-attention layer (free variant, 1 head, fields) on an `attnpotts sample`
      folder, Adam, all positions predicted (= pseudo-likelihood)
  attnpotts train --data runs/sample --out runs/plm --model potts --optimizer lbfgs \\
      --batch-size full --dtype float64 --coupling-l2 1e-4
  attnpotts train --data runs/sample --out runs/tf2 --model transformer --layers 2 \\
      --masking copies --mask-copies 4 --lr 2e-3 --warmup-epochs 1 --patience 5 --dropout 0.1
      4 masked copies per sequence per step (each masks one different position)
  attnpotts train --data family.a2m --out runs/dca --model potts --optimizer lbfgs
      an alignment file: 20% held out for testing, sequences reweighted at 80% identity
  attnpotts train --config train.toml --out runs/x --device cuda
      train.toml holds the same options with underscores, e.g. value_rank = 4

output folder: model.pt (checkpoint: rebuilds the model, resumes training), metrics.jsonl
(one line per epoch), summary.json (final train / validation / test loss, optimal loss and
excess on synthetic data), config.json; for factored attention and Potts models also potts.npz
(the mapped ConditionalPotts, beta = 1, couplings as learned, possibly asymmetric) and
potts_symmetrized.npz (the symmetrised PottsModel). A killed run leaves its checkpoint in a
hidden folder .OUT.tmp-*/model.pt next to --out; continue it with --resume that file.
"""

#: Model options and their defaults (``None`` = the model class's default / not applicable).
MODEL_DEFAULTS: dict[str, Any] = {
    "model": "factored",
    "variant": "free",
    "heads": None,
    "key_dim": 8,
    "value_rank": None,
    "fields": True,
    "symmetric": False,
    "init_std": None,
    "layers": 1,
    "width": 64,
    "dropout": 0.0,
    "dtype": "float32",
    "device": "cpu",
}
#: Data and training options and their defaults.
TRAIN_DEFAULTS: dict[str, Any] = {
    "data": None,
    "validation_fraction": 0.1,
    "test_fraction": 0.2,
    "weighting": "auto",
    "identity_threshold": 0.8,
    "alphabet": "protein",
    "optimizer": "adam",
    "lr": None,
    "epochs": 100,
    "batch_size": 256,
    "masking": "all",
    "mask_rate": 0.15,
    "mask_copies": None,
    "lr_schedule": "constant",
    "warmup_epochs": 0.0,
    "min_lr_ratio": 0.0,
    "validation_positions": None,
    "weight_decay": 0.0,
    "coupling_l2": 0.0,
    "field_l2": 0.0,
    "patience": None,
    "min_delta": 0.0,
    "tolerance": 0.0,
    "max_grad_norm": None,
    "lbfgs_max_iter": 20,
    "checkpoint_every": 1,
    "resume": None,
}


def _batch(text: str) -> int | str:
    if text.lower() in ("full", "none", "all"):
        return "full"
    try:
        return int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an integer or 'full', got {text!r}") from exc


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``sub``."""
    from .common import add_common_arguments

    p = sub.add_parser(
        "train",
        help="train factored attention / full Potts / a transformer by masked language modelling",
        description=(
            "Train a model by masked language modelling on sampled sequences or an alignment. "
            "For factored attention and the full Potts model, predicting all positions is exactly "
            "pseudo-likelihood maximisation of the mapped Potts model."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(p, device=True)
    g = p.add_argument_group("data")
    g.add_argument(
        "--data", default=None, help="`attnpotts sample` folder or alignment file (required)"
    )
    g.add_argument(
        "--validation-fraction",
        dest="validation_fraction",
        type=float,
        default=None,
        help="share of training sequences held out for early stopping (default 0.1)",
    )
    g.add_argument(
        "--test-fraction",
        dest="test_fraction",
        type=float,
        default=None,
        help="share of an alignment held out for testing (default 0.2)",
    )
    g.add_argument(
        "--weighting",
        choices=["auto", "none", "identity"],
        default=None,
        help="sequence weights (default auto: identity for alignments, none for samples)",
    )
    g.add_argument(
        "--identity-threshold",
        dest="identity_threshold",
        type=float,
        default=None,
        help="neighbour identity for sequence weights (default 0.8)",
    )
    g.add_argument(
        "--alphabet",
        choices=["protein", "rna"],
        default=None,
        help="alphabet of an alignment file (default protein)",
    )
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        choices=["factored", "potts", "transformer"],
        default=None,
        help="model kind (default factored)",
    )
    g.add_argument(
        "--variant",
        choices=["free", "softmax"],
        default=None,
        help="factored attention: free zero-diagonal A or positional softmax (default free)",
    )
    g.add_argument(
        "--heads", type=int, default=None, help="attention heads (default 1; transformer 4)"
    )
    g.add_argument(
        "--key-dim",
        dest="key_dim",
        type=int,
        default=None,
        help="softmax variant: width of positional queries/keys (default 8)",
    )
    g.add_argument(
        "--value-rank",
        dest="value_rank",
        type=int,
        default=None,
        help="factored: rank of V through token embeddings (default full q x q)",
    )
    g.add_argument(
        "--no-fields",
        dest="fields",
        action="store_const",
        const=False,
        default=None,
        help="factored / potts: no fields",
    )
    g.add_argument(
        "--symmetric",
        action="store_const",
        const=True,
        default=None,
        help="potts: tie J[i,j,a,b] = J[j,i,b,a] (symmetric pseudo-likelihood)",
    )
    g.add_argument(
        "--init-std",
        dest="init_std",
        type=float,
        default=None,
        help="std of the initial factors (default: model's; factored 0.1, potts 0)",
    )
    g.add_argument("--layers", type=int, default=None, help="transformer layers (default 1)")
    g.add_argument("--width", type=int, default=None, help="transformer width (default 64)")
    g.add_argument("--dropout", type=float, default=None, help="transformer dropout (default 0)")
    g.add_argument("--dtype", choices=["float32", "float64"], default=None, help="default float32")
    g = p.add_argument_group("training")
    g.add_argument(
        "--optimizer", choices=["adam", "adamw", "lbfgs"], default=None, help="default adam"
    )
    g.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-2; lbfgs 1)")
    g.add_argument("--epochs", type=int, default=None, help="maximum epochs (default 100)")
    g.add_argument(
        "--batch-size",
        dest="batch_size",
        type=_batch,
        default=None,
        help="sequences per step or 'full' (default 256; lbfgs is always full batch)",
    )
    g.add_argument(
        "--masking",
        choices=["all", "one", "copies", "bert"],
        default=None,
        help="positions predicted (default all = pseudo-likelihood; copies: --mask-copies masked "
        "copies per sequence, one position each, unbiased; bert: biased for rate > 1/L)",
    )
    g.add_argument(
        "--mask-copies",
        dest="mask_copies",
        type=int,
        default=None,
        help="copies per sequence of --masking copies (default L: every position once)",
    )
    g.add_argument(
        "--lr-schedule",
        dest="lr_schedule",
        choices=["constant", "cosine"],
        default=None,
        help="learning rate after the warm-up (default constant; cosine decays to "
        "--min-lr-ratio x --lr at --epochs)",
    )
    g.add_argument(
        "--warmup-epochs",
        dest="warmup_epochs",
        type=float,
        default=None,
        help="linear learning-rate warm-up over this many epochs (default 0)",
    )
    g.add_argument(
        "--min-lr-ratio",
        dest="min_lr_ratio",
        type=float,
        default=None,
        help="final learning rate of --lr-schedule cosine, as a fraction of --lr (default 0)",
    )
    g.add_argument(
        "--validation-positions",
        dest="validation_positions",
        type=int,
        default=None,
        help="masked positions per validation sequence for the per-epoch validation loss "
        "(a fixed set; default automatic: all for factored/potts, ~10%% of an epoch's cost "
        "for transformers)",
    )
    g.add_argument(
        "--mask-rate",
        dest="mask_rate",
        type=float,
        default=None,
        help="masking rate of --masking bert (default 0.15)",
    )
    g.add_argument(
        "--weight-decay",
        dest="weight_decay",
        type=float,
        default=None,
        help="L2 on the factors (A, V, embeddings; J for potts) (default 0)",
    )
    g.add_argument(
        "--coupling-l2",
        dest="coupling_l2",
        type=float,
        default=None,
        help="L2 on the coupling product sum_h A_h x V_h, plmDCA style (default 0)",
    )
    g.add_argument(
        "--field-l2", dest="field_l2", type=float, default=None, help="L2 on fields (default 0)"
    )
    g.add_argument(
        "--patience",
        type=int,
        default=None,
        help="early stopping after this many epochs without validation improvement",
    )
    g.add_argument(
        "--min-delta",
        dest="min_delta",
        type=float,
        default=None,
        help="validation improvement that counts (default 0)",
    )
    g.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="stop when the training loss changes less than this (relative; default 0)",
    )
    g.add_argument(
        "--max-grad-norm",
        dest="max_grad_norm",
        type=float,
        default=None,
        help="gradient clipping (default none)",
    )
    g.add_argument(
        "--lbfgs-max-iter",
        dest="lbfgs_max_iter",
        type=int,
        default=None,
        help="L-BFGS iterations per epoch (default 20)",
    )
    g.add_argument(
        "--checkpoint-every",
        dest="checkpoint_every",
        type=int,
        default=None,
        help="epochs between checkpoints (default 1)",
    )
    g.add_argument("--resume", default=None, help="continue from this checkpoint (model.pt)")
    p.set_defaults(func=run)
    return p


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """The resolved options of a ``train`` invocation (defaults < --config < flags)."""
    from .common import resolve_config

    values = resolve_config(args, {**MODEL_DEFAULTS, **TRAIN_DEFAULTS})
    if values["data"] is None:
        raise ValidationError(
            "--data is required: an `attnpotts sample` folder or an alignment file"
        )
    if values["batch_size"] in ("full", None):
        values["batch_size"] = None
    return values


def build_from_options(values: dict[str, Any], n_sites: int, n_states: int) -> Any:
    """Build the model described by resolved options."""
    from ..models import build_model

    kind = values["model"]
    common: dict[str, Any] = {
        "n_sites": n_sites,
        "n_states": n_states,
        "seed": values["seed"],
        "dtype": getattr(torch, values["dtype"]),
        "device": values["device"],
    }
    if kind == "factored":
        kw = {
            "n_heads": values["heads"] or 1,
            "variant": values["variant"],
            "key_dim": values["key_dim"],
            "value_rank": values["value_rank"],
            "fields": values["fields"],
        }
        if values["init_std"] is not None:
            kw["init_std"] = values["init_std"]
    elif kind == "potts":
        kw = {"symmetric": values["symmetric"], "fields": values["fields"]}
        if values["init_std"] is not None:
            kw["init_std"] = values["init_std"]
    else:
        kw = {
            "n_layers": values["layers"],
            "n_heads": values["heads"] or 4,
            "width": values["width"],
            "dropout": values["dropout"],
        }
    return build_model(kind, **common, **kw)


def training_config(values: dict[str, Any]) -> Any:
    """The :class:`~attnpotts.training.TrainingConfig` of resolved options."""
    from ..training import TrainingConfig

    lr = values["lr"]
    if lr is None:
        lr = 1.0 if values["optimizer"] == "lbfgs" else 1e-2
    return TrainingConfig(
        optimizer=values["optimizer"],
        learning_rate=lr,
        max_epochs=values["epochs"],
        batch_size=values["batch_size"],
        masking=values["masking"],
        mask_rate=values["mask_rate"],
        n_mask_copies=values["mask_copies"],
        lr_schedule=values["lr_schedule"],
        warmup_epochs=values["warmup_epochs"],
        min_lr_ratio=values["min_lr_ratio"],
        validation_positions=values["validation_positions"],
        weight_decay=values["weight_decay"],
        coupling_l2=values["coupling_l2"],
        field_l2=values["field_l2"],
        patience=values["patience"],
        min_delta=values["min_delta"],
        tolerance=values["tolerance"],
        max_grad_norm=values["max_grad_norm"],
        lbfgs_max_iter=values["lbfgs_max_iter"],
        checkpoint_every=values["checkpoint_every"],
        seed=values["seed"],
    )


def load_data(values: dict[str, Any]) -> Any:
    """The :class:`~attnpotts.training.TrainingData` of resolved options."""
    from ..training import load_training_data

    return load_training_data(
        values["data"],
        validation_fraction=values["validation_fraction"],
        test_fraction=values["test_fraction"],
        weighting=values["weighting"],
        identity_threshold=values["identity_threshold"],
        alphabet=values["alphabet"],
        seed=values["seed"],
    )


def test_metrics(model: Any, data: Any) -> dict[str, Any]:
    """Test loss (and, with a true model, optimal loss and excess) with standard errors."""
    from ..inference import excess_loss, model_loss, optimal_loss, true_model_loss

    out: dict[str, Any] = {}
    if data.test.shape[0] == 0:
        return out
    out["test_loss"] = model_loss(model, data.test, data.test_weights).as_dict()
    if data.true_model is not None:
        out["optimal_loss"] = optimal_loss(data.true_model, data.test, data.test_weights).as_dict()
        out["true_model_test_loss"] = true_model_loss(
            data.true_model, data.test, data.test_weights
        ).as_dict()
        out["excess_loss"] = excess_loss(
            model, data.true_model, data.test, data.test_weights
        ).as_dict()
        opt = out["optimal_loss"]["mean"]
        out["relative_excess_over_optimal"] = (
            out["test_loss"]["mean"] / opt - 1.0 if opt > 0 else None
        )
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``attnpotts train``; return the exit status."""
    from ..inference import to_conditional_potts
    from ..models import FactoredAttention, FullPotts
    from ..training import ProgressBar, train

    t0 = time.perf_counter()  # the command's wall time includes loading data and evaluation
    values = resolve(args)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(
            f"output folder {out} exists and is not empty; choose another --out or pass --overwrite"
        )
    config = training_config(values)
    data = load_data(values)
    check_train_resources(values, int(data.train.shape[0]), data.n_sites, data.n_states, args)
    data_warnings = training_data_warnings(data)
    print_warnings("train", data_warnings)
    model = build_from_options(values, data.n_sites, data.n_states)
    # plain progress lines (no escape codes) when stdout is not a terminal
    callbacks = (
        [] if args.no_progress else [ProgressBar(f"train {values['model']}", stream=sys.stdout)]
    )
    with atomic_output_dir(out, overwrite=args.overwrite) as tmp:
        atomic_write_json(
            tmp / "config.json",
            {
                "options": values,
                "training": config.to_dict(),
                "model": model.hyperparameters(),
                "seed": values["seed"],
                "environment": environment_info(),
            },
        )
        result = train(
            model,
            data.train,
            config=config,
            weights=data.train_weights,
            validation=data.validation if data.validation.shape[0] else None,
            validation_weights=data.validation_weights if data.validation.shape[0] else None,
            callbacks=callbacks,
            checkpoint_path=tmp / "model.pt",
            metrics_path=tmp / "metrics.jsonl",
            resume_from=values["resume"],
        )
        summary: dict[str, Any] = {
            "command": "train",
            "data": {
                "path": data.path,
                "source": data.source,
                "n_train": int(data.train.shape[0]),
                "n_validation": int(data.validation.shape[0]),
                "n_test": int(data.test.shape[0]),
                "n_sites": data.n_sites,
                "n_states": data.n_states,
                **data.info,
            },
            "model": {
                "kind": values["model"],
                **model.hyperparameters(),
                "n_parameters": model.n_parameters(),
            },
            **result.summary(),
            **test_metrics(model, data),
            "throughput_sequences_per_s": (result.epochs * data.train.shape[0] / result.wall_time_s)
            if result.wall_time_s > 0
            else None,
            "total_time_s": time.perf_counter() - t0,
            "warnings": data_warnings,
        }
        if isinstance(model, FactoredAttention | FullPotts):
            potts = to_conditional_potts(model)
            potts.save(tmp / "potts.npz")
            potts.symmetrized().save(tmp / "potts_symmetrized.npz")
            summary["potts_files"] = {
                "potts.npz": "ConditionalPotts, beta = 1 absorbed, couplings as learned (asymmetric)",
                "potts_symmetrized.npz": "PottsModel with (J[i,j,a,b] + J[j,i,b,a]) / 2",
            }
        atomic_write_json(tmp / "summary.json", summary)
    # result.warnings (e.g. the epoch-cap warning) were logged on stderr by the library
    _print_summary(out, summary)
    return 0 if result.stop_reason != "diverged" else 3


def _fmt(est: dict[str, Any] | None) -> str:
    if not est:
        return "n/a"
    se = est.get("stderr")
    return f"{est['mean']:.4f}" + ("" if se is None or not math.isfinite(se) else f" +- {se:.4f}")


def _print_summary(out: Path, s: dict[str, Any]) -> None:
    m = s["model"]
    lines = [f"attnpotts train -> {out}"]
    lines.append(f"  model      {m['kind']}  {m['n_parameters']} parameters")
    lines.append(
        f"  data       {s['data']['n_train']} train / {s['data']['n_validation']} validation / "
        f"{s['data']['n_test']} test sequences ({s['data']['source']})"
    )
    lines.append(
        f"  stopped    {s['stop_reason']} after {s['epochs']} epochs (best epoch "
        f"{s['best_epoch']}); {s['wall_time_s']:.1f} s in training epochs, "
        f"{s['total_time_s']:.1f} s for the whole command (wall), "
        f"{s['cpu_time_s']:.1f} CPU-s training"
    )
    for text in s.get("warnings", []):
        lines.append(f"  warning    {text}")
    if s.get("message"):
        lines.append(f"  note       {s['message']}")
    lines.append(
        f"  train loss {s['final_train_loss']:.4f}   validation {s['final_validation_loss'] or float('nan'):.4f}"
    )
    lines.append(f"  test loss  {_fmt(s.get('test_loss'))}")
    if "optimal_loss" in s:
        lines.append(f"  optimal    {_fmt(s['optimal_loss'])}   excess {_fmt(s['excess_loss'])}")
    print("\n".join(lines))
