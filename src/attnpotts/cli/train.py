"""``attnpotts train``: train factored attention, a full Potts model or a transformer by MLM."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .common import print_warnings

__all__ = ["register", "resolve", "run"]

_EPILOG = """examples:
  attnpotts train --data runs/sample --out runs/fa
      one factored-attention layer (free variant, 1 head, fields) on an `attnpotts sample`
      folder, Adam, all positions predicted (= pseudo-likelihood)
  attnpotts train --data runs/sample --out runs/plm --model potts --optimizer lbfgs \\
      --batch-size full --dtype float64 --coupling-l2 1e-4
  attnpotts train --data runs/sample --out runs/tf2 --model transformer --n-layers 2 \\
      --masking copies --n-mask-copies 4 --learning-rate 2e-3 --warmup-epochs 1 --patience 5 \\
      --dropout 0.1
      4 masked copies per sequence per step (each masks one different position)
  attnpotts train --data family.a2m --out runs/dca --model potts --optimizer lbfgs
      an alignment file: 20% held out for testing, sequences reweighted at 80% identity
  attnpotts train --config train.toml --out runs/x --device cuda
      train.toml holds the same options with underscores, e.g. value_rank = 4

Every option's name is its TOML key and, with dashes, its flag. Old spellings (--lr, --epochs,
--heads, --layers, --mask-copies) are still read, with a deprecation note.

output folder: model.pt (checkpoint: rebuilds the model, resumes training), metrics.jsonl
(one line per epoch), summary.json (final train / validation / test loss, optimal loss and
excess on synthetic data), config.json; for factored attention and Potts models also potts.npz
(the mapped ConditionalPotts, beta = 1, couplings as learned, possibly asymmetric) and
potts_symmetrized.npz (the symmetrised PottsModel). A killed run leaves its checkpoint in a
hidden folder .OUT.tmp-*/model.pt next to --out; continue it with --resume that file.
"""

def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``sub``: one flag per field of
    :class:`~attnpotts.workflows.TrainOptions`."""
    from ..options import add_arguments
    from ..workflows import TrainOptions
    from .common import HelpFormatter, add_common_arguments

    p = sub.add_parser(
        "train",
        help="train factored attention / full Potts / a transformer by masked language modelling",
        description=(
            "Train a model by masked language modelling on sampled sequences or an alignment. "
            "For factored attention and the full Potts model, predicting all positions is exactly "
            "pseudo-likelihood maximisation of the mapped Potts model."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_common_arguments(p, device=True)
    add_arguments(p, TrainOptions, group_order=("data", "model", "training"))
    p.set_defaults(func=run)
    return p


def resolve(args: argparse.Namespace) -> Any:
    """The :class:`~attnpotts.workflows.TrainOptions` of a ``train`` invocation
    (defaults < --config < flags)."""
    from ..workflows import TrainOptions
    from .common import resolve_options

    options = resolve_options(args, TrainOptions)
    if options.data is None:
        raise ValidationError(
            "--data is required: an `attnpotts sample` folder or an alignment file"
        )
    return options


def run(args: argparse.Namespace) -> int:
    """Run ``attnpotts train``; return the exit status."""
    from ..workflows import train

    options = resolve(args)
    run = train(
        options, args.out, overwrite=args.overwrite, progress=not args.no_progress,
        on_warning=lambda w: print_warnings("train", [w]),
    )  # fmt: skip
    # result.warnings (e.g. the epoch-cap warning) were logged on stderr by the library
    _print_summary(run.out, run.summary)
    return 3 if run.diverged else 0


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
    best = "" if s["best_epoch"] is None else f" (best epoch {s['best_epoch']})"  # by validation
    lines.append(
        f"  stopped    {s['stop_reason']} after {s['epochs']} epochs{best}; "
        f"{s['wall_time_s']:.1f} s in training epochs, "
        f"{s['total_time_s']:.1f} s for the whole command (wall), "
        f"{s['cpu_time_s']:.1f} CPU-s training"
    )
    for text in s.get("warnings", []):
        lines.append(f"  warning    {text}")
    if s.get("message"):
        lines.append(f"  note       {s['message']}")
    val = s["final_validation_loss"]
    lines.append(
        f"  train loss {s['final_train_loss']:.4f}   validation "
        + ("n/a (no validation set)" if val is None else f"{val:.4f}")
    )
    lines.append(f"  test loss  {_fmt(s.get('test_loss'))}")
    if "optimal_loss" in s:
        lines.append(f"  optimal    {_fmt(s['optimal_loss'])}   excess {_fmt(s['excess_loss'])}")
    print("\n".join(lines))
