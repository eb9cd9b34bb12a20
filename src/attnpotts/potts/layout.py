"""The one coupling layout of attnpotts and the converters to the layouts the kernels use.

**Canonical layout** (every public array, every file, every model's ``coupling_tensor()``):

* couplings ``J: (L, L, q, q)`` indexed ``J[i, j, s_i, s_j]``, with ``J[i, i] = 0`` (no
  self-coupling; single-site terms live in the fields);
* fields ``h: (L, q)`` indexed ``h[i, s_i]``;
* energy ``H(s) = - sum_{i<j} J[i, j, s_i, s_j] - sum_i h[i, s_i]`` and conditionals
  ``P(s_i = a | s_rest) = softmax_a(beta (h[i, a] + sum_{j != i} J[i, j, a, s_j]))``.

A symmetric model has ``J[i, j, a, b] = J[j, i, b, a]`` (:func:`transpose_couplings` gives the
right-hand side); asymmetric couplings (learned attention, asymmetric pseudo-likelihood) define
conditionals only. **Gauge:** ``(J, h)`` is defined up to shifts that leave every conditional
unchanged (adding ``g[i, j, a]`` to ``J[i, j, a, b]`` for all ``b`` and subtracting its sum over
``j`` from ``h[i, a]``, or a constant to ``h[i]``); couplings are compared in the zero-sum gauge
(:func:`attnpotts.potts.zero_sum_gauge`). None of the converters below changes the gauge: they
move numbers, they never add or scale them (except :func:`couplings_from_factors`, which forms
the product).

**Kernel layouts** and their converters (each pair is an exact inverse on its domain):

* blocks ``W4[i, a, j, b] = J[i, j, a, b]``, ``(L, q, L, q)`` (``models.kernels``):
  :func:`coupling_blocks` (a view), :func:`couplings_from_blocks`;
* matrix ``W[(i, a), (j, b)] = J[i, j, a, b]``, ``(L q, L q)`` (``ConditionalPotts``, one-hot
  products): :func:`coupling_matrix`, :func:`couplings_from_matrix`;
* padded transposed ``Jt[i, j, b, a] = J[i, j, a, b]``, ``(L, L, q, q_pad)`` with zeros for
  ``q <= a < q_pad``, and fields ``(L, q_pad)`` (the numba samplers): :func:`padded_transposed`,
  :func:`couplings_from_padded`, :func:`padded_fields`, :func:`fields_from_padded`;
* packed pairs ``T[p] = J[i_p, j_p]``, ``(L (L - 1) / 2, q, q)``, for the pairs ``i < j`` of
  :func:`pair_indices` in row-major order (symmetric ``FullPotts``, plmc and CCMpred files):
  :func:`pack_pairs`, :func:`unpack_pairs` (symmetric couplings: only the upper triangle is kept),
  :func:`pair_position` (the row of one pair);
* factors ``Jsite (K, L, L)``, ``Ucol (K, q, q)`` (generalized Potts model, factored attention):
  :func:`couplings_from_factors` (no inverse: factors are not unique).

Every converter takes numpy arrays or torch tensors and returns the same kind (torch results
keep the device, the dtype and autograd), except the padded layouts, which are numpy only (the
numba samplers read them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError

__all__ = [
    "check_couplings_shape",
    "coupling_blocks",
    "coupling_matrix",
    "couplings_from_blocks",
    "couplings_from_factors",
    "couplings_from_matrix",
    "couplings_from_padded",
    "fields_from_padded",
    "pack_pairs",
    "padded_fields",
    "padded_transposed",
    "pair_indices",
    "pair_position",
    "transpose_couplings",
    "unpack_pairs",
]

ArrayLike = Any  # numpy array or torch tensor


def _is_torch(x: object) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _shape(x: ArrayLike) -> tuple[int, ...]:
    return tuple(int(n) for n in x.shape)


def check_couplings_shape(couplings: ArrayLike, name: str = "couplings") -> tuple[int, int]:
    """``(L, q)`` of canonical couplings ``(L, L, q, q)``; :class:`ShapeError` for another shape."""
    shape = _shape(couplings)
    if len(shape) != 4 or shape[0] != shape[1] or shape[2] != shape[3]:
        raise ShapeError(f"{name} must have shape (L, L, q, q), got {shape}")
    return shape[0], shape[2]


def transpose_couplings(couplings: ArrayLike) -> ArrayLike:
    """``J'[i, j, a, b] = J[j, i, b, a]`` (a view): the couplings seen from the other site.

    Couplings are symmetric when ``transpose_couplings(J) == J``; ``(J + J') / 2`` symmetrises.
    """
    check_couplings_shape(couplings)
    return couplings.swapaxes(0, 1).swapaxes(2, 3)


# ----------------------------------------------------------------------------- blocks and matrix
def coupling_blocks(couplings: ArrayLike) -> ArrayLike:
    """``W4[i, a, j, b] = J[i, j, a, b]``, shape ``(L, q, L, q)``: a view of ``J (L, L, q, q)``."""
    check_couplings_shape(couplings)
    return couplings.swapaxes(1, 2)


def couplings_from_blocks(blocks: ArrayLike) -> ArrayLike:
    """Inverse of :func:`coupling_blocks`: ``(L, q, L, q)`` -> ``J (L, L, q, q)`` (a view)."""
    shape = _shape(blocks)
    if len(shape) != 4 or shape[0] != shape[2] or shape[1] != shape[3]:
        raise ShapeError(f"coupling blocks must have shape (L, q, L, q), got {shape}")
    return blocks.swapaxes(1, 2)


def coupling_matrix(couplings: ArrayLike) -> ArrayLike:
    """``W[(i, a), (j, b)] = J[i, j, a, b]``, shape ``(L q, L q)`` (a contiguous copy).

    Row ``i q + a`` holds what the colour ``a`` at site ``i`` receives: the local fields of
    one-hot sequences ``X (M, L q)`` are ``X @ W.T + h``.
    """
    L, q = check_couplings_shape(couplings)
    W = coupling_blocks(couplings).reshape(L * q, L * q)
    if _is_torch(W):
        return W.contiguous()
    return np.ascontiguousarray(W)


def couplings_from_matrix(matrix: ArrayLike, n_states: int) -> ArrayLike:
    """Inverse of :func:`coupling_matrix`: ``W (L q, L q)`` with ``q = n_states`` -> ``J``."""
    shape = _shape(matrix)
    q = int(n_states)
    if len(shape) != 2 or shape[0] != shape[1] or q < 1 or shape[0] % q:
        raise ShapeError(f"a coupling matrix must be (L q, L q) with q = {q}, got {shape}")
    L = shape[0] // q
    return couplings_from_blocks(matrix.reshape(L, q, L, q))


# ------------------------------------------------------------------------- padded (samplers)
def padded_transposed(couplings: ArrayLike, q_pad: int, dtype: Any = np.float64) -> np.ndarray:
    """``Jt[i, j, b, a] = J[i, j, a, b]`` for ``a < q``, ``0`` for ``q <= a < q_pad``.

    Shape ``(L, L, q, q_pad)``, C-contiguous, of ``dtype``: the row ``Jt[i, j, s_j, :]`` is what
    every colour at ``i`` receives from ``s_j`` at ``j``, contiguous and padded so that a kernel
    can add it in whole vector registers.
    """
    L, q = check_couplings_shape(couplings)
    if int(q_pad) < q:
        raise ShapeError(f"q_pad = {q_pad} is smaller than q = {q}")
    J = couplings.detach().cpu().numpy() if _is_torch(couplings) else np.asarray(couplings)
    Jt = np.zeros((L, L, q, int(q_pad)), dtype=dtype)
    Jt[..., :q] = J.swapaxes(2, 3)
    return Jt


def couplings_from_padded(padded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`padded_transposed`: ``Jt (L, L, q, q_pad)`` -> ``J (L, L, q, q)`` (a view)."""
    shape = _shape(padded)
    if len(shape) != 4 or shape[0] != shape[1] or shape[3] < shape[2]:
        raise ShapeError(f"padded couplings must have shape (L, L, q, q_pad >= q), got {shape}")
    return np.asarray(padded)[..., : shape[2]].swapaxes(2, 3)


def padded_fields(fields: ArrayLike, q_pad: int, dtype: Any = np.float64) -> np.ndarray:
    """Fields ``h (L, q)`` zero-padded to ``(L, q_pad)`` of ``dtype`` (the samplers' layout)."""
    h = fields.detach().cpu().numpy() if _is_torch(fields) else np.asarray(fields)
    if h.ndim != 2 or int(q_pad) < h.shape[1]:
        raise ShapeError(f"fields must be (L, q) with q <= q_pad = {q_pad}, got {h.shape}")
    out = np.zeros((h.shape[0], int(q_pad)), dtype=dtype)
    out[:, : h.shape[1]] = h
    return out


def fields_from_padded(padded: np.ndarray, n_states: int) -> np.ndarray:
    """Inverse of :func:`padded_fields`: the first ``q = n_states`` colours (a view)."""
    return np.asarray(padded)[:, : int(n_states)]


# ------------------------------------------------------------------------------- packed pairs
def pair_indices(n_sites: int, like: ArrayLike | None = None) -> tuple[Any, Any]:
    """``(i, j)`` of the ``L (L - 1) / 2`` pairs ``i < j`` in row-major order.

    ``np.triu_indices(L, 1)``, or ``torch.triu_indices(L, L, 1)`` on ``like``'s device when
    ``like`` is a torch tensor (the same pairs in the same order).
    """
    L = int(n_sites)
    if like is not None and _is_torch(like):
        import torch

        idx = torch.triu_indices(L, L, offset=1, device=like.device)
        return idx[0], idx[1]
    i, j = np.triu_indices(L, k=1)
    return i, j


def pair_position(i: int, j: int, n_sites: int) -> int:
    """Row ``p`` of the pair ``(i, j)``, ``0 <= i < j < L``, in the packed layout (:func:`pair_indices`)."""
    L = int(n_sites)
    if not 0 <= i < j < L:
        raise ShapeError(f"a packed pair needs 0 <= i < j < L = {L}, got ({i}, {j})")
    return i * (2 * L - i - 1) // 2 + (j - i - 1)


def pack_pairs(couplings: ArrayLike) -> ArrayLike:
    """``T[p] = J[i_p, j_p]`` for the pairs ``i < j`` of :func:`pair_indices`: ``(P, q, q)``.

    Keeps the upper triangle only; for symmetric couplings nothing is lost
    (``J[j, i] = J[i, j]^T``).
    """
    L, _ = check_couplings_shape(couplings)
    i, j = pair_indices(L, couplings)
    return couplings[i, j]


def unpack_pairs(pairs: ArrayLike, n_sites: int, index: tuple[Any, Any] | None = None) -> ArrayLike:
    """Symmetric ``J (L, L, q, q)`` from packed pairs ``(L (L - 1) / 2, q, q)``.

    ``J[i_p, j_p] = T[p]``, ``J[j_p, i_p] = T[p]^T``, zero diagonal blocks. ``index`` is
    :func:`pair_indices` ``(i, j)`` when the caller keeps it (e.g. on a device). Torch tensors
    keep autograd: the gradient of ``J`` flows back into both tied entries of ``T``.
    """
    L = int(n_sites)
    shape = _shape(pairs)
    P = L * (L - 1) // 2
    if len(shape) != 3 or shape[0] != P or shape[1] != shape[2]:
        raise ShapeError(f"packed pairs for L = {L} must have shape ({P}, q, q), got {shape}")
    q = shape[1]
    i, j = pair_indices(L, pairs) if index is None else index
    if _is_torch(pairs):
        J = pairs.new_zeros((L, L, q, q))
    else:
        J = np.zeros((L, L, q, q), dtype=pairs.dtype)
    J[i, j] = pairs
    J[j, i] = pairs.swapaxes(1, 2)
    return J


# ------------------------------------------------------------------------------------ factors
def couplings_from_factors(site_couplings: ArrayLike, colour_couplings: ArrayLike) -> ArrayLike:
    """``J[i, j, a, b] = sum_k Jsite[k, i, j] Ucol[k, a, b]`` from ``(K, L, L)`` and ``(K, q, q)``.

    The generalized Potts model's couplings (``Jsite`` with zero diagonal gives ``J[i, i] = 0``);
    factored attention's ``sum_h A_h (x) V_h``. The factors are not unique (any invertible
    ``K x K`` mixing, and the scale ``(c Jsite, Ucol / c)``, give the same ``J``), so there is
    no inverse.
    """
    S, C = _shape(site_couplings), _shape(colour_couplings)
    if len(S) != 3 or len(C) != 3 or S[1] != S[2] or C[1] != C[2] or S[0] != C[0]:
        raise ShapeError(
            f"factors must be (K, L, L) and (K, q, q) with the same K, got {S} and {C}"
        )
    if _is_torch(site_couplings):
        import torch

        return torch.einsum("kij,kab->ijab", site_couplings, colour_couplings)
    return np.einsum("kij,kab->ijab", site_couplings, colour_couplings)
