"""Training configuration: one frozen, validated, JSON-serialisable dataclass."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ValidationError, reject_unknown_keys
from .masking import MASKING_KINDS

__all__ = ["LR_SCHEDULES", "OPTIMIZERS", "TrainingConfig"]

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "lbfgs")
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of :func:`attnpotts.training.train`.

    Attributes:
        optimizer: ``"adam"``, ``"adamw"`` (decoupled weight decay) or ``"lbfgs"`` (full batch,
            strong-Wolfe line search; one epoch = one ``step`` of ``lbfgs_max_iter`` iterations).
        learning_rate: step size (L-BFGS: initial step, 1 is usual).
        max_epochs: passes over the training data.
        batch_size: sequences per step; ``None`` = full batch (always full batch for L-BFGS).
        masking: ``"all"``, ``"one"``, ``"copies"`` or ``"bert"`` (see
            :mod:`attnpotts.training.masking`; ``"all"`` and ``"copies"`` are unbiased for the
            pseudo-likelihood objective, ``"bert"`` with ``mask_rate > 1/L`` is not).
        mask_rate: masking probability of ``"bert"``.
        n_mask_copies: masked copies per sequence of ``"copies"`` (each masks one different
            position); ``None`` = ``L`` copies, every position once (= the all-positions loss).
        lr_schedule: ``"constant"`` or ``"cosine"`` (decay from ``learning_rate`` after the
            warm-up to ``min_lr_ratio * learning_rate`` at ``max_epochs``); Adam/AdamW only.
        warmup_epochs: linear warm-up of the learning rate over this many epochs (may be
            fractional; 0 = none); the rate of step ``s`` (0-based) is ``(s + 1) / n_warmup``.
        min_lr_ratio: final learning rate of ``"cosine"`` as a fraction of ``learning_rate``.
        weight_decay: L2 on the *factors* (``model.factor_parameters()``), added to the loss as
            ``(weight_decay / 2) sum ||theta||^2`` for ``"adam"``/``"lbfgs"``; for ``"adamw"`` it
            is AdamW's decoupled decay instead (same parameters).
        coupling_l2: L2 on the coupling *product*, ``(coupling_l2 / 2) ||beta J||_F^2`` (plmDCA
            style; factored attention and full Potts only).
        field_l2: ``(field_l2 / 2) ||beta h||^2`` on the fields.
        patience: stop when the validation loss has not improved by ``min_delta`` for this many
            epochs (``None``: no early stopping). Needs validation data.
        validation_positions: the per-epoch validation loss is measured on a *fixed* masked
            validation set: this many distinct positions per validation sequence, each masked in
            its own copy, drawn once from ``seed`` and the same every epoch. ``None``: automatic
            -- structural models use the exact all-positions loss (one pass); contextual models
            (transformers) use ``k = min(L, max(1, floor(0.3 R / M_val)))`` positions, ``R`` the
            masked rows of a training epoch, so that validating costs about 10% of an epoch
            (a forward pass is about a third of a training step). ``L`` = the exact loss.
        still_improving_tol: when a run ends on ``max_epochs`` and the validation loss (training
            loss without validation) fell by more than this fraction over its last ``patience``
            epochs (5 without early stopping), the result says so (``still_improving``) and a
            warning is logged: the run did not converge.
        min_delta: improvement that counts for early stopping.
        restore_best: at the end, put the parameters of the best validation epoch back.
        tolerance: stop (``"converged"``) when the training objective changes by less than
            ``tolerance * max(1, |loss|)`` between epochs; 0 disables.
        divergence_factor: stop (``"diverged"``) when the epoch's training loss exceeds this
            multiple of the first epoch's (of ln q in the first epoch), or is not finite; the
            last good state is restored.
        max_grad_norm: clip the gradient norm (``None``: no clipping; not used by L-BFGS).
        lbfgs_max_iter: L-BFGS iterations per epoch.
        lbfgs_history: L-BFGS memory.
        eval_batch_size: sequences per forward pass when evaluating.
        checkpoint_every: write the checkpoint every this many epochs (and at the end).
        seed: seed of shuffling, masking and dropout.
    """

    optimizer: Literal["adam", "adamw", "lbfgs"] = "adam"
    learning_rate: float = 1e-2
    max_epochs: int = 100
    batch_size: int | None = 256
    masking: Literal["all", "one", "copies", "bert"] = "all"
    mask_rate: float = 0.15
    n_mask_copies: int | None = None
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    coupling_l2: float = 0.0
    field_l2: float = 0.0
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    validation_positions: int | None = None
    still_improving_tol: float = 1e-3
    tolerance: float = 0.0
    divergence_factor: float = 10.0
    max_grad_norm: float | None = None
    lbfgs_max_iter: int = 20
    lbfgs_history: int = 20
    eval_batch_size: int = 1024
    checkpoint_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, want: str) -> ValidationError:
            return ValidationError(f"{name} must be {want}, got {getattr(self, name)!r}")

        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {OPTIMIZERS}")
        if self.masking not in MASKING_KINDS:
            raise bad("masking", f"one of {MASKING_KINDS}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise bad("learning_rate", "finite and > 0")
        if int(self.max_epochs) < 0:
            raise bad("max_epochs", ">= 0")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise bad("batch_size", "None (full batch) or >= 1")
        if not 0 < self.mask_rate <= 1:
            raise bad("mask_rate", "in (0, 1]")
        for name in ("weight_decay", "coupling_l2", "field_l2", "min_delta", "tolerance"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise bad(name, "finite and >= 0")
        if self.n_mask_copies is not None and int(self.n_mask_copies) < 1:
            raise bad("n_mask_copies", "None (all L positions) or >= 1")
        if self.lr_schedule not in LR_SCHEDULES:
            raise bad("lr_schedule", f"one of {LR_SCHEDULES}")
        if not (math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0):
            raise bad("warmup_epochs", "finite and >= 0")
        if not 0 <= self.min_lr_ratio <= 1:
            raise bad("min_lr_ratio", "in [0, 1]")
        if self.optimizer == "lbfgs" and (self.lr_schedule != "constant" or self.warmup_epochs > 0):
            raise ValidationError(
                "a learning-rate schedule (lr_schedule, warmup_epochs) needs optimizer 'adam' or "
                "'adamw'; L-BFGS sets its own step by line search"
            )
        if self.validation_positions is not None and int(self.validation_positions) < 1:
            raise bad("validation_positions", "None (automatic) or >= 1")
        if not (math.isfinite(self.still_improving_tol) and self.still_improving_tol >= 0):
            raise bad("still_improving_tol", "finite and >= 0")
        if self.patience is not None and int(self.patience) < 1:
            raise bad("patience", "None or >= 1")
        if not self.divergence_factor > 1:
            raise bad("divergence_factor", "> 1")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise bad("max_grad_norm", "None or > 0")
        for name in ("lbfgs_max_iter", "lbfgs_history", "eval_batch_size", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise bad(name, ">= 1")
        if int(self.seed) < 0:
            raise bad("seed", ">= 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/TOML-serialisable except ``None`` values)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Build from a dict; unknown keys are an error naming them."""
        reject_unknown_keys(values, (f.name for f in dataclasses.fields(cls)), "training option")
        return cls(**values)
