"""``attnpotts evaluate``: test loss, optimal loss and coupling recovery of a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]

_EPILOG = """examples:
  attnpotts evaluate --run runs/fa --out runs/fa-eval
      the test set, split and true model of the data the run was trained on
  attnpotts evaluate --run runs/fa --data runs/other-sample --out runs/fa-other
      another `attnpotts sample` folder (its test set and true model)

summary.json: test loss, and on synthetic data the optimal loss (mean conditional entropy of the
true model on the test set), the true model's own test loss, the paired excess (all with
standard errors) and, for factored attention and full Potts models, coupling recovery of the
couplings as learned (beta J = sum_h A_h x V_h, possibly asymmetric) and of the symmetrised
model: gauge-fixed relative error, correlations, Frobenius + APC contact scores and, for
factored attention, correlations of A with Jsite and V with Ucol.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``sub``: one flag per field of
    :class:`~attnpotts.workflows.EvaluateOptions`."""
    from ..options import add_arguments
    from ..workflows._evaluate import EvaluateOptions
    from .common import HelpFormatter, add_common_arguments

    p = sub.add_parser(
        "evaluate",
        help="test loss, optimal loss and coupling recovery of a trained model",
        description="Evaluate a run of `attnpotts train` on its test set (or on --data).",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_common_arguments(p, device=True)
    add_arguments(p, EvaluateOptions)
    p.set_defaults(func=run)
    return p


def _numbers(values: float | list[float]) -> str:
    """``0.995`` for one value, ``0.995, 0.120 (per head)`` for several (3 decimals)."""
    if isinstance(values, (int, float)):
        return f"{values:.3f}"
    text = ", ".join(f"{v:.3f}" for v in values)
    return text if len(values) == 1 else f"{text} (per head)"


def run(args: argparse.Namespace) -> int:
    """Run ``attnpotts evaluate``; return the exit status."""
    from ..workflows._evaluate import EvaluateOptions, evaluate
    from .common import resolve_options

    options = resolve_options(args, EvaluateOptions)
    out = Path(args.out)
    summary = evaluate(options, out, overwrite=args.overwrite)
    lines = [f"attnpotts evaluate -> {out}"]
    if "test_loss" in summary:
        t = summary["test_loss"]
        lines.append(f"  test loss  {t['mean']:.4f} +- {t['stderr']:.4f}")
    if "optimal_loss" in summary:
        o, e = summary["optimal_loss"], summary["excess_loss"]
        lines.append(
            f"  optimal    {o['mean']:.4f} +- {o['stderr']:.4f}   excess {e['mean']:.4f} +- {e['stderr']:.4f}"
        )
    if "recovery" in summary:
        r = summary["recovery"]["as_learned"]
        lines.append(
            f"  couplings  relative error {r['relative_error']:.3f}, correlation {r['coupling_correlation']:.3f}"
        )
        if "attention_correlation" in r:
            lines.append(
                f"  factors    r(A, Jsite) {_numbers(r['attention_correlation'])}, "
                f"r(V, Ucol) {_numbers(r['value_correlation'])}"
            )
    print("\n".join(lines))
    return 0
