"""``attnpotts evaluate``: test loss, optimal loss and coupling recovery of a trained model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import DataFormatError
from ..storage import atomic_output_dir, atomic_write_json, environment_info, read_bounded
from .options import check_options

__all__ = ["evaluate_run", "register", "run"]

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
    """Add the ``evaluate`` subcommand to ``sub``."""
    from .common import add_common_arguments

    p = sub.add_parser(
        "evaluate",
        help="test loss, optimal loss and coupling recovery of a trained model",
        description="Evaluate a run of `attnpotts train` on its test set (or on --data).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(p, device=True)
    p.add_argument("--run", required=True, type=Path, help="output folder of `attnpotts train`")
    p.add_argument(
        "--data",
        default=None,
        help="evaluate on this data instead of the run's (sample folder or alignment)",
    )
    p.set_defaults(func=run)
    return p


def evaluate_run(
    run_dir: str | Path, *, data: str | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Evaluate the model of a ``train`` output folder; return the summary dictionary."""
    from ..inference import to_conditional_potts
    from ..models import FactoredAttention, FullPotts
    from ..training import load_model
    from .train import load_data, test_metrics

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not (run_dir / "model.pt").is_file() or not cfg_path.is_file():
        raise DataFormatError(
            "missing model.pt or config.json; not an `attnpotts train` folder", path=run_dir
        )
    try:
        options = dict(json.loads(read_bounded(cfg_path, 64 * 1024**2).decode("utf-8"))["options"])
        check_options("train", options)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(f"config.json is not a train config ({exc})", path=cfg_path) from None
    if data is not None:
        options["data"] = data
    dataset = load_data(options)
    model = load_model(run_dir / "model.pt", device=device)
    if (dataset.n_sites, dataset.n_states) != (model.n_sites, model.n_states):
        raise DataFormatError(
            f"the data have L={dataset.n_sites}, q={dataset.n_states} but the model was trained "
            f"with L={model.n_sites}, q={model.n_states}",
            path=options["data"],
        )
    summary: dict[str, Any] = {
        "command": "evaluate",
        "run": str(run_dir),
        "data": {
            "path": dataset.path,
            "source": dataset.source,
            "n_test": int(dataset.test.shape[0]),
        },
        "model": {"kind": type(model).__name__, **model.hyperparameters()},
        **test_metrics(model, dataset),
    }
    true = dataset.true_model
    if true is not None and isinstance(model, FactoredAttention | FullPotts):
        from ..evaluation import coupling_recovery

        learned = to_conditional_potts(model)
        true_J = true.beta * true.couplings
        factors: dict[str, Any] = {}
        if isinstance(model, FactoredAttention) and true.site_couplings is not None:
            factors = {
                "attention": model.attention_matrices().detach().cpu().double().numpy(),
                "values": model.value_matrices().detach().cpu().double().numpy(),
                "site_couplings": true.site_couplings,
                "colour_couplings": true.colour_couplings,
            }
        summary["recovery"] = {
            "as_learned": coupling_recovery(true_J, learned.couplings, **factors).as_dict(),
            "symmetrized": coupling_recovery(true_J, learned.symmetrized().couplings).as_dict(),
            "note": "true couplings are beta * J; learned couplings absorb beta",
        }
    return summary


def _numbers(values: float | list[float]) -> str:
    """``0.995`` for one value, ``0.995, 0.120 (per head)`` for several (3 decimals)."""
    if isinstance(values, (int, float)):
        return f"{values:.3f}"
    text = ", ".join(f"{v:.3f}" for v in values)
    return text if len(values) == 1 else f"{text} (per head)"


def run(args: argparse.Namespace) -> int:
    """Run ``attnpotts evaluate``; return the exit status."""
    from .common import resolve_config

    values = resolve_config(args, {"device": "cpu"})
    out = Path(args.out)
    summary = evaluate_run(args.run, data=args.data, device=values["device"])
    with atomic_output_dir(out, overwrite=args.overwrite) as tmp:
        atomic_write_json(tmp / "summary.json", summary)
        atomic_write_json(
            tmp / "config.json",
            {
                "run": str(args.run),
                "data": args.data,
                "device": values["device"],
                "seed": values["seed"],
                "environment": environment_info(),
            },
        )
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
