"""``position_scale``: a reparametrisation of the queries and keys (a fixed diagonal preconditioner).

The model's function and its start must not depend on the scale; the gradient on the stored
parameters must be the scale times the gradient on ``Q, K`` (so a first-order step in the stored
parameters moves ``Q, K`` by ``c^2`` times as much).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnpotts.dca import FactoredDCA
from attnpotts.errors import ValidationError
from attnpotts.models import FactoredAttention
from attnpotts.training import load_model, save_checkpoint
from attnpotts.training.checkpoint import model_payload


def _model(scale: float, seed: int = 1) -> FactoredAttention:
    return FactoredAttention(6, 4, 3, variant="softmax", key_dim=2, init_std=0.8, seed=seed,
                             position_scale=scale, dtype=torch.float64)


def _loss(model: FactoredAttention, tokens: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    out = model.cross_entropy_sum(tokens, w)
    assert out is not None
    return out


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_same_function_start_and_scaled_gradient(scale: float) -> None:
    rng = np.random.default_rng(0)
    tokens = torch.as_tensor(rng.integers(0, 4, (20, 6)), dtype=torch.long)
    w = torch.as_tensor(rng.uniform(0.5, 1.5, 20))
    ref, m = _model(1.0), _model(scale)
    with torch.no_grad():  # the same values and fields (the start of Q, K is checked next)
        m.value.copy_(ref.value)
    torch.testing.assert_close(m.positions()[0], ref.positions()[0], rtol=1e-15, atol=0)
    torch.testing.assert_close(m.positions()[1], ref.positions()[1], rtol=1e-15, atol=0)
    torch.testing.assert_close(m.query * scale, ref.query.detach(), rtol=1e-15, atol=0)
    torch.testing.assert_close(m.attention_matrices(), ref.attention_matrices(), rtol=1e-12, atol=1e-15)
    lr, lm = _loss(ref, tokens, w), _loss(m, tokens, w)
    torch.testing.assert_close(lm, lr, rtol=1e-12, atol=0)
    lr.backward()
    lm.backward()
    assert m.query.grad is not None and ref.query.grad is not None
    assert m.key.grad is not None and ref.key.grad is not None
    torch.testing.assert_close(m.query.grad, scale * ref.query.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m.key.grad, scale * ref.key.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(m.value.grad, ref.value.grad, rtol=1e-10, atol=1e-12)


def test_set_positions_stores_divided_by_the_scale() -> None:
    m = _model(4.0)
    Q = torch.randn(3, 6, 2, dtype=torch.float64)
    K = torch.randn(3, 6, 2, dtype=torch.float64)
    m.set_positions(Q, K)
    torch.testing.assert_close(m.query.detach(), Q / 4.0)
    torch.testing.assert_close(m.positions()[1].detach(), K)


def test_hyperparameters_and_checkpoint_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert "position_scale" not in _model(1.0).hyperparameters()  # older checkpoints still match
    m = _model(3.0)
    assert m.hyperparameters()["position_scale"] == 3.0
    save_checkpoint(tmp_path / "m.pt", model_payload(m))
    back = load_model(tmp_path / "m.pt")
    assert isinstance(back, FactoredAttention) and back.position_scale == 3.0
    torch.testing.assert_close(back.attention_matrices(), m.attention_matrices())


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_position_scale_is_named(bad: float) -> None:
    with pytest.raises(ValidationError, match="position_scale"):
        _model(bad)
    with pytest.raises(ValidationError, match="position_scale"):
        FactoredDCA(position_scale=bad, n_heads=2, key_dim=2, max_iter=1).fit(
            np.random.default_rng(0).integers(0, 3, (30, 5)))


def test_free_variant_refuses_a_scale_and_positions() -> None:
    with pytest.raises(ValidationError, match="softmax"):
        FactoredAttention(5, 3, 2, variant="free", position_scale=2.0)
    with pytest.raises(ValidationError, match="softmax"):
        FactoredAttention(5, 3, 2, variant="free").positions()


def test_set_positions_checks_the_shape() -> None:
    with pytest.raises(ValidationError, match="shape"):
        _model(2.0).set_positions(torch.zeros(3, 6, 3), torch.zeros(3, 6, 2))


def test_factored_dca_with_a_scale_is_deterministic_and_differs_from_unscaled_steps() -> None:
    rng = np.random.default_rng(3)
    states = rng.integers(0, 4, (80, 7))
    states[:, 5] = states[:, 1]
    opts = {"n_heads": 2, "key_dim": 3, "max_iter": 5, "dtype": "float64", "seed": 2}
    for start in ("random", "mean-field"):
        a = FactoredDCA(position_scale=3.0, start=start, **opts).fit(states)
        b = FactoredDCA(position_scale=3.0, start=start, **opts).fit(states)
        c = FactoredDCA(position_scale=1.0, start=start, **opts).fit(states)
        np.testing.assert_array_equal(a.scores_, b.scores_)  # same seed, same result
        assert not np.allclose(a.scores_, c.scores_)  # the steps differ: a preconditioner
