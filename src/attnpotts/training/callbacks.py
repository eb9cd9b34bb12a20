"""Callbacks of the training loop: progress reporting, user hooks.

A callback gets the epoch record (a dict of metrics) after every epoch and may ask the loop to
stop by returning ``True`` from :meth:`Callback.on_epoch_end`. Checkpoints, the metrics log and
early stopping are part of the loop itself because their state must be saved with the run.
"""

from __future__ import annotations

import logging
from typing import Any, TextIO

from ..progress import Progress, format_duration

__all__ = ["Callback", "IterationProgress", "ProgressBar"]

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
    """Per-iteration progress of a full-batch L-BFGS fit (one long epoch, as in DCA): objective
    and ETA, through :class:`attnpotts.progress.Progress` (plain lines when not on a terminal).
    Takes the arguments of :class:`ProgressBar`; shows iterations instead of epochs.
    """

    def __init__(self, description: str = "fit", **options: Any) -> None:
        super().__init__(description, **options)

    def on_train_begin(self, info: dict[str, Any]) -> None:
        """Nothing yet: the bar starts with the first iteration, when its total is known."""

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        return None

    def on_iteration(self, iteration: int, max_iter: int, objective: float) -> None:
        if self._progress is None:
            self._progress = Progress(
                max_iter,
                self.description,
                unit="iterations",
                stream=self.stream,
                interval_s=self.interval_s,
                bar=self.bar,
            )
        self._progress.set(iteration, loss=float(objective))
        logger.debug("iteration %d/%d  objective %.6g", iteration, max_iter, objective)
