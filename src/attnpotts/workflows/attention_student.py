"""The factored-attention student of the replica scenario, trained with the project's own loop.

A student for :func:`attnpotts.theory.simulate` (``student=fit_attention``): one layer of
:class:`~attnpotts.models.FactoredAttention` (``"free"`` attention, one head, no fields) on
``L = N + 1`` sites, site 0 being the masked site of the scenario and sites ``1..N`` its spins.
The value matrix is fixed to the teacher's ``Ucol`` (not trained); the attention is trained by
:func:`attnpotts.training.train` with masking ``"all"`` and full-batch L-BFGS.

Why this is the scenario's student: with ``V`` fixed, the rows of ``A`` are separate parameters,
so the loss on sites ``1..N`` (whose "labels" are the i.i.d. spins) does not touch row 0. The
loop minimises ``sum CE / (M L) + (weight_decay / 2) |A|^2``; row 0 of that is the scenario's
``sum_mu CE_0 + (lam / 2) |a|^2`` with ``a = sqrt(N) A[0, 1:]`` when
``weight_decay = lam N / (M L)``. The returned ``"row"`` is ``a``.

It lives in ``workflows/`` (the ``theory`` command's simulations use it), a unit that may compose
the layers below it (``theory`` for the data, ``models`` and ``training`` for the fit);
``inference``, which ``training`` imports, must not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..errors import ConvergenceError
from ..theory.simulation import ScenarioData

__all__ = ["fit_attention"]

#: Training defaults: full-batch L-BFGS run to a tight tolerance (the objective is convex in A).
DEFAULT_EPOCHS = 200
DEFAULT_LBFGS_ITER = 50


def fit_attention(
    data: ScenarioData,
    m: int,
    lam: float,
    state: dict[str, Any],
    *,
    config: Any = None,
    device: str | torch.device = "cpu",
    grad_tol: float = 1e-6,
) -> dict[str, np.ndarray]:
    """Train factored attention on the first ``m`` samples of ``data``; see the module docstring.

    Args:
        data: one teacher's data (:func:`attnpotts.theory.generate_data`).
        m: number of training samples; lam: L2 strength on the scenario's scale.
        state: warm-start store shared across calls for the same seed (the attention row).
        config: a :class:`~attnpotts.training.TrainingConfig` to start from (its
            ``weight_decay``, ``masking`` and ``optimizer`` are overridden).
        device: torch device (float64 parameters).
        grad_tol: largest accepted gradient entry of row 0 of the final objective (scaled by
            ``M L``); above it a :class:`~attnpotts.errors.ConvergenceError` is raised.

    Returns:
        ``{"test_logits": (n_test, q), "row": (N,)}``.
    """
    from ..models import FactoredAttention
    from ..training import TrainingConfig, train

    scn = data.scenario
    n, q = data.n_sites, scn.q
    n_pos = n + 1
    tokens = np.column_stack([data.labels[:m], data.spins[:m]])  # (m, L): site 0 is masked
    model = FactoredAttention(
        n_pos,
        q,
        1,
        variant="free",
        fields=False,
        init_std=0.0,
        dtype=torch.float64,
        device=device,
    )
    assert model.attention is not None and model.value is not None
    with torch.no_grad():
        model.value.copy_(torch.as_tensor(scn.ucol, dtype=torch.float64)[None])
        if "attention_row" in state:
            model.attention[0, 0, 1:] = torch.as_tensor(state["attention_row"]) / np.sqrt(n)
    model.value.requires_grad_(False)
    base = (
        config
        if config is not None
        else TrainingConfig(
            max_epochs=DEFAULT_EPOCHS, lbfgs_max_iter=DEFAULT_LBFGS_ITER, tolerance=1e-13
        )
    )
    cfg = replace(
        base,
        optimizer="lbfgs",
        masking="all",
        weight_decay=lam * n / (m * n_pos),
        batch_size=None,
        learning_rate=1.0,
        coupling_l2=0.0,
        field_l2=0.0,
    )
    train(model, tokens, config=cfg, raise_on_divergence=True)
    row = model.attention.detach()[0, 0, 1:].cpu().numpy() * np.sqrt(n)  # a = sqrt(N) A[0, 1:]
    # Check stationarity of row 0 of the scenario's objective, computed here in numpy.
    u = scn.ucol
    onehot = np.eye(q)[data.spins[:m]]  # (m, N, q)
    logits = np.einsum("j,mjb,ab->ma", row, onehot, u) / np.sqrt(n)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(m), data.labels[:m]] -= 1.0
    grad = np.einsum("ma,mjb,ab->j", p, onehot, u) / np.sqrt(n) + lam * row
    if np.abs(grad).max() > grad_tol * max(1.0, m / n):
        raise ConvergenceError(
            f"factored-attention training did not reach the minimiser (max gradient "
            f"{np.abs(grad).max():.3g}); raise max_epochs or lbfgs_max_iter"
        )
    state["attention_row"] = row
    test_onehot = np.eye(q)[data.spins_test]
    test_logits = np.einsum("j,mjb,ab->ma", row, test_onehot, u) / np.sqrt(n)
    return {"test_logits": test_logits, "row": row}
