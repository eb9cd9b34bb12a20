"""The ``evaluate`` workflow: test loss, optimal loss and coupling recovery of a trained run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, ValidationError
from ..options import integer, text, validate
from .resources import memory_limit

__all__ = ["EvaluateOptions", "evaluate", "evaluate_run"]


@dataclass(frozen=True)
class EvaluateOptions:
    """Every option of ``attnpotts evaluate``."""

    run: str | None = text(
        None, "path", none=True, required=True, help="output folder of `attnpotts train`"
    )
    data: str | None = text(
        None, "path", none=True,
        help="evaluate on this data instead of the run's (sample folder or alignment)",
    )
    device: str = text("cpu", flag="", help="torch device: cpu, cuda, cuda:1, ...")
    seed: int = integer(0, 0, 2**63 - 1, flag="", help="recorded in config.json")
    memory_limit_gb: float = memory_limit()

    def __post_init__(self) -> None:
        validate(self)


def evaluate_run(
    run_dir: str | Path, *, data: str | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Evaluate the model of a ``train`` output folder; return the summary dictionary."""
    from ..inference import to_conditional_potts
    from ..models import FactoredAttention, FullPotts
    from ..storage import read_bounded
    from ..training import load_model
    from ._train import TrainOptions, test_metrics

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not (run_dir / "model.pt").is_file() or not cfg_path.is_file():
        raise DataFormatError(
            "missing model.pt or config.json; not an `attnpotts train` folder", path=run_dir
        )
    try:
        options = dict(json.loads(read_bounded(cfg_path, 64 * 1024**2).decode("utf-8"))["options"])
        options.pop("memory_limit_gb", None)
        train_options = TrainOptions.from_dict(options)  # old option names are read too
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError,
            ValidationError) as exc:  # fmt: skip
        raise DataFormatError(f"config.json is not a train config ({exc})", path=cfg_path) from None
    dataset = train_options.load_data(data)
    if dataset.test.shape[0] == 0 and dataset.true_model is None:
        where = f"--data {data}" if data is not None else f"the data of run {run_dir}"
        raise ValidationError(
            f"nothing to evaluate: {where} have no test sequences (the run's --test-fraction "
            "splits them off an alignment) and no true model; pass --data with a sample folder "
            "(test set and true model) or train again with --test-fraction above 0"
        )
    model = load_model(run_dir / "model.pt", device=device)
    if (dataset.n_sites, dataset.n_states) != (model.n_sites, model.n_states):
        raise DataFormatError(
            f"the data have L={dataset.n_sites}, q={dataset.n_states} but the model was trained "
            f"with L={model.n_sites}, q={model.n_states}",
            path=data if data is not None else train_options.data,
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


def evaluate(options: EvaluateOptions, out: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Evaluate the run of ``options``; write ``summary.json`` and ``config.json`` into ``out``
    (atomically); return the summary."""
    from ..storage import atomic_output_dir, atomic_write_json, environment_info

    if options.run is None:
        raise ValidationError("--run is required: the output folder of `attnpotts train`")
    summary = evaluate_run(options.run, data=options.data, device=options.device)
    with atomic_output_dir(Path(out), overwrite=overwrite) as tmp:
        atomic_write_json(tmp / "summary.json", summary)
        atomic_write_json(
            tmp / "config.json",
            {
                "run": str(options.run),
                "data": options.data,
                "device": options.device,
                "seed": options.seed,
                "environment": environment_info(),
            },
        )
    return summary
