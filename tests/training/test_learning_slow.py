"""(slow) Learning a known generalized Potts model: losses near the optimum, couplings recovered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnpotts.evaluation.recovery import coupling_recovery, relative_coupling_error
from attnpotts.inference import excess_loss, model_loss, optimal_loss, to_conditional_potts
from attnpotts.models import FactoredAttention, FullPotts
from attnpotts.potts import ExactPotts, PottsModel, zero_sum_gauge
from attnpotts.training import TrainingConfig, train

# minutes on a busy 2-core machine: allow more than the default 600 s per test
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
F64 = torch.float64


def _factored_truth(L: int, q: int, beta: float, seed: int) -> PottsModel:
    rng = np.random.default_rng(seed)
    site = np.triu(rng.normal(size=(L, L)), 1)
    site = site + site.T
    colour = rng.normal(size=(q, q))
    colour = (colour + colour.T) / np.sqrt(2)
    return PottsModel.from_factors(site, colour, beta=beta)


def _gibbs(model: PottsModel, n: int, sweeps: int, seed: int) -> np.ndarray:
    """Heat-bath Gibbs sampling of ``n`` independent chains (test-local, independent of sampling/)."""
    rng = np.random.default_rng(seed)
    L, q = model.n_sites, model.n_states
    J = model.beta * np.asarray(model.couplings)
    h = model.beta * np.asarray(model.fields)
    s = rng.integers(0, q, size=(n, L))
    for _ in range(sweeps):
        for i in range(L):
            f = h[i] + sum(J[i, j][:, s[:, j]].T for j in range(L) if j != i)  # (n, q)
            p = np.exp(f - f.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            u = rng.random(n)[:, None]
            s[:, i] = (p.cumsum(1) < u).sum(1).clip(max=q - 1)
    return s


@pytest.fixture(scope="module")
def sampled() -> tuple[PottsModel, np.ndarray, np.ndarray]:
    # beta = 0.5: optimal loss about 1.16 nats (log 5 = 1.61); 150 sweeps agree with 300 sweeps
    true = _factored_truth(10, 5, 0.5, seed=0)
    data = _gibbs(true, 25000, 150, seed=1)
    return true, data[:20000], data[20000:]


def _check_learned(model: torch.nn.Module, true: PottsModel, test: np.ndarray) -> None:
    opt = optimal_loss(true, test)
    loss = model_loss(model, test)
    exc = excess_loss(model, true, test)
    # within 1 % of the optimal loss, beyond the test-set noise of the paired excess
    assert exc.mean + 3 * exc.stderr < 0.01 * opt.mean, (loss, opt, exc)
    assert loss.mean < 1.01 * opt.mean + 3 * loss.stderr
    rec = coupling_recovery(true.beta * true.couplings, to_conditional_potts(model).couplings)
    assert rec.coupling_correlation > 0.95, rec


def test_free_factored_attention_learns_a_sampled_model(sampled: tuple) -> None:
    true, train_s, test = sampled
    model = FactoredAttention(10, 5, 1, variant="free", dtype=F64, seed=0)
    cfg = TrainingConfig(optimizer="lbfgs", max_epochs=6, lbfgs_max_iter=40, tolerance=1e-7)
    train(model, train_s, config=cfg)
    _check_learned(model, true, test)
    rec = coupling_recovery(
        true.beta * true.couplings,
        to_conditional_potts(model).couplings,
        attention=model.attention_matrices().detach().numpy(),
        values=model.value_matrices().detach().numpy(),
        site_couplings=true.site_couplings,
        colour_couplings=true.colour_couplings,
    )
    assert rec.factors is not None
    assert rec.factors.attention[0] > 0.95 and rec.factors.value[0] > 0.95


def test_full_potts_learns_a_sampled_model(sampled: tuple) -> None:
    true, train_s, test = sampled
    model = FullPotts(10, 5, dtype=F64)
    cfg = TrainingConfig(optimizer="lbfgs", max_epochs=6, lbfgs_max_iter=40, tolerance=1e-7)
    train(model, train_s, config=cfg)
    _check_learned(model, true, test)


@pytest.mark.parametrize("kind", ["potts", "factored"])
def test_exact_distribution_recovers_the_couplings(kind: str) -> None:
    """Trained on all states weighted by their probabilities, PL recovers J exactly (zero-sum gauge)."""
    # beta = 0.4: every state is visited often enough for L-BFGS to converge in ~150 iterations
    true = _factored_truth(6, 3, 0.4, seed=3)
    exact = ExactPotts(true)
    if kind == "potts":
        model: torch.nn.Module = FullPotts(6, 3, dtype=F64)
    else:
        model = FactoredAttention(6, 3, 1, variant="free", dtype=F64, seed=1, init_std=0.5)
    cfg = TrainingConfig(optimizer="lbfgs", max_epochs=5, lbfgs_max_iter=200, tolerance=1e-13)
    train(model, exact.states, weights=exact.probabilities, config=cfg)
    learned = to_conditional_potts(model)
    J_true, h_true = zero_sum_gauge(true.beta * true.couplings, true.beta * true.fields)
    J_learned, h_learned = zero_sum_gauge(learned.couplings, learned.fields)
    off = ~np.eye(6, dtype=bool)
    assert np.abs(J_learned - J_true)[off].max() < 1e-4
    assert np.abs(h_learned - h_true).max() < 1e-4
    assert relative_coupling_error(true.beta * true.couplings, learned.couplings) < 1e-4
