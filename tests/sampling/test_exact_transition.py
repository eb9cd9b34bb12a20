"""The exact transition kernels of the real sampling code leave the Boltzmann distribution invariant.

The numba choice functions used inside the sweep kernels map uniforms to colours (and sites). Each
partitions [0, 1) into intervals; their lengths, found by bisection on the real functions, are the
transition probabilities. From them we build the exact transition matrix of each rule on L = 3,
q = 3 (27 states) and compare with the Boltzmann distribution from exact enumeration. A separate
test checks that the sweep kernel is exactly the composition of these choice functions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from attnpotts.potts import ExactPotts, all_states
from attnpotts.sampling import heat_bath_choice, metropolis_choice, site_choice

TOL = 1e-12


def _boundary(f: Callable[[float], int], a: int) -> float:
    """sup{u in [0, 1): f(u) <= a} for a non-decreasing step function f (bisection to 1 ulp)."""
    lo, hi = 0.0, 1.0
    if f(lo) > a:
        return 0.0
    if f(np.nextafter(1.0, 0.0)) <= a:
        return 1.0
    while np.nextafter(lo, 1.0) < hi:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if f(mid) <= a:
            lo = mid
        else:
            hi = mid
    return hi


def _interval_lengths(f: Callable[[float], int], n: int) -> np.ndarray:
    """Lengths of {u : f(u) = a}, a = 0..n-1, checking that f is non-decreasing on a grid."""
    grid = np.linspace(0, 1, 2001, endpoint=False)
    values = np.array([f(u) for u in grid])
    assert np.all(np.diff(values) >= 0), "choice function is not monotone in u"
    bounds = np.array([0.0] + [_boundary(f, a) for a in range(n - 1)] + [1.0])
    return np.diff(bounds)


def heat_bath_probabilities(logits: np.ndarray) -> np.ndarray:
    """``(q,)`` probabilities of the real heat-bath choice function."""
    return _interval_lengths(lambda u: heat_bath_choice(logits, u), logits.size)


def metropolis_probabilities(logits: np.ndarray, current: int) -> np.ndarray:
    """``(q,)`` probabilities of the real Metropolis choice function from colour ``current``."""
    q = logits.size
    # proposal: which colour each u_propose gives (u_accept = 0 always accepts: exp(.) > 0)
    proposal = _interval_lengths(lambda u: metropolis_choice(logits, current, u, 0.0), q)
    out = np.zeros(q)
    for new in range(q):
        if proposal[new] == 0.0:
            continue
        # a u_propose inside the interval of `new`
        lo = proposal[:new].sum()
        u_p = lo + 0.5 * proposal[new]
        assert metropolis_choice(logits, current, u_p, 0.0) == new
        accept = _boundary(
            lambda u, u_p=u_p, new=new: int(metropolis_choice(logits, current, u_p, u) != new), 0
        )
        out[new] = proposal[new] * accept
    out[current] = 1.0 - out.sum()
    return out


def test_heat_bath_choice_intervals_are_softmax() -> None:
    rng = np.random.default_rng(0)
    for q in (2, 3, 7):
        for scale in (0.1, 3.0, 30.0):
            logits = rng.normal(size=q) * scale
            p = np.exp(logits - logits.max())
            p /= p.sum()
            np.testing.assert_allclose(heat_bath_probabilities(logits), p, rtol=0, atol=TOL)


def test_heat_bath_choice_handles_extreme_logits_and_u_near_one() -> None:
    logits = np.array([0.0, -1e4, 5.0, -np.inf])
    assert heat_bath_choice(logits, np.nextafter(1.0, 0.0)) == 2
    assert heat_bath_choice(logits, 0.0) == 0
    assert heat_bath_choice(np.array([-np.inf, 1.0, -np.inf]), 0.999999) == 1


def test_metropolis_choice_intervals() -> None:
    rng = np.random.default_rng(1)
    q = 4
    logits = rng.normal(size=q) * 2
    for current in range(q):
        p = metropolis_probabilities(logits, current)
        for new in range(q):
            if new != current:
                ratio = min(1.0, np.exp(logits[new] - logits[current]))
                assert abs(p[new] - ratio / (q - 1)) < TOL


def test_site_choice_intervals_are_uniform() -> None:
    for L in (1, 3, 10):
        np.testing.assert_allclose(
            _interval_lengths(lambda u, L=L: site_choice(u, L), L), np.full(L, 1 / L), atol=TOL
        )


def _site_kernels(model, rule: str) -> list[np.ndarray]:
    """Per-site transition matrices K_i[s, s'] (S, S) derived from the real choice functions."""
    L, q = model.n_sites, model.n_states
    states = all_states(L, q)
    index = {tuple(s): n for n, s in enumerate(states.tolist())}
    logits = model.conditional_logits(states)  # (S, L, q)
    kernels = []
    for i in range(L):
        K = np.zeros((len(states), len(states)))
        for n, s in enumerate(states):
            if rule == "gibbs":
                p = heat_bath_probabilities(logits[n, i])
            else:
                p = metropolis_probabilities(logits[n, i], int(s[i]))
            for a in range(q):
                t = s.copy()
                t[i] = a
                K[n, index[tuple(t)]] += p[a]
        kernels.append(K)
    return kernels


@pytest.mark.parametrize("rule", ["gibbs", "metropolis"])
def test_exact_transition_matrices_preserve_boltzmann(rule: str, make_model) -> None:
    model = make_model(3, 3, beta=0.8, seed=2)
    pi = ExactPotts(model).probabilities
    Ks = _site_kernels(model, rule)
    site_p = _interval_lengths(lambda u: site_choice(u, 3), 3)
    sequential = Ks[0] @ Ks[1] @ Ks[2]  # sites 0, 1, 2 in order (row-vector convention)
    random_site = sum(p * K for p, K in zip(site_p, Ks, strict=True))
    for K in [*Ks, sequential, random_site]:
        np.testing.assert_allclose(K.sum(axis=1), 1.0, atol=TOL)
        np.testing.assert_allclose(pi @ K, pi, atol=TOL)
    # detailed balance: single-site updates and the random-site sweep
    for K in [*Ks, random_site]:
        flow = pi[:, None] * K
        np.testing.assert_allclose(flow, flow.T, atol=TOL)
    # the sequential sweep is irreducible and aperiodic here: its unique fixed point is pi
    vals, vecs = np.linalg.eig(sequential.T)
    top = np.argmax(vals.real)
    assert np.sort(np.abs(vals))[-2] < 1 - 1e-6
    v = np.real(vecs[:, top])
    np.testing.assert_allclose(v / v.sum(), pi, atol=1e-10)


def test_a_wrong_rule_is_detected(make_model) -> None:
    """Sanity check of the check: heat-bath at the wrong beta does not preserve pi."""
    model = make_model(3, 3, beta=0.8, seed=2)
    pi = ExactPotts(model).probabilities
    K = _site_kernels(model.with_beta(1.0), "gibbs")[0]
    assert np.abs(pi @ K - pi).max() > 1e-4
