"""Objectives: masked cross-entropy (= pseudo-likelihood for structural models) and L2 terms.

The training objective of attnpotts is

    loss = sum_{m, i} w_m k_{m i} CE_{m i} / sum_{m, i} w_m k_{m i}
           + (coupling_l2 / 2) ||beta J||_F^2 + (weight_decay / 2) sum_factors ||theta||^2
           + (field_l2 / 2) ||beta h||^2

with ``CE_{m i} = -log P_model(s_i^m | tokens^m)``, ``k_{m i} = 1`` on the masked (predicted)
positions and sequence weights ``w_m``. With all positions predicted, the first term is exactly
``-(1/(W L)) log PL`` of the mapped Potts model (``W = sum_m w_m``). Penalties are per token (the
data term is a mean), so ``coupling_l2`` here equals plmDCA's ``lambda_J / (W L)`` on a
summed objective (up to plmDCA's factor conventions).

* ``coupling_l2`` penalises the coupling *product* ``sum_h A_h (x) V_h`` (plmDCA style, invariant
  under the scale gauge ``(A, V) -> (cA, V/c)``), only for models with couplings;
* ``weight_decay`` penalises the *factors* (attention, queries/keys, values, embeddings; for
  :class:`~attnpotts.models.FullPotts` this is ``J`` itself): it breaks the scale gauge and favours
  balanced factors, and is not the same regularisation as L2 on the product.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ShapeError, ValidationError
from ..models import MaskedLanguageModel, check_tokens

__all__ = [
    "DEFAULT_EVAL_BATCH",
    "all_positions_cross_entropy",
    "coupling_penalty",
    "factor_penalty",
    "field_penalty",
    "masked_cross_entropy",
    "mlm_loss",
    "per_sequence_loss",
    "site_conditional_logits",
]

#: Rows per forward pass when evaluating: sequences of a structural model, masked copies of a
#: contextual one (``batch_size // L`` sequences of ``L`` copies each). Bounding the rows keeps
#: every temporary of a width-64 transformer at L = 20 near 20 MB: larger ones are mapped and
#: unmapped by the allocator on every pass (at 1024 sequences x 20 copies, 420 MB per MLP
#: activation), which cost more system time than the evaluation's arithmetic.
DEFAULT_EVAL_BATCH = 1024


def masked_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    *,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> torch.Tensor:
    """Weighted cross-entropy on the predicted positions only.

    Args:
        logits: ``(B, L, q)``.
        targets: ``(B, L)`` true states ``0..q-1``.
        mask: ``(B, L)`` bool, positions that carry a loss (``None``: all positions).
        weights: ``(B,)`` non-negative sequence weights (``None``: 1).
        reduction: ``"mean"`` (per weighted predicted token), ``"sum"``, or ``"none"``
            (``(B, L)``, zero where not predicted, weights applied).

    Returns:
        The reduced loss (a 0-d tensor, or ``(B, L)`` for ``"none"``).
    """
    if logits.ndim != 3 or targets.shape != logits.shape[:2]:
        raise ShapeError(
            f"logits must be (B, L, q) and targets (B, L); got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
    ce = -logits.log_softmax(-1).gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)  # (B, L)
    k = torch.ones_like(ce) if mask is None else mask.to(ce.dtype)
    if mask is not None and mask.shape != ce.shape:
        raise ShapeError(f"mask must have shape {tuple(ce.shape)}, got {tuple(mask.shape)}")
    if weights is not None:
        if weights.shape != ce.shape[:1]:
            raise ShapeError(
                f"weights must have shape ({ce.shape[0]},), got {tuple(weights.shape)}"
            )
        k = k * weights.to(ce.dtype)[:, None]
    # where() keeps an infinite CE at an unpredicted position from turning 0 * inf into NaN
    contrib = torch.where(k > 0, ce * k, torch.zeros_like(ce))
    if reduction == "none":
        return contrib
    total = contrib.sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        norm = k.sum()
        if float(norm) <= 0:
            raise ValidationError(
                "no predicted position carries a positive weight; nothing to average"
            )
        return total / norm
    raise ValidationError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def all_positions_cross_entropy(
    model: MaskedLanguageModel, tokens: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``sum_m w_m sum_i CE_{m i}`` with every position predicted (= ``-log PL``, weighted).

    For a structural model this is :func:`masked_cross_entropy` (``reduction="sum"``, no mask) of
    its unmasked logits. A model may offer a fused computation of the same quantity as a method
    ``cross_entropy_sum(tokens, weights) -> Tensor | None`` (loss and gradient in one pass, no
    ``(B, L, q)`` temporaries); it is used when it returns a tensor, and the generic path is used
    when it returns ``None`` (e.g. on a device the fused kernel does not support).

    Args:
        model: a structural model (``model.structural``).
        tokens: ``(B, L)`` states ``0..q-1`` (validated by the caller).
        weights: ``(B,)`` sequence weights in the parameters' dtype.

    Raises:
        ValidationError: the model is contextual (its logits at ``i`` see the token at ``i``).
    """
    if not model.structural:
        raise ValidationError(
            f"{type(model).__name__} is contextual: all-positions cross-entropy needs masked "
            "copies; use site_conditional_logits"
        )
    fused = getattr(model, "cross_entropy_sum", None)
    if fused is not None:
        out = fused(tokens, weights)
        if out is not None:
            return out
    return masked_cross_entropy(model.logits(tokens), tokens, None, weights, reduction="sum")


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def site_conditional_logits(
    model: MaskedLanguageModel, tokens: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Logits ``(B, L, q)`` of ``P(s_i | s_rest)`` at every site, each with only site ``i`` unseen.

    A structural model needs one pass over the unmasked tokens. A contextual model (transformer)
    gets ``L`` copies of the batch, copy ``i`` with site ``i`` replaced by ``[MASK]``.
    """
    check_tokens(tokens, model.n_sites, model.n_states, allow_mask=False)
    tokens = tokens.long()
    if model.structural:
        return model.logits(tokens, generator=generator)
    B, L = tokens.shape
    masked = tokens.unsqueeze(0).repeat(L, 1, 1)  # (L, B, L): copy i masks site i
    idx = torch.arange(L, device=tokens.device)
    masked[idx, :, idx] = model.mask_token
    out = model.logits(masked.reshape(L * B, L), generator=generator).reshape(L, B, L, -1)
    return out[idx, :, idx].transpose(0, 1)  # (B, L, q): out[i, b, i]


def _as_tokens(states: Any, device: torch.device | str) -> torch.Tensor:
    if isinstance(states, torch.Tensor):
        return states.to(device=device, dtype=torch.long)
    arr = np.asarray(states)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValidationError(f"states must be integers, got dtype {arr.dtype}")
    return torch.as_tensor(arr.astype(np.int64), device=device)


def per_sequence_loss(
    model: MaskedLanguageModel, states: Any, *, batch_size: int = DEFAULT_EVAL_BATCH
) -> np.ndarray:
    """``(M,)`` per-sequence mean over sites of ``-log P_model(s_i | s_rest)`` (float64, eval mode).

    Args:
        model: any model; evaluated without dropout and without gradients.
        states: ``(M, L)`` integer states (numpy or torch).
        batch_size: rows per forward pass: sequences of a structural model; for a contextual
            model ``max(1, batch_size // L)`` sequences, each as ``L`` masked copies.
    """
    device = next(model.parameters()).device
    tokens = _as_tokens(states, device)
    check_tokens(tokens, model.n_sites, model.n_states, allow_mask=False, name="states")
    if tokens.shape[0] == 0:
        raise ValidationError("no sequences to evaluate (M = 0); pass at least one sequence")
    was_training = model.training
    model.eval()
    out = []
    if not model.structural:
        batch_size = max(1, int(batch_size) // model.n_sites)
    try:
        with torch.no_grad():
            for sl in _batches(tokens.shape[0], batch_size):
                logits = site_conditional_logits(model, tokens[sl])
                ce = masked_cross_entropy(logits, tokens[sl], reduction="none")
                out.append(ce.double().mean(-1).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out)


def mlm_loss(
    model: MaskedLanguageModel,
    states: Any,
    weights: Any = None,
    *,
    batch_size: int = DEFAULT_EVAL_BATCH,
) -> float:
    """All-positions masked-LM loss ``sum_m w_m mean_i CE_{m i} / sum_m w_m`` (= ``-log PL / (W L)``)."""
    per_seq = per_sequence_loss(model, states, batch_size=batch_size)
    if weights is None:
        return float(per_seq.mean())
    w = np.asarray(weights.detach().cpu() if isinstance(weights, torch.Tensor) else weights, float)
    if w.shape != per_seq.shape:
        raise ShapeError(f"weights must have shape ({per_seq.shape[0]},), got {w.shape}")
    if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ValidationError("weights must be finite, non-negative and not all zero")
    return float(w @ per_seq / w.sum())


def coupling_penalty(model: MaskedLanguageModel) -> torch.Tensor:
    """``||beta J||_F^2`` of the model's coupling product (0-d tensor).

    Uses the model's ``coupling_squared_norm()`` when it has one (same value, no ``J``).

    Raises:
        ValidationError: the model has no Potts couplings (a transformer).
    """
    norm = getattr(model, "coupling_squared_norm", None)
    if norm is not None:  # the same norm without forming J
        return norm()
    fn = getattr(model, "coupling_tensor", None)
    if fn is None:
        raise ValidationError(
            f"{type(model).__name__} has no Potts couplings; use weight_decay instead of coupling_l2"
        )
    J = fn()
    return (J * J).sum()


def factor_penalty(model: MaskedLanguageModel) -> torch.Tensor:
    """Sum of squares of the model's factor parameters (``model.factor_parameters()``)."""
    params = model.factor_parameters()
    return torch.stack([(p * p).sum() for p in params]).sum()


def field_penalty(model: MaskedLanguageModel) -> torch.Tensor:
    """Sum of squares of the model's fields (0 if it has none)."""
    params = model.field_parameters()
    if not params:
        p = next(model.parameters())
        return torch.zeros((), dtype=p.dtype, device=p.device)
    return torch.stack([(p * p).sum() for p in params]).sum()
