"""Numba kernels of the single-site samplers (heat-bath Gibbs and Metropolis).

Design (why it looks like this):

* All randomness is drawn *outside* the kernels by a NumPy generator, as an array of uniforms
  ``(n_sweeps, C, L, k)`` in ``[0, 1)``. Each chain reads only its own slice, so results are
  bit-identical for a seed whatever the number of threads, and because NumPy's ``random()`` stream
  is a plain sequence of doubles, drawing them in blocks of sweeps does not change them (a run
  continued from its state equals one longer run).
* Couplings are passed as ``Jt[i, j, b, a] = J[i, j, a, b]`` (``(L, L, q, q_pad)``, contiguous,
  colours zero-padded to ``q_pad``, a multiple of :data:`LANES`; built by :func:`coupling_layout`)
  so the inner loop adds the ``q_pad`` contiguous values ``Jt[i, j, s_j, :]`` of each neighbour
  ``j`` with vector instructions (a loop of run-time length 20 would stay scalar).
  ``beta`` is per chain (parallel tempering uses the same kernel) and multiplies the local field.
* The local field adds the rows four at a time (:func:`_local_field`), in a fixed order, and the
  heat-bath weights use a vectorisable polynomial ``exp`` (:func:`_exp_nonpositive`, within
  ~2 ulp of libm): both are deterministic, so results do not depend on threads or loop order,
  and :func:`heat_bath_choice` runs the very same code as the kernels.
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

from ..potts.layout import padded_fields, padded_transposed

__all__ = [
    "GIBBS",
    "LANES",
    "METROPOLIS",
    "coupling_layout",
    "heat_bath_choice",
    "metropolis_choice",
    "n_uniforms_per_update",
    "padded_colours",
    "run_sweeps",
    "site_choice",
]

#: Rule codes understood by the kernels.
GIBBS = 0
METROPOLIS = 1


# exp(x) for x <= 0 without a libm call (so the loop over colours is vectorised): x = k ln2 + r,
# |r| <= ln2 / 2 (Cody-Waite split of ln2), exp(r) by its degree-12 Taylor polynomial (truncation
# < 2e-16 relative), 2^k from the exponent bits. Within ~2 ulp (relative error < 5e-16) of exp
# over [-708, 0] (max over 10^6 random points, measured when written); 0 below -708, where exp gives
# subnormals < 4e-308. About 4x faster than 20 libm calls; the exact-transition tests (TOL 1e-12)
# check the resulting probabilities.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_EXP_MIN = -708.0
_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12 = (
    1.0 / math.factorial(n) for n in range(2, 13)
)


@njit(cache=True, inline="always")
def _exp_nonpositive(x: float) -> float:
    """``exp(x)`` for ``x <= 0`` (float64, within ~2 ulp; ``0`` for ``x < -708``)."""
    xc = x if x > _EXP_MIN else _EXP_MIN
    k = math.floor(xc * _LOG2E + 0.5)
    kf = float(k)
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    p = _E12 * r + _E11
    p = p * r + _E10
    p = p * r + _E9
    p = p * r + _E8
    p = p * r + _E7
    p = p * r + _E6
    p = p * r + _E5
    p = p * r + _E4
    p = p * r + _E3
    p = p * r + _E2
    p = p * r + 1.0
    p = p * r + 1.0
    scale = np.int64((k + 1023) << 52).view(np.float64)
    return p * scale if x > _EXP_MIN else 0.0


@njit(cache=True)
def _heat_bath_inplace(logits: np.ndarray, u: float) -> int:
    """:func:`heat_bath_choice` that overwrites ``logits`` with the weights (kernel scratch)."""
    q = logits.shape[0]
    m = logits[0]
    for a in range(1, q):
        if logits[a] > m:
            m = logits[a]
    for a in range(q):
        logits[a] = _exp_nonpositive(logits[a] - m)
    total = 0.0
    for a in range(q):
        total += logits[a]
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

    Returns the smallest ``a`` with ``u * sum_b w_b < sum_{b <= a} w_b``, ``w = exp(logits - max)``
    (``exp`` by a vectorisable polynomial within ~2 ulp of libm's, see ``_exp_nonpositive``).
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


#: Colour lanes of one vector chunk of the padded coupling layout (see :func:`coupling_layout`).
LANES = 8


def padded_colours(q: int) -> int:
    """Length ``q_pad`` of the padded colour axis: ``q`` rounded up to a multiple of :data:`LANES`."""
    return -(-q // LANES) * LANES


def coupling_layout(
    couplings: np.ndarray, fields: np.ndarray, dtype: str | np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel layout of a model: ``Jt (L, L, q, q_pad)`` and ``h (L, q_pad)`` of ``dtype``.

    ``Jt[i, j, b, a] = J[i, j, a, b]`` for ``a < q`` and ``0`` in the padding ``q <= a < q_pad``
    (``h`` likewise). The kernels add whole rows ``Jt[i, j, s_j, :]``: LLVM vectorises that loop
    only in whole vectors (8 float32 / 4 float64 lanes per 256-bit step; a run-time trip count of
    20 leaves 4 colours to a scalar tail), so ``q_pad`` is a multiple of :data:`LANES`. Only the
    first ``q`` colours reach the choice. Costs ``q_pad / q`` (1.2 for q = 20) more memory.

    Args:
        couplings: ``(L, L, q, q)`` couplings ``J``.
        fields: ``(L, q)`` fields ``h``.
        dtype: ``float64`` or ``float32``.

    The converters are :func:`attnpotts.potts.layout.padded_transposed` and
    :func:`~attnpotts.potts.layout.padded_fields` (inverses in the same module).
    """
    qp = padded_colours(couplings.shape[2])
    return padded_transposed(couplings, qp, dtype), padded_fields(fields, qp, dtype)


