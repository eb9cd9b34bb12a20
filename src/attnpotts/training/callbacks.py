"""Callbacks of the training loop: early stopping, checkpoints, the metrics log, progress, user hooks.

A callback sees the run at fixed points. The record hooks (:meth:`Callback.on_train_begin`,
:meth:`~Callback.on_epoch_end`, :meth:`~Callback.on_iteration`, :meth:`~Callback.on_train_end`)
get plain dicts and the result; a user callback (e.g. a progress bar) overrides those and may
ask the loop to stop by returning ``True`` from ``on_epoch_end``. The state hooks
(:meth:`~Callback.on_loop_begin`, :meth:`~Callback.on_loop_epoch`, :meth:`~Callback.on_loop_end`)
get the loop's :class:`~attnpotts.training.state.LoopState` itself; the loop's own callbacks use
them, because what they keep (the best epoch, the patience counter) is part of that state and
is saved and restored with it:

* :class:`EarlyStopping`: tracks the best validation epoch (for ``restore_best``) and stops after
  ``patience`` epochs without improvement;
* :class:`ConvergenceStop`: stops when the training loss changes by less than ``tolerance``;
* :class:`MetricsLog`: rewrites the JSON-lines metrics log after every epoch;
* :class:`Checkpointing`: writes the resumable checkpoint every ``checkpoint_every`` epochs and
  at the end.

After every epoch the loop calls ``on_loop_epoch`` of each callback in order (its own first)
and stops with the first stop reason returned.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, TextIO

import torch

from ..models import MaskedLanguageModel
from ..progress import Progress, format_duration
from .checkpoint import model_payload, save_checkpoint
from .state import LoopState, write_metrics

__all__ = [
    "Callback",
    "Checkpointing",
    "ConvergenceStop",
    "EarlyStopping",
    "IterationProgress",
    "MetricsLog",
    "ProgressBar",
]

logger = logging.getLogger(__name__)


class Callback:
    """Base class: override any hook."""

    def on_train_begin(self, info: dict[str, Any]) -> None:
        """Called once with ``{"start_epoch", "max_epochs", "n_train", "n_validation"}``."""

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        """Called with the epoch's metrics; return ``True`` to stop training."""
        return None

    def on_iteration(self, iteration: int, max_iter: int, objective: float) -> None:
        """Called after every L-BFGS iteration inside an epoch (``iteration`` from 1)."""

    def on_train_end(self, result: Any) -> None:
        """Called with the :class:`~attnpotts.training.TrainingResult`."""

    def on_loop_begin(self, state: LoopState) -> None:
        """Called once before the first epoch with the loop state (restored when resuming)."""

    def on_loop_epoch(self, state: LoopState) -> str | None:
        """Called after every epoch with the loop state (its history ends with the epoch's record).

        Returns a stop reason (:data:`~attnpotts.training.STOP_REASONS`) to end the run, or
        ``None``. By default calls :meth:`on_epoch_end` with the record: ``"callback"`` if it
        returns ``True``.
        """
        return "callback" if self.on_epoch_end(state.history[-1]) else None

    def on_loop_end(self, state: LoopState, final_model_state: dict[str, torch.Tensor] | None) -> None:
        """Called once when the loop has stopped, before the final losses are computed.

        The model still holds the training state (what a resume continues from);
        ``final_model_state`` is the ``state_dict`` it will end with when that differs (the
        best epoch's under ``restore_best``), else ``None``.
        """


class EarlyStopping(Callback):
    """Tracks the best validation epoch and stops after ``patience`` epochs without improvement.

    An epoch improves when its validation loss is below ``best_loss - min_delta``; the state's
    ``best_loss``, ``best_epoch``, ``best_state`` (a copy of the model's parameters) and
    ``since_best`` are updated. Epochs without a validation loss change nothing.

    Args:
        model: the model being trained (its ``state_dict`` is copied at the best epoch).
        patience: epochs without improvement before stopping (``None``: never stop, only track).
        min_delta: the least decrease that counts as an improvement.
    """

    def __init__(
        self, model: MaskedLanguageModel, patience: int | None, min_delta: float = 0.0
    ) -> None:
        self.model, self.patience, self.min_delta = model, patience, float(min_delta)

    def on_loop_epoch(self, state: LoopState) -> str | None:
        val = state.history[-1].get("validation_loss")
        if val is not None:
            if val < state.best_loss - self.min_delta:
                state.best_loss, state.best_epoch, state.since_best = val, state.epoch, 0
                state.best_state = copy.deepcopy(self.model.state_dict())
            else:
                state.since_best += 1
        if self.patience is not None and state.since_best >= self.patience:
            return "early_stopping"
        return None


class ConvergenceStop(Callback):
    """Stops when the epoch's training loss changed by less than ``tolerance`` (relative, at
    least absolute) from the previous epoch's: ``|l_e - l_{e-1}| < tolerance max(1, |l_e|)``."""

    def __init__(self, tolerance: float) -> None:
        self.tolerance = float(tolerance)

    def on_loop_epoch(self, state: LoopState) -> str | None:
        history = state.history
        if self.tolerance > 0 and len(history) >= 2:
            loss, prev = history[-1]["train_loss"], history[-2]["train_loss"]
            if abs(loss - prev) < self.tolerance * max(1.0, abs(loss)):
                return "converged"
        return None


