"""Masking policies: which positions carry a loss, and what the model sees there.

* ``"all"``: every position is predicted, each with only itself unseen. For structural models
  (factored attention, full Potts) this is one pass over the unmasked sequence and the loss is
  exactly ``-(1/(M L)) log PL``; a transformer needs ``L`` passes (one ``[MASK]`` each).
* ``"one"``: one uniformly random position per sequence is replaced by ``[MASK]`` and predicted,
  redrawn every time the sequence is visited (every epoch): an unbiased estimate of the
  all-positions objective (and of its gradient), with one supervised token per sequence.
* ``"copies"``: every sequence enters the batch as ``n_copies`` copies, copy ``c`` with one
  position ``i_c`` replaced by ``[MASK]`` and predicted; the ``i_c`` of a sequence are distinct
  (drawn without replacement, redrawn each visit). An unbiased estimate of the all-positions
  objective with ``n_copies`` supervised tokens per sequence; with ``n_copies = L`` (the
  default, ``None``) it *is* the all-positions objective, deterministic. This gives a
  transformer the supervision per epoch that a structural model gets from ``"all"``, batched
  into few large forward passes.
* ``"bert"``: every position independently with probability ``rate`` is replaced by ``[MASK]``
  and predicted (all selected positions become ``[MASK]``; no BERT 80/10/10 replacement). The
  other masked positions are hidden from each prediction too, so for ``rate > 1/L`` this is
  *not* an unbiased estimate of the pseudo-likelihood objective (it conditions on fewer sites);
  cheapest per supervised token, but it trains a different objective.

No loss is ever put on an unmasked position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import ValidationError
from .config import MASKING_KINDS

__all__ = ["MASKING_KINDS", "MaskingPolicy"]

MaskingKind = Literal["all", "one", "copies", "bert"]


@dataclass(frozen=True)
class MaskingPolicy:
    """A masking policy.

    Attributes:
        kind: ``"all"``, ``"one"``, ``"copies"`` or ``"bert"``.
        rate: masking probability per position for ``"bert"`` (in ``(0, 1]``).
        n_copies: masked copies per sequence for ``"copies"`` (``None``: ``L``, every position).
    """

    kind: MaskingKind = "all"
    rate: float = 0.15
    n_copies: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in MASKING_KINDS:
            raise ValidationError(f"masking must be one of {MASKING_KINDS}, got {self.kind!r}")
        if not 0.0 < float(self.rate) <= 1.0:
            raise ValidationError(f"mask rate must lie in (0, 1], got {self.rate}")
        if self.n_copies is not None and int(self.n_copies) < 1:
            raise ValidationError(
                f"n_mask_copies must be None (all L positions) or >= 1, got {self.n_copies}"
            )

    def copies(self, n_sites: int) -> int:
        """Rows per sequence in a batch: ``min(n_copies, L)`` for ``"copies"``, else 1."""
        if self.kind != "copies":
            return 1
        return n_sites if self.n_copies is None else min(int(self.n_copies), n_sites)

    def positions(self, batch: int, n_sites: int, generator: torch.Generator) -> torch.Tensor:
        """``(batch, k)`` distinct masked positions per sequence of ``"copies"`` (``k`` = copies).

        ``k = L`` gives ``0..L-1`` in order without a random draw.
        """
        k = self.copies(n_sites)
        if k >= n_sites:
            return torch.arange(n_sites).expand(batch, n_sites)
        return torch.rand(batch, n_sites, generator=generator).argsort(dim=1)[:, :k]

    def draw(
        self, tokens: torch.Tensor, mask_token: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and loss mask for a batch (``"one"``, ``"copies"`` and ``"bert"``).

        Args:
            tokens: ``(B, L)`` true states (on any device).
            mask_token: id of ``[MASK]`` (``q``).
            generator: a CPU generator; draws are made on the CPU, then moved to ``tokens.device``.

        Returns:
            ``(inputs (R, L) long, predict (R, L) bool)``: inputs with ``[MASK]`` at the predicted
            positions; ``R = B`` except for ``"copies"``, where ``R = B k`` and rows
            ``b k .. b k + k - 1`` are the copies of sequence ``b`` (targets:
            ``tokens.repeat_interleave(k, 0)``).
        """
        B, L = tokens.shape
        if self.kind == "one":
            pos = torch.randint(L, (B,), generator=generator)
            predict = torch.zeros(B, L, dtype=torch.bool)
            predict[torch.arange(B), pos] = True
        elif self.kind == "copies":
            pos = self.positions(B, L, generator).reshape(-1)  # (B k,)
            predict = torch.zeros(pos.shape[0], L, dtype=torch.bool)
            predict[torch.arange(pos.shape[0]), pos] = True
            tokens = tokens.repeat_interleave(self.copies(L), dim=0)
        elif self.kind == "bert":
            predict = torch.rand(B, L, generator=generator) < self.rate
        else:
            raise ValidationError("policy 'all' has no random draw; the loop predicts every site")
        predict = predict.to(tokens.device)
        inputs = tokens.masked_fill(predict, mask_token)
        return inputs, predict
