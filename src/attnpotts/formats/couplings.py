"""Fitted couplings with their alphabet and column map, in the one Potts ``.npz`` format.

:func:`save_couplings_npz` and :func:`load_couplings_npz` are the alignment-facing view of
:func:`attnpotts.potts.write_potts_npz` / :func:`attnpotts.potts.read_potts_npz` (the format, its
arrays and its validation are documented in :mod:`attnpotts.potts.npz`): the file always carries
the alphabet and the 1-based columns of the original alignment, and loads as a Potts model too.
Files written by earlier attnpotts versions (couplings format version 1) still load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..alphabet import PROTEIN, Alphabet
from ..errors import DataFormatError
from ..potts.npz import MAX_MODEL_BYTES, POTTS_NPZ_VERSION, read_potts_npz, write_potts_npz

__all__ = ["NPZ_FORMAT_VERSION", "CouplingsFile", "load_couplings_npz", "save_couplings_npz"]

#: Version of the npz format written (that of :mod:`attnpotts.potts.npz`).
NPZ_FORMAT_VERSION = POTTS_NPZ_VERSION


@dataclass(frozen=True, eq=False)
class CouplingsFile:
    """Contents of a couplings ``.npz`` file.

    Attributes:
        fields: ``(L, q)`` fields ``h[i, a]``.
        couplings: ``(L, L, q, q)`` couplings ``J[i, j, a, b]`` as saved (no gauge change).
        alphabet: the states' alphabet.
        columns: ``(L,)`` 1-based columns of the original alignment.
        reference: reference residues at the columns (``""`` if none).
        reference_numbers: ``(L,)`` reference residue numbers (``-1``: gap; all ``-1`` if none).
        metadata: the conventions recorded (tool, gauge, regularisation, weights...).
    """

    fields: np.ndarray
    couplings: np.ndarray
    alphabet: Alphabet
    columns: np.ndarray
    reference: str
    reference_numbers: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


def save_couplings_npz(
    path: str | os.PathLike[str],
    couplings: Any,
    fields: Any = None,
    *,
    alphabet: Alphabet = PROTEIN,
    columns: Any = None,
    reference: str = "",
    reference_numbers: Any = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save couplings, fields, alphabet and the column map as npz (atomic; ``beta = 1``).

    Args:
        couplings: ``(L, L, q, q)`` couplings (any symmetry; they load as ``ConditionalPotts``).
        fields: ``(L, q)`` fields (default zero).
        alphabet: the ``q`` states' alphabet.
        columns: 1-based original alignment columns ``(L,)`` (default ``1..L``; e.g.
            ``msa.columns``).
        reference: reference residues at the columns (e.g. ``msa.reference.residues``).
        reference_numbers: ``(L,)`` reference residue numbers (``-1`` at gaps).
        metadata: conventions to record (tool, gauge, regularisation, weights, ...).
    """
    return write_potts_npz(
        path,
        couplings,
        fields,
        alphabet=alphabet,
        columns=columns,
        reference=reference,
        reference_numbers=reference_numbers,
        info=metadata,
    )


def load_couplings_npz(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_MODEL_BYTES
) -> CouplingsFile:
    """Load couplings saved by :func:`save_couplings_npz` (any version).

    The alphabet is rebuilt with ``unknown="gap"`` when it has a gap, as :data:`PROTEIN`.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not a Potts ``.npz`` file, inconsistent, or without an alphabet (a
            model saved by ``PottsModel.save``: load it with ``ConditionalPotts.load``).
    """
    f = read_potts_npz(path, max_bytes=max_bytes)
    if f.alphabet is None:
        raise DataFormatError(
            "the file has no alphabet (a Potts model, not fitted couplings); load it with "
            "attnpotts.potts.ConditionalPotts.load",
            path=Path(path),
        )
    L = f.couplings.shape[0]
    return CouplingsFile(
        fields=f.fields,
        couplings=f.couplings,
        alphabet=f.alphabet,
        columns=np.arange(1, L + 1) if f.columns is None else f.columns,
        reference=f.reference,
        reference_numbers=(
            np.full(L, -1, dtype=np.int64) if f.reference_numbers is None else f.reference_numbers
        ),
        metadata=f.info,
    )
