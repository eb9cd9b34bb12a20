"""Numba kernels of the single-site samplers (heat-bath Gibbs and Metropolis).

Design (why it looks like this):

* All randomness is drawn *outside* the kernels by a NumPy generator, as an array of uniforms
  ``(n_sweeps, C, L, k)`` in ``[0, 1)``. Each chain reads only its own slice, so results are
  bit-identical for a seed whatever the number of threads, and because NumPy's ``random()`` stream
  is a plain sequence of doubles, drawing them in blocks of sweeps does not change them (a run
  continued from its state equals one longer run).
* Couplings are passed as ``Jt[i, j, b, a] = J[i, j, a, b]`` (``(L, L, q, q)``, contiguous) so the
  inner loop adds the ``q`` contiguous values ``Jt[i, j, s_j, :]`` for each neighbour ``j``.
  ``beta`` is per chain (parallel tempering uses the same kernel) and multiplies the local field.
* Energies ``H`` (independent of beta) are tracked incrementally in float64:
  ``H_new - H_old = -(F[i, new] - F[i, old])`` with ``F`` the local field at the updated site.
* The per-site choice functions (:func:`heat_bath_choice`, :func:`metropolis_choice`,
  :func:`site_choice`) are exposed so the exact transition kernel of the real code can be derived
  from them in tests (each partitions ``[0, 1)`` into intervals whose lengths are the transition
  probabilities).

Layout of the uniforms: ``k = 1`` (Gibbs) or ``2`` (Metropolis: proposal, acceptance), plus one for
random-site sweeps (the site, in the last slot).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "GIBBS",
    "METROPOLIS",
    "heat_bath_choice",
    "metropolis_choice",
    "n_uniforms_per_update",
    "run_sweeps",
    "site_choice",
]

#: Rule codes understood by the kernels.
GIBBS = 0
METROPOLIS = 1


@njit(cache=True)
def _heat_bath_inplace(logits: np.ndarray, u: float) -> int:
    """:func:`heat_bath_choice` that overwrites ``logits`` with the weights (kernel scratch)."""
    q = logits.shape[0]
    m = logits[0]
    for a in range(1, q):
        if logits[a] > m:
            m = logits[a]
    total = 0.0
    for a in range(q):
        w = math.exp(logits[a] - m)
        logits[a] = w
        total += w
    target = u * total
    acc = 0.0
    last = 0
    for a in range(q):
        w = logits[a]
        if w > 0.0:
            last = a
        acc += w
        if target < acc:
            return a
    # only reachable through rounding when u is within one ulp of 1: the last positive colour
    return last


@njit(cache=True)
def heat_bath_choice(logits: np.ndarray, u: float) -> int:
    """Draw a colour from ``softmax(logits)`` by inverse CDF with the uniform ``u`` in ``[0, 1)``.

    Returns the smallest ``a`` with ``u * sum_b w_b < sum_{b <= a} w_b``, ``w = exp(logits - max)``.
    Colour ``a`` is returned exactly for ``u`` in an interval of length ``w_a / sum_b w_b`` (up to
    rounding), which is the heat-bath probability. The kernels run the same code
    (``_heat_bath_inplace``) on their scratch buffer.
    """
    return _heat_bath_inplace(logits.copy(), u)


@njit(cache=True)
def metropolis_choice(logits: np.ndarray, current: int, u_propose: float, u_accept: float) -> int:
    """Metropolis update: propose a uniformly random *other* colour, accept with ``min(1, ratio)``.

    The proposal is ``r = floor(u_propose * (q - 1))`` skipping ``current`` (each of the ``q - 1``
    other colours has probability ``1 / (q - 1)``); it is accepted when
    ``u_accept < exp(logits[new] - logits[current])``. Returns the new colour (``current`` if
    rejected).
    """
    q = logits.shape[0]
    r = int(u_propose * (q - 1))
    if r > q - 2:
        r = q - 2
    new = r + 1 if r >= current else r
    delta = logits[new] - logits[current]
    if delta >= 0.0 or u_accept < math.exp(delta):
        return new
    return current


@njit(cache=True)
def site_choice(u: float, n_sites: int) -> int:
    """Site of a random-site update: ``floor(u * L)``, each site with probability ``1 / L``."""
    i = int(u * n_sites)
    if i > n_sites - 1:
        i = n_sites - 1
    return i


def n_uniforms_per_update(rule: int, random_site: bool) -> int:
    """Uniforms consumed by one site update (the last axis ``k`` of the uniforms array)."""
    return (1 if rule == GIBBS else 2) + (1 if random_site else 0)


@njit(cache=True, inline="always")
def _update_site(
    states: np.ndarray,
    c: int,
    i: int,
    Jt: np.ndarray,
    h: np.ndarray,
    beta: float,
    rule: int,
    u0: float,
    u1: float,
    field: np.ndarray,
    logits: np.ndarray,
) -> tuple[bool, float]:
    """Update site ``i`` of chain ``c`` in place; return (colour changed, energy change in float64)."""
    L = states.shape[1]
    q = h.shape[1]
    for a in range(q):
        field[a] = h[i, a]
    for j in range(L):
        if j == i:
            continue
        row = Jt[i, j, states[c, j]]
        for a in range(q):
            field[a] += row[a]
    for a in range(q):
        logits[a] = beta * field[a]
    old = states[c, i]
    new = _heat_bath_inplace(logits, u0) if rule == 0 else metropolis_choice(logits, old, u0, u1)
    if new == old:
        return False, 0.0
    states[c, i] = new
    return True, -(np.float64(field[new]) - np.float64(field[old]))


@njit(cache=True, parallel=True)
def _blocked_sweeps(
    states: np.ndarray,
    Jt: np.ndarray,
    h: np.ndarray,
    betas: np.ndarray,
    uniforms: np.ndarray,
    rule: int,
    random_site: bool,
    energies: np.ndarray,
    n_changed: np.ndarray,
    energy_trace: np.ndarray,
    keep_index: np.ndarray,
    samples: np.ndarray,
    block: int,
) -> None:
    """Threads take blocks of ``block`` chains; a block updates the same site on all its chains
    in turn, so the couplings ``Jt[i]`` of that site are read from cache by all but the first."""
    n_sweeps, C, L, _ = uniforms.shape
    q = h.shape[1]
    n_blocks = (C + block - 1) // block
    for bk in prange(n_blocks):
        c0 = bk * block
        c1 = min(C, c0 + block)
        field = np.empty(q, dtype=h.dtype)
        logits = np.empty(q, dtype=np.float64)
        for t in range(n_sweeps):
            for pos in range(L):
                for c in range(c0, c1):
                    i = site_choice(uniforms[t, c, pos, -1], L) if random_site else pos
                    u0 = uniforms[t, c, pos, 0]
                    u1 = uniforms[t, c, pos, 1] if rule == 1 else 0.0
                    moved, de = _update_site(
                        states, c, i, Jt, h, betas[c], rule, u0, u1, field, logits
                    )
                    if moved:
                        energies[c] += de
                        n_changed[c] += 1
            k = keep_index[t]
            for c in range(c0, c1):
                energy_trace[t, c] = energies[c]
                if k >= 0:
                    for j in range(L):
                        samples[k, c, j] = states[c, j]


def run_sweeps(
    states: np.ndarray,
    Jt: np.ndarray,
    h: np.ndarray,
    betas: np.ndarray,
    uniforms: np.ndarray,
    rule: int,
    random_site: bool,
    energies: np.ndarray,
    n_changed: np.ndarray,
    energy_trace: np.ndarray,
    keep_index: np.ndarray,
    samples: np.ndarray,
    *,
    block: int = 1,
) -> None:
    """Advance every chain by ``n_sweeps`` sweeps in place.

    Args:
        states: ``(C, L)`` int8 configurations, updated in place.
        Jt: ``(L, L, q, q)`` contiguous, ``Jt[i, j, b, a] = J[i, j, a, b]`` (float32 or float64).
        h: ``(L, q)`` fields, same dtype as ``Jt``.
        betas: ``(C,)`` float64 inverse temperature of each chain.
        uniforms: ``(n_sweeps, C, L, k)`` float64 in ``[0, 1)`` (see module docstring).
        rule: :data:`GIBBS` or :data:`METROPOLIS`.
        random_site: random-site sweeps (``L`` uniformly drawn sites) instead of ``0..L-1``.
        energies: ``(C,)`` float64 energies of ``states``, updated incrementally.
        n_changed: ``(C,)`` int64 counters of updates that changed a colour, incremented.
        energy_trace: ``(n_sweeps, C)`` float64 output, the energy after each sweep.
        keep_index: ``(n_sweeps,)`` int64, row of ``samples`` to store the states after that
            sweep into, or ``-1``.
        samples: ``(n_kept, C, L)`` int8 output.
        block: chains per block (``1``: each thread runs whole chains, best for small ``L``;
            larger: a block updates one site on all its chains before moving on, keeping that
            site's couplings in cache, best for many chains and large ``L``). Chains are
            independent, so every block size gives identical results.
    """
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    _blocked_sweeps(
        states, Jt, h, betas, uniforms, rule, random_site, energies, n_changed,
        energy_trace, keep_index, samples, block,
    )  # fmt: skip
