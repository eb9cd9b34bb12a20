"""The training loop's state: what it carries from epoch to epoch and what a checkpoint restores.

:class:`LoopState` is the one object the loop and its callbacks (early stopping, checkpoints,
the metrics log; :mod:`attnpotts.training.callbacks`) read and update. :meth:`LoopState.payload`
gives its checkpoint entries and :meth:`LoopState.restore` reads them back (the same keys as
checkpoints of earlier attnpotts versions, so those still resume).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..storage import atomic_write_text

__all__ = ["LoopState", "jsonable_history", "write_metrics"]


@dataclass
class LoopState:
    """The state of a training run between epochs.

    Attributes:
        shuffle_generator: CPU generator of shuffling and masks.
        dropout_generator: generator of dropout, on the model's device.
        epoch: epochs completed.
        steps: optimizer steps so far (the learning-rate schedule is a function of it).
        tokens_seen: masked training targets seen so far.
        elapsed: training wall seconds so far (without validation).
        cpu_elapsed: process CPU seconds so far (validation included).
        history: one metrics record per epoch (:class:`~attnpotts.training.TrainingResult`).
        reference: the first epoch's training loss (the divergence bound's scale).
        best_loss: lowest validation loss so far (``inf`` before any).
        best_epoch: its epoch (``None`` before any).
        best_state: the model's ``state_dict`` at that epoch (``None`` before any).
        since_best: epochs since the best one (early stopping's patience counter).
        resumed: the state was restored from a checkpoint (not saved).
        stop_reason: why the run ended (:data:`~attnpotts.training.STOP_REASONS`; not saved).
        message: human-readable note on the stop, e.g. why it diverged (not saved).
    """

    shuffle_generator: torch.Generator
    dropout_generator: torch.Generator
    epoch: int = 0
    steps: int = 0
    tokens_seen: int = 0
    elapsed: float = 0.0
    cpu_elapsed: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    reference: float | None = None
    best_loss: float = math.inf
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    since_best: int = 0
    resumed: bool = False
    stop_reason: str = "max_epochs"
    message: str = ""

    def payload(self) -> dict[str, Any]:
        """The checkpoint entries of this state (read back by :meth:`restore`)."""
        return {
            "generator_state": self.shuffle_generator.get_state(),
            "dropout_generator_state": self.dropout_generator.get_state().cpu(),
            "epoch": self.epoch,
            "history": json.dumps(jsonable_history(self.history)),
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state or {},
            "since_best": self.since_best,
            "reference": self.reference,
            "elapsed": self.elapsed,
            "cpu_elapsed": self.cpu_elapsed,
            "tokens_seen": self.tokens_seen,
            "steps": self.steps,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Continue from a checkpoint's entries (validated by ``load_checkpoint(resume=True)``).

        Checkpoints without ``cpu_elapsed`` or ``tokens_seen`` (older attnpotts) count them
        from 0.
        """
        self.shuffle_generator.set_state(data["generator_state"])
        device = self.dropout_generator.get_state().device
        self.dropout_generator.set_state(data["dropout_generator_state"].to(device))
        self.epoch = int(data["epoch"])
        self.history = json.loads(data["history"])
        self.best_loss = float(data["best_loss"])
        self.best_epoch = None if data["best_epoch"] is None else int(data["best_epoch"])
        self.best_state = data["best_state"] or None
        self.since_best = int(data["since_best"])
        self.reference = None if data["reference"] is None else float(data["reference"])
        self.elapsed = float(data["elapsed"])
        self.cpu_elapsed = float(data.get("cpu_elapsed", 0.0))
        self.tokens_seen = int(data.get("tokens_seen", 0))
        self.steps = int(data["steps"])
        self.resumed = True

    def generator_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shuffle, dropout)`` generator states, to roll back to with :meth:`set_generator_states`."""
        return self.shuffle_generator.get_state(), self.dropout_generator.get_state()

    def set_generator_states(self, states: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Set both generators to states from :meth:`generator_states`."""
        self.shuffle_generator.set_state(states[0])
        self.dropout_generator.set_state(states[1])


def jsonable_history(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history with non-finite floats as ``None`` (strict JSON)."""
    return [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
        for r in history
    ]


def write_metrics(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Write the history as JSON lines to ``path``, atomically."""
    text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in jsonable_history(history))
    atomic_write_text(path, text)
