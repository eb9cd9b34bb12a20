"""Masking policies: which positions carry a loss, and what the model sees there.

* ``"all"``: every position is predicted, each with only itself unseen. For structural models
  (factored attention, full Potts) this is one pass over the unmasked sequence and the loss is
  exactly ``-(1/(M L)) log PL``; a transformer needs ``L`` passes (one ``[MASK]`` each).
* ``"one"``: one uniformly random position per sequence is replaced by ``[MASK]`` and predicted,
  redrawn every time the sequence is visited (every epoch): an unbiased estimate of the
  all-positions objective.
* ``"bert"``: every position independently with probability ``rate`` is replaced by ``[MASK]``
  and predicted (all selected positions become ``[MASK]``; no BERT 80/10/10 replacement). The
  other masked positions are hidden from each prediction too, so for ``rate > 1/L`` this is not
  the pseudo-likelihood objective.

No loss is ever put on an unmasked position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import ValidationError

__all__ = ["MASKING_KINDS", "MaskingPolicy"]

MaskingKind = Literal["all", "one", "bert"]
MASKING_KINDS: tuple[str, ...] = ("all", "one", "bert")


@dataclass(frozen=True)
class MaskingPolicy:
    """A masking policy.

    Attributes:
        kind: ``"all"``, ``"one"`` or ``"bert"``.
        rate: masking probability per position for ``"bert"`` (in ``(0, 1]``).
    """

    kind: MaskingKind = "all"
    rate: float = 0.15

    def __post_init__(self) -> None:
        if self.kind not in MASKING_KINDS:
            raise ValidationError(f"masking must be one of {MASKING_KINDS}, got {self.kind!r}")
        if not 0.0 < float(self.rate) <= 1.0:
            raise ValidationError(f"mask rate must lie in (0, 1], got {self.rate}")

    def draw(
        self, tokens: torch.Tensor, mask_token: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and loss mask for a batch (``"one"`` and ``"bert"`` only).

        Args:
            tokens: ``(B, L)`` true states (on any device).
            mask_token: id of ``[MASK]`` (``q``).
            generator: a CPU generator; draws are made on the CPU, then moved to ``tokens.device``.

        Returns:
            ``(inputs (B, L) long, predict (B, L) bool)``: inputs with ``[MASK]`` at the predicted
            positions.
        """
        B, L = tokens.shape
        if self.kind == "one":
            pos = torch.randint(L, (B,), generator=generator)
            predict = torch.zeros(B, L, dtype=torch.bool)
            predict[torch.arange(B), pos] = True
        elif self.kind == "bert":
            predict = torch.rand(B, L, generator=generator) < self.rate
        else:
            raise ValidationError("policy 'all' has no random draw; the loop predicts every site")
        predict = predict.to(tokens.device)
        inputs = tokens.masked_fill(predict, mask_token)
        return inputs, predict
