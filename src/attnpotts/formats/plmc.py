"""plmc's binary parameter file (``plmc -o``)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..alphabet import PROTEIN, Alphabet
from ..errors import DataFormatError
from ..potts.layout import unpack_pairs
from .parameters import ImportedParameters, _reorder, _state_map

__all__ = ["read_plmc_params"]


def read_plmc_params(
    path: str | os.PathLike[str], *, alphabet: Alphabet = PROTEIN
) -> ImportedParameters:
    """Import the binary parameter file written by ``plmc -o`` (plmc's OutputParametersFull).

    Layout (native little-endian): ``int32 L, q, n_seqs, n_skipped, n_iter``; ``float32 theta,
    lambda_h, lambda_J, lambda_group, n_eff``; ``q`` alphabet bytes; ``n_seqs + n_skipped``
    float32 per-sequence neighbour counts; ``L`` target-sequence bytes; ``L`` int32 offsets;
    ``f_i (L, q)``, ``h_i (L, q)``, ``f_ij`` and ``e_ij`` as ``L (L - 1) / 2`` blocks ``(q, q)``
    for ``i < j`` in row order (``[a_i, a_j]``). Floats are float32, or float64 for builds with
    double output (told apart by the file size). This is the current layout (EVcouplings calls
    it ``plmc_v2``); files of the older ``plmc_v1`` layout fail the size check.

    Raises:
        DataFormatError: truncated or inconsistent file.
    """
    p = Path(path)
    data = p.read_bytes()
    head = struct.calcsize("<5i")
    if len(data) < head:
        raise DataFormatError(f"file of {len(data)} bytes is too short for a plmc header", path=p)
    L, q, n_seqs, n_skip, n_iter = struct.unpack_from("<5i", data, 0)
    if L < 1 or q < 2 or n_seqs < 0 or n_skip < 0:
        raise DataFormatError(
            f"implausible plmc header L={L}, q={q}, n_seqs={n_seqs}, n_skipped={n_skip}; "
            "not a plmc parameter file",
            path=p,
        )
    n_pairs = L * (L - 1) // 2
    n_floats = 5 + (n_seqs + n_skip) + 2 * L * q + 2 * n_pairs * q * q
    fixed = head + q + L + 4 * L
    size = None
    for itemsize in (4, 8):
        if len(data) == fixed + itemsize * n_floats:
            size = itemsize
    if size is None:
        raise DataFormatError(
            f"file has {len(data)} bytes; a plmc file with L={L}, q={q}, {n_seqs + n_skip} "
            f"sequences has {fixed + 4 * n_floats} (float32) or {fixed + 8 * n_floats} (float64): "
            "truncated or not a plmc parameter file",
            path=p,
        )
    ft = np.dtype("<f4") if size == 4 else np.dtype("<f8")
    off = head

    def take(n: int, dtype: np.dtype) -> np.ndarray:
        nonlocal off
        arr = np.frombuffer(data, dtype=dtype, count=n, offset=off)
        off += n * dtype.itemsize
        return arr

    theta, lam_h, lam_j, lam_g, n_eff = take(5, ft).astype(np.float64)
    tool_alphabet = take(q, np.dtype("u1")).tobytes().decode("ascii", errors="replace")
    neighbours = take(n_seqs + n_skip, ft).astype(np.float64)
    target = take(L, np.dtype("u1")).tobytes().decode("ascii", errors="replace")
    offsets = take(L, np.dtype("<i4")).astype(np.int64)
    take(L * q, ft)  # f_i (marginals)
    h_tool = take(L * q, ft).astype(np.float64).reshape(L, q)
    take(n_pairs * q * q, ft)  # f_ij (marginals)
    e = take(n_pairs * q * q, ft).astype(np.float64).reshape(n_pairs, q, q)
    idx = _state_map(tool_alphabet, alphabet, p)
    h, J = _reorder(h_tool, unpack_pairs(e, L), idx, alphabet.q)
    meta = {
        "n_sequences": n_seqs,
        "n_skipped": n_skip,
        "n_iterations": n_iter,
        "theta": float(theta),
        "lambda_h": float(lam_h),
        "lambda_J": float(lam_j),
        "lambda_group": float(lam_g),
        "n_eff": float(n_eff),
        "target": target,
        "offsets": offsets.tolist(),
        "neighbours": neighbours,
        "precision": "float32" if size == 4 else "float64",
    }
    return ImportedParameters(h, J, alphabet, "plmc", tool_alphabet, meta)
