"""Callbacks of the training loop: progress bar, user hooks.

A callback gets the epoch record (a dict of metrics) after every epoch and may ask the loop to
stop by returning ``True`` from :meth:`Callback.on_epoch_end`. Checkpoints, the metrics log and
early stopping are part of the loop itself because their state must be saved with the run.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Callback", "ProgressBar"]


class Callback:
    """Base class: override any hook."""

    def on_train_begin(self, info: dict[str, Any]) -> None:
        """Called once with ``{"start_epoch", "max_epochs", "n_train", "n_validation"}``."""

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        """Called with the epoch's metrics; return ``True`` to stop training."""
        return None

    def on_train_end(self, result: Any) -> None:
        """Called with the :class:`~attnpotts.training.TrainingResult`."""


class ProgressBar(Callback):
    """A tqdm bar over epochs (on stderr) showing the training and validation losses."""

    def __init__(self, description: str = "train") -> None:
        self.description = description
        self._bar: Any = None

    def on_train_begin(self, info: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=info["max_epochs"],
            initial=info["start_epoch"],
            desc=self.description,
            leave=False,
        )

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        if self._bar is not None:
            post = {"train": f"{record['train_loss']:.4f}"}
            if record.get("validation_loss") is not None:
                post["val"] = f"{record['validation_loss']:.4f}"
            self._bar.set_postfix(post)
            self._bar.update(1)
        return None

    def on_train_end(self, result: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
