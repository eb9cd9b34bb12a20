"""The exact mapping between factored attention / full Potts models and Potts models (docs/conventions.md).

Factored attention's conditional is a Potts conditional with

    beta J[i, j, a, b] = sum_h A_h[i, j] V_h[a, b],      beta h[i, a] = b[i, a].

(for ``FactoredAttention(symmetric=True)`` the symmetric part of that ``J``, which is what
``coupling_tensor()`` gives).

Only the products ``beta J`` and ``beta h`` are determined, so the converted models take
``beta = 1`` with the temperature absorbed into ``J`` and ``h`` (compare with a true model through
``true.absorb_beta()``). The attention need not be symmetric, so the result is a
:class:`~attnpotts.potts.ConditionalPotts` (asymmetric pseudo-likelihood); a joint distribution
needs :meth:`ConditionalPotts.symmetrized` (``(J[i, j, a, b] + J[j, i, b, a]) / 2``), which
:func:`to_potts_model` applies and which every result built on it must mention.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ValidationError
from ..models import FactoredAttention, FullPotts, MaskedLanguageModel
from ..potts import ConditionalPotts, PottsModel

__all__ = [
    "attention_from_potts",
    "full_potts_from_conditional",
    "to_conditional_potts",
    "to_potts_model",
]


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def to_conditional_potts(model: MaskedLanguageModel) -> ConditionalPotts:
    """The Potts conditionals (``beta = 1``) of a :class:`FactoredAttention` or :class:`FullPotts`.

    Their ``conditional_logits`` equal the model's logits exactly, and their pseudo-likelihood is
    minus ``M L`` times the model's all-positions MLM loss.

    Raises:
        ValidationError: the model is a transformer (it has no Potts parameters).
    """
    if not isinstance(model, FactoredAttention | FullPotts):
        raise ValidationError(
            f"only FactoredAttention and FullPotts map onto Potts models, got {type(model).__name__}"
        )
    with torch.no_grad():
        J = _np(model.coupling_tensor())
        h = _np(model.field_tensor())
    L = J.shape[0]
    J[np.arange(L), np.arange(L)] = 0.0  # exact zeros (softmax attention gives exact 0 already)
    return ConditionalPotts(h, J, 1.0)


def to_potts_model(model: MaskedLanguageModel) -> PottsModel:
    """The **symmetrised** Potts model ``(J[i, j, a, b] + J[j, i, b, a]) / 2`` of a structural model.

    Its conditionals differ from the trained model's unless the learned couplings were symmetric;
    say so wherever it is used (energies, sampling, enumeration).
    """
    return to_conditional_potts(model).symmetrized()


def attention_from_potts(
    potts: PottsModel,
    *,
    fields: bool | None = None,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> FactoredAttention:
    """A ``"free"`` :class:`FactoredAttention` whose conditionals are those of a factored Potts model.

    ``A_k = Jsite_k`` and ``V_k = beta Ucol_k`` (``K`` heads), ``b = beta h``.

    Args:
        potts: a model built by :meth:`PottsModel.from_factors` (it carries ``site_couplings``).
        fields: whether the attention has fields (default: when ``potts`` has non-zero fields).

    Raises:
        ValidationError: ``potts`` is not factored, or has fields but ``fields=False``.
    """
    site, colour = potts.site_couplings, potts.colour_couplings
    if site is None or colour is None:
        raise ValidationError(
            "the Potts model has no factors (site_couplings/colour_couplings); build it with "
            "PottsModel.from_factors, or represent it with FullPotts (full_potts_from_conditional)"
        )
    has_h = bool(np.any(potts.fields != 0))
    if fields is None:
        fields = has_h
    if has_h and not fields:
        raise ValidationError("the Potts model has non-zero fields; pass fields=True to keep them")
    K, L, _ = site.shape
    q = colour.shape[1]
    model = FactoredAttention(L, q, K, variant="free", fields=fields, dtype=dtype, device=device)
    with torch.no_grad():
        assert model.attention is not None and model.value is not None
        model.attention.copy_(torch.tensor(np.array(site)))
        model.value.copy_(torch.tensor(potts.beta * colour))
        if model.fields is not None:
            model.fields.copy_(torch.tensor(potts.beta * potts.fields))
    return model


def full_potts_from_conditional(
    potts: ConditionalPotts,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> FullPotts:
    """A :class:`FullPotts` holding ``beta J`` and ``beta h`` of any (possibly asymmetric) model."""
    model = FullPotts(potts.n_sites, potts.n_states, fields=True, dtype=dtype, device=device)
    with torch.no_grad():
        model.couplings.copy_(torch.tensor(potts.beta * np.asarray(potts.couplings)))
        assert model.fields is not None
        model.fields.copy_(torch.tensor(potts.beta * np.asarray(potts.fields)))
    return model
