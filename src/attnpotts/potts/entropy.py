"""Conditional entropies of a Potts model: the floor of the masked-LM loss (numpy).

For data drawn from ``P``, no model's expected all-positions MLM loss is below the mean over
sites of ``H(P(. | s_rest))``. This is the one implementation: exact enumeration
(:meth:`attnpotts.potts.ExactPotts.conditional_entropy`), the optimal loss on a test set
(:func:`attnpotts.inference.optimal_loss`) and the sampled data set's manifest all call it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .model import ConditionalPotts

__all__ = ["conditional_entropies"]


def conditional_entropies(model: ConditionalPotts, states: Any) -> np.ndarray:
    """``H(P(. | s_rest))`` at every site of every sequence, nats, shape ``(M, L)``.

    Args:
        model: the Potts model (its ``beta`` is used as it is).
        states: ``(M, L)`` integer sequences (numpy).

    Probabilities are clipped at ``1e-300`` inside the logarithm, so a zero probability
    contributes ``0 * log(1e-300) = 0``, its limit.
    """
    p = np.asarray(model.conditional_probabilities(states))  # (M, L, q)
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(-1)