@njit(cache=True, inline="always")
def _local_field(field: np.ndarray, Jt: np.ndarray, h: np.ndarray, s: np.ndarray, i: int) -> None:
    """``field[:q_pad] = h[i] + sum_{j != i} Jt[i, j, s[j]]`` for one configuration ``s`` (L,).

    The rows are added four at a time, ``field += (r_0 + r_1) + (r_2 + r_3)``, over the padded
    colour axis: the ``q_pad``-long loop is vectorised by the compiler (its trip count is a
    multiple of :data:`LANES`), and grouping the rows cuts the chain of dependent
    load-add-store round trips through ``field`` by four. The order of the additions is fixed,
    so every chain, thread count and loop order gives the same bits.
    """
    L = s.shape[0]
    qp = Jt.shape[3]
    Ji = Jt[i]
    hi = h[i]
    for a in range(qp):
        field[a] = hi[a]
    # the neighbours j != i in increasing order, in groups of four, then the rest one by one
    n = L - 1
    g = 0
    while g + 4 <= n:
        j0 = g if g < i else g + 1
        j1 = g + 1 if g + 1 < i else g + 2
        j2 = g + 2 if g + 2 < i else g + 3
        j3 = g + 3 if g + 3 < i else g + 4
        r0 = Ji[j0, s[j0]]
        r1 = Ji[j1, s[j1]]
        r2 = Ji[j2, s[j2]]
        r3 = Ji[j3, s[j3]]
        for a in range(qp):
            field[a] += (r0[a] + r1[a]) + (r2[a] + r3[a])
        g += 4
    while g < n:
        j0 = g if g < i else g + 1
        r0 = Ji[j0, s[j0]]
        for a in range(qp):
            field[a] += r0[a]
        g += 1


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
    """Update site ``i`` of chain ``c`` in place; return (colour changed, energy change in float64).

    ``field`` (``q_pad``, coupling dtype) and ``logits`` (``q``, float64) are scratch buffers.
    The local field is computed by :func:`_local_field`.
    """
    q = Jt.shape[2]
    _local_field(field, Jt, h, states[c], i)
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
    q = Jt.shape[2]
    qp = Jt.shape[3]
    n_blocks = (C + block - 1) // block
    for bk in prange(n_blocks):
        c0 = bk * block
        c1 = min(C, c0 + block)
        field = np.empty(qp, dtype=h.dtype)
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
        Jt: ``(L, L, q, q_pad)`` contiguous, ``Jt[i, j, b, a] = J[i, j, a, b]`` zero-padded to
            ``q_pad = padded_colours(q)`` (float32 or float64; see :func:`coupling_layout`).
        h: ``(L, q_pad)`` fields, zero-padded, same dtype as ``Jt``.
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
    L, q = states.shape[1], Jt.shape[2]
    qp = padded_colours(q)
    if Jt.shape != (L, L, q, qp) or h.shape != (L, qp) or not Jt.flags.c_contiguous:
        raise ValueError(
            f"couplings must be in the padded kernel layout Jt (L, L, q, q_pad) = "
            f"({L}, {L}, {q}, {qp}), C-contiguous, and h ({L}, {qp}); got Jt {Jt.shape}, "
            f"h {h.shape}: build them with coupling_layout(J, h, dtype)"
        )
    _blocked_sweeps(
        states, Jt, h, betas, uniforms, rule, random_site, energies, n_changed,
        energy_trace, keep_index, samples, block,
    )  # fmt: skip
