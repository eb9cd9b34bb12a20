"""The Potts-parameters protocol and the models' own choice of coupling kernel."""

from __future__ import annotations

import pytest
import torch

from attnpotts.errors import ValidationError
from attnpotts.models import (
    FactoredAttention,
    FullPotts,
    MaskedLanguageModel,
    PottsParameters,
    TransformerEncoder,
    build_model,
)

F64 = torch.float64
L, Q = 6, 4


def test_structural_models_expose_potts_parameters_and_the_transformer_does_not() -> None:
    models = (
        FactoredAttention(L, Q, 2, dtype=F64),
        FullPotts(L, Q, init_std=0.3, dtype=F64),
        FullPotts(L, Q, symmetric=True, init_std=0.3, dtype=F64),
    )
    for model in models:
        assert isinstance(model, PottsParameters)
        with torch.no_grad():
            J, h = model.coupling_tensor(), model.field_tensor()
            assert J.shape == (L, L, Q, Q) and h.shape == (L, Q)
            assert float((J**2).sum()) > 0
            torch.testing.assert_close(model.coupling_squared_norm(), (J**2).sum(), rtol=1e-12, atol=0)
    assert not isinstance(TransformerEncoder(L, Q, width=8, n_heads=2), PottsParameters)


def test_cross_entropy_sum_defaults_to_none() -> None:
    """A model without a fused pass returns None (the generic path through logits is used)."""
    tokens = torch.zeros(3, L, dtype=torch.long)
    weights = torch.ones(3)
    assert TransformerEncoder(L, Q, width=8, n_heads=2).cross_entropy_sum(tokens, weights) is None
    assert FullPotts(L, Q, fields=False).cross_entropy_sum(tokens, weights) is None


@pytest.mark.parametrize("kind", ["factored", "potts"])
@pytest.mark.parametrize("kernel", ["sparse", "dense"])
def test_kernel_is_a_constructor_choice_with_the_same_logits(kind: str, kernel: str) -> None:
    kw = {"variant": "softmax", "n_heads": 2} if kind == "factored" else {"symmetric": True}
    auto = build_model(kind, n_sites=L, n_states=Q, init_std=0.5, seed=3, dtype=F64, **kw)
    chosen: MaskedLanguageModel = build_model(
        kind, n_sites=L, n_states=Q, init_std=0.5, seed=3, dtype=F64, kernel=kernel, **kw
    )
    assert auto.kernel == "auto" and chosen.kernel == kernel  # type: ignore[attr-defined]
    # the kernel is how logits are computed, not the architecture: checkpoints do not record it
    assert chosen.hyperparameters() == auto.hyperparameters()
    tokens = torch.randint(0, Q, (2 * Q, L), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(chosen.logits(tokens), auto.logits(tokens), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [FactoredAttention, FullPotts])
def test_unknown_kernel_is_refused(cls: type) -> None:
    with pytest.raises(ValidationError, match="kernel must be one of"):
        cls(L, Q, kernel="fast")
