"""The one training loop (all models, masking policies, optimizers), its state, callbacks and checkpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .config import MASKING_KINDS, OPTIMIZERS, TrainingConfig

if TYPE_CHECKING:
    from .allocator import keep_freed_memory, release_freed_memory
    from .callbacks import (
        Callback,
        Checkpointing,
        ConvergenceStop,
        EarlyStopping,
        IterationProgress,
        MetricsLog,
        ProgressBar,
    )
    from .checkpoint import load_checkpoint, load_model, save_checkpoint
    from .data import TrainingData, load_training_data
    from .lbfgs import LBFGS, LBFGS_STOP_REASONS, LBFGSReport
    from .loop import STOP_REASONS, TrainingResult, as_token_tensor, objective_penalties, train
    from .masking import MaskingPolicy
    from .state import LoopState

__all__ = [
    "LBFGS",
    "LBFGS_STOP_REASONS",
    "MASKING_KINDS",
    "OPTIMIZERS",
    "STOP_REASONS",
    "Callback",
    "Checkpointing",
    "ConvergenceStop",
    "EarlyStopping",
    "IterationProgress",
    "LBFGSReport",
    "LoopState",
    "MaskingPolicy",
    "MetricsLog",
    "ProgressBar",
    "TrainingConfig",
    "TrainingData",
    "TrainingResult",
    "as_token_tensor",
    "keep_freed_memory",
    "load_checkpoint",
    "load_model",
    "load_training_data",
    "objective_penalties",
    "release_freed_memory",
    "save_checkpoint",
    "train",
]

#: Everything but the configuration loads torch: imported from its submodule on first use.
__getattr__, __dir__ = lazy_attributes(__name__, {
    "keep_freed_memory": "allocator", "release_freed_memory": "allocator",
    **dict.fromkeys(("Callback", "Checkpointing", "ConvergenceStop", "EarlyStopping",
                     "IterationProgress", "MetricsLog", "ProgressBar"), "callbacks"),
    "load_checkpoint": "checkpoint", "load_model": "checkpoint", "save_checkpoint": "checkpoint",
    "TrainingData": "data", "load_training_data": "data",
    "LBFGS": "lbfgs", "LBFGS_STOP_REASONS": "lbfgs", "LBFGSReport": "lbfgs",
    **dict.fromkeys(("STOP_REASONS", "TrainingResult", "as_token_tensor", "objective_penalties",
                     "train"), "loop"),
    "MaskingPolicy": "masking",
    "LoopState": "state",
}, eager=__all__)  # fmt: skip
