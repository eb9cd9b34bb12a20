"""Objectives (masked cross-entropy = pseudo-likelihood, L2 terms), optimal loss, and the mapping.

See :mod:`attnpotts.inference.objectives` for the one objective (:class:`Objective`) and which L2
term is which (:class:`Penalties`).
"""

from .mapping import (
    attention_from_potts,
    full_potts_from_conditional,
    to_conditional_potts,
    to_potts_model,
)
from .objectives import (
    DEFAULT_EVAL_BATCH,
    EVAL_CHUNK_BYTES,
    Objective,
    Penalties,
    all_positions_cross_entropy,
    coupling_penalty,
    eval_rows,
    factor_penalty,
    field_penalty,
    masked_cross_entropy,
    mlm_loss,
    per_sequence_loss,
    site_conditional_logits,
)
from .optimal import (
    LossEstimate,
    estimate_mean,
    excess_loss,
    model_loss,
    optimal_loss,
    true_model_loss,
)

__all__ = [
    "DEFAULT_EVAL_BATCH",
    "EVAL_CHUNK_BYTES",
    "LossEstimate",
    "Objective",
    "Penalties",
    "all_positions_cross_entropy",
    "attention_from_potts",
    "coupling_penalty",
    "estimate_mean",
    "eval_rows",
    "excess_loss",
    "factor_penalty",
    "field_penalty",
    "full_potts_from_conditional",
    "masked_cross_entropy",
    "mlm_loss",
    "model_loss",
    "optimal_loss",
    "per_sequence_loss",
    "site_conditional_logits",
    "to_conditional_potts",
    "to_potts_model",
    "true_model_loss",
]