class MetricsLog(Callback):
    """Rewrites the JSON-lines metrics log (one record per epoch) atomically after every epoch
    (and once when a run resumes, so that the log matches the checkpoint's history)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_loop_begin(self, state: LoopState) -> None:
        if state.resumed:
            write_metrics(self.path, state.history)

    def on_loop_epoch(self, state: LoopState) -> str | None:
        write_metrics(self.path, state.history)
        return None


class Checkpointing(Callback):
    """Writes the resumable checkpoint every ``every`` epochs and once at the end.

    A checkpoint holds the model (kind, hyper-parameters, training state), the optimizer's
    state, the :class:`LoopState` (:meth:`LoopState.payload`), ``run`` (the run's fixed
    entries: training-set size, options, data fingerprint) and, at the end,
    ``final_model_state``, the parameters the run ended with.

    Args:
        path: the checkpoint file (written atomically).
        every: epochs between checkpoints.
        model: the model being trained.
        optimizer: its optimizer (anything with ``state_dict()``).
        run: fixed entries added to every checkpoint.
    """

    def __init__(
        self,
        path: str | Path,
        every: int,
        model: MaskedLanguageModel,
        optimizer: Any,
        run: dict[str, Any],
    ) -> None:
        self.path, self.every = Path(path), int(every)
        self.model, self.optimizer, self.run = model, optimizer, dict(run)

    def write(self, state: LoopState, final_model_state: dict[str, torch.Tensor] | None = None) -> None:
        """Write the checkpoint of the current model, optimizer and ``state``."""
        payload = model_payload(self.model)
        payload.update(optimizer_state=self.optimizer.state_dict(), **state.payload(), **self.run)
        if final_model_state is not None:
            payload["final_model_state"] = final_model_state
        save_checkpoint(self.path, payload)

    def on_loop_epoch(self, state: LoopState) -> str | None:
        if state.epoch % self.every == 0:
            self.write(state)
        return None

    def on_loop_end(self, state: LoopState, final_model_state: dict[str, torch.Tensor] | None) -> None:
        if final_model_state is None:
            final_model_state = copy.deepcopy(self.model.state_dict())
        self.write(state, final_model_state)


class ProgressBar(Callback):
    """Per-epoch progress: losses and ETA (to ``max_epochs``; early stopping may end sooner).

    Shown through :class:`attnpotts.progress.Progress` (a tqdm bar on a terminal, plain lines
    without escape codes otherwise) and logged at ``INFO`` (logger ``attnpotts.training``).

    Args:
        description: prefix of the progress line.
        stream: where to show progress (default ``sys.stderr``).
        interval_s: least seconds between two plain lines.
        bar: force a bar (``True``) or plain lines (``False``); ``None``: a bar on a terminal.
    """

    def __init__(
        self,
        description: str = "train",
        *,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        bar: bool | None = None,
    ) -> None:
        self.description = description
        self.stream, self.interval_s, self.bar = stream, interval_s, bar
        self._progress: Progress | None = None

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self._progress = Progress(
            info["max_epochs"],
            self.description,
            unit="epochs",
            initial=info["start_epoch"],
            stream=self.stream,
            interval_s=self.interval_s,
            bar=self.bar,
        )

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        p = self._progress
        if p is None:
            return None
        val = record.get("validation_loss")
        info: dict[str, Any] = {} if val is None else {"val": float(val)}
        p.set(int(record["epoch"]), loss=float(record["train_loss"]), **info)
        logger.info(
            "epoch %d/%s  train %.4f%s  eta %s",
            record["epoch"],
            p.total,
            record["train_loss"],
            "" if val is None else f"  validation {val:.4f}",
            format_duration(p.eta_s),
        )
        return None

    def on_train_end(self, result: Any) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None


class IterationProgress(ProgressBar):
    """Per-iteration progress of a full-batch L-BFGS fit (DCA): objective and ETA, through
    :class:`attnpotts.progress.Progress` (plain lines when not on a terminal). Takes the
    arguments of :class:`ProgressBar`; shows iterations instead of epochs.

    A fit run as epochs of a few L-BFGS iterations each (plm's convergence rule checks after
    every epoch) is counted across them: the total is the cap, ``max_epochs`` times the
    iterations per epoch, so the ETA is an upper bound when a rule may stop the fit sooner.
    """

    def __init__(self, description: str = "fit", **options: Any) -> None:
        super().__init__(description, **options)
        self._epochs = 1  # epochs left to run at the start
        self._offset = 0  # iterations of the epochs already ended
        self._last = 0  # iterations of the current epoch so far

    def on_train_begin(self, info: dict[str, Any]) -> None:
        """The epochs to run; the bar starts with the first iteration, when their length is known."""
        self._epochs = max(1, int(info["max_epochs"]) - int(info["start_epoch"]))
        self._offset = self._last = 0

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        self._offset += self._last
        self._last = 0
        return None

    def on_iteration(self, iteration: int, max_iter: int, objective: float) -> None:
        if self._progress is None:
            self._progress = Progress(
                max_iter * self._epochs,
                self.description,
                unit="iterations",
                stream=self.stream,
                interval_s=self.interval_s,
                bar=self.bar,
            )
        self._last = iteration
        self._progress.set(self._offset + iteration, loss=float(objective))
        logger.debug("iteration %d (epoch's %d/%d)  objective %.6g",
                     self._offset + iteration, iteration, max_iter, objective)
