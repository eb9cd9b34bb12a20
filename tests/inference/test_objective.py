"""The one objective (Objective, Penalties): values and gradients against plain formulas, float64."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from attnpotts.errors import ValidationError
from attnpotts.inference import Objective, Penalties, masked_cross_entropy
from attnpotts.inference.objectives import full_batch_count
from attnpotts.models import (
    FactoredAttention,
    FullPotts,
    MaskedLanguageModel,
    PottsParameters,
    TransformerEncoder,
)
from attnpotts.training import TrainingConfig, objective_penalties

F64 = torch.float64
L, Q, M = 5, 3, 12


def _tokens(m: int = M, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).integers(0, Q, (m, L)))


def _weights(m: int = M, seed: int = 1) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).uniform(0.2, 2.0, m), dtype=F64)


def _models() -> dict[str, MaskedLanguageModel]:
    out: dict[str, MaskedLanguageModel] = {
        "factored-free": FactoredAttention(L, Q, 2, init_std=0.5, seed=1, dtype=F64),
        "factored-softmax": FactoredAttention(
            L, Q, 2, variant="softmax", key_dim=3, value_rank=2, init_std=0.7, seed=2, dtype=F64
        ),
        "potts": FullPotts(L, Q, init_std=0.4, seed=3, dtype=F64),
        "potts-symmetric": FullPotts(L, Q, symmetric=True, init_std=0.4, seed=4, dtype=F64),
        "transformer": TransformerEncoder(L, Q, width=8, n_heads=2, seed=5, dtype=F64),
    }
    with torch.no_grad():  # non-zero fields, so that field_l2 has something to act on
        for m in out.values():
            for p in m.field_parameters():
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(7), dtype=F64))
    return out


MODELS = list(_models())


def _site_logits(model: MaskedLanguageModel, tokens: torch.Tensor) -> torch.Tensor:
    """Every site's conditional, one site at a time (site ``i`` masked for a contextual model)."""
    cols = []
    for i in range(L):
        x = tokens.clone()
        if not model.structural:
            x[:, i] = model.mask_token
        cols.append(model.logits(x)[:, i])
    return torch.stack(cols, 1)


def _plain_penalty(model: MaskedLanguageModel, cl2: float, wd: float, fl2: float) -> torch.Tensor:
    """The L2 terms from their definitions: ``J`` formed, factors and fields summed."""
    out = torch.zeros((), dtype=F64)
    if cl2:
        assert isinstance(model, PottsParameters)
        J = model.coupling_tensor()
        out = out + 0.5 * cl2 * (J**2).sum()
    out = out + 0.5 * wd * sum((p**2).sum() for p in model.factor_parameters())
    return out + 0.5 * fl2 * sum(((p**2).sum() for p in model.field_parameters()), torch.zeros((), dtype=F64))


