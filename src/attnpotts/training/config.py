"""Training configuration: one frozen, validated, JSON-serialisable dataclass.

Its fields are options (:mod:`attnpotts.options`): the same fields, with their ranges and help
texts, are the flags and TOML keys of ``attnpotts train``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ValidationError, reject_unknown_keys
from ..options import boolean, choice, integer, number, validate

__all__ = ["LR_SCHEDULES", "MASKING_KINDS", "OPTIMIZERS", "TrainingConfig"]

#: Masking policies of :class:`~attnpotts.training.MaskingPolicy` (declared here, with the other
#: choices of the configuration, so that this module loads without torch).
MASKING_KINDS: tuple[str, ...] = ("all", "one", "copies", "bert")

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
            last good state is restored. L-BFGS epochs never raise their objective, so for them
            only a non-finite loss or parameters count.
        max_grad_norm: clip the gradient norm (``None``: no clipping; not used by L-BFGS).
        lbfgs_max_iter: L-BFGS iterations per epoch.
        lbfgs_history: L-BFGS memory.
        eval_batch_size: sequences per forward pass when evaluating.
        checkpoint_every: write the checkpoint every this many epochs (and at the end).
        seed: seed of shuffling, masking and dropout.
    """

    optimizer: Literal["adam", "adamw", "lbfgs"] = choice(
        "adam", OPTIMIZERS, group="training",
        help="adam, adamw (decoupled weight decay) or lbfgs (full batch, line search)",
    )
    learning_rate: float = number(
        1e-2, 0, low_open=True, group="training", aliases=("lr",),
        help="step size (L-BFGS: initial step, 1 is usual)",
    )
    max_epochs: int = integer(100, 0, group="training", aliases=("epochs",), help="maximum epochs")
    batch_size: int | None = integer(
        256, 1, none=True, special=("full",), group="training",
        help="sequences per step, or 'full' (L-BFGS is always full batch)",
    )
    masking: Literal["all", "one", "copies", "bert"] = choice(
        "all", MASKING_KINDS, group="training",
        help="positions predicted: all (= pseudo-likelihood), one per sequence, copies "
        "(n_mask_copies masked copies per sequence, one position each; unbiased) or bert "
        "(biased for mask_rate > 1/L)",
    )
    mask_rate: float = number(
        0.15, 0, 1, low_open=True, group="training", help="masking rate of masking bert"
    )
    n_mask_copies: int | None = integer(
        None, 1, none=True, group="training", aliases=("mask_copies",),
        help="copies per sequence of masking copies (default L: every position once)",
    )
    lr_schedule: Literal["constant", "cosine"] = choice(
        "constant", LR_SCHEDULES, group="training",
        help="learning rate after the warm-up (cosine decays to min_lr_ratio x learning_rate "
        "at max_epochs)",
    )
    warmup_epochs: float = number(
        0.0, 0, group="training", help="linear learning-rate warm-up over this many epochs"
    )
    min_lr_ratio: float = number(
        0.0, 0, 1, group="training",
        help="final learning rate of lr_schedule cosine, as a fraction of learning_rate",
    )
    weight_decay: float = number(
        0.0, 0, group="regularisation",
        help="L2 on the factors (A, V, embeddings; J for potts); AdamW's decoupled decay",
    )
    coupling_l2: float = number(
        0.0, 0, group="regularisation",
        help="L2 on the coupling product beta J = sum_h A_h x V_h, plmDCA style",
    )
    field_l2: float = number(0.0, 0, group="regularisation", help="L2 on the fields beta h")
    patience: int | None = integer(
        None, 1, none=True, group="stopping",
        help="early stopping after this many epochs without validation improvement",
    )
    min_delta: float = number(0.0, 0, group="stopping", help="validation improvement that counts")
    restore_best: bool = boolean(
        True, group="stopping", help="put the best validation epoch's parameters back at the end"
    )
    validation_positions: int | None = integer(
        None, 1, none=True, group="stopping",
        help="masked positions per validation sequence for the per-epoch validation loss "
        "(a fixed set; default automatic: all for factored/potts, ~10% of an epoch's cost for "
        "transformers)",
    )
    still_improving_tol: float = number(
        1e-3, 0, group="stopping",
        help="relative fall of the loss over the last epochs above which a run ending on "
        "max_epochs is reported as still improving",
    )
    tolerance: float = number(
        0.0, 0, group="stopping",
        help="stop when the training loss changes less than this (relative; 0 disables)",
    )
    divergence_factor: float = number(
        10.0, 1, low_open=True, group="stopping",
        help="stop as diverged when the loss exceeds this multiple of the first epoch's (Adam; L-BFGS "
        "stops only on non-finite numbers)",
    )
    max_grad_norm: float | None = number(
        None, 0, low_open=True, none=True, group="training", help="gradient clipping (default none)"
    )
    lbfgs_max_iter: int = integer(20, 1, group="training", help="L-BFGS iterations per epoch")
    lbfgs_history: int = integer(20, 1, group="training", help="L-BFGS memory")
    eval_batch_size: int = integer(
        1024, 1, group="training", help="sequences per forward pass when evaluating"
    )
    checkpoint_every: int = integer(1, 1, group="training", help="epochs between checkpoints")
    seed: int = integer(0, 0, 2**63 - 1, flag="", help="seed of shuffling, masking and dropout")

    def __post_init__(self) -> None:
        if self.batch_size == "full":  # the TOML / flag spelling of a full batch
            object.__setattr__(self, "batch_size", None)
        validate(self)
        if self.optimizer == "lbfgs" and (self.lr_schedule != "constant" or self.warmup_epochs > 0):
            raise ValidationError(
                "a learning-rate schedule (lr_schedule, warmup_epochs) needs optimizer 'adam' or "
                "'adamw'; L-BFGS sets its own step by line search"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/TOML-serialisable except ``None`` values)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Build from a dict; unknown keys are an error naming them."""
        reject_unknown_keys(values, (f.name for f in dataclasses.fields(cls)), "training option")
        return cls(**values)
