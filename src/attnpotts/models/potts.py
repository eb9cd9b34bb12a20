"""The full Potts model as a masked language model (plmDCA): free couplings ``J`` and fields ``h``.

``logits_i(a) = h[i, a] + sum_{j != i} J[i, j, a, s_j]`` with ``beta = 1`` absorbed. The diagonal
blocks ``J[i, i]`` are forced to zero in every forward pass, so the token at ``i`` never reaches its
own prediction. ``symmetric=True`` uses ``(J[i, j, a, b] + J[j, i, b, a]) / 2`` (symmetric
pseudo-likelihood); the default is the asymmetric form of asymmetric plmDCA.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import ValidationError
from ..random import SeedLike, torch_generator
from .base import MaskedLanguageModel, one_hot_states

__all__ = ["FullPotts"]


class FullPotts(MaskedLanguageModel):
    """Free couplings ``J: (L, L, q, q)`` (zero diagonal) and fields ``h: (L, q)`` (a structural model).

    Args:
        n_sites: ``L``.
        n_states: ``q``.
        symmetric: tie ``J[i, j, a, b]`` and ``J[j, i, b, a]`` (average in the forward pass).
        fields: whether to learn fields.
        init_std: standard deviation of the Gaussian initialisation of ``J`` (0 is a fine start:
            the pseudo-likelihood is convex in ``(J, h)``).
        seed, dtype, device: as for :class:`~attnpotts.models.FactoredAttention`.
    """

    structural = True
    off_diagonal: torch.Tensor

    def __init__(
        self,
        n_sites: int,
        n_states: int,
        *,
        symmetric: bool = False,
        fields: bool = True,
        init_std: float = 0.0,
        seed: SeedLike = 0,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(n_sites, n_states)
        if not (init_std >= 0 and math.isfinite(init_std)):
            raise ValidationError(f"init_std must be finite and >= 0, got {init_std}")
        self.symmetric = bool(symmetric)
        self.has_fields = bool(fields)
        self.init_std = float(init_std)
        L, q = self.n_sites, self.n_states
        gen = torch_generator(seed)
        J = torch.randn(L, L, q, q, generator=gen, dtype=torch.float64) * self.init_std
        self.couplings = nn.Parameter(J.to(dtype=dtype, device=device))  # (L, L, q, q)
        self.fields: nn.Parameter | None = None
        if self.has_fields:
            self.fields = nn.Parameter(torch.zeros(L, q, dtype=dtype, device=device))
        mask = (1.0 - torch.eye(L, dtype=dtype, device=device))[:, :, None, None]
        self.register_buffer("off_diagonal", mask, persistent=False)  # (L, L, 1, 1)

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this architecture."""
        return {
            "n_sites": self.n_sites,
            "n_states": self.n_states,
            "symmetric": self.symmetric,
            "fields": self.has_fields,
            "init_std": self.init_std,
        }

    def coupling_tensor(self) -> torch.Tensor:
        """Effective ``J: (L, L, q, q)`` (zero diagonal; symmetrised if ``symmetric``)."""
        J = self.couplings * self.off_diagonal
        if self.symmetric:
            J = 0.5 * (J + J.permute(1, 0, 3, 2))
        return J

    def field_tensor(self) -> torch.Tensor:
        """``h: (L, q)`` (zeros without fields)."""
        if self.fields is not None:
            return self.fields
        p = self.couplings
        return torch.zeros(self.n_sites, self.n_states, dtype=p.dtype, device=p.device)

    def logits(
        self, tokens: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Logits ``(B, L, q)``: ``h[i, a] + sum_j J[i, j, a, s_j]`` (``[MASK]`` neighbours add 0)."""
        L, q = self.n_sites, self.n_states
        J = self.coupling_tensor()
        W = J.permute(0, 2, 1, 3).reshape(L * q, L * q)  # W[(i, a), (j, b)]
        x = one_hot_states(tokens, q, J.dtype).reshape(-1, L * q)  # (B, L q)
        out = (x @ W.T).reshape(-1, L, q)
        if self.fields is not None:
            out = out + self.fields
        return out

    def factor_parameters(self) -> list[nn.Parameter]:
        """The couplings (weight decay on them is L2 on ``J`` itself)."""
        return [self.couplings]

    def field_parameters(self) -> list[nn.Parameter]:
        """The fields (empty without fields)."""
        return [] if self.fields is None else [self.fields]
