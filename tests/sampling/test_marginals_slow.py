"""(slow) Sampled single-site and pair marginals match exact enumeration (L = 6, q = 3).

Tolerances come from error bars, not tuning: for each indicator observable (``s_i = a``, and
``s_i = a, s_j = b`` for ``i < j``) the standard error is ``sqrt(p (1 - p) tau / (n C))`` with
``p`` the exact probability (the null hypothesis) and ``tau`` the integrated autocorrelation time
measured on the sampled indicator trace. All ``m`` z-scores of a run must lie below the Bonferroni
bound ``Phi^-1(1 - alpha / (2 m))`` with ``alpha = 1e-3`` per run. A sampler at the wrong
temperature must fail the same test (the test has power).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from attnpotts.potts import ExactPotts
from attnpotts.sampling import MCMCSampler, ParallelTempering, integrated_autocorr_time

pytestmark = pytest.mark.slow

L, Q = 6, 3
ALPHA = 1e-3
N_SWEEPS, BURN_IN, CHAINS = 3000, 300, 48


def max_z(samples: np.ndarray, exact: ExactPotts) -> tuple[float, float]:
    """Largest |z| over all single-site and pair indicators, and the Bonferroni bound.

    Args:
        samples: ``(n, C, L)`` kept states of ``C`` chains.
    """
    onehot = samples[..., None] == np.arange(Q)  # (n, C, L, q)
    p1 = exact.single_site_marginals()
    p2 = exact.pair_marginals()
    traces, probs = [], []
    for i in range(L):
        for a in range(Q):
            traces.append(onehot[:, :, i, a])
            probs.append(p1[i, a])
        for j in range(i + 1, L):
            for a in range(Q):
                for b in range(Q):
                    traces.append(onehot[:, :, i, a] & onehot[:, :, j, b])
                    probs.append(p2[i, j, a, b])
    z = []
    for x, p in zip(traces, probs, strict=True):
        x = x.astype(np.float64)
        tau = integrated_autocorr_time(x) if x.std() > 0 else 1.0
        se = np.sqrt(p * (1 - p) * tau / x.size)
        z.append(abs(x.mean() - p) / se)
    bound = stats.norm.isf(ALPHA / (2 * len(z)))
    return float(max(z)), float(bound)


SAMPLERS = [("gibbs", "sequential"), ("gibbs", "random"), ("metropolis", "sequential"),
            ("metropolis", "random")]  # fmt: skip


@pytest.mark.parametrize("beta", [0.4, 1.2])
@pytest.mark.parametrize(("rule", "sweep"), SAMPLERS)
def test_single_site_samplers_match_exact_marginals(beta, rule, sweep, make_model) -> None:
    model = make_model(L, Q, beta=beta, seed=21)
    exact = ExactPotts(model)
    sampler = MCMCSampler(model, rule=rule, sweep=sweep)
    run = sampler.run(N_SWEEPS, sampler.init_state(CHAINS, seed=7), burn_in=BURN_IN)
    z, bound = max_z(run.samples, exact)
    assert z < bound, f"max |z| = {z:.2f} >= Bonferroni bound {bound:.2f}"
    # the energy trace agrees with the exact mean energy too
    e = run.energy_trace[BURN_IN:]
    se = e.std() * np.sqrt(integrated_autocorr_time(e) / e.size)
    assert abs(e.mean() - exact.mean_energy()) < stats.norm.isf(ALPHA / 2) * se


@pytest.mark.parametrize("beta", [0.4, 1.2])
def test_parallel_tempering_matches_exact_marginals_at_every_temperature(beta, make_model) -> None:
    model = make_model(L, Q, beta=beta, seed=21)
    ladder = np.array([0.25, 0.5, 1.0]) * beta
    pt = ParallelTempering(model, ladder)
    run = pt.run(N_SWEEPS, pt.init_state(CHAINS // 3, seed=8), burn_in=BURN_IN)
    for k, b in enumerate(ladder):
        z, bound = max_z(run.samples[:, k], ExactPotts(model.with_beta(b)))
        assert z < bound, f"beta={b}: max |z| = {z:.2f} >= {bound:.2f}"
    assert np.all(run.state.swap_rates() > 0)


def test_the_check_detects_a_wrong_temperature(make_model) -> None:
    model = make_model(L, Q, beta=1.2, seed=21)
    sampler = MCMCSampler(model.with_beta(1.2 * 1.25))
    run = sampler.run(N_SWEEPS, sampler.init_state(CHAINS, seed=7), burn_in=BURN_IN)
    z, bound = max_z(run.samples, ExactPotts(model))
    assert z > bound


def test_default_dataset_has_an_optimal_loss_of_one_to_two_nats() -> None:
    from attnpotts.sampling import sample_dataset

    ds = sample_dataset()
    d = ds.manifest["diagnostics"]
    assert 1.0 < d["conditional_entropy"] < 2.0
    assert d["mixing_ok"]
    assert abs(d["train_mean_pairwise_hamming"] - 0.88) < 0.02
    assert ds.train.shape == (3000, 20) and ds.test.shape == (1000, 20)
