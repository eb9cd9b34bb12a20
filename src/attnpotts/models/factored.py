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

import numpy as np
import torch
from torch import nn

from ..errors import ValidationError
from ..potts.layout import coupling_blocks, couplings_from_factors
from ..random import SeedLike, torch_generator
from .base import MaskedLanguageModel, one_hot_states
from .factored_kernels import (
    factored_logits,
    factored_pseudo_likelihood,
    symmetric_heads,
    transposed_overlap,
)
from .kernels import check_kernel, coupling_logits

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
        value_init_std: that of the values ``V`` (or ``U``) alone (``None``: ``init_std``); ``0``
            starts from zero couplings, as the full model does, with non-uniform attention.
        position_scale: ``c > 0`` (``"softmax"`` only): the parameters :attr:`query` and
            :attr:`key` hold ``Q / c`` and ``K / c`` (:meth:`positions` gives ``Q, K``), so a
            gradient-based optimiser's steps on ``Q, K`` are ``c^2`` times larger relative to
            those on the values and fields (a fixed diagonal preconditioner). The model's
            function and its initial ``Q, K`` (``init_std``) do not depend on ``c``.
        symmetric: couplings ``J[i, j] = sum_h (A_h[i, j] V_h + A_h[j, i] V_h^T) / 2``, so that
            ``J[i, j, a, b] = J[j, i, b, a]``: a Potts model with symmetric couplings, as the full
            model fits for DCA. ``False`` (default): the paper's ``J[i, j] = sum_h A_h[i, j] V_h``,
            whose conditionals are those of a generalised Potts model.
        seed: seed of the initialisation (a :class:`torch.Generator` on the CPU).
        dtype: parameter dtype (``torch.float32`` default; ``torch.float64`` for identities).
        device: parameter device (``"cpu"`` default).
        kernel: how the logits contract the couplings, one of
            :data:`attnpotts.models.kernels.KERNEL_METHODS` (``"auto"``: the fastest exact path
            for the device and dtype); not part of the architecture (:meth:`hyperparameters`).
    """

    structural = True
    off_diagonal: torch.Tensor
    #: Coupling contraction method of :meth:`logits` (:data:`attnpotts.models.kernels.KERNEL_METHODS`).
    kernel: str

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
        value_init_std: float | None = None,
        position_scale: float = 1.0,
        symmetric: bool = False,
        seed: SeedLike = 0,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        kernel: str = "auto",
    ) -> None:
        super().__init__(n_sites, n_states)
        self.kernel = check_kernel(kernel)
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
        if value_init_std is not None and not (value_init_std >= 0 and math.isfinite(value_init_std)):
            raise ValidationError(f"value_init_std must be None or finite and >= 0, got {value_init_std}")
        if not (isinstance(position_scale, int | float) and math.isfinite(position_scale)
                and position_scale > 0):
            raise ValidationError(f"position_scale must be a finite number > 0, got {position_scale!r}")
        if variant != "softmax" and float(position_scale) != 1.0:
            raise ValidationError("position_scale applies to the softmax variant's queries and keys; "
                                  f"use 1 with variant {variant!r}")
        if not isinstance(symmetric, bool):
            raise ValidationError(f"symmetric must be True or False, got {symmetric!r}")
        self.symmetric = symmetric
        self.n_heads = int(n_heads)
        self.variant: Variant = variant
        self.position_scale = float(position_scale)
        self.key_dim = int(key_dim)
        self.value_rank = None if value_rank is None else int(value_rank)
        self.has_fields = bool(fields)
        self.init_std = float(init_std)
        self.value_init_std = None if value_init_std is None else float(value_init_std)
        L, q, H = self.n_sites, self.n_states, self.n_heads
        gen = torch_generator(seed)

        def init(*shape: int, std: float | None = None) -> nn.Parameter:
            x = torch.randn(*shape, generator=gen, dtype=torch.float64)
            x = x * (self.init_std if std is None else std)
            return nn.Parameter(x.to(dtype=dtype, device=device))

        self.attention: nn.Parameter | None = None
        self.query: nn.Parameter | None = None
        self.key: nn.Parameter | None = None
        if variant == "free":
            self.attention = init(H, L, L)  # (H, L, L); diagonal ignored
        else:
            std = self.init_std / self.position_scale
            self.query = init(H, L, self.key_dim, std=std)  # (H, L, d): Q / position_scale
            self.key = init(H, L, self.key_dim, std=std)  # (H, L, d): K / position_scale
        self.value: nn.Parameter | None = None
        self.value_out: nn.Parameter | None = None
        self.embedding: nn.Parameter | None = None
        if self.value_rank is None:
            self.value = init(H, q, q, std=self.value_init_std)  # (H, q, q): V_h[a, b]
        else:
            self.value_out = init(H, q, self.value_rank, std=self.value_init_std)  # (H, q, d_v): U_h
            self.embedding = init(q, self.value_rank)  # (q, d_v): E
        self.fields: nn.Parameter | None = None
        if self.has_fields:
            self.fields = nn.Parameter(torch.zeros(L, q, dtype=dtype, device=device))
        self.register_buffer(
            "off_diagonal", 1.0 - torch.eye(L, dtype=dtype, device=device), persistent=False
        )

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this architecture (``position_scale`` only when not
        1 and ``symmetric`` only when true, so that checkpoints written before they existed still
        match)."""
        extra: dict[str, Any] = {} if self.position_scale == 1.0 else {"position_scale": self.position_scale}
        if self.symmetric:
            extra["symmetric"] = True
        return {
            "n_sites": self.n_sites,
            "n_states": self.n_states,
            "n_heads": self.n_heads,
            "variant": self.variant,
            "key_dim": self.key_dim,
            "value_rank": self.value_rank,
            "fields": self.has_fields,
            "init_std": self.init_std,
            "value_init_std": self.value_init_std,
        } | extra

    # ----------------------------------------------------------------- the factors
    def attention_matrices(self) -> torch.Tensor:
        """``A: (H, L, L)`` with zero diagonal (rows sum to one for ``"softmax"``)."""
        if self.variant == "free":
            assert self.attention is not None
            return self.attention * self.off_diagonal
        assert self.query is not None and self.key is not None
        scores = self.query @ self.key.transpose(1, 2)  # (H, L, L)
        if self.position_scale != 1.0:
            scores = scores * self.position_scale**2
        scores = scores / math.sqrt(self.key_dim)
        eye = torch.eye(self.n_sites, dtype=torch.bool, device=scores.device)
        return scores.masked_fill(eye, float("-inf")).softmax(dim=-1)

    def _positional(self) -> tuple[nn.Parameter, nn.Parameter]:
        if self.query is None or self.key is None:
            raise ValidationError(f"queries and keys exist in the softmax variant only, not {self.variant!r}")
        return self.query, self.key

    def positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries and keys ``Q, K: (H, L, d)`` (the parameters times ``position_scale``)."""
        q, k = self._positional()
        return q * self.position_scale, k * self.position_scale

    def set_positions(self, query: torch.Tensor, key: torch.Tensor) -> None:
        """Set ``Q, K: (H, L, d)`` (stored divided by ``position_scale``), without gradient."""
        q, k = self._positional()
        for name, x in (("query", query), ("key", key)):
            if tuple(x.shape) != tuple(q.shape):
                raise ValidationError(f"{name} must have shape (H, L, d) = {tuple(q.shape)}, got {tuple(x.shape)}")
        with torch.no_grad():
            q.copy_(query.to(q) / self.position_scale)
            k.copy_(key.to(k) / self.position_scale)

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
        """``beta J: (L, L, q, q)`` with ``beta J[i, j, a, b] = sum_h A_h[i, j] V_h[a, b]`` (its
        symmetric part ``(J[i, j, a, b] + J[j, i, b, a]) / 2`` for a :attr:`symmetric` model)."""
        J = couplings_from_factors(self.attention_matrices(), self.value_matrices())
        return 0.5 * (J + J.permute(1, 0, 3, 2)) if self.symmetric else J

    def coupling_squared_norm(self) -> torch.Tensor:
        """``||J||_F^2`` from the factors, without forming ``J`` (``H^2 (L^2 + q^2)`` work).

        ``sum_ij ||sum_h A_h[i, j] V_h||^2 = sum_{h, g} (A_h . A_g) (V_h . V_g)``; for a
        :attr:`symmetric` model ``||(J + J^T) / 2||^2 = (||J||^2 + <J, J^T>) / 2`` with
        ``<J, J^T> = sum_{h, g} (A_h . A_g^T) (V_h . V_g^T)`` (:func:`transposed_overlap`: no
        transposed copy of ``A``).
        """
        A3, V3 = self.attention_matrices(), self.value_matrices()
        A = A3.reshape(self.n_heads, -1)  # (H, L L)
        V = V3.reshape(self.n_heads, -1)  # (H, q q)
        norm = ((A @ A.T) * (V @ V.T)).sum()
        if not self.symmetric:
            return norm
        Vt = V3.transpose(1, 2).reshape(self.n_heads, -1)
        return 0.5 * (norm + (transposed_overlap(A3) * (V @ Vt.T)).sum())

    def frobenius_scores(self, exclude_state: int | None = None, *, block: int = 64) -> np.ndarray:
        """``(L, L)`` Frobenius norms of the zero-sum-gauged, symmetrised ``J[i, j]`` from the factors.

        The same numbers as :func:`attnpotts.evaluation.frobenius_scores` of
        :meth:`coupling_tensor` (``exclude_state`` left out after the gauge), without forming
        ``J``: with ``V~_h`` the double-centred values restricted to the kept states and
        ``a = A[:, i, j]``, ``b = A[:, j, i]``,
        ``||(J_ij + J_ji^T) / 2||^2 = (a G a + b G b + 2 a G' b) / 4``, ``G = <V~_h, V~_g>``,
        ``G' = <V~_h, V~_g^T>`` (``H x H``). Work ``H^2 L^2`` in float64, ``block`` rows at a time.
        A :attr:`symmetric` model's ``J[i, j]`` is that symmetrised block already.
        """
        q = self.n_states
        if exclude_state is not None and not 0 <= int(exclude_state) < q:
            raise ValidationError(f"exclude_state must lie in 0..{q - 1}, got {exclude_state}")
        with torch.no_grad():
            A = self.attention_matrices().detach()  # (H, L, L), working dtype
            V = self.value_matrices().detach().to("cpu", torch.float64)  # (H, q, q)
            Vc = V - V.mean(1, keepdim=True) - V.mean(2, keepdim=True) + V.mean((1, 2), keepdim=True)
            keep = torch.tensor([a != exclude_state for a in range(q)])
            Vk = Vc[:, keep][:, :, keep]
            G = torch.einsum("hab,gab->hg", Vk, Vk)
            Gt = torch.einsum("hab,gba->hg", Vk, Vk)
            L = self.n_sites
            F = np.empty((L, L))
            for i0 in range(0, L, block):
                i1 = min(L, i0 + block)
                a = A[:, i0:i1, :].to("cpu", torch.float64)  # (H, K, L): A[h, i, j]
                b = A[:, :, i0:i1].to("cpu", torch.float64).transpose(1, 2)  # (H, K, L): A[h, j, i]
                aGa = (a * torch.einsum("hg,gkj->hkj", G, a)).sum(0)
                bGb = (b * torch.einsum("hg,gkj->hkj", G, b)).sum(0)
                aGb = (a * torch.einsum("hg,gkj->hkj", Gt, b)).sum(0)
                F[i0:i1] = (0.25 * (aGa + bGb + 2.0 * aGb)).clamp_min(0.0).sqrt().numpy()
        np.fill_diagonal(F, 0.0)
        return F

    # ----------------------------------------------------------------- forward
    def _use_blocked(self, tokens: torch.Tensor) -> bool:
        """The blocked kernels (:mod:`attnpotts.models.factored_kernels`) serve ``kernel="auto"``
        on any device and ``"sparse"`` on the CPU; ``"dense"``/``"dense-bf16"`` form ``J``."""
        p = self.field_tensor()
        if self.kernel == "auto":
            return True
        return self.kernel == "sparse" and p.device.type == "cpu" and p.dtype in (
            torch.float32, torch.float64) and tokens.device.type == "cpu"

    def logits(
        self, tokens: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Logits ``(B, L, q)``; the token at ``i`` never reaches site ``i`` (zero diagonal of ``A``).

        With :attr:`kernel` ``"auto"`` or ``"sparse"``: one block of ``J = sum_h A_h (x) V_h``
        at a time (:func:`attnpotts.models.factored_kernels.factored_logits`); with ``"dense"``
        or ``"dense-bf16"`` and at least ``q`` sequences ``J`` is formed once and contracted
        with :func:`attnpotts.models.kernels.coupling_logits`; smaller batches use the
        per-sequence einsum. Same values.
        """
        if self._use_blocked(tokens):
            return factored_logits(self.attention_matrices(), self.value_matrices(), tokens,
                                   bias=self.fields, symmetric=self.symmetric)
        if int(tokens.shape[0]) >= self.n_states:
            J = self.coupling_tensor()  # (L, L, q, q); zero diagonal blocks from A
            return coupling_logits(
                coupling_blocks(J), tokens, bias=self.fields, method=self.kernel  # type: ignore[arg-type]
            )
        A = self.attention_matrices()  # (H, L, L)
        V = self.value_matrices()  # (H, q, q)
        if self.symmetric:  # (2H, L, L), (2H, q, q)
            A, V = symmetric_heads(A, A.transpose(1, 2), V)
        x = one_hot_states(tokens, self.n_states, A.dtype)  # (B, L, q), [MASK] -> 0
        y = torch.einsum("bjc,hac->bhja", x, V)  # (B, H, L, q): V_h[a, s_j]
        out = torch.einsum("hij,bhja->bia", A, y)  # (B, L, q)
        if self.fields is not None:
            out = out + self.fields
        return out

    def cross_entropy_sum(
        self, tokens: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor | None:
        """``sum_m w_m sum_i -log P(s_i^m | s_rest^m)`` blocked over sites, or ``None``.

        :func:`attnpotts.models.factored_kernels.factored_pseudo_likelihood`: loss and gradient
        in one pass, a block of ``J`` at a time, no per-head activations. ``None`` (the generic
        path through :meth:`logits`) for ``[MASK]`` tokens or a ``"dense"`` kernel choice.
        """
        if (
            not self._use_blocked(tokens)
            or tokens.ndim != 2
            or tokens.numel() == 0
            or int(tokens.max()) >= self.n_states
        ):
            return None
        return factored_pseudo_likelihood(
            self.attention_matrices(), self.value_matrices(), self.field_tensor(), tokens,
            weights.to(self.field_tensor().dtype), symmetric=self.symmetric,
        )

    def factor_parameters(self) -> list[nn.Parameter]:
        """Parameters that make up the couplings (subject to weight decay on the factors)."""
        names = ("attention", "query", "key", "value", "value_out", "embedding")
        return [p for n in names if (p := getattr(self, n)) is not None]

    def field_parameters(self) -> list[nn.Parameter]:
        """The fields (empty without fields)."""
        return [] if self.fields is None else [self.fields]
