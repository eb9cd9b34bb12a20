"""The one training objective: masked cross-entropy (= pseudo-likelihood) plus L2 penalties.

Every fit of attnpotts (the training loop for all models and optimizers, the DCA estimators)
minimises

    loss = sum_{m, i} w_m k_{m i} CE_{m i} / sum_{m, i} w_m k_{m i}  +  penalty

with ``CE_{m i} = -log P_model(s_i^m | tokens^m)``, ``k_{m i} = 1`` on the masked (predicted)
positions and sequence weights ``w_m``. With all positions predicted, the first term is exactly
``-(1/(W L)) log PL`` of the mapped Potts model (``W = sum_m w_m``). :class:`Objective` computes
it for a model (:meth:`Objective.data_term`, :meth:`Objective.penalty`,
:meth:`Objective.backward`); the conventions of the penalty are those of :class:`Penalties`:

    penalty = (coupling_l2 / 2) ||beta J||_F^2 + (weight_decay / 2) sum_factors ||theta||^2
              + (field_l2 / 2) ||beta h||^2

* every coefficient is *per token* (the data term is a mean), so a coefficient ``lambda`` on a
  summed objective ``-log PL + lambda ...`` (plmDCA's form) is ``lambda / (W L)`` here
  (``W = N_eff``); :mod:`attnpotts.dca.regularization` translates the DCA tools' conventions;
* ``coupling_l2`` penalises the coupling *product* ``sum_h A_h (x) V_h`` over the full
  ``(L, L, q, q)`` tensor (both orders of every pair; plmDCA style, invariant under the scale
  gauge ``(A, V) -> (cA, V/c)``), only for models with Potts parameters
  (:class:`~attnpotts.models.PottsParameters`);
* ``weight_decay`` penalises the *factors* (``model.factor_parameters()``: attention,
  queries/keys, values, embeddings; for :class:`~attnpotts.models.FullPotts` the stored ``J``
  itself, for ``symmetric=True`` each pair once): it breaks the scale gauge and favours
  balanced factors, and is not the same regularisation as L2 on the product. Under decoupled
  weight decay (AdamW) the optimizer applies it and it is *not* part of the objective
  (``Penalties.decoupled_weight_decay``);
* ``field_l2`` penalises the fields (``model.field_parameters()``), never weight decay.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ShapeError, ValidationError
from ..models import MaskedLanguageModel, PottsParameters, check_tokens

__all__ = [
    "DEFAULT_EVAL_BATCH",
    "EVAL_CHUNK_BYTES",
    "Objective",
    "Penalties",
    "all_positions_cross_entropy",
    "coupling_penalty",
    "eval_rows",
    "factor_penalty",
    "field_penalty",
    "full_batch_count",
    "masked_copy_logits",
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

#: Largest ``(rows, L, q)`` logits tensor a forward-only evaluation forms at once (bytes): a
#: structural model's ``batch_size`` is lowered to fit it. The final loss of a DCA fit passes the
#: whole alignment as one batch; at ``L = 1000``, ``q = 21``, ``N = 10,000`` that was 0.8 GB of
#: logits plus their log-softmax, more than the fit's evaluations need
#: (:func:`attnpotts.dca.estimate_memory` counts this bound).
EVAL_CHUNK_BYTES = 128 * 1024**2


def eval_rows(batch_size: int, n_sites: int, n_states: int, itemsize: int) -> int:
    """Sequences per forward-only pass of a structural model: ``batch_size`` bounded so that
    their ``(rows, L, q)`` logits take at most :data:`EVAL_CHUNK_BYTES` (at least one row)."""
    return max(1, min(int(batch_size), EVAL_CHUNK_BYTES // (int(n_sites) * int(n_states) * int(itemsize))))


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
    its unmasked logits. A model's fused computation of the same quantity
    (:meth:`~attnpotts.models.MaskedLanguageModel.cross_entropy_sum`: loss and gradient in one
    pass, no ``(B, L, q)`` temporaries) is used when it returns a tensor, the generic path when
    it returns ``None`` (e.g. on a device the fused kernel does not support).

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
    out = model.cross_entropy_sum(tokens, weights)
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
    return masked_copy_logits(model, tokens, generator=generator)


def masked_copy_logits(
    model: MaskedLanguageModel, tokens: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Logits ``(B, L, q)`` at every site from ``L`` masked copies (copy ``i`` masks site ``i``).

    What a contextual model needs for every site's conditional (one forward pass over ``L B``
    rows); ``tokens (B, L)`` are validated long states ``0..q-1``.
    """
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
        batch_size: rows per forward pass: sequences of a structural model (at most
            :func:`eval_rows`); for a contextual model ``max(1, batch_size // L)`` sequences,
            each as ``L`` masked copies.
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
    else:
        itemsize = next(model.parameters()).element_size()
        batch_size = eval_rows(batch_size, model.n_sites, model.n_states, itemsize)
    try:
        with torch.no_grad():
            for sl in _batches(tokens.shape[0], batch_size):
                logits = site_conditional_logits(model, tokens[sl])
                ce = masked_cross_entropy(logits, tokens[sl], reduction="none")
                del logits  # before the next chunk's logits are formed
                out.append(ce.double().mean(-1).cpu().numpy())
                del ce
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

    The model's :meth:`~attnpotts.models.PottsParameters.coupling_squared_norm` (which may avoid
    forming ``J``).

    Raises:
        ValidationError: the model has no Potts couplings (a transformer).
    """
    if not isinstance(model, PottsParameters):
        raise ValidationError(
            f"{type(model).__name__} has no Potts couplings; use weight_decay instead of coupling_l2"
        )
    return model.coupling_squared_norm()


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


# ----------------------------------------------------------------------------------- the objective
def _weighted_count(
    weights: torch.Tensor, predict: torch.Tensor | None, n_sites: int
) -> torch.Tensor:
    """``sum_{m, i} w_m k_{m i}`` of a batch (0-d tensor; all ``n_sites`` positions if no mask)."""
    if predict is None:
        return weights.sum() * n_sites
    return (predict.to(weights.dtype) * weights[:, None]).sum()


def full_batch_count(weights: torch.Tensor, predict: torch.Tensor | None, n_sites: int) -> float:
    """The normaliser ``sum_{m, i} w_m k_{m i}`` of a full-batch objective, as a Python float.

    The one value by which every chunk's data term is divided in :meth:`Objective.backward`
    (the weights' sum in their dtype, times ``L`` in float64 when every position is predicted).
    """
    if predict is None:
        return float(weights.sum()) * n_sites
    return float((predict.to(weights.dtype) * weights[:, None]).sum())


@dataclass(frozen=True)
class Penalties:
    """The L2 terms of the objective, per token (conventions in the module docstring).

    Attributes:
        coupling_l2: ``(coupling_l2 / 2) ||beta J||_F^2`` on the coupling product (only for a
            :class:`~attnpotts.models.PottsParameters` model).
        weight_decay: ``(weight_decay / 2) sum ||theta||^2`` on ``model.factor_parameters()``.
        field_l2: ``(field_l2 / 2) ||beta h||^2`` on ``model.field_parameters()``.
        decoupled_weight_decay: the optimizer applies ``weight_decay`` itself (AdamW's
            ``theta <- theta - lr weight_decay theta``), so it is left out of the objective.
    """

    coupling_l2: float = 0.0
    weight_decay: float = 0.0
    field_l2: float = 0.0
    decoupled_weight_decay: bool = False

    def __post_init__(self) -> None:
        for name in ("coupling_l2", "weight_decay", "field_l2"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValidationError(f"{name} must be a finite number >= 0, got {value!r}")

    def check(self, model: MaskedLanguageModel) -> None:
        """Refuse a penalty the model cannot carry (``coupling_l2`` without Potts couplings)."""
        if self.coupling_l2 > 0 and not isinstance(model, PottsParameters):
            raise ValidationError(
                f"coupling_l2 needs a model with Potts couplings, {type(model).__name__} has none; "
                "use weight_decay instead"
            )

    def value(self, model: MaskedLanguageModel) -> torch.Tensor | None:
        """The penalty of ``model``'s current parameters (0-d, differentiable); ``None`` if no term."""
        terms = []
        if self.coupling_l2 > 0:
            terms.append(0.5 * self.coupling_l2 * coupling_penalty(model))
        if self.weight_decay > 0 and not self.decoupled_weight_decay:
            terms.append(0.5 * self.weight_decay * factor_penalty(model))
        if self.field_l2 > 0:
            terms.append(0.5 * self.field_l2 * field_penalty(model))
        total: torch.Tensor | None = None
        for t in terms:
            total = t if total is None else total + t
        return total


class Objective:
    """The objective of one model: weighted masked cross-entropy plus :class:`Penalties`.

    The training loop (every optimizer and masking policy) and the DCA fits' convergence
    report evaluate it here and nowhere else.

    Args:
        model: any :class:`~attnpotts.models.MaskedLanguageModel`.
        penalties: the L2 terms (default: none).

    Raises:
        ValidationError: ``coupling_l2`` for a model without Potts couplings.
    """

    def __init__(self, model: MaskedLanguageModel, penalties: Penalties | None = None) -> None:
        self.model = model
        self.penalties = Penalties() if penalties is None else penalties
        self.penalties.check(model)

    def logits(
        self,
        targets: torch.Tensor,
        inputs: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Logits ``(R, L, q)`` for a batch: of ``inputs`` (masked rows) if given, else of every
        position of ``targets`` (one pass for a structural model, masked copies otherwise)."""
        model = self.model
        if inputs is not None:
            return model.logits(inputs, generator=generator)
        if model.structural:
            return model.logits(targets, generator=generator)
        return masked_copy_logits(model, targets, generator=generator)

    def data_term(
        self,
        targets: torch.Tensor,
        weights: torch.Tensor,
        inputs: torch.Tensor | None = None,
        predict: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sum_{m, i} w_m k_{m i} CE_{m i}, sum_{m, i} w_m k_{m i})`` of a batch (0-d tensors).

        Args:
            targets: ``(R, L)`` true states.
            weights: ``(R,)`` sequence weights in the parameters' dtype.
            inputs: ``(R, L)`` what the model sees (``[MASK]`` at predicted positions);
                ``None``: every position is predicted, each with only itself unseen.
            predict: ``(R, L)`` bool, the predicted positions (``None``: all).
            generator: drives dropout.
        """
        n_sites = targets.shape[1]
        if inputs is None and predict is None and self.model.structural:
            # all positions of a structural model: the model's fused pseudo-likelihood if it has one
            return all_positions_cross_entropy(self.model, targets, weights), _weighted_count(
                weights, None, n_sites
            )
        logits = self.logits(targets, inputs, generator=generator)
        data = masked_cross_entropy(logits, targets, predict, weights, reduction="sum")
        return data, _weighted_count(weights, predict, n_sites)

    def penalty(self) -> torch.Tensor | None:
        """The penalty at the current parameters (``None`` without any term)."""
        return self.penalties.value(self.model)

    def loss(self, data: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """The objective of a mini-batch: ``data / count + penalty`` (what a step minimises)."""
        loss = data / count
        pen = self.penalty()
        return loss if pen is None else loss + pen

    def backward(
        self,
        targets: torch.Tensor,
        weights: torch.Tensor,
        inputs: torch.Tensor | None = None,
        predict: torch.Tensor | None = None,
        *,
        count: float,
        chunk: int,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-batch objective with its gradient accumulated into the parameters' ``.grad``.

        The data term is evaluated ``chunk`` rows at a time (each divided by ``count``, see
        :func:`full_batch_count`, and back-propagated at once, so memory stays that of one
        chunk), then the penalty.

        Returns:
            ``(data term, objective)``: detached 0-d tensors, the first without the penalty.
        """
        n = targets.shape[0]
        data_total = torch.zeros((), dtype=weights.dtype, device=weights.device)
        for start in range(0, n, max(1, int(chunk))):
            sl = slice(start, min(n, start + max(1, int(chunk))))
            data, _ = self.data_term(
                targets[sl],
                weights[sl],
                None if inputs is None else inputs[sl],
                None if predict is None else predict[sl],
                generator=generator,
            )
            part = data / count
            part.backward()
            data_total = data_total + part.detach()
        total = data_total
        pen = self.penalty()
        if pen is not None:
            pen.backward()
            total = total + pen.detach()
        return data_total, total

    def value_and_gradient_norm(
        self, tokens: torch.Tensor, weights: torch.Tensor, *, chunk: int | None = None
    ) -> tuple[float, float]:
        """The all-positions objective and the Euclidean norm of its gradient (one evaluation).

        Args:
            tokens: ``(M, L)`` validated long states.
            weights: ``(M,)`` sequence weights in the parameters' dtype.
            chunk: rows per pass (``None``: all at once).
        """
        model = self.model
        model.zero_grad(set_to_none=True)
        count = full_batch_count(weights, None, tokens.shape[1])
        with torch.enable_grad():
            _, total = self.backward(
                tokens, weights, count=count, chunk=tokens.shape[0] if chunk is None else chunk
            )
        sq = sum(
            float((p.grad.double() ** 2).sum()) for p in model.parameters() if p.grad is not None
        )
        model.zero_grad(set_to_none=True)
        return float(total), math.sqrt(sq)
