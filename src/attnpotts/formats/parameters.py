"""Potts parameters imported from (and exported to) the peer DCA tools: the shared pieces.

Each tool's file is read into ``fields (L, q)`` and ``couplings (L, L, q, q)`` indexed
``[i, j, a, b]`` (the canonical layout of :mod:`attnpotts.potts.layout`) in the order of an
attnpotts alphabet (default ``PROTEIN = "-ACDEFGHIKLMNPQRSTVWY"``), raw values without any gauge
change. All three tools use log-potentials,
``P(s) ∝ exp(sum_i h_i(s_i) + sum_{i<j} J_ij(s_i, s_j))``, which is the attnpotts convention at
``beta = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..alphabet import Alphabet
from ..errors import DataFormatError, ShapeError, ValidationError
from ..potts.layout import check_couplings_shape, transpose_couplings

__all__ = ["ImportedParameters"]


@dataclass(frozen=True, eq=False)
class ImportedParameters:
    """Potts parameters imported from another tool, in attnpotts' conventions.

    Attributes:
        fields: ``(L, q)`` in the order of ``alphabet``.
        couplings: ``(L, L, q, q)``, symmetric ``J[j, i] = J[i, j].T``, zero diagonal blocks.
        alphabet: the attnpotts alphabet of the states.
        tool: ``"plmc"``, ``"ccmpred"`` or ``"adabmdca"``.
        tool_alphabet: the tool's state order.
        metadata: what else the file records (plmc: n_eff, lambdas, offsets, target...).
    """

    fields: np.ndarray
    couplings: np.ndarray
    alphabet: Alphabet
    tool: str
    tool_alphabet: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_potts_model(self) -> Any:
        """The parameters as a :class:`attnpotts.potts.PottsModel` (``beta = 1``)."""
        from ..potts import PottsModel

        return PottsModel(self.fields, self.couplings)


def _state_map(tool_alphabet: str, alphabet: Alphabet, source: Path) -> np.ndarray:
    """Index in ``alphabet`` of each state of the tool (letters compared upper case)."""
    out = np.empty(len(tool_alphabet), dtype=np.int64)
    for k, c in enumerate(tool_alphabet):
        sym = c.upper()
        if sym == "." and alphabet.gap is not None:
            sym = alphabet.gap
        if sym not in alphabet.symbols:
            raise DataFormatError(
                f"the tool's state {c!r} (alphabet {tool_alphabet!r}) is not in the attnpotts "
                f"alphabet {alphabet.symbols!r}; pass a matching alphabet",
                path=source,
            )
        out[k] = alphabet.symbols.index(sym)
    if len(set(out.tolist())) != out.size:
        raise DataFormatError(f"tool alphabet {tool_alphabet!r} repeats a state", path=source)
    return out


def _reorder(
    h_tool: np.ndarray, J_tool: np.ndarray, idx: np.ndarray, q: int
) -> tuple[np.ndarray, np.ndarray]:
    L = h_tool.shape[0]
    h = np.zeros((L, q))
    J = np.zeros((L, L, q, q))
    h[:, idx] = h_tool
    J[np.ix_(np.arange(L), np.arange(L), idx, idx)] = J_tool
    return h, J


def _check_params(fields: Any, couplings: Any, alphabet: Alphabet) -> tuple[np.ndarray, np.ndarray]:
    J = np.asarray(couplings, dtype=np.float64)
    L, q = check_couplings_shape(J)
    if q != alphabet.q:
        raise ShapeError(f"couplings have q = {q} states, the alphabet {alphabet.q}")
    h = np.asarray(fields, dtype=np.float64)
    if h.shape != (L, q):
        raise ShapeError(f"fields must have shape {(L, q)}, got {h.shape}")
    if not np.allclose(J, transpose_couplings(J), rtol=1e-10, atol=1e-12):
        raise ValidationError(
            "couplings must be symmetric (J[i, j, a, b] == J[j, i, b, a]) to be exported; "
            "symmetrize them first (attnpotts.evaluation.symmetrize_couplings)"
        )
    return h, J
