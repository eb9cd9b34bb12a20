"""The one training loop of attnpotts, for every model, masking policy and optimizer.

``train(model, states, config=...)`` minimises the one objective of
:mod:`attnpotts.inference.objectives` (:class:`~attnpotts.inference.Objective`: weighted masked
cross-entropy plus the L2 terms of :func:`objective_penalties`) with Adam/AdamW on mini-batches
(optionally with a warm-up / cosine learning-rate schedule) or full-batch L-BFGS, evaluates the
validation loss after every epoch (the exact all-positions loss for structural models; a fixed
masked validation set for transformers, so validating costs a small fraction of an epoch), and
stops cleanly on a non-finite or diverging loss with the last good state restored. The exact
all-positions losses are computed once, at the end.

Everything the loop carries between epochs is one :class:`~attnpotts.training.state.LoopState`;
early stopping and best-epoch tracking, the convergence test, the JSON-lines metrics log and
the checkpoints (from which a resumed run continues bit for bit on the CPU) are callbacks on
that state (:mod:`attnpotts.training.callbacks`), run after every epoch before the user's.

Randomness (shuffling, masks, dropout) comes only from generators derived from ``config.seed``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DivergenceError, ShapeError, ValidationError
from ..inference.objectives import (
    Objective,
    Penalties,
    full_batch_count,
    masked_cross_entropy,
    mlm_loss,
)
from ..models import MaskedLanguageModel, check_tokens, model_kind
from ..random import spawn_seeds, torch_generator
from .allocator import keep_freed_memory, release_freed_memory
from .callbacks import Callback, Checkpointing, ConvergenceStop, EarlyStopping, MetricsLog
from .checkpoint import check_data_fingerprint, data_fingerprint, load_checkpoint
from .config import TrainingConfig
from .lbfgs import LBFGS
from .masking import MaskingPolicy
from .state import LoopState

__all__ = ["STOP_REASONS", "TrainingResult", "as_token_tensor", "objective_penalties", "train"]

logger = logging.getLogger(__name__)

#: Why a run ended.
STOP_REASONS = ("max_epochs", "early_stopping", "converged", "diverged", "callback")
#: Function evaluations allowed per L-BFGS iteration (line search included).
_LBFGS_EVALS_PER_ITER = 3.0
#: Config fields that may differ between a checkpoint and the run that resumes it.
_RESUMABLE_CHANGES = {
    "max_epochs", "checkpoint_every", "eval_batch_size", "patience", "still_improving_tol",
}  # fmt: skip
#: Epochs over which a run stopped by ``max_epochs`` is checked for a still-falling loss when
#: there is no ``patience``.
_IMPROVING_WINDOW = 5


@dataclass
class TrainingResult:
    """What :func:`train` returns.

    Attributes:
        history: one metrics dict per epoch (as in the metrics log).
        epochs: epochs completed.
        stop_reason: one of :data:`STOP_REASONS`.
        best_epoch: epoch of the lowest validation loss (``None`` without validation).
        best_validation_loss: that loss.
        final_train_loss: exact all-positions loss on the training data with the final parameters.
        final_validation_loss: the same on the validation data (``None`` without validation).
        wall_time_s: wall seconds spent in training epochs, without validation (summed over
            resumed segments; as the history's ``elapsed_s``).
        message: human-readable note (e.g. why a run diverged).
        cpu_time_s: process CPU seconds (all threads) of the training epochs and their
            validation (summed over resumed segments; as the history's ``cpu_s``).
        tokens_seen: masked training targets (predicted positions) seen in all epochs.
        validation_positions: positions per validation sequence of the per-epoch validation
            loss (``None``: all positions, exact); ``best_validation_loss`` is on that set.
        still_improving: the run ended on ``max_epochs`` while its validation loss (training
            loss without validation) still fell by more than ``still_improving_tol`` over the
            last ``patience`` epochs: it did not converge; raise ``max_epochs``.
        warnings: warnings of the run (also logged), e.g. the epoch-cap warning.

    The history records (one per epoch) hold ``epoch``, ``train_loss`` (the epoch's mean
    training objective over its masked targets, without penalties), ``validation_loss``,
    ``penalty``, ``steps`` (optimizer steps so far), ``sequences_seen`` (``epoch * M``),
    ``elapsed_s`` (cumulative training wall seconds, without validation), ``cpu_s``
    (cumulative process CPU seconds, validation included), ``validation_cpu_s`` (CPU seconds
    of this epoch's validation), ``tokens_seen`` (cumulative masked targets),
    ``learning_rate`` (at the epoch's last step), and for L-BFGS ``objective``,
    ``gradient_norm``, ``evaluations``, ``lbfgs_stop``.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    epochs: int = 0
    stop_reason: str = "max_epochs"
    best_epoch: int | None = None
    best_validation_loss: float | None = None
    final_train_loss: float | None = None
    final_validation_loss: float | None = None
    wall_time_s: float = 0.0
    message: str = ""
    cpu_time_s: float = 0.0
    tokens_seen: int = 0
    validation_positions: int | None = None
    still_improving: bool = False
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Everything but the history, for ``summary.json``."""
        out = dataclasses.asdict(self)
        out.pop("history")
        return out


def as_token_tensor(
    states: Any, model: MaskedLanguageModel, *, name: str = "states", device: Any = None
) -> torch.Tensor:
    """Validate integer states ``(M, L)`` (numpy or torch) for ``model`` and return a long tensor."""
    if isinstance(states, torch.Tensor):
        t = states
    else:
        arr = np.asarray(states)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
            raise ValidationError(f"{name} must be an integer array (M, L), got dtype {arr.dtype}")
        t = torch.as_tensor(arr.astype(np.int64))
    check_tokens(t, model.n_sites, model.n_states, allow_mask=False, name=name)
    if t.shape[0] == 0:
        raise ValidationError(f"{name} are empty (M = 0); training needs at least one sequence")
    dev = next(model.parameters()).device if device is None else device
    return t.to(device=dev, dtype=torch.long)


def _as_weights(weights: Any, n: int, dtype: torch.dtype, device: Any, name: str) -> torch.Tensor:
    if weights is None:
        return torch.ones(n, dtype=dtype, device=device)
    w = torch.as_tensor(
        weights.detach().cpu().numpy()
        if isinstance(weights, torch.Tensor)
        else np.asarray(weights, float)
    ).to(dtype=torch.float64)
    if w.shape != (n,):
        raise ShapeError(f"{name} must have shape ({n},) (one per sequence), got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValidationError(f"{name} must be finite, non-negative and not all zero")
    return w.to(dtype=dtype, device=device)



def objective_penalties(config: TrainingConfig) -> Penalties:
    """The L2 terms of the objective that ``config`` trains (:class:`~attnpotts.inference.Penalties`).

    ``weight_decay`` is decoupled (applied by the optimizer, not in the objective) for
    ``optimizer="adamw"``; every fit that reports or re-evaluates the loop's objective builds it
    from here.
    """
    return Penalties(
        coupling_l2=config.coupling_l2,
        weight_decay=config.weight_decay,
        field_l2=config.field_l2,
        decoupled_weight_decay=config.optimizer == "adamw",
    )

def _make_optimizer(model: MaskedLanguageModel, cfg: TrainingConfig) -> torch.optim.Optimizer | LBFGS:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "lbfgs":
        return LBFGS(
            params,
            lr=cfg.learning_rate,
            max_iter=cfg.lbfgs_max_iter,
            # the strong-Wolfe line search often needs 2-3 evaluations per iteration
            max_eval=int(_LBFGS_EVALS_PER_ITER * cfg.lbfgs_max_iter),
            history_size=cfg.lbfgs_history,
            tolerance_grad=1e-12,
            tolerance_change=1e-16,
            # every epoch evaluates the same deterministic full-batch objective: an epoch may
            # start where the previous one ended (one evaluation fewer, same numbers)
            reuse_start=cfg.masking == "all" and model.structural,
        )
    if cfg.optimizer == "adamw":
        decay_ids = {id(p) for p in model.factor_parameters()}
        groups = [
            {"params": [p for p in params if id(p) in decay_ids], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if id(p) not in decay_ids], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.learning_rate)
    return torch.optim.Adam(params, lr=cfg.learning_rate)



class _Masker:
    """Draws the masked rows of a batch under a masking policy."""

    def __init__(self, model: MaskedLanguageModel, policy: MaskingPolicy) -> None:
        self.model = model
        self.policy = policy
        self.copies = policy.copies(model.n_sites)

    def draw(
        self, tokens: torch.Tensor, weights: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(targets (R, L), weights (R,), inputs (R, L) | None, predict (R, L) | None)``.

        ``R = B`` except for ``"copies"`` (``B k`` rows, the copies of a sequence adjacent);
        ``None`` inputs and mask mean every position is predicted (policy ``"all"``).
        """
        if self.policy.kind == "all":
            return tokens, weights, None, None
        inputs, predict = self.policy.draw(tokens, self.model.mask_token, gen)
        if self.copies > 1:
            tokens = tokens.repeat_interleave(self.copies, dim=0)
            weights = weights.repeat_interleave(self.copies, dim=0)
        return tokens, weights, inputs, predict

class _FixedValidation:
    """The per-epoch validation loss on a fixed masked set (drawn once; same every epoch).

    ``k`` distinct positions per sequence (``k = L``: all, in order). A structural model is
    evaluated by one unmasked pass and its loss read at those positions; a contextual model gets
    one copy per (sequence, position) with that position masked. The loss is
    ``sum_{b, c} w_b CE_{b, i_bc} / (k sum_b w_b)``: with ``k = L`` the exact all-positions loss.
    """

    def __init__(
        self,
        model: MaskedLanguageModel,
        tokens: torch.Tensor,
        weights: torch.Tensor,
        k: int,
        gen: torch.Generator,
        rows_per_pass: int,
    ) -> None:
        B, L = tokens.shape
        self.model, self.k, self.rows = model, int(k), max(1, int(rows_per_pass))
        pos = MaskingPolicy("copies", n_copies=self.k).positions(B, L, gen).to(tokens.device)
        self.norm = float(weights.double().sum()) * self.k
        if model.structural:
            self.tokens = tokens
            self.predict = torch.zeros(B, L, dtype=torch.bool, device=tokens.device)
            self.predict.scatter_(1, pos, True)
            self.weights = weights
        else:
            flat = pos.reshape(-1)  # (B k,)
            self.tokens = tokens.repeat_interleave(self.k, dim=0)  # (B k, L) targets
            self.predict = torch.zeros_like(self.tokens, dtype=torch.bool)
            self.predict[torch.arange(flat.shape[0], device=tokens.device), flat] = True
            self.inputs = self.tokens.masked_fill(self.predict, model.mask_token)
            self.weights = weights.repeat_interleave(self.k, dim=0)

    def loss(self) -> float:
        """The validation loss of the model's current parameters (eval mode, no gradients)."""
        model = self.model
        was_training = model.training
        model.eval()
        total = 0.0
        try:
            with torch.no_grad():
                n = self.tokens.shape[0]
                for start in range(0, n, self.rows):
                    sl = slice(start, min(n, start + self.rows))
                    x = self.tokens[sl] if model.structural else self.inputs[sl]
                    ce = masked_cross_entropy(
                        model.logits(x), self.tokens[sl], self.predict[sl], self.weights[sl],
                        reduction="sum",
                    )
                    total += float(ce.double())
        finally:
            model.train(was_training)
        return total / self.norm


def _auto_validation_positions(
    model: MaskedLanguageModel, cfg: TrainingConfig, masker: _Masker, n_train: int, n_val: int
) -> int | None:
    """``validation_positions`` of ``cfg`` resolved (``None`` = exact all-positions loss)."""
    L = model.n_sites
    if cfg.validation_positions is not None:
        k = min(int(cfg.validation_positions), L)
        return None if k >= L else k
    if model.structural:
        return None  # one unmasked pass gives every position: the exact loss costs no more
    if cfg.masking == "all":
        return None  # an epoch already runs L copies per sequence
    rows = n_train * masker.copies  # forward rows of a training epoch
    # a training step is about 3 forward passes; 10% of the epoch = 0.3 forward rows per row
    k = min(L, max(1, math.floor(0.3 * rows / max(1, n_val))))
    return None if k >= L else k


def _current_lr(optimizer: torch.optim.Optimizer | LBFGS, cfg: TrainingConfig) -> float:
    groups = getattr(optimizer, "param_groups", None)
    return float(groups[0]["lr"]) if groups else float(cfg.learning_rate)


def _lr_factor(cfg: TrainingConfig, step: int, steps_per_epoch: int) -> float:
    """Learning-rate multiplier of optimizer step ``step`` (0-based): warm-up, then schedule."""
    warm = math.ceil(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return (step + 1) / warm
    if cfg.lr_schedule == "constant":
        return 1.0
    total = max(1, cfg.max_epochs * steps_per_epoch - warm)
    frac = min(1.0, (step - warm) / total)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))


def _still_improving(history: Sequence[dict[str, Any]], window: int, tol: float) -> float | None:
    """Relative fall of the monitored loss over the last ``window`` epochs, if above ``tol``."""
    key = "validation_loss" if history and history[-1].get("validation_loss") is not None else "train_loss"
    values = [float(r[key]) for r in history if r.get(key) is not None]
    if len(values) < 2:
        return None
    before = min(values[: max(1, len(values) - window)])
    recent = min(values[max(1, len(values) - window) :])
    drop = (before - recent) / max(abs(before), 1e-12)
    return drop if drop > tol else None


def _finite_params(model: MaskedLanguageModel) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _epoch_cap_warning(state: LoopState, cfg: TrainingConfig) -> str | None:
    """The warning of a run ended by ``max_epochs`` while its monitored loss still fell."""
    history = state.history
    if state.stop_reason != "max_epochs" or not history:
        return None
    window = cfg.patience if cfg.patience is not None else _IMPROVING_WINDOW
    drop = _still_improving(history, window, cfg.still_improving_tol)
    if drop is None:
        return None
    what = "validation" if history[-1].get("validation_loss") is not None else "training"
    return (
        f"training stopped on its epoch cap (max_epochs = {cfg.max_epochs}) while the "
        f"{what} loss still fell by {100 * drop:.2g}% over the last {window} epochs "
        f"(more than still_improving_tol = {cfg.still_improving_tol:g}): the run has not "
        "converged; raise max_epochs (or the learning rate)"
    )


def _divergence(
    train_loss: float, model: MaskedLanguageModel, cfg: TrainingConfig, state: LoopState,
    *, monotone: bool = False,
) -> str | None:
    """Why the epoch just run diverged (a non-finite or exploding loss), or ``None``.

    ``monotone``: the epoch's optimizer never raises its objective (L-BFGS, whose line search
    accepts only decreases), so only non-finite numbers count. The bound on the loss would
    otherwise stop a healthy penalised fit whose data term rises while the penalty falls (a
    start that memorises the sequences: data term 0.009, then 0.67 five iterations later).
    """
    finite = math.isfinite(train_loss) and _finite_params(model)
    restored = f"the state of epoch {state.epoch} was restored"
    if monotone:
        if finite:
            return None
        return (
            f"epoch {state.epoch + 1}: the training loss ({train_loss:.6g}) or the parameters are not "
            f"finite; {restored}. Check the data and the regularisation (float64 with --dtype "
            "where the model offers it)."
        )
    # before a first good epoch, the bound is relative to ln q (a uniform guess's loss)
    scale = math.log(model.n_states) if state.reference is None else state.reference
    bound = cfg.divergence_factor * scale
    if finite and not train_loss > bound:
        return None
    return (
        f"epoch {state.epoch + 1}: training loss {train_loss:.6g} is not finite or above "
        f"{cfg.divergence_factor} x the first epoch's (or ln q before it): {bound:.6g}; {restored}. "
        "Lower the learning rate or add regularisation."
    )


@dataclass
class _LastGood:
    """The last good parameters, optimizer state and generator states (restored on divergence).

    The optimizer's state (for L-BFGS about ``(2m + 2)`` copies of the parameters) only matters
    to a checkpoint written afterwards: without one the run stops and the optimizer is dropped,
    so it is copied only when ``keep_optimizer``.
    """

    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    generators: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    def take(
        cls, model: MaskedLanguageModel, optimizer: Any, state: LoopState, keep_optimizer: bool
    ) -> _LastGood:
        return cls(
            copy.deepcopy(model.state_dict()),
            copy.deepcopy(optimizer.state_dict()) if keep_optimizer else None,
            state.generator_states(),
        )

    def restore(self, model: MaskedLanguageModel, optimizer: Any, state: LoopState) -> None:
        model.load_state_dict(self.model_state)
        if self.optimizer_state is not None:
            optimizer.load_state_dict(self.optimizer_state)
        state.set_generator_states(self.generators)


def _check_resumable(
    data: dict[str, Any],
    path: str | os.PathLike[str],
    cfg: TrainingConfig,
    model: MaskedLanguageModel,
    n_train: int,
    fingerprint: str,
) -> None:
    """Refuse a checkpoint of another run: other options, model, data size or data."""
    saved_cfg = json.loads(data["training_config"])
    diff = sorted(k for k, v in cfg.to_dict().items() if saved_cfg.get(k) != v)
    if set(diff) - _RESUMABLE_CHANGES:
        raise ValidationError(
            f"cannot resume {path}: training options {sorted(set(diff) - _RESUMABLE_CHANGES)} "
            f"differ from the checkpoint's; only {sorted(_RESUMABLE_CHANGES)} may change"
        )
    if (
        data["model_kind"] != model_kind(model)
        or json.loads(data["model_hparams"]) != model.hyperparameters()
    ):
        raise ValidationError(
            f"cannot resume {path}: it holds a {data['model_kind']} model with "
            f"{data['model_hparams']}, not this {model_kind(model)} with {model.hyperparameters()}"
        )
    if int(data["n_train"]) != n_train:
        raise ValidationError(
            f"cannot resume {path}: it was trained on {data['n_train']} sequences, got {n_train}"
        )
    check_data_fingerprint(data, fingerprint, path)


def _training_inputs(
    model: MaskedLanguageModel,
    cfg: TrainingConfig,
    states: Any,
    weights: Any,
    validation: Any,
    validation_weights: Any,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """Validated ``(tokens (M, L), weights (M,), (validation tokens, weights) | None)``."""
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    tokens = as_token_tensor(states, model, name="training states")
    w = _as_weights(weights, tokens.shape[0], dtype, device, "weights")
    val = None
    if validation is not None:
        val_tokens = as_token_tensor(validation, model, name="validation states")
        val_w = _as_weights(
            validation_weights, val_tokens.shape[0], dtype, device, "validation_weights"
        )
        val = (val_tokens, val_w)
    elif validation_weights is not None:
        raise ValidationError("validation_weights given without validation states")
    if cfg.patience is not None and val is None:
        raise ValidationError("early stopping (patience) needs validation states; pass validation=")
    return tokens, w, val


def _per_epoch_validation(
    model: MaskedLanguageModel,
    cfg: TrainingConfig,
    masker: _Masker,
    n_train: int,
    val: tuple[torch.Tensor, torch.Tensor] | None,
    seed: Any,
) -> tuple[int | None, Callable[[], float | None]]:
    """``(validation positions, the per-epoch validation loss)``: ``None`` positions is the exact
    all-positions loss; without validation data the loss is ``None``."""
    if val is None:
        return None, lambda: None
    val_tokens, val_w = val
    val_k = _auto_validation_positions(model, cfg, masker, n_train, val_tokens.shape[0])
    if val_k is None:
        return None, lambda: mlm_loss(model, val_tokens, val_w, batch_size=cfg.eval_batch_size)
    fixed = _FixedValidation(
        model, val_tokens, val_w, val_k, torch_generator(seed), cfg.eval_batch_size
    )
    return val_k, fixed.loss


def _loop_callbacks(
    model: MaskedLanguageModel,
    optimizer: Any,
    cfg: TrainingConfig,
    checkpoint_path: str | os.PathLike[str] | None,
    metrics_path: str | os.PathLike[str] | None,
    run: dict[str, Any],
) -> list[Callback]:
    """The loop's own callbacks, in the order they run after every epoch (before the user's)."""
    out: list[Callback] = [
        EarlyStopping(model, cfg.patience, cfg.min_delta),
        ConvergenceStop(cfg.tolerance),
    ]
    if metrics_path is not None:
        out.append(MetricsLog(Path(metrics_path)))
    if checkpoint_path is not None:
        out.append(Checkpointing(Path(checkpoint_path), cfg.checkpoint_every, model, optimizer, run))
    return out


def _record(
    state: LoopState,
    train_loss: float,
    val_loss: float | None,
    objective: Objective,
    n_train: int,
    validation_cpu_s: float,
    optimizer: torch.optim.Optimizer | LBFGS,
    cfg: TrainingConfig,
) -> dict[str, Any]:
    """The metrics record of the epoch just completed (``state`` already counts it)."""
    with torch.no_grad():
        pen = objective.penalty()
    record: dict[str, Any] = {
        "epoch": state.epoch,
        "train_loss": train_loss,
        "validation_loss": val_loss,
        "penalty": 0.0 if pen is None else float(pen),
        "steps": state.steps,
        "sequences_seen": state.epoch * n_train,
        "elapsed_s": state.elapsed,
        "cpu_s": state.cpu_elapsed,
        "validation_cpu_s": validation_cpu_s,
        "tokens_seen": state.tokens_seen,
        "learning_rate": _current_lr(optimizer, cfg),
    }
    if isinstance(optimizer, LBFGS) and optimizer.last_report is not None:
        # the objective (data term + penalties) and gradient where this epoch's step ended
        rep = optimizer.last_report
        record.update(
            objective=rep.objective,
            gradient_norm=rep.gradient_norm,
            evaluations=rep.evaluations,
            lbfgs_stop=rep.stop_reason,
            last_relative_decrease=rep.last_relative_decrease,
        )
    return record


def train(
    model: MaskedLanguageModel,
    states: Any,
    *,
    config: TrainingConfig | None = None,
    weights: Any = None,
    validation: Any = None,
    validation_weights: Any = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_path: str | os.PathLike[str] | None = None,
    metrics_path: str | os.PathLike[str] | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    raise_on_divergence: bool = False,
) -> TrainingResult:
    """Train ``model`` in place by masked language modelling on ``states``.

    Args:
        model: any :class:`~attnpotts.models.MaskedLanguageModel` (its dtype and device are used).
        states: ``(M, L)`` training sequences, integers in ``0..q-1``.
        config: hyper-parameters (default :class:`TrainingConfig()`).
        weights: ``(M,)`` non-negative sequence weights (e.g. ``1 / n_neighbours``, or exact
            probabilities of enumerated states).
        validation: ``(M_val, L)`` validation sequences (early stopping, best-epoch restore).
        validation_weights: ``(M_val,)`` weights of the validation sequences.
        callbacks: :class:`~attnpotts.training.Callback` objects (e.g. a progress bar), run
            after the loop's own (early stopping, convergence, metrics log, checkpoints).
        checkpoint_path: file to write the resumable checkpoint to (every
            ``config.checkpoint_every`` epochs and at the end); it keeps the last good state.
        metrics_path: JSON-lines file of per-epoch metrics (rewritten atomically every epoch).
        resume_from: a checkpoint of an earlier run of the same model and config (only
            ``max_epochs``, ``patience``, ``checkpoint_every``, ``eval_batch_size``,
            ``still_improving_tol`` may differ); training continues exactly where it stopped
            (the learning rate is a function of the step count, saved in the checkpoint; a
            ``"cosine"`` schedule follows the new ``max_epochs``).
        raise_on_divergence: raise :class:`~attnpotts.errors.DivergenceError` (after restoring and
            checkpointing the last good state) instead of returning ``stop_reason="diverged"``.

    Returns:
        A :class:`TrainingResult`; the model holds the final parameters (the best validation
        epoch's if ``config.restore_best`` and validation data were given).

    The per-epoch validation loss of a transformer is measured on a fixed masked subset (see
    ``TrainingConfig.validation_positions``); the exact all-positions losses are computed once,
    at the end (``final_train_loss``, ``final_validation_loss``). On glibc the first call sets
    the allocator's thresholds so that per-batch tensors reuse memory
    (:func:`~attnpotts.training.keep_freed_memory`).

    Raises:
        ValidationError / ShapeError: bad data, weights or options (message says which).
    """
    cfg = TrainingConfig() if config is None else config
    keep_freed_memory()  # no page-fault churn from per-batch allocations (see .allocator)
    if not isinstance(model, MaskedLanguageModel):
        raise ValidationError(
            f"model must be an attnpotts MaskedLanguageModel, got {type(model).__name__}"
        )
    device = next(model.parameters()).device
    tokens, w, val = _training_inputs(model, cfg, states, weights, validation, validation_weights)
    M = tokens.shape[0]
    objective = Objective(model, objective_penalties(cfg))
    masker = _Masker(model, MaskingPolicy(cfg.masking, cfg.mask_rate, cfg.n_mask_copies))
    seeds = spawn_seeds(cfg.seed, 3)
    # CPU generator: shuffling and masks; the dropout generator lives on the model's device
    state = LoopState(torch_generator(seeds[0]), torch_generator(seeds[1], device))
    val_k, validation_loss = _per_epoch_validation(model, cfg, masker, M, val, seeds[2])
    optimizer = _make_optimizer(model, cfg)
    if isinstance(optimizer, LBFGS) and callbacks:

        def _on_iteration(k: int, f: float) -> None:
            for cb in callbacks:
                cb.on_iteration(k, cfg.lbfgs_max_iter, f)

        optimizer.on_iteration = _on_iteration

    fingerprint = data_fingerprint(tokens, w)
    if resume_from is not None:
        data = load_checkpoint(resume_from, map_location=device, resume=True)
        _check_resumable(data, resume_from, cfg, model, M, fingerprint)
        model.load_state_dict(data["model_state"])
        optimizer.load_state_dict(data["optimizer_state"])
        state.restore(data)
    loop_callbacks = _loop_callbacks(
        model, optimizer, cfg, checkpoint_path, metrics_path,
        {"n_train": M, "training_config": json.dumps(cfg.to_dict()), "data_fingerprint": fingerprint},
    )  # fmt: skip
    every = [*loop_callbacks, *callbacks]
    for cb in every:
        cb.on_loop_begin(state)

    keep_optimizer = checkpoint_path is not None
    good = _LastGood.take(model, optimizer, state, keep_optimizer)
    info = {
        "start_epoch": state.epoch,
        "max_epochs": cfg.max_epochs,
        "n_train": M,
        "n_validation": 0 if val is None else val[0].shape[0],
    }
    for cb in every:
        cb.on_train_begin(info)
    model.train()
    while state.epoch < cfg.max_epochs:
        t0 = time.perf_counter()
        c0 = time.process_time()
        model.train()
        if isinstance(optimizer, LBFGS):
            train_loss, n_steps, n_tokens = _lbfgs_epoch(objective, masker, optimizer, cfg, tokens, w, state)
        else:
            train_loss, n_steps, n_tokens = _adam_epoch(objective, masker, optimizer, cfg, tokens, w, state)
        diverged = _divergence(train_loss, model, cfg, state, monotone=isinstance(optimizer, LBFGS))
        if diverged is not None:
            good.restore(model, optimizer, state)
            state.stop_reason, state.message = "diverged", diverged
            logger.warning(diverged)
            break
        if state.reference is None:
            state.reference = train_loss
        state.epoch += 1
        state.steps += n_steps
        state.tokens_seen += n_tokens
        state.elapsed += time.perf_counter() - t0
        c1 = time.process_time()
        val_loss = validation_loss()
        c2 = time.process_time()
        state.cpu_elapsed += c2 - c0
        state.history.append(_record(state, train_loss, val_loss, objective, M, c2 - c1, optimizer, cfg))
        good = _LastGood.take(model, optimizer, state, keep_optimizer)
        reasons = [cb.on_loop_epoch(state) for cb in every]  # every callback sees every epoch
        stop = next((r for r in reasons if r is not None), None)
        if stop is not None:
            state.stop_reason = stop
            break

    warning = _epoch_cap_warning(state, cfg)
    if warning is not None:
        logger.warning(warning)
    final_state = state.best_state if cfg.restore_best else None
    for cb in every:  # the checkpoint keeps the training state and the final parameters apart
        cb.on_loop_end(state, final_state)
    if final_state is not None:
        model.load_state_dict(final_state)
    model.eval()
    release_freed_memory()  # the final loss allocates differently: do not stack it on kept memory
    result = TrainingResult(
        history=state.history,
        epochs=state.epoch,
        stop_reason=state.stop_reason,
        best_epoch=state.best_epoch,
        best_validation_loss=None if state.best_epoch is None else state.best_loss,
        final_train_loss=mlm_loss(model, tokens, w, batch_size=cfg.eval_batch_size),
        final_validation_loss=None
        if val is None
        else mlm_loss(model, val[0], val[1], batch_size=cfg.eval_batch_size),
        wall_time_s=state.elapsed,
        message=state.message,
        cpu_time_s=state.cpu_elapsed,
        tokens_seen=state.tokens_seen,
        validation_positions=val_k,
        still_improving=warning is not None,
        warnings=[] if warning is None else [warning],
    )
    for cb in every:
        cb.on_train_end(result)
    if state.stop_reason == "diverged" and raise_on_divergence:
        raise DivergenceError(state.message)
    return result


def _adam_epoch(
    objective: Objective,
    masker: _Masker,
    optimizer: torch.optim.Optimizer,
    cfg: TrainingConfig,
    tokens: torch.Tensor,
    w: torch.Tensor,
    state: LoopState,
) -> tuple[float, int, int]:
    """One epoch of mini-batch steps: ``(mean training loss, steps, masked targets)``."""
    model = objective.model
    M = tokens.shape[0]
    bs = M if cfg.batch_size is None else min(int(cfg.batch_size), M)
    steps_per_epoch = math.ceil(M / bs)
    scheduled = cfg.lr_schedule != "constant" or cfg.warmup_epochs > 0
    perm = torch.randperm(M, generator=state.shuffle_generator).to(tokens.device)
    total = torch.zeros((), dtype=torch.float64, device=tokens.device)
    count = torch.zeros((), dtype=torch.float64, device=tokens.device)
    n_steps = 0
    n_tokens = 0
    for start in range(0, M, bs):
        idx = perm[start : start + bs]
        x, wb, inputs, predict = masker.draw(tokens[idx], w[idx], state.shuffle_generator)
        data, norm = objective.data_term(x, wb, inputs, predict, generator=state.dropout_generator)
        if float(norm) <= 0:
            continue  # no predicted position with positive weight in this batch
        if predict is None:
            n_tokens += x.numel()
        elif masker.policy.kind == "bert":
            n_tokens += int(predict.sum())
        else:
            n_tokens += x.shape[0]  # one predicted position per row ("one", "copies")
        loss = objective.loss(data, norm)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        if not math.isfinite(float(loss.detach())):
            return math.nan, n_steps, n_tokens
        if scheduled:
            lr = cfg.learning_rate * _lr_factor(cfg, state.steps + n_steps, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
        optimizer.step()
        n_steps += 1
        total += data.detach().double()
        count += norm.detach().double()
    if float(count) <= 0:
        return math.nan, n_steps, n_tokens
    return float(total / count), n_steps, n_tokens


def _lbfgs_epoch(
    objective: Objective,
    masker: _Masker,
    optimizer: LBFGS,
    cfg: TrainingConfig,
    tokens: torch.Tensor,
    w: torch.Tensor,
    state: LoopState,
) -> tuple[float, int, int]:
    """One full-batch L-BFGS step of ``lbfgs_max_iter`` iterations: ``(loss, iterations, targets)``."""
    # one draw per epoch, fixed during the line search
    tokens, w, inputs, predict = masker.draw(tokens, w, state.shuffle_generator)
    count = full_batch_count(w, predict, tokens.shape[1])
    n_tokens = tokens.numel() if predict is None else int(predict.sum())
    if count <= 0:
        return math.nan, 0, n_tokens
    datas: list[float] = []  # the data term of every evaluation

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=False)
        data, total = objective.backward(
            tokens, w, inputs, predict, count=count, chunk=int(cfg.eval_batch_size),
            generator=state.dropout_generator,
        )
        datas.append(float(data))
        return total

    optimizer.step(closure)
    report = optimizer.last_report
    assert report is not None
    # the data term where the epoch started: its first evaluation, or the one it reused
    first = optimizer.start_info if report.start_reused else (datas[0] if datas else math.nan)
    optimizer.start_info = datas[report.final_evaluation] if report.final_evaluation >= 0 else first
    return first, report.iterations, n_tokens