@pytest.mark.parametrize("name", MODELS)
def test_all_positions_objective_is_the_weighted_pseudo_likelihood_plus_l2(name: str) -> None:
    model = _models()[name]
    model.eval()
    tokens, w = _tokens(), _weights()
    cl2 = 0.3 if isinstance(model, PottsParameters) else 0.0
    objective = Objective(model, Penalties(coupling_l2=cl2, weight_decay=0.2, field_l2=0.1))
    data, count = objective.data_term(tokens, w)
    logits = _site_logits(model, tokens)
    ce = -logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]  # (M, L)
    expected_data = (w[:, None] * ce).sum()
    torch.testing.assert_close(data, expected_data, rtol=1e-12, atol=0)
    assert float(count) == pytest.approx(float(w.sum()) * L, rel=1e-15)
    value = objective.loss(data, count)
    expected = expected_data / (w.sum() * L) + _plain_penalty(model, cl2, 0.2, 0.1)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)
    # its gradient is the plain formula's
    grads = torch.autograd.grad(value, list(model.parameters()), allow_unused=True)
    plain = torch.autograd.grad(expected, list(model.parameters()), allow_unused=True)
    for g, h in zip(grads, plain, strict=True):
        if h is None:
            assert g is None or float(g.abs().max()) == 0.0
        else:
            torch.testing.assert_close(g, h, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_masked_rows_objective_is_the_masked_cross_entropy(name: str) -> None:
    model = _models()[name]
    model.eval()
    tokens, w = _tokens(), _weights()
    predict = torch.zeros(M, L, dtype=torch.bool)
    predict[torch.arange(M), torch.arange(M) % L] = True
    predict[0, 2] = True  # two predicted positions in one row
    inputs = tokens.masked_fill(predict, model.mask_token)
    data, count = Objective(model).data_term(tokens, w, inputs, predict)
    expected = masked_cross_entropy(model.logits(inputs), tokens, predict, w, reduction="sum")
    torch.testing.assert_close(data, expected, rtol=1e-14, atol=0)
    torch.testing.assert_close(count, (predict.to(F64) * w[:, None]).sum(), rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", ["factored-softmax", "potts-symmetric", "transformer"])
def test_chunked_backward_equals_one_pass_and_the_value_and_gradient_norm(name: str) -> None:
    model = _models()[name]
    model.eval()
    tokens, w = _tokens(), _weights()
    cl2 = 0.3 if isinstance(model, PottsParameters) else 0.0
    objective = Objective(model, Penalties(coupling_l2=cl2, weight_decay=0.2, field_l2=0.1))
    count = full_batch_count(w, None, L)
    model.zero_grad(set_to_none=True)
    data, total = objective.backward(tokens, w, count=count, chunk=5)
    chunked = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    full_data, full_count = objective.data_term(tokens, w)
    loss = objective.loss(full_data, full_count)
    loss.backward()
    whole = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    torch.testing.assert_close(total, loss.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(data, (full_data / full_count).detach(), rtol=1e-12, atol=0)
    for a, b in zip(chunked, whole, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    value, gnorm = objective.value_and_gradient_norm(tokens, w, chunk=4)
    assert value == pytest.approx(float(loss.detach()), rel=1e-12)
    assert gnorm == pytest.approx(math.sqrt(sum(float((g**2).sum()) for g in whole)), rel=1e-10)
    assert all(p.grad is None for p in model.parameters())


def _old_dca_objective(model, tokens, weights, cl2, fl2, wd):  # type: ignore[no-untyped-def]
    """The DCA fit's objective as it was assembled before the one Objective (reference)."""
    from attnpotts.inference.objectives import (
        all_positions_cross_entropy,
        coupling_penalty,
        factor_penalty,
        field_penalty,
    )

    model.zero_grad(set_to_none=True)
    data = all_positions_cross_entropy(model, tokens, weights)
    loss = data / (weights.sum() * tokens.shape[1])
    loss = loss + 0.5 * cl2 * coupling_penalty(model) + 0.5 * fl2 * field_penalty(model)
    loss = loss + 0.5 * wd * factor_penalty(model)
    loss.backward()
    sq = sum(float((p.grad.double() ** 2).sum()) for p in model.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), math.sqrt(sq)


@pytest.mark.parametrize("name", ["factored-softmax", "potts-symmetric"])
def test_dca_report_objective_is_unchanged(name: str) -> None:
    from attnpotts.dca.fit import _objective_and_gradient_norm

    model = _models()[name]
    tokens, w = _tokens(), _weights()
    old = _old_dca_objective(model, tokens, w, 0.3, 0.1, 0.05)
    new = _objective_and_gradient_norm(model, tokens, w, 0.3, 0.1, 0.05)
    assert new[0] == pytest.approx(old[0], rel=1e-13)
    assert new[1] == pytest.approx(old[1], rel=1e-12)


@contextlib.contextmanager
def _parameters_replaced(
    model: torch.nn.Module, values: dict[str, torch.Tensor]
) -> Iterator[None]:
    """Within the block, the model's parameters are the given tensors (gradcheck's inputs)."""
    saved = dict(model.named_parameters())
    try:
        for name, value in values.items():
            owner, _, leaf = name.rpartition(".")
            model.get_submodule(owner)._parameters[leaf] = value  # type: ignore[assignment]
        yield
    finally:
        for name, value in saved.items():
            owner, _, leaf = name.rpartition(".")
            model.get_submodule(owner)._parameters[leaf] = value


@pytest.mark.parametrize("name", MODELS)
def test_gradcheck_of_the_objective(name: str) -> None:
    """The objective's gradient (fused kernels' own backward included) by finite differences."""
    model = _models()[name]
    model.eval()
    tokens, w = _tokens(8), _weights(8)
    cl2 = 0.3 if isinstance(model, PottsParameters) else 0.0
    objective = Objective(model, Penalties(coupling_l2=cl2, weight_decay=0.2, field_l2=0.1))
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def f(*ps: torch.Tensor) -> torch.Tensor:
        with _parameters_replaced(model, dict(zip(names, ps, strict=True))):
            data, count = objective.data_term(tokens, w)
            return objective.loss(data, count)

    assert torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_decoupled_weight_decay_is_left_out_of_the_objective() -> None:
    model = FactoredAttention(L, Q, 2, init_std=0.5, dtype=F64)
    coupled = Penalties(weight_decay=0.2, field_l2=0.1).value(model)
    decoupled = Penalties(weight_decay=0.2, field_l2=0.1, decoupled_weight_decay=True).value(model)
    assert coupled is not None and decoupled is not None
    torch.testing.assert_close(decoupled, _plain_penalty(model, 0.0, 0.0, 0.1), rtol=1e-14, atol=0)
    torch.testing.assert_close(coupled - decoupled, _plain_penalty(model, 0.0, 0.2, 0.0), rtol=1e-12, atol=0)
    assert Penalties().value(model) is None
    assert Penalties(weight_decay=0.2, decoupled_weight_decay=True).value(model) is None
    # the training loop's rule: AdamW applies the decay itself, Adam and L-BFGS in the objective
    assert objective_penalties(TrainingConfig(optimizer="adamw", weight_decay=0.2)).decoupled_weight_decay
    for opt in ("adam", "lbfgs"):
        p = objective_penalties(TrainingConfig(optimizer=opt, weight_decay=0.2, coupling_l2=0.1))  # type: ignore[arg-type]
        assert p == Penalties(coupling_l2=0.1, weight_decay=0.2)


def test_bad_penalties_are_refused() -> None:
    with pytest.raises(ValidationError, match="coupling_l2 must be a finite number >= 0"):
        Penalties(coupling_l2=-1.0)
    with pytest.raises(ValidationError, match="field_l2 must be a finite number >= 0"):
        Penalties(field_l2=math.nan)
    with pytest.raises(ValidationError, match="coupling_l2 needs a model with Potts couplings"):
        Objective(TransformerEncoder(L, Q, width=8, n_heads=2), Penalties(coupling_l2=0.1))
