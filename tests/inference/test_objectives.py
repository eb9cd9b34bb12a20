"""Objectives, penalties, the optimal loss and excess losses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.inference import (
    attention_from_potts,
    coupling_penalty,
    estimate_mean,
    excess_loss,
    factor_penalty,
    field_penalty,
    full_potts_from_conditional,
    masked_cross_entropy,
    mlm_loss,
    model_loss,
    optimal_loss,
    per_sequence_loss,
    true_model_loss,
)
from attnpotts.models import FactoredAttention, FullPotts, TransformerEncoder
from attnpotts.potts import ExactPotts, PottsModel

F64 = torch.float64


def _true_model(L: int = 5, q: int = 3, beta: float = 0.8, seed: int = 0) -> PottsModel:
    rng = np.random.default_rng(seed)
    site = rng.normal(size=(L, L))
    site = (site + site.T) / 2
    np.fill_diagonal(site, 0)
    colour = rng.normal(size=(q, q))
    colour = (colour + colour.T) / 2
    return PottsModel.from_factors(site, colour, fields=rng.normal(size=(L, q)) * 0.3, beta=beta)


def test_masked_cross_entropy_by_hand() -> None:
    logits = torch.tensor([[[0.0, 1.0], [2.0, 0.0]], [[1.0, 1.0], [0.0, 3.0]]], dtype=F64)
    targets = torch.tensor([[1, 0], [0, 1]])
    mask = torch.tensor([[True, False], [True, True]])
    w = torch.tensor([2.0, 0.5], dtype=F64)
    ce = -torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
    expected = (2 * ce[0, 0] + 0.5 * ce[1, 0] + 0.5 * ce[1, 1]) / (2 + 0.5 + 0.5)
    got = masked_cross_entropy(logits, targets, mask, w)
    torch.testing.assert_close(got, expected)
    none = masked_cross_entropy(logits, targets, mask, w, reduction="none")
    assert none[0, 1] == 0
    torch.testing.assert_close(
        masked_cross_entropy(logits, targets, mask, w, reduction="sum"), none.sum()
    )


def test_masked_cross_entropy_ignores_infinite_loss_at_unpredicted_positions() -> None:
    logits = torch.tensor([[[0.0, -float("inf")], [0.0, 0.0]]])
    targets = torch.tensor([[1, 0]])
    got = masked_cross_entropy(logits, targets, torch.tensor([[False, True]]))
    assert got.item() == pytest.approx(np.log(2))


def test_masked_cross_entropy_errors() -> None:
    with pytest.raises(ShapeError):
        masked_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValidationError, match="no predicted position"):
        masked_cross_entropy(
            torch.zeros(1, 2, 2),
            torch.zeros(1, 2, dtype=torch.long),
            torch.zeros(1, 2, dtype=torch.bool),
        )
    with pytest.raises(ShapeError, match="weights"):
        masked_cross_entropy(
            torch.zeros(1, 2, 2), torch.zeros(1, 2, dtype=torch.long), weights=torch.ones(3)
        )


def test_optimal_loss_weighted_by_exact_probabilities_is_the_conditional_entropy() -> None:
    true = _true_model()
    exact = ExactPotts(true)
    est = optimal_loss(true, exact.states, exact.probabilities)
    assert est.mean == pytest.approx(exact.conditional_entropy(), rel=1e-12)
    # the true model's own loss has the same expectation (cross-entropy of P with itself)
    own = true_model_loss(true, exact.states, exact.probabilities)
    assert own.mean == pytest.approx(est.mean, rel=1e-12)


def test_optimal_loss_on_samples_agrees_within_its_standard_error() -> None:
    true = _true_model(seed=1)
    exact = ExactPotts(true)
    samples = exact.sample(4000, seed=3)
    est = optimal_loss(true, samples)
    assert abs(est.mean - exact.conditional_entropy()) < 4 * est.stderr
    assert est.n == 4000


def test_exact_model_has_zero_excess_and_a_learned_model_positive_excess() -> None:
    true = _true_model(seed=2)
    exact = ExactPotts(true)
    samples = exact.sample(500, seed=4)
    perfect = attention_from_potts(true)
    ex = excess_loss(perfect, true, samples)
    assert abs(ex.mean) < 1e-12
    wrong = FullPotts(5, 3, init_std=0.3, dtype=F64)
    learned = model_loss(wrong, samples)
    ex2 = excess_loss(wrong, true, samples)
    assert ex2.mean == pytest.approx(learned.mean - true_model_loss(true, samples).mean, rel=1e-12)
    # in expectation the excess is a KL divergence: positive
    ex_exact = excess_loss(wrong, true, exact.states, exact.probabilities)
    assert ex_exact.mean > 0
    # for a model close to the truth the paired standard error is much smaller than the loss's
    near = full_potts_from_conditional(true)
    with torch.no_grad():
        near.couplings.add_(
            0.01
            * torch.randn(
                near.couplings.shape, generator=torch.Generator().manual_seed(0), dtype=F64
            )
        )
    assert excess_loss(near, true, samples).stderr < 0.2 * model_loss(near, samples).stderr


def test_estimate_mean_matches_numpy_for_unit_weights() -> None:
    x = np.random.default_rng(0).normal(size=50)
    est = estimate_mean(x)
    assert est.mean == pytest.approx(x.mean())
    assert est.stderr == pytest.approx(x.std(ddof=1) / np.sqrt(50))
    assert np.isnan(estimate_mean([1.0]).stderr)
    with pytest.raises(ShapeError):
        estimate_mean(np.zeros((0,)))
    with pytest.raises(ValidationError):
        estimate_mean([1.0, 2.0], [-1.0, 1.0])


def test_coupling_penalty_is_invariant_under_the_scale_gauge_but_factor_penalty_is_not() -> None:
    model = FactoredAttention(5, 3, 2, dtype=F64, init_std=0.5)
    before_J, before_f = coupling_penalty(model).item(), factor_penalty(model).item()
    with torch.no_grad():
        model.attention.mul_(3.0)  # type: ignore[union-attr]
        model.value.div_(3.0)  # type: ignore[union-attr]
    assert coupling_penalty(model).item() == pytest.approx(before_J, rel=1e-12)
    assert factor_penalty(model).item() != pytest.approx(before_f, rel=1e-3)
    J = model.coupling_tensor()
    assert coupling_penalty(model).item() == pytest.approx((J**2).sum().item())
    assert field_penalty(FactoredAttention(5, 3, fields=False)).item() == 0.0


def test_coupling_penalty_needs_couplings() -> None:
    with pytest.raises(ValidationError, match="weight_decay"):
        coupling_penalty(TransformerEncoder(5, 3, width=8, n_heads=2))


def test_per_sequence_loss_and_errors() -> None:
    model = FullPotts(5, 3, init_std=0.2, dtype=F64)
    states = np.random.default_rng(0).integers(0, 3, (20, 5))
    per = per_sequence_loss(model, states, batch_size=7)
    assert per.shape == (20,)
    assert mlm_loss(model, states) == pytest.approx(per.mean())
    with pytest.raises(ValidationError, match="M = 0"):
        per_sequence_loss(model, np.zeros((0, 5), dtype=int))
    with pytest.raises(ShapeError, match="length 4"):
        per_sequence_loss(model, np.zeros((3, 4), dtype=int))
    with pytest.raises(ValidationError, match="integers"):
        per_sequence_loss(model, np.zeros((3, 5)))
    with pytest.raises(ShapeError, match="weights"):
        mlm_loss(model, states, np.ones(3))


def test_forward_only_chunks_are_bounded_in_bytes_and_do_not_change_the_loss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``eval_rows`` caps a structural model's rows by the logits' bytes; chunking is exact."""
    from attnpotts.inference import objectives

    assert objectives.eval_rows(10_000, 1000, 21, 4) == objectives.EVAL_CHUNK_BYTES // (1000 * 21 * 4)
    assert objectives.eval_rows(7, 1000, 21, 4) == 7
    assert objectives.eval_rows(10, 10**6, 10**3, 8) == 1  # at least one row
    model = FactoredAttention(6, 4, 2, variant="softmax", key_dim=3, init_std=1.0, seed=1, dtype=torch.float64)
    states = np.random.default_rng(0).integers(0, 4, size=(50, 6))
    whole = per_sequence_loss(model, states, batch_size=50)
    monkeypatch.setattr(objectives, "EVAL_CHUNK_BYTES", 3 * 6 * 4 * 8)  # three sequences per pass
    assert objectives.eval_rows(50, 6, 4, 8) == 3
    rows: list[int] = []
    forward = objectives.site_conditional_logits

    def counted(m: Any, tokens: torch.Tensor, **kw: Any) -> torch.Tensor:
        rows.append(int(tokens.shape[0]))
        return forward(m, tokens, **kw)

    monkeypatch.setattr(objectives, "site_conditional_logits", counted)
    np.testing.assert_allclose(per_sequence_loss(model, states, batch_size=50), whole, rtol=0, atol=1e-13)
    assert rows == [3] * 16 + [2]
