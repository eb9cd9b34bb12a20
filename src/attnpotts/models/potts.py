"""The full Potts model as a masked language model (plmDCA): free couplings ``J`` and fields ``h``.

``logits_i(a) = h[i, a] + sum_{j != i} J[i, j, a, s_j]`` with ``beta = 1`` absorbed. The diagonal
blocks ``J[i, i]`` are forced to zero in every forward pass, so the token at ``i`` never reaches its
own prediction. ``symmetric=True`` ties ``J[j, i, b, a] = J[i, j, a, b]`` (symmetric
pseudo-likelihood) and stores only the pairs ``i < j`` (half the memory of the parameters, their
gradients and the optimizer's state); the default is the asymmetric form of asymmetric plmDCA.

Layout of the parameter ``couplings``: ``(L, L, q, q)`` indexed ``[i, j, a, b]`` (diagonal blocks
ignored) for ``symmetric=False``; ``(L (L - 1) / 2, q, q)`` for ``symmetric=True``, row ``p`` holding
``J[i_p, j_p]`` for the pairs ``(i_p, j_p)`` of ``torch.triu_indices(L, L, offset=1)`` (row-major
upper triangle; the packed layout of :mod:`attnpotts.potts.layout`, converted by ``pack_pairs`` /
``unpack_pairs``). :meth:`FullPotts.coupling_tensor` always returns the full ``(L, L, q, q)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import ValidationError
from ..potts.layout import (
    coupling_blocks,
    pack_pairs,
    pair_indices,
    transpose_couplings,
    unpack_pairs,
)
from ..random import SeedLike, torch_generator
from .base import MaskedLanguageModel
from .kernels import (
    PairWorkspace,
    check_kernel,
    coupling_logits,
    fused_applies,
    fused_pair_pseudo_likelihood,
    fused_pseudo_likelihood,
    sum_of_squares,
)

__all__ = ["FullPotts"]


class _SquaredNorm(torch.autograd.Function):
    """``||T||^2`` (0-d) of a CPU float tensor in one pass; gradient ``2 g T``.

    What ``(T * T).sum()`` computes (the value summed in float64, :func:`sum_of_squares`; the
    gradient bit for bit, since autograd's ``g T + g T`` is ``2 g T`` exactly) without its
    temporaries: ``T * T`` in the forward pass and two products plus their sum in the backward
    pass, each the size of ``T`` (the coupling penalty runs every evaluation).
    """

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(t)
        return torch.tensor(sum_of_squares(t), dtype=t.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
        (t,) = ctx.saved_tensors
        return torch.mul(t, 2.0 * grad_out)


class FullPotts(MaskedLanguageModel):
    """Free couplings ``J: (L, L, q, q)`` (zero diagonal) and fields ``h: (L, q)`` (a structural model).

    Args:
        n_sites: ``L``.
        n_states: ``q``.
        symmetric: tie ``J[j, i, b, a] = J[i, j, a, b]`` (only the upper triangle is stored).
        fields: whether to learn fields.
        init_std: standard deviation of the Gaussian initialisation of ``J`` (0 is a fine start:
            the pseudo-likelihood is convex in ``(J, h)``). With ``symmetric=True`` a full
            Gaussian ``(L, L, q, q)`` is drawn and symmetrised, ``(C[i, j] + C[j, i]^T) / 2``.
        seed, dtype, device: as for :class:`~attnpotts.models.FactoredAttention`.
        kernel: how the logits contract the couplings, one of
            :data:`attnpotts.models.kernels.KERNEL_METHODS` (``"auto"``: the fastest exact path
            for the device and dtype); not part of the architecture (:meth:`hyperparameters`).
    """

    structural = True
    off_diagonal: torch.Tensor
    pairs: torch.Tensor
    #: Coupling contraction method of :meth:`logits` (:data:`attnpotts.models.kernels.KERNEL_METHODS`).
    kernel: str

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
        kernel: str = "auto",
    ) -> None:
        super().__init__(n_sites, n_states)
        self.kernel = check_kernel(kernel)
        if not (init_std >= 0 and math.isfinite(init_std)):
            raise ValidationError(f"init_std must be finite and >= 0, got {init_std}")
        self.symmetric = bool(symmetric)
        self.has_fields = bool(fields)
        self.init_std = float(init_std)
        L, q = self.n_sites, self.n_states
        gen = torch_generator(seed)
        if self.symmetric:
            # (2, P): the pairs i < j, row-major, kept on the device for unpack_pairs
            pairs = torch.stack(pair_indices(L, torch.zeros(0, device=device)))
            P = int(pairs.shape[1])
            if self.init_std > 0:
                C = torch.randn(L, L, q, q, generator=gen, dtype=torch.float64) * self.init_std
                J = 0.5 * (pack_pairs(C) + pack_pairs(transpose_couplings(C)))
                del C
            else:
                J = torch.zeros(P, q, q, dtype=torch.float64)
            self.register_buffer("pairs", pairs, persistent=False)
        else:
            J = torch.randn(L, L, q, q, generator=gen, dtype=torch.float64) * self.init_std
        # (L, L, q, q), or (P, q, q) upper-triangle pairs if symmetric (module docstring)
        self.couplings = nn.Parameter(J.to(dtype=dtype, device=device))
        self.fields: nn.Parameter | None = None
        if self.has_fields:
            self.fields = nn.Parameter(torch.zeros(L, q, dtype=dtype, device=device))
        mask = (1.0 - torch.eye(L, dtype=dtype, device=device))[:, :, None, None]
        self.register_buffer("off_diagonal", mask, persistent=False)  # (L, L, 1, 1)
        #: buffers of the fused symmetric pass (created on first use; see cross_entropy_sum)
        self._pair_workspace: PairWorkspace | None = None

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
        """Effective ``J: (L, L, q, q)`` (zero diagonal; ``J[j, i] = J[i, j]^T`` if ``symmetric``)."""
        if not self.symmetric:
            return self.couplings * self.off_diagonal
        # one full-size tensor; autograd gathers both halves back into the packed (P, q, q)
        return unpack_pairs(self.couplings, self.n_sites, (self.pairs[0], self.pairs[1]))

    def field_tensor(self) -> torch.Tensor:
        """``h: (L, q)`` (zeros without fields)."""
        if self.fields is not None:
            return self.fields
        p = self.couplings
        return torch.zeros(self.n_sites, self.n_states, dtype=p.dtype, device=p.device)

    def logits(
        self, tokens: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Logits ``(B, L, q)``: ``h[i, a] + sum_j J[i, j, a, s_j]`` (``[MASK]`` neighbours add 0).

        Computed by :func:`attnpotts.models.kernels.coupling_logits` with method :attr:`kernel`
        (sparse gather/scatter on the CPU, one-hot product elsewhere; same autograd semantics).
        """
        J = self.coupling_tensor()  # (L, L, q, q)
        return coupling_logits(
            coupling_blocks(J), tokens, bias=self.fields, method=self.kernel  # type: ignore[arg-type]
        )

    def cross_entropy_sum(
        self, tokens: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor | None:
        """``sum_m w_m sum_i -log P(s_i^m | s_rest^m)`` by one fused pass, or ``None``.

        The all-positions masked cross-entropy (= negative weighted log pseudo-likelihood) with
        its gradient for ``J`` and ``h`` computed in the same pass
        (:func:`attnpotts.models.kernels.fused_pseudo_likelihood`). Returns ``None`` when the
        fused path does not apply (not on the CPU in float32/float64, ``kernel`` not
        ``"auto"``/``"sparse"``, no fields, or ``[MASK]`` tokens): callers then use
        :meth:`logits` and :func:`attnpotts.inference.objectives.masked_cross_entropy`.

        Args:
            tokens: ``(B, L)`` states ``0..q-1``.
            weights: ``(B,)`` sequence weights in the parameters' dtype.
        """
        if self.fields is None or not fused_applies(self.couplings, tokens, self.kernel, self.n_states):
            return None
        if self.symmetric:
            # the stored triangle goes straight to the kernel; its full-size buffers are kept
            # on the model and reused by every evaluation (no (L q)^2 allocation per call)
            ws = self._pair_workspace
            if ws is None or not ws.matches(self.n_sites, self.n_states, self.couplings.dtype):
                ws = PairWorkspace(self.n_sites, self.n_states, self.couplings.dtype)
                self._pair_workspace = ws
            return fused_pair_pseudo_likelihood(self.couplings, self.fields, tokens, weights, ws)
        J = self.coupling_tensor()
        return fused_pseudo_likelihood(
            coupling_blocks(J), self.fields, tokens, weights, symmetric=self.symmetric
        )

    def coupling_squared_norm(self) -> torch.Tensor:
        """``||J||_F^2`` over the full ``(L, L, q, q)`` tensor without forming it.

        Symmetric: every stored pair appears twice in ``J``; otherwise the diagonal blocks are
        left out.
        """
        T = self.couplings
        if self.symmetric and T.device.type == "cpu" and T.dtype in (torch.float32, torch.float64):
            return 2.0 * _SquaredNorm.apply(T)
        if self.symmetric:
            return 2.0 * (T * T).sum()
        return (T * T * self.off_diagonal).sum()

    def factor_parameters(self) -> list[nn.Parameter]:
        """The couplings (weight decay on them is L2 on ``J`` itself)."""
        return [self.couplings]

    def field_parameters(self) -> list[nn.Parameter]:
        """The fields (empty without fields)."""
        return [] if self.fields is None else [self.fields]
