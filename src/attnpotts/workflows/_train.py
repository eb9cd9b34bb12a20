"""The ``train`` workflow: load data, build a model, train it, test it, write the output folder."""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ValidationError
from ..options import boolean, choice, defaults, integer, number, option_specs, text, validate
from ..training.config import TrainingConfig
from .resources import memory_limit

__all__ = [
    "TRAIN_DEFAULTS",
    "TrainOptions",
    "TrainRun",
    "data_warnings",
    "test_estimates",
    "test_metrics",
    "train",
]

_MODEL, _DATA = "model", "data"


@dataclass(frozen=True)
class TrainOptions(TrainingConfig):
    """Every option of ``attnpotts train``: the data, the model and the :class:`TrainingConfig`.

    The training fields are those of :class:`TrainingConfig` (same names, ranges and defaults),
    except ``learning_rate``, whose default ``None`` means 1 for L-BFGS and 1e-2 otherwise. The
    names are the TOML keys; the flags are the names with dashes (``n_heads`` -> ``--n-heads``).
    """

    learning_rate: float | None = number(  # type: ignore[assignment]
        None, 0, low_open=True, none=True, group="training", aliases=("lr",),
        help="step size (default 1 for lbfgs, 1e-2 otherwise)",
    )
    # data
    data: str | None = text(
        None, "path", none=True, group=_DATA,
        help="`attnpotts sample` folder or alignment file (required)",
    )
    validation_fraction: float = number(
        0.1, 0, 1, high_open=True, group=_DATA,
        help="share of training sequences held out for early stopping",
    )
    test_fraction: float = number(
        0.2, 0, 1, high_open=True, group=_DATA, help="share of an alignment held out for testing"
    )
    weighting: Literal["auto", "none", "identity"] = choice(
        "auto", ("auto", "none", "identity"), group=_DATA,
        help="sequence weights (default auto: identity for alignments, none for samples)",
    )
    identity_threshold: float = number(
        0.8, 0, 1, low_open=True, group=_DATA, help="neighbour identity for sequence weights"
    )
    alphabet: Literal["protein", "rna"] = choice(
        "protein", ("protein", "rna"), group=_DATA, help="alphabet of an alignment file"
    )
    resume: str | None = text(
        None, "path", none=True, group=_DATA, help="continue from this checkpoint (model.pt)"
    )
    # model
    model: Literal["factored", "potts", "transformer"] = choice(
        "factored", ("factored", "potts", "transformer"), group=_MODEL, help="model kind"
    )
    variant: Literal["free", "softmax"] = choice(
        "free", ("free", "softmax"), group=_MODEL,
        help="factored attention: free zero-diagonal A or positional softmax",
    )
    n_heads: int | None = integer(
        None, 1, none=True, group=_MODEL, aliases=("heads",),
        help="attention heads (default 1; transformer 4)",
    )
    key_dim: int = integer(8, 1, group=_MODEL, help="softmax variant: width of positional queries/keys")
    value_rank: int | None = integer(
        None, 1, none=True, group=_MODEL,
        help="factored: rank of V through token embeddings (default full q x q)",
    )
    fields: bool = boolean(True, group=_MODEL, help="factored / potts: fields (--no-fields: none)")
    symmetric: bool = boolean(
        False, group=_MODEL, help="potts: tie J[i,j,a,b] = J[j,i,b,a] (symmetric pseudo-likelihood)"
    )
    init_std: float | None = number(
        None, 0, none=True, group=_MODEL,
        help="std of the initial factors (default: model's; factored 0.1, potts 0)",
    )
    n_layers: int = integer(1, 1, group=_MODEL, aliases=("layers",), help="transformer layers")
    width: int = integer(64, 1, group=_MODEL, help="transformer width")
    dropout: float = number(0.0, 0, 1, high_open=True, group=_MODEL, help="transformer dropout")
    dtype: Literal["float32", "float64"] = choice(
        "float32", ("float32", "float64"), group=_MODEL, help="parameter precision"
    )
    device: str = text("cpu", flag="", group=_MODEL, help="torch device: cpu, cuda, cuda:1, ...")
    memory_limit_gb: float = memory_limit()

    def __post_init__(self) -> None:
        if self.learning_rate is None:
            lr = 1.0 if self.optimizer == "lbfgs" else 1e-2
            validate(self)  # the other fields first, so that a bad optimizer is named
            object.__setattr__(self, "learning_rate", lr)
        super().__post_init__()

    def training_config(self) -> TrainingConfig:
        """The :class:`TrainingConfig` part of these options."""
        names = {f.name for f in dataclasses.fields(TrainingConfig)}
        return TrainingConfig(**{n: getattr(self, n) for n in names})

    def to_dict(self) -> dict[str, Any]:
        """Every option (JSON-serialisable; the ``config.json`` of a run)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainOptions:
        """Build from option names (old names such as ``heads`` or ``epochs`` are read too, as in
        the ``config.json`` of runs of earlier versions); unknown keys are an error."""
        from ..errors import reject_unknown_keys
        from ..options.sources import alias_map

        old = alias_map(cls)
        renamed = {old.get(k, k): v for k, v in values.items()}
        reject_unknown_keys(renamed, option_specs(cls), "train option")
        return cls(**renamed)

    def build_model(self, n_sites: int, n_states: int) -> Any:
        """The model these options describe, for ``n_sites`` x ``n_states`` data."""
        import torch

        from ..models import build_model

        common: dict[str, Any] = {
            "n_sites": n_sites, "n_states": n_states, "seed": self.seed,
            "dtype": getattr(torch, self.dtype), "device": self.device,
        }  # fmt: skip
        kw: dict[str, Any]
        if self.model == "factored":
            kw = {"n_heads": self.n_heads or 1, "variant": self.variant, "key_dim": self.key_dim,
                  "value_rank": self.value_rank, "fields": self.fields}  # fmt: skip
        elif self.model == "potts":
            kw = {"symmetric": self.symmetric, "fields": self.fields}
        else:
            kw = {"n_layers": self.n_layers, "n_heads": self.n_heads or 4, "width": self.width,
                  "dropout": self.dropout}  # fmt: skip
        if self.model != "transformer" and self.init_std is not None:
            kw["init_std"] = self.init_std
        return build_model(self.model, **common, **kw)

    def load_data(self, data: str | None = None) -> Any:
        """The :class:`~attnpotts.training.TrainingData` of these options (or of ``data``)."""
        from ..training import load_training_data

        path = self.data if data is None else data
        if path is None:
            raise ValidationError(
                "--data is required: an `attnpotts sample` folder or an alignment file"
            )
        return load_training_data(
            path, validation_fraction=self.validation_fraction, test_fraction=self.test_fraction,
            weighting=self.weighting, identity_threshold=self.identity_threshold,
            alphabet=self.alphabet, seed=self.seed,
        )  # fmt: skip


#: The defaults of every train option (for tables and docs).
TRAIN_DEFAULTS: dict[str, Any] = defaults(TrainOptions)


@dataclass(frozen=True)
class TrainRun:
    """What :func:`train` produced.

    Attributes:
        out: the output folder.
        summary: the ``summary.json`` of the run.
        model: the trained model.
        result: the :class:`~attnpotts.training.TrainResult` of the training loop.
    """

    out: Path
    summary: dict[str, Any]
    model: Any
    result: Any

    @property
    def diverged(self) -> bool:
        """Whether training stopped on divergence."""
        return bool(self.result.stop_reason == "diverged")


def data_warnings(data: Any) -> list[str]:
    """:func:`attnpotts.alignment.data_warnings` of a ``TrainingData`` (all its sequences)."""
    import numpy as np

    from ..alignment import data_warnings as alignment_warnings

    symbols = data.info.get("alphabet")
    gap = symbols.index("-") if isinstance(symbols, str) and "-" in symbols else None
    parts = [
        (a, w)
        for a, w in ((data.train, data.train_weights), (data.validation, data.validation_weights),
                     (data.test, data.test_weights))
        if a.shape[0]
    ]  # fmt: skip
    weights = None
    if all(w is not None for _, w in parts):
        weights = np.concatenate([np.asarray(w) for _, w in parts])
    return alignment_warnings(np.concatenate([a for a, _ in parts]), gap_index=gap, weights=weights)


def test_estimates(
    model: Any, states: Any, true_model: Any = None, weights: Any = None
) -> tuple[Any, dict[str, Any]]:
    """The test losses of a trained model, as the ``train`` command and the reproduce depth
    study report them: ``(per_sequence (M,), estimates)`` with the
    :class:`~attnpotts.inference.LossEstimate` of ``test_loss`` and, given the true model,
    ``optimal_loss``, ``true_model_loss`` and the paired ``excess_loss``."""
    from ..inference import (
        estimate_mean,
        excess_loss,
        optimal_loss,
        per_sequence_loss,
        true_model_loss,
    )

    per_seq = per_sequence_loss(model, states)  # (M,) nats per site, float64
    out: dict[str, Any] = {"test_loss": estimate_mean(per_seq, weights)}
    if true_model is not None:
        out["optimal_loss"] = optimal_loss(true_model, states, weights)
        out["true_model_loss"] = true_model_loss(true_model, states, weights)
        out["excess_loss"] = excess_loss(model, true_model, states, weights)
    return per_seq, out


def test_metrics(model: Any, data: Any) -> dict[str, Any]:
    """Test loss (and, with a true model, optimal loss and excess) with standard errors."""
    out: dict[str, Any] = {}
    if data.test.shape[0] == 0:
        return out
    _, est = test_estimates(model, data.test, data.true_model, data.test_weights)
    out["test_loss"] = est["test_loss"].as_dict()
    if data.true_model is not None:
        out["optimal_loss"] = est["optimal_loss"].as_dict()
        out["true_model_test_loss"] = est["true_model_loss"].as_dict()
        out["excess_loss"] = est["excess_loss"].as_dict()
        opt = out["optimal_loss"]["mean"]
        out["relative_excess_over_optimal"] = (
            out["test_loss"]["mean"] / opt - 1.0 if opt > 0 else None
        )
    return out


def train(
    options: TrainOptions,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = False,
    on_warning: Any = None,
) -> TrainRun:
    """Train the model of ``options`` on its data and write the run folder ``out`` atomically.

    ``out`` gets ``model.pt`` (checkpoint), ``metrics.jsonl``, ``summary.json``, ``config.json``
    and, for factored attention and Potts models, ``potts.npz`` and ``potts_symmetrized.npz``.
    Memory is estimated against ``options.memory_limit_gb`` before the model is built; data warnings
    (e.g. few effective sequences) go to ``on_warning(text)`` and into the summary.
    """
    from ..inference import to_conditional_potts
    from ..models import FactoredAttention, FullPotts
    from ..storage import atomic_output_dir, atomic_write_json, environment_info
    from ..training import ProgressBar
    from ..training import train as train_loop
    from .resources import check_train_resources

    t0 = time.perf_counter()  # the command's wall time includes loading data and evaluation
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {out} exists and is not empty; choose another --out or pass --overwrite"
        )
    config = options.training_config()
    data = options.load_data()
    values = options.to_dict()
    check_train_resources(values, int(data.train.shape[0]), data.n_sites, data.n_states, options.memory_limit_gb)
    warnings = data_warnings(data)
    for w in warnings:
        if on_warning is not None:
            on_warning(w)
    model = options.build_model(data.n_sites, data.n_states)
    # plain progress lines (no escape codes) when stdout is not a terminal
    callbacks = [ProgressBar(f"train {options.model}", stream=sys.stdout)] if progress else []
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        atomic_write_json(
            tmp / "config.json",
            {
                "options": values,
                "training": config.to_dict(),
                "model": model.hyperparameters(),
                "seed": options.seed,
                "environment": environment_info(),
            },
        )
        result = train_loop(
            model,
            data.train,
            config=config,
            weights=data.train_weights,
            validation=data.validation if data.validation.shape[0] else None,
            validation_weights=data.validation_weights if data.validation.shape[0] else None,
            callbacks=callbacks,
            checkpoint_path=tmp / "model.pt",
            metrics_path=tmp / "metrics.jsonl",
            resume_from=options.resume,
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
                "kind": options.model,
                **model.hyperparameters(),
                "n_parameters": model.n_parameters(),
            },
            **result.summary(),
            **test_metrics(model, data),
            "throughput_sequences_per_s": (result.epochs * data.train.shape[0] / result.wall_time_s)
            if result.wall_time_s > 0
            else None,
            "total_time_s": time.perf_counter() - t0,
            "warnings": warnings,
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
    return TrainRun(out, summary, model, result)
