"""Factored self-attention: one layer whose attention depends on positions, values on colours.

``logits_i(a) = b[i, a] + sum_h sum_{j != i} A_h[i, j] * V_h[a, s_j]``  (``docs/conventions.md``).

Variants of the attention matrices ``A_h: (L, L)``:

* ``"free"``: ``A_h`` is a free matrix with its diagonal forced to zero (one head represents any
  ``Jsite`` exactly);
* ``"softmax"``: ``A_h[i] = softmax_j(Q_h[i] . K_h[j] / sqrt(d))`` over ``j != i`` with learned
  positional vectors ``Q_h, K_h: (L, d)`` (Bhattacharya et al. 2021, AttentionDCA).

Values ``V_h: (q, q)`` are free (``value_rank=None``) or low rank ``V_h = U_h E^T`` through a
token embedding ``E: (q, d_v)`` shared by the heads and per-head read-outs ``U_h: (q, d_v)``.
A ``[MASK]`` token contributes nothing to any other site's logits.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ValidationError
from ..random import SeedLike, torch_generator
from .base import MaskedLanguageModel, one_hot_states
from .kernels import coupling_logits, fused_applies, fused_pseudo_likelihood

__all__ = ["FactoredAttention"]

Variant = Literal["free", "softmax"]


class FactoredAttention(MaskedLanguageModel):
    """One layer of factored self-attention with ``H`` heads (a structural model).

    Args:
        n_sites: ``L``.
        n_states: ``q``.
        n_heads: ``H >= 1``.
        variant: ``"free"`` (zero-diagonal free ``A_h``) or ``"softmax"`` (positional query-key).
        key_dim: width ``d`` of the positional queries and keys (``"softmax"`` only).
        value_rank: ``None`` for full ``V_h: (q, q)``; an integer ``d_v`` for ``V_h = U_h E^T``.
        fields: whether to learn fields ``b: (L, q)``.
        init_std: standard deviation of the Gaussian initialisation of every factor.
        seed: seed of the initialisation (a :class:`torch.Generator` on the CPU).
        dtype: parameter dtype (``torch.float32`` default; ``torch.float64`` for identities).
        device: parameter device (``"cpu"`` default).
    """

    structural = True
    off_diagonal: torch.Tensor
    #: Coupling contraction method of :meth:`logits` (:data:`attnpotts.models.kernels.KERNEL_METHODS`).
    kernel: str = "auto"

    def __init__(
        self,
        n_sites: int,
        n_states: int,
        n_heads: int = 1,
        *,
        variant: Variant = "free",
        key_dim: int = 8,
        value_rank: int | None = None,
        fields: bool = True,
        init_std: float = 0.1,
        seed: SeedLike = 0,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(n_sites, n_states)
        if variant not in ("free", "softmax"):
            raise ValidationError(f"variant must be 'free' or 'softmax', got {variant!r}")
        if int(n_heads) < 1:
            raise ValidationError(f"n_heads must be >= 1, got {n_heads}")
        if int(key_dim) < 1:
            raise ValidationError(f"key_dim must be >= 1, got {key_dim}")
        if value_rank is not None and int(value_rank) < 1:
            raise ValidationError(f"value_rank must be None (full) or >= 1, got {value_rank}")
        if not (init_std >= 0 and math.isfinite(init_std)):
            raise ValidationError(f"init_std must be finite and >= 0, got {init_std}")
        self.n_heads = int(n_heads)
        self.variant: Variant = variant
        self.key_dim = int(key_dim)
        self.value_rank = None if value_rank is None else int(value_rank)
        self.has_fields = bool(fields)
        self.init_std = float(init_std)
        L, q, H = self.n_sites, self.n_states, self.n_heads
        gen = torch_generator(seed)

        def init(*shape: int) -> nn.Parameter:
            x = torch.randn(*shape, generator=gen, dtype=torch.float64) * self.init_std
            return nn.Parameter(x.to(dtype=dtype, device=device))

        self.attention: nn.Parameter | None = None
        self.query: nn.Parameter | None = None
        self.key: nn.Parameter | None = None
        if variant == "free":
            self.attention = init(H, L, L)  # (H, L, L); diagonal ignored
        else:
            self.query = init(H, L, self.key_dim)  # (H, L, d)
            self.key = init(H, L, self.key_dim)  # (H, L, d)
        self.value: nn.Parameter | None = None
        self.value_out: nn.Parameter | None = None
        self.embedding: nn.Parameter | None = None
        if self.value_rank is None:
            self.value = init(H, q, q)  # (H, q, q): V_h[a, b]
        else:
            self.value_out = init(H, q, self.value_rank)  # (H, q, d_v): U_h
            self.embedding = init(q, self.value_rank)  # (q, d_v): E
        self.fields: nn.Parameter | None = None
        if self.has_fields:
            self.fields = nn.Parameter(torch.zeros(L, q, dtype=dtype, device=device))
        self.register_buffer(
            "off_diagonal", 1.0 - torch.eye(L, dtype=dtype, device=device), persistent=False
        )

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this architecture."""
        return {
            "n_sites": self.n_sites,
            "n_states": self.n_states,
            "n_heads": self.n_heads,
            "variant": self.variant,
            "key_dim": self.key_dim,
            "value_rank": self.value_rank,
            "fields": self.has_fields,
            "init_std": self.init_std,
        }

    # ----------------------------------------------------------------- the factors
    def attention_matrices(self) -> torch.Tensor:
        """``A: (H, L, L)`` with zero diagonal (rows sum to one for ``"softmax"``)."""
        if self.variant == "free":
            assert self.attention is not None
            return self.attention * self.off_diagonal
        assert self.query is not None and self.key is not None
        scores = self.query @ self.key.transpose(1, 2) / math.sqrt(self.key_dim)  # (H, L, L)
        eye = torch.eye(self.n_sites, dtype=torch.bool, device=scores.device)
        return scores.masked_fill(eye, float("-inf")).softmax(dim=-1)

    def value_matrices(self) -> torch.Tensor:
        """``V: (H, q, q)`` indexed ``[h, a, b]`` = contribution to colour ``a`` of a neighbour ``b``."""
        if self.value is not None:
            return self.value
        assert self.value_out is not None and self.embedding is not None
        return self.value_out @ self.embedding.T  # (H, q, d_v) @ (d_v, q)

    def field_tensor(self) -> torch.Tensor:
        """``b: (L, q)`` (zeros if the model has no fields)."""
        if self.fields is not None:
            return self.fields
        p = self.attention if self.attention is not None else self.query
        assert p is not None
        return torch.zeros(self.n_sites, self.n_states, dtype=p.dtype, device=p.device)

    def coupling_tensor(self) -> torch.Tensor:
        """``beta J: (L, L, q, q)`` with ``beta J[i, j, a, b] = sum_h A_h[i, j] V_h[a, b]``."""
        return torch.einsum("hij,hab->ijab", self.attention_matrices(), self.value_matrices())

    # ----------------------------------------------------------------- forward
    def _use_coupling_tensor(self, n_batch: int) -> bool:
        """Form ``J`` (``H L^2 q^2`` once) rather than the per-sequence einsum (``H B L^2 q``)?"""
        return n_batch >= self.n_states

    def logits(
        self, tokens: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Logits ``(B, L, q)``; the token at ``i`` never reaches site ``i`` (zero diagonal of ``A``).

        For batches of at least ``q`` sequences the coupling product ``J = sum_h A_h (x) V_h`` is
        formed once and contracted with :func:`attnpotts.models.kernels.coupling_logits`
        (method :attr:`kernel`); smaller batches use the per-sequence einsum. Same values.
        """
        if self._use_coupling_tensor(int(tokens.shape[0])):
            J = self.coupling_tensor()  # (L, L, q, q); zero diagonal blocks from A
            return coupling_logits(
                J.permute(0, 2, 1, 3), tokens, bias=self.fields, method=self.kernel  # type: ignore[arg-type]
            )
        A = self.attention_matrices()  # (H, L, L)
        V = self.value_matrices()  # (H, q, q)
        x = one_hot_states(tokens, self.n_states, A.dtype)  # (B, L, q), [MASK] -> 0
        y = torch.einsum("bjc,hac->bhja", x, V)  # (B, H, L, q): V_h[a, s_j]
        out = torch.einsum("hij,bhja->bia", A, y)  # (B, L, q)
        if self.fields is not None:
            out = out + self.fields
        return out

    def cross_entropy_sum(
        self, tokens: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor | None:
        """``sum_m w_m sum_i -log P(s_i^m | s_rest^m)`` by one fused pass over ``J``, or ``None``.

        As :meth:`attnpotts.models.FullPotts.cross_entropy_sum` (gradients flow from ``J`` to
        the factors); ``None`` when the fused path does not apply (see there) or the batch is
        smaller than ``q``.
        """
        if (
            self.fields is None
            or not self._use_coupling_tensor(int(tokens.shape[0]))
            or not fused_applies(self.fields, tokens, self.kernel, self.n_states)
        ):
            return None
        J = self.coupling_tensor()
        return fused_pseudo_likelihood(J.permute(0, 2, 1, 3), self.fields, tokens, weights)

    def factor_parameters(self) -> list[nn.Parameter]:
        """Parameters that make up the couplings (subject to weight decay on the factors)."""
        names = ("attention", "query", "key", "value", "value_out", "embedding")
        return [p for n in names if (p := getattr(self, n)) is not None]

    def field_parameters(self) -> list[nn.Parameter]:
        """The fields (empty without fields)."""
        return [] if self.fields is None else [self.fields]
