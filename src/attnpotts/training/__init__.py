"""The one training loop (all models, masking policies, optimizers), its state, callbacks and checkpoints."""

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
from .config import OPTIMIZERS, TrainingConfig
from .data import TrainingData, load_training_data
from .lbfgs import LBFGS, LBFGS_STOP_REASONS, LBFGSReport
from .loop import STOP_REASONS, TrainingResult, as_token_tensor, objective_penalties, train
from .masking import MASKING_KINDS, MaskingPolicy
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
