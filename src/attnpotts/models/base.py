"""The interface every masked language model of attnpotts follows.

A model maps integer tokens ``(B, L)`` (states ``0..q-1``, the ``[MASK]`` token ``q``) to logits
``(B, L, q)`` of the colour at every position. Two kinds exist:

* *structural* models (:class:`~attnpotts.models.FactoredAttention`,
  :class:`~attnpotts.models.FullPotts`): the logits at site ``i`` never depend on the token at
  ``i`` (no self-interaction by construction), so one pass over an unmasked sequence gives every
  site's conditional ``P(s_i | s_rest)``: masked language modelling on all positions is exactly
  pseudo-likelihood;
* *contextual* models (:class:`~attnpotts.models.TransformerEncoder`): the logits at ``i`` see the
  token at ``i``; a site must be replaced by ``[MASK]`` before its prediction is read.

A model whose conditionals are Potts conditionals also follows :class:`PottsParameters`
(``isinstance(model, PottsParameters)``): it exposes ``beta J`` and ``beta h``, so the coupling
L2 penalty, the mapping to Potts models and coupling recovery apply to it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ..errors import ShapeError, ValidationError

__all__ = ["MaskedLanguageModel", "PottsParameters", "check_tokens", "one_hot_states"]


def check_tokens(
    tokens: Any, n_sites: int, n_states: int, *, allow_mask: bool = True, name: str = "tokens"
) -> None:
    """Validate a token tensor ``(B, L)`` of integers in ``0..q`` (``q`` = ``[MASK]`` if allowed).

    The one check of every model and kernel; it reads the tokens' range once (one
    synchronisation on a GPU).

    Raises:
        ValidationError: not a torch integer tensor, or values out of range.
        ShapeError: not two-dimensional, or the wrong length.
    """
    if not isinstance(tokens, torch.Tensor):
        raise ValidationError(
            f"{name} must be a torch integer tensor (B, L), got {type(tokens).__name__}; "
            "convert with torch.as_tensor(states, dtype=torch.long)"
        )
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise ValidationError(f"{name} must be integers, got dtype {tokens.dtype}")
    if tokens.ndim != 2:
        raise ShapeError(
            f"{name} must have shape (B, L) = (batch, {n_sites}), got {tuple(tokens.shape)}"
        )
    if tokens.shape[1] != n_sites:
        raise ShapeError(
            f"{name} have length {tokens.shape[1]} but the model has L = {n_sites} sites; "
            "use sequences of the model's length"
        )
    if not tokens.numel():
        return
    lo, hi = torch.stack(torch.aminmax(tokens)).tolist()  # one read of both
    if lo < 0 or hi > n_states:
        what = f"0..{n_states - 1} (states) or {n_states} ([MASK])" if allow_mask else f"0..{n_states - 1}"
        raise ValidationError(
            f"{name} must lie in {what} for q = {n_states}, got values in {lo}..{hi}; "
            "check the alphabet / number of states of the data against the model's"
        )
    if hi == n_states and not allow_mask:
        raise ValidationError(
            f"{name} hold the [MASK] token {n_states} where states 0..{n_states - 1} are expected "
            "(no [MASK] here: every site is predicted from all the others); unmask them first"
        )


class MaskedLanguageModel(nn.Module):
    """Base class: ``forward(tokens (B, L) long) -> logits (B, L, q)``.

    Subclasses implement :meth:`logits` (no input checks) and set :attr:`structural`.

    Attributes:
        n_sites: sequence length ``L``.
        n_states: number of colours ``q``; the ``[MASK]`` token is ``q``.
        structural: whether the logits at ``i`` are independent of the token at ``i`` by
            construction (then all sites' conditionals come from one unmasked pass).
    """

    structural: bool = False

    def __init__(self, n_sites: int, n_states: int) -> None:
        super().__init__()
        if int(n_sites) < 2:
            raise ValidationError(f"n_sites must be >= 2, got {n_sites}")
        if int(n_states) < 2:
            raise ValidationError(f"n_states must be >= 2, got {n_states}")
        self.n_sites = int(n_sites)
        self.n_states = int(n_states)

    @property
    def mask_token(self) -> int:
        """Id of the ``[MASK]`` input token (``q``)."""
        return self.n_states

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable) that rebuild this model's architecture."""
        raise NotImplementedError

    def logits(
        self, tokens: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Logits ``(B, L, q)`` for validated tokens ``(B, L)``; ``generator`` drives dropout."""
        raise NotImplementedError

    def forward(
        self, tokens: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Validate ``tokens (B, L)`` (states ``0..q-1`` or ``[MASK]`` = ``q``) and return logits ``(B, L, q)``."""
        check_tokens(tokens, self.n_sites, self.n_states)
        return self.logits(tokens.long(), generator=generator)

    def factor_parameters(self) -> list[nn.Parameter]:
        """Parameters that weight decay applies to (couplings' factors; weight matrices)."""
        raise NotImplementedError

    def field_parameters(self) -> list[nn.Parameter]:
        """The Potts fields, if the model has them (penalised by ``field_l2``, not weight decay)."""
        raise NotImplementedError

    def cross_entropy_sum(
        self, tokens: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor | None:
        """A fused ``sum_m w_m sum_i -log P(s_i^m | s_rest^m)`` for a structural model, or ``None``.

        Models that can compute the all-positions loss and its gradient in one pass (no
        ``(B, L, q)`` temporaries) override this; ``None`` (the default, and whenever the fused
        path does not apply) makes :func:`attnpotts.inference.all_positions_cross_entropy` use
        :meth:`logits`. Same value either way.

        Args:
            tokens: ``(B, L)`` states ``0..q-1``.
            weights: ``(B,)`` sequence weights in the parameters' dtype.
        """
        return None

    def n_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


@runtime_checkable
class PottsParameters(Protocol):
    """A model whose conditionals are Potts conditionals, with the parameters exposed.

    ``logits_i(a) = beta h[i, a] + sum_{j != i} beta J[i, j, a, s_j]``. Implemented by
    :class:`~attnpotts.models.FactoredAttention` and :class:`~attnpotts.models.FullPotts`; test
    a model with ``isinstance(model, PottsParameters)`` (the methods' presence is checked).
    """

    def coupling_tensor(self) -> torch.Tensor:
        """``beta J: (L, L, q, q)`` indexed ``[i, j, s_i, s_j]``, zero diagonal blocks."""
        ...

    def field_tensor(self) -> torch.Tensor:
        """``beta h: (L, q)`` (zeros for a model without fields)."""
        ...

    def coupling_squared_norm(self) -> torch.Tensor:
        """``||beta J||_F^2`` over the full ``(L, L, q, q)`` tensor (0-d, differentiable).

        What the ``coupling_l2`` penalty acts on; a model may compute it without forming ``J``
        (the plain form is ``(self.coupling_tensor() ** 2).sum()``).
        """
        ...


def one_hot_states(
    tokens: torch.Tensor, n_states: int, dtype: torch.dtype, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """One-hot ``(B, L, q)`` of ``tokens`` ``(B, L)`` in ``dtype``; the ``[MASK]`` token ``q``
    becomes the zero vector.

    The one builder of the models and kernels: one scatter into a tensor of ``dtype`` on the
    tokens' device (no ``(B, L, q + 1)`` int64 intermediate), into ``out`` (a ``(B, L, q)``
    buffer, overwritten) where a kernel reuses one.
    """
    tok = tokens.long()
    if out is None:
        out = torch.zeros((*tok.shape, n_states), dtype=dtype, device=tok.device)
    else:
        out.zero_()
    known = (tok < n_states).unsqueeze(-1).to(out.dtype)  # 0 for [MASK]: nothing written
    return out.scatter_(-1, tok.clamp(max=n_states - 1).unsqueeze(-1), known)
