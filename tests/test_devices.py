"""The torch paths on every available device: CPU always, CUDA (marked ``gpu``) where present.

Run the CUDA variants with ``bash scripts/test.sh -m gpu`` on a machine with a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnpotts.inference import mlm_loss, to_conditional_potts
from attnpotts.models import FactoredAttention, FullPotts, TransformerEncoder
from attnpotts.models.kernels import coupling_logits, reference_coupling_logits
from attnpotts.potts import ExactPotts, generalized_potts
from attnpotts.training import TrainingConfig, train

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
        ],
    ),
]
L, Q = 6, 3


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, ExactPotts]:
    exact = ExactPotts(generalized_potts(L, Q, site="dense", beta=1.0, seed=0))
    return exact.sample(600, seed=1), exact.sample(300, seed=2), exact


def _models(device: str) -> list[torch.nn.Module]:
    kw = {"dtype": torch.float64, "device": device, "seed": 0}
    return [
        FactoredAttention(L, Q, n_heads=2, variant="free", **kw),
        FactoredAttention(L, Q, n_heads=2, variant="softmax", **kw),
        FullPotts(L, Q, init_std=0.1, **kw),
        TransformerEncoder(L, Q, n_layers=1, n_heads=2, width=8, **kw),
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_models_on_device_match_cpu(device: str, data) -> None:
    states = torch.as_tensor(data[0][:50])
    for cpu_model, dev_model in zip(_models("cpu"), _models(device), strict=True):
        cpu_model.eval()
        dev_model.eval()
        dev_logits = dev_model(states.to(device))
        assert dev_logits.device.type == device
        torch.testing.assert_close(dev_logits.cpu(), cpu_model(states), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_training_and_mapping_on_device(device: str, data) -> None:
    train_states, test_states, _ = data
    model = FactoredAttention(L, Q, variant="free", dtype=torch.float64, device=device, seed=0)
    result = train(
        model, train_states, config=TrainingConfig(optimizer="adam", max_epochs=3, batch_size=200)
    )
    assert result.epochs == 3 and np.isfinite(result.final_train_loss)
    assert all(p.device.type == device for p in model.parameters())
    loss = mlm_loss(model, test_states)
    pll = to_conditional_potts(model).pseudo_log_likelihood(test_states, reduction="mean")
    assert loss == pytest.approx(-pll, rel=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_potts_conditionals_accept_device_tensors(device: str, data) -> None:
    states = data[0][:20]
    model = data[2].model
    got = model.conditional_logits(torch.as_tensor(states, device=device))
    assert got.device.type == device
    np.testing.assert_allclose(got.cpu().numpy(), model.conditional_logits(states), atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_coupling_kernel_on_device(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(L, Q, L, Q, dtype=torch.float64, generator=gen)
    tokens = torch.randint(0, Q + 1, (40, L), generator=gen)  # includes the [MASK] token q
    expected = reference_coupling_logits(W, tokens)
    got = coupling_logits(W.to(device), tokens.to(device))
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-12, atol=1e-12)
