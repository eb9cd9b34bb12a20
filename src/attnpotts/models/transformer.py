"""A standard (vanilla) transformer encoder for masked language modelling (docs/conventions.md).

Token embeddings (``q`` colours plus ``[MASK]``) + learned positional embeddings, ``n_layers``
pre-layer-norm blocks ``x + MHA(LN(x))``, ``x + MLP(LN(x))`` with bidirectional multi-head
attention (weights depend on content and position), a final layer norm and a linear read-out to
``q`` logits. Dropout draws from an explicit :class:`torch.Generator` passed to ``forward`` (no
global random state); without a generator, or in ``eval()`` mode, there is no dropout.

This model is *contextual*: the logits at ``i`` see the token at ``i``, so a site's token must be
replaced by ``[MASK]`` before its prediction is read (the training loop and
:func:`attnpotts.inference.masked_conditional_logits` do so).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import ValidationError
from ..random import SeedLike, torch_generator
from .base import MaskedLanguageModel

__all__ = ["TransformerEncoder"]

#: Width of the MLP hidden layer as a multiple of the model width (as in GPT/BERT).
MLP_EXPANSION = 4


def _dropout(
    x: torch.Tensor, p: float, generator: torch.Generator | None, active: bool
) -> torch.Tensor:
    """Inverted dropout whose mask comes from ``generator`` (identity if not active)."""
    if not active or p == 0.0 or generator is None:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= p
    return x * keep / (1.0 - p)


class _Block(nn.Module):
    def __init__(self, width: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, MLP_EXPANSION * width)
        self.fc2 = nn.Linear(MLP_EXPANSION * width, width)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        B, L, D = x.shape
        H = self.n_heads
        active = self.training
        q, k, v = self.qkv(self.norm1(x)).split(D, dim=-1)  # each (B, L, D)
        q = q.view(B, L, H, D // H).transpose(1, 2)  # (B, H, L, D/H)
        k = k.view(B, L, H, D // H).transpose(1, 2)
        v = v.view(B, L, H, D // H).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)  # (B, H, L, L)
        att = _dropout(att.softmax(dim=-1), self.dropout, generator, active)
        y = (att @ v).transpose(1, 2).reshape(B, L, D)
        x = x + _dropout(self.proj(y), self.dropout, generator, active)
        h = self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))
        return x + _dropout(h, self.dropout, generator, active)


class TransformerEncoder(MaskedLanguageModel):
    """Vanilla bidirectional transformer encoder with a ``[MASK]`` token (a contextual model).

    Args:
        n_sites: ``L``.
        n_states: ``q`` (the embedding table has ``q + 1`` rows; row ``q`` is ``[MASK]``).
        n_layers: number of blocks ``>= 1``.
        n_heads: attention heads per block; must divide ``width``.
        width: model width ``D``.
        dropout: dropout rate in ``[0, 1)`` on attention weights and residual branches.
        seed: seed of the initialisation (Gaussian, std 0.02 as in GPT-2).
        dtype, device: parameter dtype and device.
    """

    structural = False

    def __init__(
        self,
        n_sites: int,
        n_states: int,
        *,
        n_layers: int = 1,
        n_heads: int = 4,
        width: int = 64,
        dropout: float = 0.0,
        seed: SeedLike = 0,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(n_sites, n_states)
        if int(n_layers) < 1:
            raise ValidationError(f"n_layers must be >= 1, got {n_layers}")
        if int(n_heads) < 1 or int(width) < 1 or int(width) % int(n_heads):
            raise ValidationError(
                f"width must be a positive multiple of n_heads, got width={width}, n_heads={n_heads}"
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValidationError(f"dropout must lie in [0, 1), got {dropout}")
        self.n_layers, self.n_heads, self.width = int(n_layers), int(n_heads), int(width)
        self.dropout = float(dropout)
        self.token_embedding = nn.Embedding(self.n_states + 1, self.width)
        self.position_embedding = nn.Parameter(torch.zeros(self.n_sites, self.width))
        self.blocks = nn.ModuleList(
            [_Block(self.width, self.n_heads, self.dropout) for _ in range(self.n_layers)]
        )
        self.norm = nn.LayerNorm(self.width)
        self.readout = nn.Linear(self.width, self.n_states)
        self._initialise(seed)
        self.to(dtype=dtype, device=device)

    def _initialise(self, seed: SeedLike) -> None:
        gen = torch_generator(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "norm" in name:
                    p.copy_(torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p))
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.02)

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this architecture."""
        return {
            "n_sites": self.n_sites,
            "n_states": self.n_states,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "width": self.width,
            "dropout": self.dropout,
        }

    def logits(
        self, tokens: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Logits ``(B, L, q)`` of the (possibly masked) token sequence ``(B, L)``."""
        x = self.token_embedding(tokens) + self.position_embedding  # (B, L, D)
        x = _dropout(x, self.dropout, generator, self.training)
        for block in self.blocks:
            x = block(x, generator)
        return self.readout(self.norm(x))

    def factor_parameters(self) -> list[nn.Parameter]:
        """Weight matrices and embeddings (subject to weight decay); not biases or layer norms."""
        return [p for n, p in self.named_parameters() if not n.endswith("bias") and "norm" not in n]

    def field_parameters(self) -> list[nn.Parameter]:
        """A transformer has no Potts fields."""
        return []
