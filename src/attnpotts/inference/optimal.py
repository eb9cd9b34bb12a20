"""The optimal masked-LM loss (the true model's mean conditional entropy) and excess losses.

For data drawn from a Potts model ``P``, no model's expected all-positions MLM loss is below
``E_s[ mean_i H(P(. | s_rest)) ]``, the mean conditional entropy. On a finite test set it is
estimated by the average over test sequences, with the standard error of that average. The
*excess* of a learned model is ``CE_model - CE_true`` per sequence on the same test tokens (a
paired difference, whose standard error is much smaller than that of either loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ShapeError, ValidationError
from ..models import MaskedLanguageModel
from ..potts import ConditionalPotts, conditional_entropies
from .objectives import per_sequence_loss

__all__ = [
    "LossEstimate",
    "estimate_mean",
    "excess_loss",
    "model_loss",
    "optimal_loss",
    "true_model_loss",
]


@dataclass(frozen=True)
class LossEstimate:
    """A mean over sequences with its standard error.

    Attributes:
        mean: the (weighted) mean, nats per site.
        stderr: standard error of the mean (``sqrt(sum w^2 (x - mean)^2) / sum w`` with the
            ``n/(n-1)`` correction; NaN for a single sequence).
        n: number of sequences.
    """

    mean: float
    stderr: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        """``{"mean", "stderr", "n"}`` for JSON."""
        return {"mean": self.mean, "stderr": self.stderr, "n": self.n}


def estimate_mean(values: Any, weights: Any = None) -> LossEstimate:
    """Weighted mean of per-sequence values ``(M,)`` and its standard error."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ShapeError(f"values must be a non-empty (M,) array, got shape {x.shape}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != x.shape:
        raise ShapeError(f"weights must have shape {x.shape}, got {w.shape}")
    if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ValidationError("weights must be finite, non-negative and not all zero")
    mean = float(w @ x / w.sum())
    n = x.size
    if n < 2:
        return LossEstimate(mean, float("nan"), n)
    se = float(np.sqrt((w**2) @ (x - mean) ** 2 * n / (n - 1)) / w.sum())
    return LossEstimate(mean, se, n)


def _check(true_model: ConditionalPotts, states: Any) -> np.ndarray:
    s = np.asarray(states.detach().cpu() if hasattr(states, "detach") else states)
    if s.ndim != 2 or s.shape[0] == 0:
        raise ShapeError(f"states must be a non-empty (M, L) array, got shape {s.shape}")
    return s


def optimal_loss(true_model: ConditionalPotts, states: Any, weights: Any = None) -> LossEstimate:
    """Mean conditional entropy ``E_s[ mean_i H(P(. | s_rest)) ]`` of the true model on ``states``.

    Args:
        true_model: the data-generating model (its ``beta`` is used as it is).
        states: ``(M, L)`` test sequences drawn from it.
        weights: optional ``(M,)`` weights (e.g. exact probabilities of enumerated states).
    """
    s = _check(true_model, states)
    return estimate_mean(conditional_entropies(true_model, s).mean(-1), weights)


def true_model_loss(true_model: ConditionalPotts, states: Any, weights: Any = None) -> LossEstimate:
    """The true model's own MLM loss ``mean_i -log P(s_i | s_rest)`` on the test tokens."""
    s = _check(true_model, states)
    return estimate_mean(-true_model.log_conditionals(s).mean(-1), weights)


def model_loss(model: MaskedLanguageModel, states: Any, weights: Any = None) -> LossEstimate:
    """A learned model's all-positions MLM loss on ``states``, with its standard error."""
    return estimate_mean(per_sequence_loss(model, states), weights)


def excess_loss(
    model: MaskedLanguageModel, true_model: ConditionalPotts, states: Any, weights: Any = None
) -> LossEstimate:
    """Paired excess ``CE_model - CE_true`` per sequence on the same test tokens (mean and SE)."""
    s = _check(true_model, states)
    learned = per_sequence_loss(model, s)
    true = -true_model.log_conditionals(s).mean(-1)
    return estimate_mean(learned - true, weights)
